"""Topology answers on the hand-made network of conftest.py, through the service layer."""

import pytest

from tslcd.core.errors import DomainValidationError, NotFound
from tslcd.registry import schemas as rs
from tslcd.registry import service as registry
from tslcd.topology import service
from tslcd.topology.graph import engine_for


def codes(agencies) -> list[str]:
    return [a.code for a in agencies]


A1, A2, A3, A4 = "000.00.01.H01", "000.00.02.H01", "000.00.03.H01", "000.00.04.H01"


def test_bridge_cut_loses_the_agencies_below_it(net, admin):
    r = service.impact(session=net.session, actor=admin, links=["up-1"])
    assert codes(r.agencies_lost) == [A1, A2]
    assert r.agencies_redundancy_lost == []
    assert r.subscriptions_lost == sorted([net.ids["sub-A1"], net.ids["sub-A2"]])
    assert r.devices_cut_off == 3  # com-1 and two CPEs
    assert [(p.province.code, p.agencies_lost, p.subscriptions_lost) for p in r.by_province] == [("01", 2, 2)]


def test_one_of_two_parallel_links_loses_only_redundancy(net, admin):
    r = service.impact(session=net.session, actor=admin, links=["up-2a"])
    assert r.agencies_lost == [] and r.subscriptions_lost == []
    assert codes(r.agencies_redundancy_lost) == [A3]  # A4 hangs by one link already: nothing to lose


def test_both_parallel_links_lose_service(net, admin):
    r = service.impact(session=net.session, actor=admin, links=["up-2a", net.ids["up-2b"]])
    assert codes(r.agencies_lost) == [A3, A4]
    assert r.subscriptions_lost == [net.ids["sub-A3"]]


def test_failed_access_link_with_a_spare_keeps_the_subscription(net, admin):
    r = service.impact(session=net.session, actor=admin, links=["acc-a3a"])
    assert r.agencies_lost == [] and r.subscriptions_lost == []
    assert codes(r.agencies_redundancy_lost) == [A3]


def test_device_in_the_redundant_core(net, admin):
    """gw-1 cuts com-1 off, and leaves gw-2 (so com-2's agency A3) hanging by bb-2 alone."""
    r = service.impact(session=net.session, actor=admin, devices=["gw-1"])
    assert codes(r.agencies_lost) == [A1, A2]
    assert codes(r.agencies_redundancy_lost) == [A3]
    assert r.devices_cut_off == 4
    assert [d.name for d in r.failed_devices] == ["gw-1"]


def test_site_fails_with_all_its_devices(net, admin):
    r = service.impact(session=net.session, actor=admin, sites=["gw"])
    assert [d.name for d in r.failed_devices] == ["gw-1", "gw-2"]
    assert codes(r.agencies_lost) == [A1, A2, A3, A4]
    assert r.devices_cut_off == 8


def test_a_link_already_down_changes_nothing(net, admin):
    registry.update_object(session=net.session, actor=admin, res=registry.resource("links"),
                           obj_id=net.ids["up-1"], obj_in=rs.LinkUpdate(status="down"))
    r = service.impact(session=net.session, actor=admin, links=["up-1"])
    assert r.already_inactive == ["link up-1"] and r.agencies_lost == []


def test_unknown_names_and_empty_failures_are_refused(net, admin):
    with pytest.raises(NotFound, match="no link 'nope'"):
        service.impact(session=net.session, actor=admin, links=["nope"])
    with pytest.raises(DomainValidationError):
        service.impact(session=net.session, actor=admin)


def test_spof_lists_bridges_and_cut_devices_worst_first(net, admin):
    r = service.spof(session=net.session, actor=admin, province="01")
    assert r.province.code == "01"
    got = [(i.kind, i.name, i.agencies_lost, i.subscriptions_lost) for i in r.items]
    assert got == [("device", "com-1", 2, 2), ("device", "gw-1", 2, 2), ("link", "up-1", 2, 2),
                   ("device", "com-2", 2, 1), ("device", "gw-2", 2, 1),
                   ("link", "acc-a1", 1, 1), ("link", "acc-a2", 1, 1), ("link", "acc-a4", 1, 0)]
    assert [(p.province.code, p.links, p.devices, p.agencies_exposed) for p in r.by_province] == [("01", 4, 4, 2)]
    assert service.spof(session=net.session, actor=admin, province="79").items == []


def test_redundancy_score_per_province(net, admin):
    r = service.redundancy(session=net.session, actor=admin, province=net.ids["01"])
    (p,) = r.provinces
    assert (p.province.code, p.agencies, p.redundant, p.single_homed, p.unserved, p.no_equipment) == \
        ("01", 6, 1, 3, 1, 1)
    assert p.score == pytest.approx(1 / 6)
    assert r.total.agencies == 6


def test_unknown_province(net, admin):
    with pytest.raises(NotFound, match="no province"):
        service.spof(session=net.session, actor=admin, province="99")


def test_path_steps(net, admin):
    r = service.path(session=net.session, actor=admin, from_agency=A1, to_agency=net.ids["A3"])
    assert r.links == 5
    assert [s.kind for s in r.steps] == ["device", "link"] * 5 + ["device"]
    assert [s.name for s in r.steps[::2]] == ["cpe-a1", "com-1", "gw-1", "gw-2", "com-2", "cpe-a3"]
    assert [s.slug for s in r.steps[1::2]] == ["acc-a1", "up-1", "gw-x", "up-2a", "acc-a3a"]
    link, device = r.steps[1], r.steps[2]
    assert (device.role, device.site.slug, link.tier, link.capacity) == \
        ("access_switch", "commune-1", "access_2", 100_000_000)
    assert link.operator_id == net.ids["vnpt"]


def test_partner_path_has_one_segment_per_foreign_run(net):
    """VNPT sees its access parts; gw-1, gw-x, gw-2 (CBĐTW, consecutive) are one segment without names."""
    from tslcd.security.actor import Actor
    from tslcd.security.models import Role

    vnpt = Actor(username="vnpt", role=Role.partner, operator_id=net.ids["vnpt"])
    r = service.path(session=net.session, actor=vnpt, from_agency=A1, to_agency=A3)
    assert r.links == 5
    assert [s.kind for s in r.steps] == ["device", "link", "device", "link", "segment", "link", "device", "link",
                                         "device"]
    (segment,) = [s for s in r.steps if s.kind == "segment"]
    assert segment.model_dump() == {"kind": "segment", "operator": "cbdtw", "label": "Phân đoạn cbdtw"}


def test_no_path_is_a_domain_error(net, admin):
    with pytest.raises(NotFound, match="no path over active links"):
        service.path(session=net.session, actor=admin, from_agency=A1, to_agency="000.00.06.H01")
    with pytest.raises(NotFound, match="no active device"):
        service.path(session=net.session, actor=admin, from_agency=A1, to_agency="000.00.05.H01")


def test_registry_changes_apply_without_reloading(net, admin):
    assert codes(service.impact(session=net.session, actor=admin, links=["up-1"]).agencies_lost) == [A1, A2]
    engine = engine_for(net.session)
    loads, analyses = engine.loads, engine.network.analyses
    net.link("up-1b", "com-1", "gw-2")  # a second uplink for com-1
    r = service.impact(session=net.session, actor=admin, links=["up-1"])
    assert r.agencies_lost == [] and codes(r.agencies_redundancy_lost) == []
    assert engine.loads == loads and engine.applied > 0
    assert engine.network.analyses == analyses + 1
    registry.update_object(session=net.session, actor=admin, res=registry.resource("links"),
                           obj_id=net.ids["up-1b"], obj_in=rs.LinkUpdate(status="down"))
    assert codes(service.impact(session=net.session, actor=admin, links=["up-1"]).agencies_lost) == [A1, A2]
    assert engine.loads == loads


def test_renaming_does_not_rerun_the_dfs(net, admin):
    service.spof(session=net.session, actor=admin)
    engine = engine_for(net.session)
    analyses = engine.network.analyses
    registry.update_object(session=net.session, actor=admin, res=registry.resource("devices"),
                           obj_id=net.ids["com-1"], obj_in=rs.DeviceUpdate(name="com-1-renamed"))
    r = service.spof(session=net.session, actor=admin, province="01")
    assert "com-1-renamed" in [i.name for i in r.items]
    assert engine.network.analyses == analyses and engine.loads == 1


def test_rolled_back_changes_are_forgotten(net, admin):
    service.spof(session=net.session, actor=admin)
    engine = engine_for(net.session)
    savepoint = net.session.begin_nested()
    net.link("up-1b", "com-1", "gw-2")
    assert service.impact(session=net.session, actor=admin, links=["up-1"]).agencies_lost == []
    savepoint.rollback()
    assert codes(service.impact(session=net.session, actor=admin, links=["up-1"]).agencies_lost) == [A1, A2]
    assert engine.loads == 2


def test_spof_filters_shared_failures_and_limits_the_list(net, admin):
    r = service.spof(session=net.session, actor=admin, province="01", min_agencies=2, limit=2)
    assert r.total == 5 and [i.name for i in r.items] == ["com-1", "gw-1"]
    assert [(p.links, p.devices) for p in r.by_province] == [(1, 4)]


def test_a_record_too_partial_to_apply_triggers_a_reload(net, admin):
    from tslcd.security import audit

    service.spof(session=net.session, actor=admin)
    engine = engine_for(net.session)
    audit.record_many(session=net.session, actor=admin, changes=[audit.Change(
        "update", "devices", 999_999, after={"operator_id": net.ids["vnpt"]}, note="a device never seen whole")])
    service.spof(session=net.session, actor=admin)
    assert engine.loads == 2
