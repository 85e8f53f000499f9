"""The demo network for two provinces (Lai Châu, one of the Viettel provinces, and Đà Nẵng), loaded once per
backend into a database of this module's own; each test works in a transaction that is rolled back."""

from collections import Counter
from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, aliased

from tslcd.core.bulk import ImportRejected
from tslcd.core.errors import Conflict, DomainValidationError
from tslcd.registry import demo, service
from tslcd.registry.codes import check_agency_code
from tslcd.registry.models import (AdminUnit, Agency, Device, DeviceRole, Interface, Link, Operator, Service, Site,
                                   Subscription, Tier)
from tslcd.registry.resources import RESOURCES
from tslcd.security import audit
from tslcd.security.actor import SYSTEM
from tslcd.security.models import AuditRecord

from tests.conftest import own_database, rolled_back

PROVINCES = ["12", "48"]  # Lai Châu: 38 communes, access-II by Viettel; Đà Nẵng: 94 communes, by VNPT
COMMUNES = 38 + 94
CENTRAL = len(demo.CENTRAL_AGENCIES)  # 58
PER_PROVINCE = len(demo.PROVINCIAL_AGENCIES)  # 32, of which 4 main bodies dual-homed to both PEs
EXPECTED = {
    "admin-units": 14_150, "admin-unit-successions": 10_665, "operators": 3, "agreements": 7, "services": 6,
    "snmp-credentials": 1,
    "agencies": CENTRAL + 2 * PER_PROVINCE + 3 * COMMUNES,  # 518
    "sites": 9 + 2 * 3 + COMMUNES + 518,  # backbone; centre and 2 gateways each; commune nodes; premises
    "devices": 6 + 5 + 6 + 2 * 4 + COMMUNES + 518,  # cores, backup and metro routers; PEs, gateways; switches; CPEs
    # backbone 18 + metro 12 + central bodies 2 each + access-I 6 per province + provincial agencies (4 × 2 + 28)
    # + communes (34 of 132 dual-homed) + commune agencies
    "links": 18 + 12 + 2 * CENTRAL + 2 * 6 + 2 * 36 + COMMUNES + 34 + 3 * COMMUNES,  # 792
    "interfaces": 2 * 792,
    "subscriptions": 518 + CENTRAL + 2 * (2 + COMMUNES),  # VPN each; Internet central; 2 per People's Committee
}


@pytest.fixture(scope="module")
def loaded(engine, tmp_path_factory) -> Iterator[tuple[Engine, dict[str, int]]]:
    with own_database(engine, tmp_path_factory) as own:
        with Session(own) as session:
            counts = demo.load_demo(session=session, actor=SYSTEM, provinces=PROVINCES)
            session.commit()
        yield own, counts


@pytest.fixture
def db(loaded) -> Iterator[Session]:
    with rolled_back(loaded[0]) as session:
        yield session


def test_counts(db, loaded):
    counts = loaded[1]
    assert counts == EXPECTED
    for name, res in RESOURCES.items():
        if name != "admin-units":
            assert db.scalar(select(func.count()).select_from(res.model)) == counts[name], name
    assert demo.is_loaded(session=db)


def test_agency_codes_names_and_parents(db):
    agencies = {a.code: a for a in db.scalars(select(Agency))}
    assert all(check_agency_code(code) == code for code in agencies)
    assert agencies["000.00.00.G22"].name == "Văn phòng Chính phủ"
    by_id = {a.id: a for a in agencies.values()}

    def parent(code: str) -> str:
        return by_id[agencies[code].parent_id].name

    assert agencies["000.00.00.H12"].name == "Ủy ban nhân dân tỉnh Lai Châu"
    assert agencies["000.00.00.T48"].name == "Thành ủy Đà Nẵng"
    assert agencies["000.04.00.U48"].name == "Thành đoàn Đà Nẵng"
    commune_committees = [a for a in agencies.values() if a.kind.value == "people_committee" and a.unit_id
                          and a.code.split(".")[0] != "000"]
    assert len(commune_committees) == COMMUNES
    assert {parent(a.code) for a in commune_committees} == {"Ủy ban nhân dân tỉnh Lai Châu",
                                                           "Ủy ban nhân dân thành phố Đà Nẵng"}
    assert parent("001.00.00.T12") == "Tỉnh ủy Lai Châu"
    assert parent("000.02.00.H48") == "Ủy ban nhân dân thành phố Đà Nẵng"
    assert parent("000.12.00.TA1") == "Tòa án nhân dân tối cao"
    hoang_sa = db.scalars(select(Agency).join(AdminUnit, AdminUnit.id == Agency.unit_id)
                          .where(AdminUnit.name == "Đặc khu Hoàng Sa")).all()
    assert {a.name for a in hoang_sa} == {"Đảng ủy đặc khu Hoàng Sa", "Hội đồng nhân dân đặc khu Hoàng Sa",
                                          "Ủy ban nhân dân đặc khu Hoàng Sa"}


def test_operators_follow_the_agreements(db):
    """CBĐTW runs backbone, access-I and metro; VNPT access-II and premises, except Viettel for access-II in its
    provinces; the central bodies' CPEs are overridden to CBĐTW."""
    operators = dict(db.execute(select(Operator.id, Operator.slug)).all())
    province_codes = dict(db.execute(select(AdminUnit.id, AdminUnit.code)).all())

    def expected(tier: Tier, province_id: int | None) -> str:
        if tier == Tier.access_2:
            return "viettel" if province_codes.get(province_id) in demo.VIETTEL_PROVINCES else "vnpt"
        return "vnpt" if tier == Tier.premises else "cbdtw"

    links = db.execute(select(Link.slug, Link.tier, Link.province_id, Link.operator_id, Link.operator_override))
    by_operator = Counter()
    for slug, tier, province_id, operator_id, override in links:
        assert (operators[operator_id], override) == (expected(tier, province_id), False), slug
        by_operator[operators[operator_id]] += 1
    assert by_operator["viettel"] > 0 and by_operator["vnpt"] > 0

    central_cpes = {f"ag-{code.lower()}-cpe1" for code, *_ in demo.CENTRAL_AGENCIES}
    devices = db.execute(select(Device.name, Device.tier, Device.province_id, Device.operator_id,
                                Device.operator_override))
    for name, tier, province_id, operator_id, override in devices:
        if name in central_cpes:
            assert (operators[operator_id], override) == ("cbdtw", True), name
        else:
            assert (operators[operator_id], override) == (expected(tier, province_id), False), name
    stale = db.scalar(select(func.count()).select_from(Subscription)
                      .join(Link, Link.id == Subscription.access_link_id)
                      .where(Subscription.operator_id != Link.operator_id))
    assert stale == 0


def neighbours(session: Session, device: str) -> list[str]:
    """Names of the devices linked to a device, sorted."""
    a, b = aliased(Device), aliased(Device)
    pairs = session.execute(select(a.name, b.name).join(Link, Link.a_device_id == a.id)
                            .join(b, Link.b_device_id == b.id).where((a.name == device) | (b.name == device)))
    return sorted(y if x == device else x for x, y in pairs)


def test_redundant_topology(db):
    assert neighbours(db, "rc-north-cr1") == sorted([
        "rc-north-cr2", "rc-centre-cr1", "rc-south-cr1", "bk-north-r1", "metro-hn-r1", "metro-hn-r2",
        *[f"ag-{code.lower()}-cpe1" for code, *_ in demo.CENTRAL_AGENCIES[0::2]]])
    assert neighbours(db, "bk-centre-r1") == sorted(["rc-centre-cr1", "rc-centre-cr2", "bk-north-r2",
                                                     "bk-south-r1", "p48-gw2-r1"])
    # Each province: gateway 1 to its regional centre, gateway 2 to its backup centre, both gateways to both PEs.
    assert neighbours(db, "p12-gw1-r1") == ["p12-pe1", "p12-pe2", "rc-north-cr2"]
    assert neighbours(db, "p12-gw2-r1") == ["bk-north-r2", "p12-pe1", "p12-pe2"]
    assert neighbours(db, "p48-gw1-r1") == ["p48-pe1", "p48-pe2", "rc-centre-cr2"]
    assert neighbours(db, "ag-000.00.00.g22-cpe1") == ["metro-hn-r1", "rc-north-cr1"]
    assert neighbours(db, "ag-000.00.00.h48-cpe1") == ["p48-pe1", "p48-pe2"]
    switches = db.scalars(select(Device.name).where(Device.role == DeviceRole.access_switch)).all()
    uplinks = Counter(len([n for n in neighbours(db, s) if "-pe" in n]) for s in switches[:40])
    assert set(uplinks) == {1, 2} and uplinks[2] >= 5
    commune_links = db.execute(select(Link.capacity, func.count()).join(Device, Device.id == Link.b_device_id)
                               .where(Device.role == DeviceRole.access_switch).group_by(Link.capacity)).all()
    assert commune_links == [(200_000_000, COMMUNES + 34)]
    ports = db.execute(select(Interface.name, Interface.if_index, Interface.speed).join(Device)
                       .where(Device.name == "p48-pe1").order_by(Interface.if_index)).all()
    assert len({name for name, *_ in ports}) == len(ports) and all(speed >= 10**9 for *_, speed in ports)


def test_services_and_subscriptions(db):
    per_service = dict(db.execute(select(Service.code, func.count(Subscription.id))
                                  .outerjoin(Subscription, Subscription.service_id == Service.id)
                                  .group_by(Service.code)).all())
    assert per_service == {"vpn": EXPECTED["agencies"], "internet": CENTRAL, "video_conf": 2 + COMMUNES,
                           "doc_exchange": 2 + COMMUNES, "tel_080": 0, "telegraph": 0}
    internet_users = db.scalars(select(Agency.code).join(Subscription, Subscription.agency_id == Agency.id)
                                .join(Service).where(Service.code == "internet")).all()
    assert set(internet_users) == {code for code, *_ in demo.CENTRAL_AGENCIES}


def test_every_object_is_audited_once(db, admin, loaded):
    counts = loaded[1]
    tables = {name: RESOURCES[name].model.__tablename__ for name in counts if name in RESOURCES}
    tables["admin-unit-successions"] = "admin_unit_successions"
    by_type = dict(db.execute(select(AuditRecord.object_type, func.count())
                              .where(AuditRecord.action == "create").group_by(AuditRecord.object_type)).all())
    assert by_type == {tables[name]: n for name, n in counts.items()}
    assert audit.verify(session=db, actor=admin).ok


def test_generated_rows_import_all_or_nothing(db, admin):
    rows = demo.generate_rows(session=db, provinces=["96"])["sites"]
    new = [r for r in rows if r["slug"].startswith("p96-") or r["kind"] == "commune_node" and r["unit"] > "3"]
    assert len(new) == 3 + 64  # Cà Mau: centre, 2 gateways, 64 communes
    bad = [*new[:10], {**new[10], "unit": "99999"}, *new[11:]]
    sites, records = (db.scalar(select(func.count()).select_from(m)) for m in (Site, AuditRecord))
    with pytest.raises(ImportRejected) as caught:
        service.import_objects(session=db, actor=admin, res=service.resource("sites"), data=orjson.dumps(bad),
                               fmt="json")
    assert [(e.row, e.column) for e in caught.value.report.errors] == [(11, "unit")]
    assert (db.scalar(select(func.count()).select_from(Site)),
            db.scalar(select(func.count()).select_from(AuditRecord))) == (sites, records)
    report = service.import_objects(session=db, actor=admin, res=service.resource("sites"), data=orjson.dumps(new),
                                    fmt="json")
    assert report.created == len(new)


def test_rows_are_deterministic_and_do_not_depend_on_other_provinces(db):
    one = demo.generate_rows(session=db, provinces=["12"])
    assert one == demo.generate_rows(session=db, provinces=["12"])
    two = demo.generate_rows(session=db, provinces=PROVINCES)
    for name in ("sites", "devices", "links", "agencies"):
        assert all(row in two[name] for row in one[name]), name


def test_a_second_load_is_refused(db, admin):
    with pytest.raises(Conflict, match="already loaded"):
        demo.load_demo(session=db, actor=admin, provinces=PROVINCES)


def test_unknown_provinces_are_refused_before_anything_is_written(session, admin):
    before = session.scalar(select(func.count()).select_from(AuditRecord))
    with pytest.raises(DomainValidationError, match="no current province 30, 99"):
        demo.load_demo(session=session, actor=admin, provinces=["01", "99", "30"])  # 30 was Hải Dương until 2025
    assert session.scalar(select(func.count()).select_from(AuditRecord)) == before
