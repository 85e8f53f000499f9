"""Alarms from measurements: utilization over thresholds, links down, speed mismatches, unreachable devices.

One alarm per condition and object (dedup_key = kind:object_type:object_id). A repeat while it is active bumps
`occurrences` and `last_seen`; the condition going away sets `cleared_at`; the next occurrence opens a new alarm.
Only alarms that change are written: raised or repeated conditions, and clears of alarms that are active.

Alarms are not audited. The audit log records changes people make to the registry, each hash-chained to the one
before; alarms are observations the pollers make many times a minute, already timestamped and never edited by
hand, and writing them into the chain would bury the registry's history and serialise every poller behind the
chain's lock.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Integer, Select, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tslcd.core.database import is_postgres
from tslcd.core.listing import paginate
from tslcd.registry import service as registry
from tslcd.registry.models import AdminUnit, Device, Link, Operator, UnitKind
from tslcd.security.actor import Actor
from tslcd.security.models import Role
from tslcd.telemetry.inventory import DeviceInfo, InterfaceInfo, Inventory, LinkInfo
from tslcd.telemetry.models import Alarm, AlarmKind, Severity, dedup_key
from tslcd.telemetry.schemas import RateSample
from tslcd.telemetry.storage import as_utc

SEVERITY = {
    AlarmKind.utilization_warning: Severity.warning,
    AlarmKind.utilization_critical: Severity.critical,
    AlarmKind.link_down: Severity.critical,
    AlarmKind.speed_mismatch: Severity.warning,
    AlarmKind.device_unreachable: Severity.major,
}
# ifHighSpeed counts whole Mbit/s: a capacity within one of the reported speed matches it.
SPEED_RESOLUTION_BPS = 1_000_000


def bitrate_vi(bps: float) -> str:
    """'8,5 Gb/s', '200 Mb/s': Vietnamese writes a decimal comma."""
    for unit, scale in (("Gb/s", 1e9), ("Mb/s", 1e6), ("kb/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.3g} {unit}".replace(".", ",")
    return f"{bps:.0f} b/s"


def pct_vi(value: float) -> str:
    return f"{value:.1f} %".replace(".", ",")


@dataclass
class Raise:
    kind: AlarmKind
    object_type: str
    object_id: int
    ts: datetime
    message: str
    value: float | None = None
    device_id: int | None = None
    link_id: int | None = None
    operator_id: int | None = None
    province_id: int | None = None

    @property
    def key(self) -> str:
        return dedup_key(self.kind, self.object_type, self.object_id)


@dataclass
class Clear:
    key: str
    ts: datetime
    device_id: int | None = None  # only the end that reported a link down clears it


@dataclass
class Changes:
    """What one evaluation decided; `apply` writes it."""

    raises: dict[str, Raise] = field(default_factory=dict)
    clears: dict[str, Clear] = field(default_factory=dict)

    def raise_(self, alarm: Raise) -> None:
        self.clears.pop(alarm.key, None)
        self.raises[alarm.key] = alarm

    def clear(self, key: str, ts: datetime, active: set[str], device_id: int | None = None) -> None:
        if key in active and key not in self.raises:
            self.clears[key] = Clear(key, ts, device_id)


def active_keys(session: Session) -> set[str]:
    """Keys of the active alarms, read through the partial unique index (as small as the active set)."""
    return set(session.scalars(select(Alarm.dedup_key).where(Alarm.cleared_at.is_(None))))


def _link_raise(kind: AlarmKind, link: LinkInfo, ts: datetime, message: str, *, value: float | None = None,
                device_id: int | None = None, object_type: str = "links", object_id: int | None = None) -> Raise:
    return Raise(kind, object_type, link.id if object_id is None else object_id, ts, message, value,
                 device_id=device_id, link_id=link.id, operator_id=link.operator_id, province_id=link.province_id)


def link_state(changes: Changes, active: set[str], inventory: Inventory, interface_id: int, up: bool,
               ts: datetime) -> None:
    """An end reporting down raises link_down at once; only an 'up' from the end that reported it clears it."""
    iface = inventory.interfaces.get(interface_id)
    if iface is not None and iface.link is not None and iface.link.active:
        _link_state(changes, active, inventory, iface, up, ts)


def _link_state(changes: Changes, active: set[str], inventory: Inventory, iface: InterfaceInfo, up: bool,
                ts: datetime) -> None:
    link = iface.link
    if up:
        changes.clear(link.down_key, ts, active, device_id=iface.device_id)
        return
    device = inventory.devices[iface.device_id]
    changes.raise_(_link_raise(AlarmKind.link_down, link, ts, device_id=iface.device_id, message=(
        f"Tuyến {link.slug} mất kết nối: cổng {iface.name} trên {device.name} báo trạng thái down")))


def evaluate_samples(inventory: Inventory, latest: Iterable[RateSample], active: set[str]) -> Changes:
    """Alarms implied by the newest sample of each interface, against cached capacities and thresholds.

    Runs for every sample of every poll: the common case (nothing wrong, nothing active) touches no alarm.
    """
    changes = Changes()
    interfaces, devices = inventory.interfaces, inventory.devices
    for s in latest:
        iface = interfaces.get(s.interface_id)
        if iface is None:
            continue
        link = iface.link
        if link is None or not link.active:
            continue
        ts = as_utc(s.ts)
        if s.oper_up is False or (s.oper_up and link.down_key in active):
            _link_state(changes, active, inventory, iface, s.oper_up, ts)
        speed = s.speed_bps or None  # 0: the agent does not know (virtual ports), not a mismatch
        if speed is not None and (abs(speed - link.capacity) >= SPEED_RESOLUTION_BPS or iface.speed_key in active):
            _speed(changes, active, link, iface, devices[iface.device_id], speed, ts)
        if iface.side == link.measured_side and (s.in_bps is not None or s.out_bps is not None):
            _utilization(changes, active, link, devices, iface.side, s, ts)
    return changes


def _speed(changes: Changes, active: set[str], link: LinkInfo, iface: InterfaceInfo, device: DeviceInfo,
           speed_bps: int, ts: datetime) -> None:
    if abs(speed_bps - link.capacity) < SPEED_RESOLUTION_BPS:
        changes.clear(iface.speed_key, ts, active)
        return
    changes.raise_(_link_raise(
        AlarmKind.speed_mismatch, link, ts, value=float(speed_bps), device_id=iface.device_id,
        object_type="interfaces", object_id=iface.id,
        message=(f"Cổng {iface.name} trên {device.name} báo tốc độ {bitrate_vi(speed_bps)}, khác dung lượng "
                 f"{bitrate_vi(link.capacity)} của tuyến {link.slug}")))


def _utilization(changes: Changes, active: set[str], link: LinkInfo, devices: dict[int, DeviceInfo], side: str,
                 s: RateSample, ts: datetime) -> None:
    """Warning above the first threshold, critical above the second; one replaces the other."""
    # Seen from the a end: "out" goes a -> b. A b-end interface sees the same traffic with in and out swapped.
    a_to_b, b_to_a = (s.out_bps, s.in_bps) if side == "a" else (s.in_bps, s.out_bps)
    a_to_b, b_to_a = a_to_b or 0.0, b_to_a or 0.0
    busier = a_to_b if a_to_b >= b_to_a else b_to_a
    pct = 100.0 * busier / link.capacity
    if pct > link.critical_pct:
        kind, threshold, other = AlarmKind.utilization_critical, link.critical_pct, link.warning_key
    elif pct > link.warning_pct:
        kind, threshold, other = AlarmKind.utilization_warning, link.warning_pct, link.critical_key
    else:
        changes.clear(link.warning_key, ts, active)
        changes.clear(link.critical_key, ts, active)
        return
    source, target = ((link.a_device_id, link.b_device_id) if busier == a_to_b
                      else (link.b_device_id, link.a_device_id))
    changes.clear(other, ts, active)
    changes.raise_(_link_raise(kind, link, ts, value=round(pct, 2), message=(
        f"Tuyến {link.slug}: lưu lượng {devices[source].name} → {devices[target].name} {bitrate_vi(busier)}, "
        f"bằng {pct_vi(pct)} dung lượng {bitrate_vi(link.capacity)}, vượt ngưỡng {threshold:g} %")))


def apply(session: Session, changes: Changes, source: str) -> tuple[int, int]:
    """Write raises as upserts on the active-key index and clears as guarded updates: (raised, cleared).

    Both stay right when another poller or the trap receiver changed the same alarm meanwhile: an upsert of an
    alarm cleared elsewhere opens a new one, and a clear of an alarm no longer active changes nothing.
    """
    raised = cleared = 0
    if changes.raises:
        rows = [{"dedup_key": r.key, "kind": r.kind, "severity": SEVERITY[r.kind], "source": source,
                 "object_type": r.object_type, "object_id": r.object_id, "device_id": r.device_id,
                 "link_id": r.link_id, "operator_id": r.operator_id, "province_id": r.province_id,
                 "message": r.message, "value": r.value, "first_seen": r.ts, "last_seen": r.ts, "occurrences": 1}
                for r in changes.raises.values()]
        dialect_insert = postgresql.insert if is_postgres(session) else sqlite.insert
        stmt = dialect_insert(Alarm)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Alarm.dedup_key], index_where=Alarm.cleared_at.is_(None),
            set_={"occurrences": Alarm.occurrences + 1, "last_seen": stmt.excluded.last_seen,
                  "value": stmt.excluded.value, "message": stmt.excluded.message,
                  "device_id": stmt.excluded.device_id, "source": stmt.excluded.source},
        ).returning(Alarm.occurrences)
        raised = sum(1 for n in session.scalars(stmt, rows) if n == 1)
    if changes.clears:
        device = bindparam("device", type_=Integer)
        stmt = (update(Alarm).where(Alarm.dedup_key == bindparam("key"), Alarm.cleared_at.is_(None),
                                    or_(device.is_(None), Alarm.device_id == device))
                .values(cleared_at=bindparam("ts")).execution_options(synchronize_session=False))
        result = session.connection().execute(stmt, [{"key": c.key, "ts": c.ts, "device": c.device_id}
                                                     for c in changes.clears.values()])
        cleared = result.rowcount
    return raised, cleared


# Reads
def visible_alarms(stmt: Select, actor: Actor) -> Select:
    """Admin, NOC and auditors see every alarm; a partner its operator's; an agency those of its own links and
    devices (as the registry scopes them)."""
    if actor.sees_everything:
        return stmt
    if actor.role == Role.partner:
        return stmt.where(Alarm.operator_id == actor.operator_id)
    if actor.role == Role.agency:
        links = registry.visible(actor=actor, res=registry.resource("links"), stmt=select(Link.id))
        devices = registry.visible(actor=actor, res=registry.resource("devices"), stmt=select(Device.id))
        return stmt.where(or_(Alarm.link_id.in_(links), Alarm.device_id.in_(devices)))
    return stmt.where(False)


def list_alarms(*, session: Session, actor: Actor, active: bool | None = None, kind: list[AlarmKind] | None = None,
                severity: list[Severity] | None = None, province_id: list[int] | None = None,
                province_code: list[str] | None = None, operator_id: list[int] | None = None,
                operator_slug: list[str] | None = None, link_id: int | None = None, device_id: int | None = None,
                limit: int = 50, offset: int = 0) -> tuple[int, list[Alarm]]:
    """Newest first; `active` True: not cleared, False: cleared. Provinces by id or code, operators by id or slug."""
    stmt = visible_alarms(select(Alarm), actor)
    if province_code:
        stmt = stmt.where(Alarm.province_id.in_(select(AdminUnit.id).where(AdminUnit.kind == UnitKind.province,
                                                                          AdminUnit.code.in_(province_code))))
    if operator_slug:
        stmt = stmt.where(Alarm.operator_id.in_(select(Operator.id).where(Operator.slug.in_(operator_slug))))
    if active is not None:
        stmt = stmt.where(Alarm.cleared_at.is_(None) if active else Alarm.cleared_at.is_not(None))
    for column, values in ((Alarm.kind, kind), (Alarm.severity, severity), (Alarm.province_id, province_id),
                           (Alarm.operator_id, operator_id)):
        if values:
            stmt = stmt.where(column.in_(values))
    if link_id is not None:
        stmt = stmt.where(Alarm.link_id == link_id)
    if device_id is not None:
        stmt = stmt.where(Alarm.device_id == device_id)
    return paginate(session=session, stmt=stmt, limit=limit, offset=offset, order_by=Alarm.id.desc())
