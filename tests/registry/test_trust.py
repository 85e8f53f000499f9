"""Issue 11's registry reproductions: the permission gate on every write path, one write path, ids, validity,
search and export → import → export."""

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from tests.factories import build_tiny, csv
from tslcd.core.bulk import ImportRejected
from tslcd.core.errors import PermissionDenied
from tslcd.registry import schemas, service
from tslcd.registry.models import AdminUnit, Device, Link, Service, Site, Subscription, UnitKind
from tslcd.registry.resources import RESOURCES
from tslcd.security.actor import Actor
from tslcd.security.models import Role


@pytest.fixture
def tiny(session, admin):
    return build_tiny(session, admin)


def _id(session, model, column, value) -> int:
    return session.scalar(select(model.id).where(column == value))


# Items 2 and 3: a partner cannot take over or create other operators' equipment
def test_partner_cannot_take_over_a_core_router_by_import(client, session, tiny, make_token):
    h = make_token(Role.partner, operator_id=tiny.vnpt)
    core = _id(session, Device, Device.name, "rc-1")
    backbone_link = _id(session, Link, Link.slug, "rc1-pe1")
    r = client.post("/api/v1/devices/import", json=[{"id": core, "operator_id": tiny.vnpt, "model": "X"}], headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["msg"] == f"no device with id {core} to update"
    r = client.post("/api/v1/links/import", json=[{"id": backbone_link, "operator_id": tiny.vnpt}], headers=h)
    assert r.status_code == 422 and "no link with id" in r.json()["errors"][0]["msg"]
    session.expire_all()
    assert session.get(Device, core).operator_id == tiny.cbdtw and session.get(Device, core).model == "MX960"
    assert session.get(Link, backbone_link).operator_id == tiny.cbdtw


def test_partner_cannot_hand_its_own_row_to_itself_by_override(client, session, tiny, make_token):
    """Its own switch can be edited; naming an operator other than the agreements' one cannot."""
    h = make_token(Role.partner, operator_id=tiny.vnpt)
    sw = _id(session, Device, Device.name, "sw-1")
    r = client.post("/api/v1/devices/import", json=[{"id": sw, "model": "S6730"}], headers=h)
    assert r.status_code == 200 and r.json()["updated"] == 1
    r = client.post("/api/v1/devices/import", json=[{"id": sw, "operator_id": tiny.viettel}], headers=h)
    assert r.status_code == 422 and "follows the agreements" in r.json()["errors"][0]["msg"]
    r = client.post("/api/v1/devices/import", json=[{"id": sw, "tier": "backbone"}], headers=h)
    assert r.status_code == 422 and "cannot change it" in r.json()["errors"][0]["msg"]


def test_partner_cannot_create_backbone_equipment_by_naming_itself(client, session, tiny, make_token):
    h = make_token(Role.partner, operator_id=tiny.vnpt)
    centre = _id(session, Site, Site.slug, "rc-north")
    body = {"name": "evil-core", "site_id": centre, "role": "core_router", "tier": "backbone",
            "operator_id": tiny.vnpt}
    r = client.post("/api/v1/devices", json=body, headers=h)
    assert r.status_code == 403 and "follows the agreements" in r.json()["detail"]
    r = client.post("/api/v1/devices", json={**body, "operator_id": None}, headers=h)
    assert r.status_code == 403 and "do not make your operator responsible" in r.json()["detail"]
    r = client.post("/api/v1/devices/import", json=[body], headers=h)
    assert r.status_code == 422
    assert session.scalar(select(Device.id).where(Device.name == "evil-core")) is None


def test_partner_names_only_what_it_may_see(client, session, tiny, make_token):
    """Naming another operator's device by name answers as if it did not exist."""
    h = make_token(Role.partner, operator_id=tiny.vnpt)
    r = client.post("/api/v1/interfaces/import", content=csv("""device,name,if_index
        rc-1,xe-0/0/9,9
        sw-1,Gi0/9,9"""), headers={**h, "content-type": "text/csv"})
    assert r.status_code == 422
    assert [(e["row"], e["msg"]) for e in r.json()["errors"]] == [(2, "no device 'rc-1'")]
    r = client.post("/api/v1/interfaces", json={"device_id": _id(session, Device, Device.name, "rc-1"),
                                                "name": "xe-0/0/9"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["device_id"]


def test_partner_link_must_touch_its_own_equipment(client, session, tiny, make_token, admin):
    service.import_objects(session=session, actor=admin, res=service.resource("interfaces"), fmt="csv", data=csv(
        """device,name,if_index
        rc-1,xe-0/0/7,7
        pe-1,Gi0/0/7,7"""))
    h = make_token(Role.partner, operator_id=tiny.vnpt)
    r = client.post("/api/v1/links/import", content=csv("""slug,a_device,a_interface,b_device,b_interface,capacity,tier
        sneaky,rc-1,xe-0/0/7,pe-1,Gi0/0/7,1G,access_2"""), headers={**h, "content-type": "text/csv"})
    assert r.status_code == 422 and "no device" in r.text or "at least one device" in r.text


def test_auditor_and_agency_users_write_nothing_through_any_path(client, session, tiny, make_token):
    for role, kw in ((Role.auditor, {}), (Role.agency, {"agency_id": _id(session, service.resource(
            "agencies").model, service.resource("agencies").model.code, "001.01.00.H01")})):
        h = make_token(role, **kw)
        r = client.post("/api/v1/services/import", json=[{"code": "x", "name": "X"}], headers=h)
        assert r.status_code == 422 and "cannot" in r.json()["errors"][0]["msg"], role
        assert client.post("/api/v1/services", json={"code": "x", "name": "X"}, headers=h).status_code == 403


# Item 14: one write path
def test_changing_a_links_operator_by_import_moves_its_subscriptions(session, admin, tiny):
    link = _id(session, Link, Link.slug, "sw1-cpea")
    report = service.import_objects(session=session, actor=admin, res=service.resource("links"), fmt="json",
                                    data=f'[{{"id": {link}, "operator_id": {tiny.viettel}}}]')
    assert report.updated == 1
    sub = session.scalar(select(Subscription).where(Subscription.access_link_id == link))
    assert sub.operator_id == tiny.viettel


# Item 15: ids are never reused
def test_ids_are_never_reused(session, admin):
    res = service.resource("services")
    first = service.create_object(session=session, actor=admin, res=res,
                                  obj_in=schemas.ServiceCreate(code="a", name="A")).id
    service.delete_object(session=session, actor=admin, res=res, obj_id=first)
    second = service.create_object(session=session, actor=admin, res=res,
                                   obj_in=schemas.ServiceCreate(code="b", name="B")).id
    assert second > first
    report = service.import_objects(session=session, actor=admin, res=res, data=b"code,name\nc,C\n", fmt="csv")
    assert report.created == 1
    assert session.scalar(select(func.max(Service.id))) > second


# Item 23: validity-dated lists default to what is in force today
def test_lists_default_to_what_is_in_force(client, session, admin, tiny, make_token):
    units = service.resource("admin-units")
    central = session.scalar(select(AdminUnit.id).where(AdminUnit.code == "VN"))
    service.create_object(session=session, actor=admin, res=units, obj_in=schemas.AdminUnitCreate(
        code="01", kind=UnitKind.province, name="Thành phố Hà Nội (cũ)", parent_id=central,
        valid_to=date(2025, 6, 30)))
    h = make_token(Role.noc)

    def names(**params):
        r = client.get("/api/v1/admin-units", params={"kind": "province", **params}, headers=h)
        assert r.status_code == 200, r.text
        return sorted(u["name"] for u in r.json()["results"])

    assert names() == ["Thành phố Hà Nội", "Thành phố Đà Nẵng"]
    assert names(as_of="all") == ["Thành phố Hà Nội", "Thành phố Hà Nội (cũ)", "Thành phố Đà Nẵng"]
    assert names(as_of="2025-01-01") == ["Thành phố Hà Nội (cũ)"]
    r = client.get("/api/v1/admin-units", params={"as_of": "yesterday"}, headers=h)
    assert r.status_code == 422
    r = client.get("/api/v1/sites", params={"as_of": "2025-01-01"}, headers=h)
    assert r.status_code == 422 and "no validity dates" in r.json()["detail"]


# Item 24: search without diacritics or case
def test_search_ignores_diacritics_and_case_everywhere(client, tiny, make_token):
    h = make_token(Role.noc)
    for path, q, expected in (("/api/v1/agencies", "van phong chinh phu", ["000.00.00.G22"]),
                              ("/api/v1/agencies", "BA ĐÌNH", ["001.01.00.H01"]),
                              ("/api/v1/sites", "da nang", ["pc-48"]),
                              ("/api/v1/admin-units", "ha noi", ["01"]),
                              ("/api/v1/devices", "PE-48", ["pe-48"]),
                              ("/api/v1/agencies", "100%", [])):
        r = client.get(path, params={"q": q}, headers=h)
        assert r.status_code == 200, r.text
        got = [x.get("code") if "code" in x and "slug" not in x and "name" not in x or path.endswith(
            ("agencies", "admin-units")) else x.get("slug") or x.get("name") for x in r.json()["results"]]
        assert got == expected, (path, q, got)


# Item 29: export → import → export gives the same file, for every object type
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_every_object_type_round_trips(session, admin, tiny, fmt):
    service.create_object(session=session, actor=admin, res=service.resource("snmp-credentials"),
                          obj_in=schemas.SnmpCredentialCreate(name="ro", version="v2c", community="sentinel-ro"))
    for name, res in RESOURCES.items():
        first = service.export_objects(session=session, actor=admin, res=res, fmt=fmt)
        report = service.import_objects(session=session, actor=admin, res=res, data=first, fmt=fmt)
        assert (report.created, report.updated) == (0, 0), (name, report)
        assert service.export_objects(session=session, actor=admin, res=res, fmt=fmt) == first, name
    assert b"sentinel-ro" not in service.export_objects(session=session, actor=admin,
                                                        res=service.resource("snmp-credentials"), fmt=fmt)


def test_an_exported_row_can_be_edited_and_imported_back(session, admin, tiny):
    res = service.resource("agencies")
    lines = service.export_objects(session=session, actor=admin, res=res, fmt="csv").decode().splitlines()
    edited = "\n".join([lines[0], lines[1].replace("Ủy ban nhân dân Thành phố Hà Nội", "UBND TP Hà Nội")]) + "\n"
    report = service.import_objects(session=session, actor=admin, res=res, data=edited.encode(), fmt="csv")
    assert (report.created, report.updated) == (0, 1)
    without_ids = "\n".join([lines[0], "," + lines[2].split(",", 1)[1]]) + "\n"
    with pytest.raises(ImportRejected) as caught:  # a row without its id is a new object: its code exists
        service.import_objects(session=session, actor=admin, res=res, data=without_ids.encode(), fmt="csv")
    assert "give its id to update it" in caught.value.report.errors[0].msg


def test_an_update_cannot_change_a_natural_key_it_does_not_own(session, admin, tiny):
    link = _id(session, Link, Link.slug, "pe1-sw1")
    with pytest.raises(ImportRejected) as caught:
        service.import_objects(session=session, actor=admin, res=service.resource("links"), fmt="json",
                               data=f'[{{"id": {link}, "slug": "renamed"}}]')
    assert "cannot be changed by an update" in caught.value.report.errors[0].msg


# Item 28: one lock order — an import and API writes on the same rows at once (PostgreSQL)
def test_import_and_api_writes_at_once_do_not_deadlock(engine, tmp_path_factory):
    """On PostgreSQL the lock order decides; SQLite serialises writers at BEGIN IMMEDIATE and must simply wait."""
    from fastapi.testclient import TestClient
    from tests.conftest import serving
    from tslcd.api import create_app
    from tslcd.core import database
    from tslcd.security import service as security
    from tslcd.security.actor import SYSTEM
    from tslcd.security.schemas import UserCreate

    with serving(engine, tmp_path_factory):
        with database.session_scope() as s:
            build_tiny(s, SYSTEM)
            user = security.create_user(session=s, actor=SYSTEM, user_in=UserCreate(username="noc1", role=Role.noc))
            token = security.issue_token(session=s, actor=SYSTEM, user=user)[0]
        codes = [f"{i // 100:03d}.{i % 100:02d}.55.H01" for i in range(5000)]
        data = ("code,name,kind,unit\n" + "".join(f"{c},Cơ quan {c},state,01\n" for c in codes)).encode()
        outcome: dict[str, object] = {}

        def run_import():
            try:
                with database.session_scope() as s:
                    outcome["import"] = service.import_objects(session=s, actor=SYSTEM, data=data, fmt="csv",
                                                               res=service.resource("agencies")).created
            except Exception as exc:  # noqa: BLE001 - the test reports it
                outcome["import"] = exc

        client = TestClient(create_app(), raise_server_exceptions=False)
        h = {"Authorization": f"Bearer {token}"}
        worker = threading.Thread(target=run_import)
        worker.start()
        statuses = [client.post("/api/v1/agencies", json={"code": c, "name": "Trùng", "kind": "state"},
                                headers=h).status_code for c in (codes[10], codes[4000])]
        link = client.get("/api/v1/links", params={"slug": "pe1-sw1"}, headers=h).json()["results"][0]["id"]
        statuses.append(client.patch(f"/api/v1/links/{link}", json={"capacity": "1G"}, headers=h).status_code)
        worker.join(120)
        assert not worker.is_alive()
        imported = outcome["import"]
        assert statuses[2] == 200
        if isinstance(imported, ImportRejected):  # a POST came first: the import names the code it took
            assert all(s in (201, 409) for s in statuses[:2]) and 201 in statuses[:2]
        else:
            assert imported == 5000 and statuses[:2] == [409, 409], (imported, statuses)


def test_gate_checks_the_row_as_stored_and_as_it_will_be(session, admin, tiny):
    """Directly on the service: a partner's PATCH of its own link to a foreign device's ends is refused."""
    from tslcd.registry.models import Interface

    partner = Actor(username="vnpt-1", role=Role.partner, operator_id=tiny.vnpt)
    own = _id(session, Link, Link.slug, "sw1-cpea")
    service.update_object(session=session, actor=partner, res=service.resource("links"), obj_id=own,
                          obj_in=schemas.LinkUpdate(capacity="150M"))
    with pytest.raises(PermissionDenied):
        service.update_object(session=session, actor=partner, res=service.resource("links"), obj_id=own,
                              obj_in=schemas.LinkUpdate(tier="access_1"))
    assert session.get(Link, own).capacity == 150_000_000
    assert session.scalar(select(func.count()).select_from(Interface)) > 0
