"""Alarms from measurements: utilization over thresholds, links down, speed mismatches, unreachable devices,
32-bit counters too narrow for their port.

One alarm per condition and object (dedup_key = kind:object_type:object_id, and the direction for utilization:
a 70 % a→b next to a 90 % b→a is a warning and a critical). A repeat while it is active bumps
`occurrences` and `last_seen`; the condition going away sets `cleared_at`; the next occurrence opens a new alarm.
Only alarms that change are written: raised or repeated conditions, and clears of alarms that are active.

Alarms are not audited. The audit log records changes people make to the registry, each hash-chained to the one
before; alarms are observations the pollers make many times a minute, already timestamped and never edited by
hand, and writing them into the chain would bury the registry's history and serialise every poller behind the
chain's lock.
"""

import threading
import time
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
from tslcd.telemetry.models import Alarm, AlarmKind, Direction, Severity, dedup_key
from tslcd.telemetry.schemas import DeviceStatus, RateSample
from tslcd.telemetry.storage import as_utc

SEVERITY = {
    AlarmKind.utilization_warning: Severity.warning,
    AlarmKind.utilization_critical: Severity.critical,
    AlarmKind.link_down: Severity.critical,
    AlarmKind.speed_mismatch: Severity.warning,
    AlarmKind.device_unreachable: Severity.major,
    AlarmKind.counter_too_narrow: Severity.warning,
}
# ifHighSpeed counts whole Mbit/s: a capacity within one of the reported speed matches it.
SPEED_RESOLUTION_BPS = 1_000_000
# ifSpeed is a Gauge32: this value means "4.29 Gbit/s or more", so any capacity at least as high matches it.
IF_SPEED_SATURATED = (1 << 32) - 1


def bitrate_vi(bps: float) -> str:
    """'8,5 Gb/s', '200 Mb/s': Vietnamese writes a decimal comma."""
    for unit, scale in (("Gb/s", 1e9), ("Mb/s", 1e6), ("kb/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.3g} {unit}".replace(".", ",")
    return f"{bps:.0f} b/s"


def pct_vi(value: float) -> str:
    return f"{value:.1f} %".replace(".", ",")


def bitrate_en(bps: float) -> str:
    """'10 Gbit/s', '8.5 Gbit/s'."""
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.3g} {unit}"
    return f"{bps:.0f} bit/s"


def speed_matches(speed_bps: int, capacity: int) -> bool:
    """A reported speed agrees with a capacity: within ifHighSpeed's resolution, or a saturated ifSpeed under it."""
    if speed_bps >= IF_SPEED_SATURATED and capacity >= speed_bps - SPEED_RESOLUTION_BPS:
        return True
    return abs(speed_bps - capacity) < SPEED_RESOLUTION_BPS


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
    part: str | None = None  # the direction of a utilization alarm

    @property
    def key(self) -> str:
        return dedup_key(self.kind, self.object_type, self.object_id, self.part)


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
                device_id: int | None = None, object_type: str = "links", object_id: int | None = None,
                part: str | None = None) -> Raise:
    return Raise(kind, object_type, link.id if object_id is None else object_id, ts, message, value,
                 device_id=device_id, link_id=link.id, operator_id=link.operator_id, province_id=link.province_id,
                 part=part)


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
        ts = as_utc(s.ts)
        if s.blind_bps is not None and (s.blind_bps > 0 or iface.narrow_key in active):
            _narrow(changes, active, iface, devices[iface.device_id], s, ts)
        link = iface.link
        if link is None or not link.active:
            continue
        if s.oper_up is False or (s.oper_up and link.down_key in active):
            _link_state(changes, active, inventory, iface, s.oper_up, ts)
        speed = s.speed_bps or None  # 0: the agent does not know (virtual ports), not a mismatch
        if speed is not None and (not speed_matches(speed, link.capacity) or iface.speed_key in active):
            _speed(changes, active, link, iface, devices[iface.device_id], speed, ts)
        if iface.side == link.measured_side and (s.in_bps is not None or s.out_bps is not None):
            _utilization(changes, active, link, devices, iface.side, s, ts)
    return changes


def _narrow(changes: Changes, active: set[str], iface: InterfaceInfo, device: DeviceInfo, s: RateSample,
            ts: datetime) -> None:
    """One alarm while the interface's 32-bit counters cannot measure it; cleared once they can."""
    if not s.blind_bps:
        changes.clear(iface.narrow_key, ts, active)
        return
    link = iface.link
    speed, seconds = s.blind_bps, f"{s.blind_s:g}"
    changes.raise_(Raise(
        AlarmKind.counter_too_narrow, "interfaces", iface.id, ts, value=float(speed), device_id=iface.device_id,
        link_id=link.id if link else None, operator_id=link.operator_id if link else device.operator_id,
        province_id=link.province_id if link else device.province_id,
        message=(f"Cổng {iface.name} trên {device.name}: bộ đếm 32 bit không đo được {bitrate_vi(speed)} với chu kỳ "
                 f"{seconds} s, không có số liệu lưu lượng (cần bộ đếm 64 bit: SNMPv2c/v3 và ifXTable, hoặc chu kỳ "
                 f"ngắn hơn) — 32-bit counters cannot measure {bitrate_en(speed)} at a {seconds} s interval")))


def _speed(changes: Changes, active: set[str], link: LinkInfo, iface: InterfaceInfo, device: DeviceInfo,
           speed_bps: int, ts: datetime) -> None:
    if speed_matches(speed_bps, link.capacity):
        changes.clear(iface.speed_key, ts, active)
        return
    reported = (f"từ {bitrate_vi(speed_bps)} trở lên" if speed_bps >= IF_SPEED_SATURATED
                else bitrate_vi(speed_bps))
    changes.raise_(_link_raise(
        AlarmKind.speed_mismatch, link, ts, value=float(speed_bps), device_id=iface.device_id,
        object_type="interfaces", object_id=iface.id,
        message=(f"Cổng {iface.name} trên {device.name} báo tốc độ {reported}, khác dung lượng "
                 f"{bitrate_vi(link.capacity)} của tuyến {link.slug}")))


def _utilization(changes: Changes, active: set[str], link: LinkInfo, devices: dict[int, DeviceInfo], side: str,
                 s: RateSample, ts: datetime) -> None:
    """Each direction on its own: warning above the first threshold, critical above the second (one replaces
    the other); a gap in one direction leaves that direction's alarm as it is."""
    # Seen from the a end: "out" goes a -> b. A b-end interface sees the same traffic with in and out swapped.
    a_to_b, b_to_a = (s.out_bps, s.in_bps) if side == "a" else (s.in_bps, s.out_bps)
    for d, (direction, bps, source, target) in enumerate((
            (Direction.a_to_b, a_to_b, link.a_device_id, link.b_device_id),
            (Direction.b_to_a, b_to_a, link.b_device_id, link.a_device_id))):
        if bps is None:
            continue
        warning_key, critical_key = link.warning_keys[d], link.critical_keys[d]
        pct = 100.0 * bps / link.capacity
        if pct > link.critical_pct:
            kind, threshold, other = AlarmKind.utilization_critical, link.critical_pct, warning_key
        elif pct > link.warning_pct:
            kind, threshold, other = AlarmKind.utilization_warning, link.warning_pct, critical_key
        else:
            changes.clear(warning_key, ts, active)
            changes.clear(critical_key, ts, active)
            continue
        changes.clear(other, ts, active)
        changes.raise_(_link_raise(kind, link, ts, value=round(pct, 2), part=direction.value, message=(
            f"Tuyến {link.slug}: lưu lượng {devices[source].name} → {devices[target].name} {bitrate_vi(bps)}, "
            f"bằng {pct_vi(pct)} dung lượng {bitrate_vi(link.capacity)}, vượt ngưỡng {threshold:g} %")))


def device_changes(inventory: Inventory, statuses: Iterable[DeviceStatus], active: set[str]) -> Changes:
    """Unreachable alarms raised (or repeated) and cleared for a whole cycle's device events at once; devices
    deleted meanwhile are ignored."""
    changes = Changes()
    for status in statuses:
        key = dedup_key(AlarmKind.device_unreachable, "devices", status.device_id)
        ts = as_utc(status.ts)
        if status.reachable:
            changes.clear(key, ts, active)
            continue
        device = inventory.devices.get(status.device_id)
        if device is None:
            continue
        changes.raise_(Raise(AlarmKind.device_unreachable, "devices", status.device_id, ts,
                             f"Thiết bị {device.name} không phản hồi SNMP: {status.reason}",
                             device_id=status.device_id, operator_id=device.operator_id,
                             province_id=device.province_id))
    return changes


# A condition that persists (a port down for days) is seen at every poll: its alarm is written again at most every
# REPEAT_WRITE_S per key and process, carrying the occurrences seen meanwhile, unless its message changes. Without
# this, every poll of a national network rewrote thousands of unchanged alarms (the poller benchmark's 5,500
# link_down alarms cost four fifths of its cycle).
REPEAT_WRITE_S = 60.0
_repeats: dict[str, tuple[float, int, str]] = {}  # key -> (monotonic time written, observations since, message)
_repeats_lock = threading.Lock()


def _due(raises: dict[str, Raise], active: set[str] | None) -> tuple[list[tuple[Raise, int]], int]:
    """The raises to write now with how many occurrences each carries, and how many repeats wait."""
    now = time.monotonic()
    due, waiting = [], 0
    with _repeats_lock:
        for key, r in raises.items():
            seen = _repeats.get(key)
            if active is not None and key in active and seen is not None and now - seen[0] < REPEAT_WRITE_S \
                    and seen[2] == r.message:
                _repeats[key] = (seen[0], seen[1] + 1, seen[2])
                waiting += 1
                continue
            due.append((r, 1 + (seen[1] if seen is not None and key in (active or ()) else 0)))
            _repeats[key] = (now, 0, r.message)
    return due, waiting


def _forget(keys) -> None:
    with _repeats_lock:
        for key in keys:
            _repeats.pop(key, None)


def apply(session: Session, changes: Changes, source: str, active: set[str] | None = None) -> tuple[int, int]:
    """Write raises as upserts on the active-key index and clears as guarded updates: (raised, cleared).

    Both stay right when another poller or the trap receiver changed the same alarm meanwhile: an upsert of an
    alarm cleared elsewhere opens a new one, and a clear of an alarm no longer active changes nothing. With
    `active` (the keys active when the changes were evaluated), unchanged repeats are written at most every
    REPEAT_WRITE_S.
    """
    raised = cleared = 0
    due, _ = _due(changes.raises, active) if changes.raises else ([], 0)
    if due:
        rows = [{"dedup_key": r.key, "kind": r.kind, "severity": SEVERITY[r.kind], "source": source,
                 "object_type": r.object_type, "object_id": r.object_id, "device_id": r.device_id,
                 "link_id": r.link_id, "operator_id": r.operator_id, "province_id": r.province_id,
                 "message": r.message, "value": r.value, "first_seen": r.ts, "last_seen": r.ts, "occurrences": n}
                for r, n in due]
        dialect_insert = postgresql.insert if is_postgres(session) else sqlite.insert
        stmt = dialect_insert(Alarm)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Alarm.dedup_key], index_where=Alarm.cleared_at.is_(None),
            set_={"occurrences": Alarm.occurrences + stmt.excluded.occurrences, "last_seen": stmt.excluded.last_seen,
                  "value": stmt.excluded.value, "message": stmt.excluded.message,
                  "device_id": stmt.excluded.device_id, "source": stmt.excluded.source},
        ).returning(Alarm.occurrences)
        raised = sum(1 for n, row in zip(session.scalars(stmt, rows), rows) if n == row["occurrences"])
    if changes.clears:
        device = bindparam("device", type_=Integer)
        stmt = (update(Alarm).where(Alarm.dedup_key == bindparam("key"), Alarm.cleared_at.is_(None),
                                    or_(device.is_(None), Alarm.device_id == device))
                .values(cleared_at=bindparam("ts")).execution_options(synchronize_session=False))
        result = session.connection().execute(stmt, [{"key": c.key, "ts": c.ts, "device": c.device_id}
                                                     for c in changes.clears.values()])
        cleared = result.rowcount
        _forget(changes.clears)
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
