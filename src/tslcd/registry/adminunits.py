"""Vietnam's administrative units before and after the reform of 1 July 2025, and where old units went.

The data comes from the `vietnamadminunits` package (MIT): `admin_units_legacy` holds the 63 provinces, 696
districts and 10,035 communes in force until 30 June 2025, `admin_units` the 34 provinces and 3,321 communes from
1 July 2025, and `converter_2025.json` says which new unit took over each old one. Quirks of that data handled here:
- five legacy island districts (Bạch Long Vĩ, Cồn Cỏ, Hoàng Sa, Lý Sơn, Côn Đảo) have no commune (a row with an
  empty ward); they become districts without communes, and the converter's `province_district_` keys for them
  become district → commune successions (e.g. Huyện Hoàng Sa → Đặc khu Hoàng Sa);
- codes repeat across the two datasets (province 01 is Hà Nội in both; 3,316 of the 3,321 new commune codes were
  also legacy commune codes, often of another commune), so units are told apart by kind, code and validity;
- a few type columns contradict the names ("Phường Việt Hòa" typed Xã, "Phường 5" in Phú Nhuận typed Xã), and
  some names capitalise the type ("Thị Trấn Ái Tử"): the type is read from the name, which the official counts
  confirm (687 phường, 2,621 xã, 13 đặc khu), and the name's type word is written in its usual case.
"""

import sqlite3
from datetime import date
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from tslcd.core.database import insert_rows
from tslcd.core.errors import Conflict, DomainValidationError, NotFound
from tslcd.registry.models import AdminUnit, AdminUnitSuccession, UnitKind
from tslcd.security import audit
from tslcd.security.actor import Actor

CENTRAL_CODE = "VN"
LEGACY_UNTIL = date(2025, 6, 30)
REFORM = date(2025, 7, 1)

# Type words as they begin a unit's name; compared case-insensitively, written as here.
UNIT_TYPES = ("Thành phố", "Tỉnh", "Quận", "Huyện", "Thị xã", "Thị trấn", "Xã", "Phường", "Đặc khu")


def _typed(name: str, type_column: str) -> tuple[str, str]:
    """(name with its type word in the usual case, unit type): the name decides, the column is the fallback."""
    for unit_type in UNIT_TYPES:
        if name.lower().startswith(unit_type.lower() + " "):
            return unit_type + name[len(unit_type):], unit_type
    return name, type_column


def _data_dir() -> Path:
    """The package's data folder, found without importing the package (its parsers take a third of a second)."""
    spec = find_spec("vietnamadminunits")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the vietnamadminunits package is not installed")
    return Path(spec.submodule_search_locations[0]) / "data"


_PROVINCE_COLUMNS = "province, provinceShort, provinceCode, provinceLat, provinceLon, provinceKey"
_WARD_COLUMNS = "ward, wardShort, wardType, wardCode, wardLat, wardLon, wardKey"
_DISTRICT_COLUMNS = "district, districtShort, districtType, districtCode, districtLat, districtLon, districtKey"


def _dataset_rows(table: str, columns: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{_data_dir() / 'dataset.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        # rowid order is the dataset's own (by code within each province): it keeps ids stable between loads.
        return conn.execute(f"SELECT {columns} FROM {table} ORDER BY rowid").fetchall()  # noqa: S608 (constants)
    finally:
        conn.close()


@cache
def _converter() -> dict[str, Any]:
    return orjson.loads((_data_dir() / "converter_2025.json").read_bytes())


def _unit(code: str, kind: UnitKind, name: str, short_name: str, type_column: str, lat: float | None,
          lon: float | None, parent_id: int, *, legacy: bool) -> dict[str, Any]:
    name, unit_type = _typed(name, type_column)
    return {"code": code, "kind": kind, "name": name, "short_name": short_name, "unit_type": unit_type,
            "parent_id": parent_id, "valid_from": None if legacy else REFORM,
            "valid_to": LEGACY_UNTIL if legacy else None, "lat": lat, "lon": lon}


def _insert_units(session: Session, rows: list[dict[str, Any]], changes: list[audit.Change]) -> list[int]:
    """One bulk insert for a level; ids come back in row order."""
    ids = insert_rows(session, AdminUnit.__table__, rows)
    for unit_id, row in zip(ids, rows):
        after = {"id": unit_id, **{k: audit.jsonable(v) for k, v in row.items()}}
        changes.append(audit.Change("create", AdminUnit.__tablename__, unit_id, f"{row['name']} ({row['code']})",
                                    after=after))
    return ids


def load_admin_units(*, session: Session, actor: Actor) -> dict[str, int]:
    """Load the central level, the legacy and current units and their successions; counts per kind.

    Refuses when any unit exists: units are reference data that sites and agencies point at, so a second load
    would duplicate them rather than refresh them.
    """
    audit.lock(session)
    existing = session.scalar(select(func.count()).select_from(AdminUnit))
    if existing:
        raise Conflict(f"{existing} administrative units are already loaded; they are loaded once, into an empty "
                       "registry", title="Administrative units already loaded")
    changes: list[audit.Change] = []
    (central_id,) = _insert_units(session, [{
        "code": CENTRAL_CODE, "kind": UnitKind.central, "name": "Trung ương", "short_name": "Trung ương",
        "unit_type": "Trung ương", "parent_id": None, "valid_from": None, "valid_to": None, "lat": None,
        "lon": None}], changes)

    legacy = _dataset_rows("admin_units_legacy", f"{_PROVINCE_COLUMNS}, {_DISTRICT_COLUMNS}, {_WARD_COLUMNS}")
    current = _dataset_rows("admin_units", f"{_PROVINCE_COLUMNS}, {_WARD_COLUMNS}")
    provinces: dict[tuple[bool, str], dict[str, Any]] = {}  # (legacy?, province key) -> row
    for is_legacy, rows in ((True, legacy), (False, current)):
        for r in rows:
            if (is_legacy, r["provinceKey"]) not in provinces:
                provinces[is_legacy, r["provinceKey"]] = _unit(
                    r["provinceCode"], UnitKind.province, r["province"], r["provinceShort"], "", r["provinceLat"],
                    r["provinceLon"], central_id, legacy=is_legacy)
    province_ids = dict(zip(provinces, _insert_units(session, list(provinces.values()), changes)))

    districts: dict[str, dict[str, Any]] = {}
    for r in legacy:
        if r["districtCode"] not in districts:
            districts[r["districtCode"]] = _unit(
                r["districtCode"], UnitKind.district, r["district"], r["districtShort"], r["districtType"],
                r["districtLat"], r["districtLon"], province_ids[True, r["provinceKey"]], legacy=True)
    district_ids = dict(zip(districts, _insert_units(session, list(districts.values()), changes)))

    with_ward = [r for r in legacy if r["wardCode"]]
    legacy_commune_ids = _insert_units(session, [
        _unit(r["wardCode"], UnitKind.commune, r["ward"], r["wardShort"], r["wardType"], r["wardLat"], r["wardLon"],
              district_ids[r["districtCode"]], legacy=True) for r in with_ward], changes)
    commune_ids = _insert_units(session, [
        _unit(r["wardCode"], UnitKind.commune, r["ward"], r["wardShort"], r["wardType"], r["wardLat"], r["wardLon"],
              province_ids[False, r["provinceKey"]], legacy=False) for r in current], changes)

    # The converter names legacy units "province_district_ward" (ward empty for the island districts) and new
    # ones by (province, ward).
    old_ids = {f"{r['provinceKey']}_{r['districtKey']}_": district_ids[r["districtCode"]]
               for r in legacy if not r["wardCode"]}
    for r, unit_id in zip(with_ward, legacy_commune_ids):
        old_ids[f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey']}"] = unit_id
    new_ids = {(r["provinceKey"], r["wardKey"]): unit_id for r, unit_id in zip(current, commune_ids)}
    successions = _successions(province_ids, old_ids, new_ids)
    session.execute(insert(AdminUnitSuccession), successions)
    labels = {change.object_id: change.object_repr for change in changes}
    # A succession has no id of its own; its record carries the predecessor's.
    changes += [audit.Change("create", AdminUnitSuccession.__tablename__, s["predecessor_id"],
                             f"{labels[s['predecessor_id']]} → {labels[s['successor_id']]}",
                             after={k: audit.jsonable(v) for k, v in s.items()}) for s in successions]
    audit.record_many(session=session, actor=actor, changes=changes)
    return {"central": 1, "province": len(provinces), "district": len(districts),
            "commune": len(legacy_commune_ids) + len(commune_ids), "successions": len(successions)}


def _successions(province_ids: dict[tuple[bool, str], int], old_ids: dict[str, int],
                 new_ids: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    """Succession rows from the converter: each old province to its new one, each old commune to its new one(s)."""
    data = _converter()
    rows = []
    for new_key, old_keys in data["DICT_PROVINCE"].items():
        rows += [{"predecessor_id": province_ids[True, old], "successor_id": province_ids[False, new_key],
                  "effective": REFORM, "is_default": True} for old in old_keys]
    for new_province, wards in data["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for new_ward, old_keys in wards.items():
            rows += [{"predecessor_id": old_ids[old], "successor_id": new_ids[new_province, new_ward],
                      "effective": REFORM, "is_default": True} for old in old_keys]
    for new_province, divided in data["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old, parts in divided.items():
            rows += [{"predecessor_id": old_ids[old], "successor_id": new_ids[new_province, part["newWardKey"]],
                      "effective": REFORM, "is_default": bool(part["isDefaultNewWard"])} for part in parts]
    return rows


# Queries
def _get_unit(session: Session, unit_id: int) -> AdminUnit:
    unit = session.get(AdminUnit, unit_id)
    if unit is None:
        raise NotFound(f"no administrative unit {unit_id}")
    return unit


def successors(*, session: Session, unit_id: int) -> list[tuple[AdminUnit, bool]]:
    """The units that took over this unit's territory, each with whether old addresses go there by default."""
    _get_unit(session, unit_id)
    rows = session.execute(
        select(AdminUnit, AdminUnitSuccession.is_default)
        .join(AdminUnitSuccession, AdminUnitSuccession.successor_id == AdminUnit.id)
        .where(AdminUnitSuccession.predecessor_id == unit_id)
        .order_by(AdminUnitSuccession.is_default.desc(), AdminUnit.code))
    return [(unit, is_default) for unit, is_default in rows]


def predecessors(*, session: Session, unit_id: int) -> list[tuple[AdminUnit, bool]]:
    """The units whose territory (wholly or partly) went to this one, each with whether this is their default."""
    _get_unit(session, unit_id)
    rows = session.execute(
        select(AdminUnit, AdminUnitSuccession.is_default)
        .join(AdminUnitSuccession, AdminUnitSuccession.predecessor_id == AdminUnit.id)
        .where(AdminUnitSuccession.successor_id == unit_id)
        .order_by(AdminUnit.kind, AdminUnit.code))
    return [(unit, is_default) for unit, is_default in rows]


def _valid_on(unit: AdminUnit, on: date) -> bool:
    return (unit.valid_from is None or unit.valid_from <= on) and (unit.valid_to is None or on <= unit.valid_to)


def current_unit_for(*, session: Session, unit_id: int, on: date) -> AdminUnit:
    """The unit that holds this unit's territory on a date, so that an old address still resolves.

    Follows default successions forward; a unit abolished without a successor (a district) is covered by its
    parent's successor, so an old district resolves to its new province.
    """
    unit = _get_unit(session, unit_id)
    if unit.valid_from is not None and on < unit.valid_from:
        raise DomainValidationError(f"{unit} exists from {unit.valid_from.isoformat()}; successions are followed "
                                    f"forward in time, not back to {on.isoformat()}")
    seen = {unit.id}
    while not _valid_on(unit, on):
        successor_id = session.scalar(
            select(AdminUnitSuccession.successor_id)
            .where(AdminUnitSuccession.predecessor_id == unit.id, AdminUnitSuccession.effective <= on)
            .order_by(AdminUnitSuccession.is_default.desc(), AdminUnitSuccession.successor_id).limit(1))
        next_id = successor_id if successor_id is not None else unit.parent_id
        if next_id is None or next_id in seen:
            raise NotFound(f"no administrative unit valid on {on.isoformat()} succeeds {unit}")
        seen.add(next_id)
        unit = _get_unit(session, next_id)
    return unit
