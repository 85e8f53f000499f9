"""Lookups the registry's rules need, cached for one unit of work (one request, one import), seen as one actor.

References named by an actor resolve only to rows that actor may see (except references marked unscoped, such
as the site a device is placed at), so a partner cannot learn of other operators' objects by naming them.
"""

from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tslcd.registry.models import (AdminUnit, Agency, Agreement, Device, Interface, Link, Operator, Service, Site,
                                   SnmpCredential, Tier, UnitKind)
from tslcd.core.inputs import ID_MAX
from tslcd.security.actor import Actor

# Natural keys used by CSV/JSON imports to name related rows (administrative units: code[@date], see unit_ref).
NATURAL_KEYS: dict[type, Any] = {
    Operator: Operator.slug, Agency: Agency.code, Site: Site.slug, Device: Device.name,
    Link: Link.slug, Service: Service.code, SnmpCredential: SnmpCredential.name,
}


class Context:
    def __init__(self, session: Session, on: date | None = None, *, actor: Actor | None = None):
        self.session = session
        self.on = on or date.today()
        self.actor = actor
        self._units: dict[int, tuple[int | None, UnitKind]] | None = None
        self._unit_codes: dict[str, list[tuple[date, date, int]]] | None = None
        self._unit_rows: dict[int, tuple[str, date | None, date | None]] | None = None
        self._agreements: list[tuple[int, Tier, int | None, date, date | None]] | None = None
        self._keys: dict[type, dict[str, int]] = {}
        self._ids: dict[type, set[int]] = {}
        self._visible: dict[type, set[int]] = {}
        self._interfaces: dict[tuple[str, str], int] | None = None
        self._sites: dict[int, int | None] = {}
        self._devices: dict[int, int | None] = {}
        self._interface_devices: dict[int, int] = {}
        self._link_operators: dict[int, int | None] = {}
        self._link_ends: dict[int, tuple[int, str]] | None = None
        self.bulk = False  # an import: load whole tables once instead of asking row by row

    # Administrative units
    def _load_units(self) -> None:
        rows = self.session.execute(select(AdminUnit.id, AdminUnit.parent_id, AdminUnit.kind, AdminUnit.code,
                                           AdminUnit.valid_from, AdminUnit.valid_to)).all()
        self._units = {r.id: (r.parent_id, r.kind) for r in rows}
        self._unit_rows = {r.id: (r.code, r.valid_from, r.valid_to) for r in rows}
        by_code: dict[str, list[tuple[date, date, int]]] = {}
        for r in rows:
            by_code.setdefault(r.code, []).append((r.valid_from or date.min, r.valid_to or date.max, r.id))
        self._unit_codes = by_code

    def province_of_unit(self, unit_id: int | None) -> int | None:
        """The province a unit lies in (itself for a province; None for the central level)."""
        if unit_id is None:
            return None
        if self._units is None:
            unit = self.session.get(AdminUnit, unit_id)
            while unit is not None and unit.kind not in (UnitKind.province, UnitKind.central):
                unit = self.session.get(AdminUnit, unit.parent_id) if unit.parent_id else None
            return unit.id if unit is not None and unit.kind == UnitKind.province else None
        current: int | None = unit_id
        while current is not None:
            parent, kind = self._units[current]
            if kind == UnitKind.province:
                return current
            current = parent
        return None

    def preload(self) -> None:
        """Load unit parents once: imports resolve thousands of rows against them."""
        if self._units is None:
            self._load_units()

    def unit_ref(self, ref: str) -> int | None:
        """A unit by code: the one in force on the context's date (else the latest), or code@YYYY-MM-DD."""
        if self._unit_codes is None:
            self._load_units()
        assert self._unit_codes is not None
        code, _, on_text = ref.partition("@")
        candidates = self._unit_codes.get(code, [])
        try:
            on = date.fromisoformat(on_text) if on_text else self.on
        except ValueError:
            return None
        in_force = [c for c in candidates if c[0] <= on <= c[1]]
        if in_force:
            return in_force[0][2]
        if on_text or not candidates:
            return None
        return max(candidates, key=lambda c: (c[1], c[0]))[2]

    def unit_names(self) -> dict[int, str]:
        """id -> the shortest reference that `unit_ref` resolves back to that unit (code, or code@date)."""
        if self._unit_rows is None:
            self._load_units()
        assert self._unit_rows is not None
        names = {}
        for unit_id, (code, valid_from, valid_to) in self._unit_rows.items():
            if self.unit_ref(code) == unit_id:
                names[unit_id] = code
            else:
                day = valid_from or valid_to
                names[unit_id] = f"{code}@{day.isoformat()}" if day else code
        return names

    # Natural keys and visibility
    def _resource(self, model: type):
        from tslcd.registry.resources import resource_of

        return resource_of(model)

    def may_see(self, model: type, obj_id: int) -> bool:
        """Whether the context's actor may see this row (no actor: the system, which sees everything)."""
        if self.actor is None or self.actor.sees_everything:
            return True
        from tslcd.registry.permissions import restricted, visible_ids

        res = self._resource(model)
        if res is None or not restricted(self.actor, res):
            return True
        if not self.bulk:
            return bool(visible_ids(session=self.session, actor=self.actor, res=res, ids=[obj_id]))
        if model not in self._visible:
            self._visible[model] = visible_ids(session=self.session, actor=self.actor, res=res)
        return obj_id in self._visible[model]

    def exists(self, model: type, obj_id: Any) -> bool:
        try:
            obj_id = int(obj_id)
        except (TypeError, ValueError):
            return False
        if not 1 <= obj_id <= ID_MAX:
            return False
        if not self.bulk:
            return self.session.get(model, obj_id) is not None
        if model not in self._ids:
            self._ids[model] = set(self.session.scalars(select(model.id)))
        return obj_id in self._ids[model]

    def key_map(self, model: type) -> dict[str, int]:
        if model not in self._keys:
            col = NATURAL_KEYS[model]
            self._keys[model] = dict(self.session.execute(select(col, model.id)).all())
        return self._keys[model]

    def ref_id(self, ref: Any, key: str) -> int | None:
        """The id a natural key names, among the rows the actor may see when the reference is scoped."""
        if ref.model is AdminUnit:
            return self.unit_ref(key)
        found = self.key_map(ref.model).get(key)
        if found is not None and ref.scoped and not self.may_see(ref.model, found):
            return None
        return found

    def ref_names(self, ref: Any) -> dict[int, str]:
        """id -> natural key, for exports."""
        if ref.model is AdminUnit:
            return self.unit_names()
        return {v: k for k, v in self.key_map(ref.model).items()}

    def created(self, res: Any, obj_id: int, row: dict[str, Any]) -> None:
        """A row an import just wrote: later rows of the same import may name it."""
        model = res.model
        if model in self._ids:
            self._ids[model].add(obj_id)
        if model in self._keys and model in NATURAL_KEYS:
            key = row.get(NATURAL_KEYS[model].key)
            if key is not None:
                self._keys[model][str(key)] = obj_id
        if model is AdminUnit and self._units is not None:
            self._units[obj_id] = (row.get("parent_id"), row["kind"])
            self._unit_rows[obj_id] = (row["code"], row.get("valid_from"), row.get("valid_to"))
            self._unit_codes.setdefault(row["code"], []).append(
                (row.get("valid_from") or date.min, row.get("valid_to") or date.max, obj_id))
        if model in self._visible:
            self._visible[model].add(obj_id)

    def interface_ref(self, device: str, name: str) -> int | None:
        if self._interfaces is None:
            rows = self.session.execute(select(Device.name, Interface.name, Interface.id)
                                        .join(Device, Device.id == Interface.device_id)).all()
            self._interfaces = {(d, i): iid for d, i, iid in rows}
        return self._interfaces.get((device, name))

    def interface_names(self) -> dict[int, tuple[str, str]]:
        rows = self.session.execute(select(Interface.id, Device.name, Interface.name)
                                    .join(Device, Device.id == Interface.device_id))
        return {i: (d, n) for i, d, n in rows}

    # Links
    def link_ends(self) -> dict[int, tuple[int, str]]:
        """interface id -> (link id, slug) of the link it ends, loaded once (imports)."""
        if self._link_ends is None:
            self._link_ends = {}
            for lid, a, b, slug in self.session.execute(select(Link.id, Link.a_interface_id, Link.b_interface_id,
                                                               Link.slug)):
                self._link_ends[a] = self._link_ends[b] = (lid, slug)
        return self._link_ends

    def check_link_ends(self, values: dict[str, Any], own_id: int | None) -> None:
        """Each interface ends one link at most."""
        from tslcd.registry.resources import FieldError

        for side in ("a", "b"):
            iid = values.get(f"{side}_interface_id")
            if self._link_ends is not None:
                holder = self._link_ends.get(iid)
                used = holder[1] if holder is not None and holder[0] != own_id else None
            else:
                used = self.session.scalar(select(Link.slug).where(
                    or_(Link.a_interface_id == iid, Link.b_interface_id == iid), Link.id != (own_id or 0)))
            if used:
                raise FieldError(f"{side}_interface_id", f"interface already ends link '{used}'")

    # Responsibility
    def responsible_operator(self, tier: Tier, province_id: int | None) -> int | None:
        """The operator that the agreements in force make responsible; a provincial one beats a nationwide one."""
        if self._agreements is None:
            self._agreements = [tuple(r) for r in self.session.execute(
                select(Agreement.operator_id, Agreement.tier, Agreement.province_id, Agreement.valid_from,
                       Agreement.valid_to))]
        best: tuple[int, int] | None = None
        for operator_id, a_tier, a_province, start, end in self._agreements:
            if a_tier != tier or start > self.on or (end is not None and end < self.on):
                continue
            if a_province is not None and a_province != province_id:
                continue
            rank = 1 if a_province is not None else 0
            if best is None or rank > best[0]:
                best = (rank, operator_id)
        return best[1] if best else None

    def site_province(self, site_id: int) -> int | None:
        if site_id not in self._sites:
            self._sites[site_id] = self.session.scalar(select(Site.province_id).where(Site.id == site_id))
        return self._sites[site_id]

    def device_province(self, device_id: int) -> int | None:
        if device_id not in self._devices:
            self._devices[device_id] = self.session.scalar(select(Device.province_id).where(Device.id == device_id))
        return self._devices[device_id]

    def preload_sites(self) -> None:
        self._sites.update(self.session.execute(select(Site.id, Site.province_id)).all())

    def preload_devices(self) -> None:
        self._devices.update(self.session.execute(select(Device.id, Device.province_id)).all())

    def interface_device(self, interface_id: int) -> int | None:
        if interface_id not in self._interface_devices:
            device_id = self.session.scalar(select(Interface.device_id).where(Interface.id == interface_id))
            if device_id is None:
                return None
            self._interface_devices[interface_id] = device_id
        return self._interface_devices[interface_id]

    def link_operator(self, link_id: int) -> int | None:
        if link_id not in self._link_operators:
            self._link_operators[link_id] = self.session.scalar(select(Link.operator_id).where(Link.id == link_id))
        return self._link_operators[link_id]

    def preload_for(self, table: str) -> None:
        """Bulk-load what an import of `table` will look up row by row."""
        self.bulk = True
        if table in ("admin_units", "agencies", "sites", "agreements"):
            self.preload()
        if table == "devices":
            self.preload_sites()
        elif table == "links":
            self.preload_devices()
            self._interface_devices.update(self.session.execute(select(Interface.id, Interface.device_id)).all())
            self.link_ends()
        elif table == "subscriptions":
            self._link_operators.update(self.session.execute(select(Link.id, Link.operator_id)).all())
