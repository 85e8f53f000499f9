"""Administrative units from the vietnamadminunits data: counts, parents, successions, old units resolved today.

The units are loaded once per backend into a database of this module's own; each test works in a transaction
that is rolled back.
"""

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tslcd.core.errors import Conflict, DomainValidationError
from tslcd.registry import adminunits, service
from tslcd.registry.models import AdminUnit, AdminUnitSuccession, UnitKind
from tslcd.security import audit
from tslcd.security.actor import SYSTEM
from tslcd.security.models import AuditRecord

from tests.conftest import own_database, rolled_back

BEFORE, AFTER = date(2025, 6, 30), date(2025, 7, 1)


@pytest.fixture(scope="module")
def loaded(engine, tmp_path_factory) -> Iterator[tuple[Engine, dict[str, int]]]:
    with own_database(engine, tmp_path_factory) as own:
        with Session(own) as session:
            counts = adminunits.load_admin_units(session=session, actor=SYSTEM)
            session.commit()
        yield own, counts


@pytest.fixture
def db(loaded) -> Iterator[Session]:
    with rolled_back(loaded[0]) as session:
        yield session


def unit(session: Session, kind: UnitKind, code: str, legacy: bool) -> AdminUnit:
    validity = AdminUnit.valid_to.is_not(None) if legacy else AdminUnit.valid_from.is_not(None)
    return session.scalars(select(AdminUnit).where(AdminUnit.kind == kind, AdminUnit.code == code, validity)).one()


def count_on(session: Session, kind: UnitKind, on: date, admin, **filters) -> int:
    total, _ = service.list_objects(session=session, actor=admin, res=service.resource("admin-units"),
                                    filters={"kind": [kind], **filters}, as_of=on, limit=1)
    return total


def test_counts_before_and_after_the_reform(db, admin, loaded):
    assert loaded[1] == {"central": 1, "province": 97, "district": 696, "commune": 13_356, "successions": 10_665}
    assert count_on(db, UnitKind.province, AFTER, admin) == 34
    assert count_on(db, UnitKind.commune, AFTER, admin) == 3_321
    assert count_on(db, UnitKind.district, AFTER, admin) == 0
    assert count_on(db, UnitKind.province, BEFORE, admin) == 63
    assert count_on(db, UnitKind.district, BEFORE, admin) == 696
    assert count_on(db, UnitKind.commune, BEFORE, admin) == 10_035
    assert count_on(db, UnitKind.central, AFTER, admin) == count_on(db, UnitKind.central, BEFORE, admin) == 1
    types = dict(db.execute(select(AdminUnit.unit_type, func.count()).where(AdminUnit.valid_from == AFTER,
                                                                           AdminUnit.kind == UnitKind.commune)
                            .group_by(AdminUnit.unit_type)).all())
    assert types == {"Xã": 2_621, "Phường": 687, "Đặc khu": 13}
    cities = db.scalars(select(AdminUnit.short_name).where(AdminUnit.valid_from == AFTER,
                                                           AdminUnit.unit_type == "Thành phố")).all()
    assert sorted(cities) == ["Cần Thơ", "Huế", "Hà Nội", "Hải Phòng", "Hồ Chí Minh", "Đà Nẵng"]


def test_types_follow_the_names_where_the_dataset_columns_disagree(db):
    assert unit(db, UnitKind.commune, "10543", legacy=False).unit_type == "Phường"  # typed Xã in the dataset
    phu_nhuan_5 = unit(db, UnitKind.commune, "27046", legacy=True)
    assert (phu_nhuan_5.name, phu_nhuan_5.unit_type) == ("Phường 5", "Phường")
    ai_tu = unit(db, UnitKind.commune, "19624", legacy=True)
    assert (ai_tu.name, ai_tu.short_name, ai_tu.unit_type) == ("Thị trấn Ái Tử", "Ái Tử", "Thị trấn")


def test_parents_form_the_old_and_the_new_tree(db):
    central = db.scalars(select(AdminUnit).where(AdminUnit.kind == UnitKind.central)).one()
    assert (central.code, central.name) == ("VN", "Trung ương")
    truc_bach = unit(db, UnitKind.commune, "00004", legacy=True)
    ba_dinh_district = db.get(AdminUnit, truc_bach.parent_id)
    old_hanoi = db.get(AdminUnit, ba_dinh_district.parent_id)
    assert (truc_bach.name, ba_dinh_district.name, old_hanoi.name) == (
        "Phường Trúc Bạch", "Quận Ba Đình", "Thành phố Hà Nội")
    assert (old_hanoi.valid_to, old_hanoi.parent_id) == (BEFORE, central.id)
    ba_dinh = unit(db, UnitKind.commune, "00004", legacy=False)
    new_hanoi = db.get(AdminUnit, ba_dinh.parent_id)
    assert (ba_dinh.name, ba_dinh.valid_from, new_hanoi.code, new_hanoi.valid_from) == (
        "Phường Ba Đình", AFTER, "01", AFTER)
    assert new_hanoi.id != old_hanoi.id and new_hanoi.parent_id == central.id
    assert (ba_dinh.lat, ba_dinh.lon) == pytest.approx((21.04, 105.84), abs=0.01)
    orphans = db.scalar(select(func.count()).select_from(AdminUnit).where(AdminUnit.parent_id.is_(None),
                                                                           AdminUnit.kind != UnitKind.central))
    assert orphans == 0


def test_successions_of_provinces_and_communes(db):
    hai_duong = unit(db, UnitKind.province, "30", legacy=True)
    assert [(u.code, u.name, d) for u, d in adminunits.successors(session=db, unit_id=hai_duong.id)] == [
        ("31", "Thành phố Hải Phòng", True)]
    phuc_xa = unit(db, UnitKind.commune, "00001", legacy=True)
    assert [(u.name, d) for u, d in adminunits.successors(session=db, unit_id=phuc_xa.id)] == [
        ("Phường Hồng Hà", True)]
    hoa_lien = unit(db, UnitKind.commune, "20296", legacy=True)  # split between two new wards
    assert [(u.name, d) for u, d in adminunits.successors(session=db, unit_id=hoa_lien.id)] == [
        ("Phường Liên Chiểu", True), ("Phường Hải Vân", False)]
    hoang_sa = db.scalars(select(AdminUnit).where(AdminUnit.name == "Huyện Hoàng Sa")).one()
    assert [(u.name, u.kind) for u, _ in adminunits.successors(session=db, unit_id=hoang_sa.id)] == [
        ("Đặc khu Hoàng Sa", UnitKind.commune)]
    new_hai_phong = unit(db, UnitKind.province, "31", legacy=False)
    assert sorted(u.name for u, _ in adminunits.predecessors(session=db, unit_id=new_hai_phong.id)) == [
        "Thành phố Hải Phòng", "Tỉnh Hải Dương"]
    ba_dinh = unit(db, UnitKind.commune, "00004", legacy=False)
    assert "Phường Trúc Bạch" in {u.name for u, _ in adminunits.predecessors(session=db, unit_id=ba_dinh.id)}
    assert db.scalar(select(func.count()).select_from(AdminUnitSuccession)
                     .where(AdminUnitSuccession.effective != AFTER)) == 0


def test_every_old_unit_resolves_to_a_unit_in_force_today(db):
    every_legacy = db.scalars(select(AdminUnit.id).where(AdminUnit.valid_to == BEFORE)).all()
    for unit_id in every_legacy[::50]:
        current = adminunits.current_unit_for(session=db, unit_id=unit_id, on=AFTER)
        assert current.valid_from == AFTER and current.valid_to is None


def test_current_unit_for_an_old_address(db):
    def now(u: AdminUnit, on: date = AFTER) -> str:
        return adminunits.current_unit_for(session=db, unit_id=u.id, on=on).name

    truc_bach = unit(db, UnitKind.commune, "00004", legacy=True)
    assert now(truc_bach) == "Phường Ba Đình"
    assert now(truc_bach, date(2020, 1, 1)) == "Phường Trúc Bạch"
    assert now(unit(db, UnitKind.commune, "20296", legacy=True)) == "Phường Liên Chiểu"  # the default part
    assert now(unit(db, UnitKind.district, "001", legacy=True)) == "Thành phố Hà Nội"  # districts were abolished
    assert now(unit(db, UnitKind.province, "30", legacy=True)) == "Thành phố Hải Phòng"
    ba_dinh = unit(db, UnitKind.commune, "00004", legacy=False)
    assert now(ba_dinh) == "Phường Ba Đình"
    with pytest.raises(DomainValidationError, match="forward in time"):
        now(ba_dinh, date(2024, 1, 1))


def test_each_unit_and_succession_is_audited(db, admin, loaded):
    counts = loaded[1]
    by_type = dict(db.execute(select(AuditRecord.object_type, func.count()).group_by(AuditRecord.object_type)).all())
    assert by_type == {"admin_units": sum(counts.values()) - counts["successions"],
                       "admin_unit_successions": counts["successions"]}
    assert audit.verify(session=db, actor=admin).ok


def test_a_second_load_is_refused(db, admin):
    with pytest.raises(Conflict, match="already loaded"):
        adminunits.load_admin_units(session=db, actor=admin)
