"""What ingest needs to know of the registry, held in memory: which link each interface ends, capacities, thresholds.

Ingest runs many times a second and must not join five tables each time. Every registry change (and every
threshold change) appends to the audit log, whose newest record carries a hash of the whole history before it, so
(newest id, its hash) names the registry's state exactly: the view is reloaded only when that pair moves.
"""

import threading
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tslcd.core.config import get_settings
from tslcd.registry.models import Device, Interface, Link, Status, Tier
from tslcd.security.models import AuditRecord
from tslcd.telemetry.models import AlarmKind, Direction, Threshold, dedup_key


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    name: str
    operator_id: int | None
    province_id: int | None
    pollable: bool  # active, with a management address and an SNMP credential


@dataclass(frozen=True, slots=True)
class LinkInfo:
    id: int
    slug: str
    capacity: int
    tier: Tier
    active: bool
    operator_id: int | None
    province_id: int | None
    a_device_id: int
    b_device_id: int
    measured_side: Literal["a", "b"]  # whose rates raise utilization alarms
    warning_pct: float
    critical_pct: float
    # Alarm keys, made once here rather than for every sample; utilization ones per direction (a→b, b→a)
    down_key: str
    warning_keys: tuple[str, str]
    critical_keys: tuple[str, str]


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    id: int
    device_id: int
    name: str
    link: LinkInfo | None
    side: Literal["a", "b"] | None
    speed_key: str
    narrow_key: str  # 32-bit counters too narrow for the port


@dataclass(frozen=True)
class Inventory:
    devices: dict[int, DeviceInfo]
    interfaces: dict[int, InterfaceInfo]


def _thresholds(session: Session) -> tuple[dict[Tier, tuple[float, float]], dict[int, tuple[float, float]]]:
    by_tier, by_link = {}, {}
    for t in session.scalars(select(Threshold)):
        if t.link_id is not None:
            by_link[t.link_id] = (t.warning_pct, t.critical_pct)
        elif t.tier is not None:
            by_tier[t.tier] = (t.warning_pct, t.critical_pct)
    return by_tier, by_link


def _key_maker(kind: AlarmKind, object_type: str, part: str | None = None):
    """dedup_key for one kind and object type, as a cheap str.format: the inventory makes 150,000 nationally."""
    return dedup_key(kind, object_type, 0, part).replace(":0", ":{}", 1).format


def load_inventory(session: Session) -> Inventory:
    settings = get_settings()
    down_key = _key_maker(AlarmKind.link_down, "links")
    warning_keys = [_key_maker(AlarmKind.utilization_warning, "links", d.value) for d in Direction]
    critical_keys = [_key_maker(AlarmKind.utilization_critical, "links", d.value) for d in Direction]
    speed_key = _key_maker(AlarmKind.speed_mismatch, "interfaces")
    narrow_key = _key_maker(AlarmKind.counter_too_narrow, "interfaces")
    default = (settings.utilization_warning_pct, settings.utilization_critical_pct)
    by_tier, by_link = _thresholds(session)
    devices = {
        r.id: DeviceInfo(r.name, r.operator_id, r.province_id, r.status == Status.active
                         and bool(r.mgmt_address) and r.snmp_credential_id is not None)
        for r in session.execute(select(Device.id, Device.name, Device.operator_id, Device.province_id,
                                        Device.status, Device.mgmt_address, Device.snmp_credential_id))}
    ends: dict[int, tuple[LinkInfo, Literal["a", "b"]]] = {}
    for r in session.execute(select(Link.id, Link.slug, Link.capacity, Link.tier, Link.status, Link.operator_id,
                                    Link.province_id, Link.a_interface_id, Link.b_interface_id, Link.a_device_id,
                                    Link.b_device_id)):
        # The a end measures the link unless only the b end can be polled.
        measured = "b" if not devices[r.a_device_id].pollable and devices[r.b_device_id].pollable else "a"
        warning, critical = by_link.get(r.id) or by_tier.get(r.tier) or default
        info = LinkInfo(r.id, r.slug, r.capacity, r.tier, r.status == Status.active, r.operator_id, r.province_id,
                        r.a_device_id, r.b_device_id, measured, warning, critical,
                        down_key(r.id), (warning_keys[0](r.id), warning_keys[1](r.id)),
                        (critical_keys[0](r.id), critical_keys[1](r.id)))
        ends[r.a_interface_id] = (info, "a")
        ends[r.b_interface_id] = (info, "b")
    interfaces = {}
    for iid, device_id, name in session.execute(select(Interface.id, Interface.device_id, Interface.name)):
        link, side = ends.get(iid, (None, None))
        interfaces[iid] = InterfaceInfo(iid, device_id, name, link, side, speed_key(iid), narrow_key(iid))
    return Inventory(devices, interfaces)


_cache: dict[str, tuple[tuple[int, str] | None, Inventory]] = {}  # database URL -> (audit head, inventory)
_lock = threading.Lock()


def registry_state(session: Session) -> tuple[int, str] | None:
    """The newest audit record this session sees (id, hash): it names the registry's state exactly."""
    head = session.execute(select(AuditRecord.id, AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1)).first()
    return tuple(head) if head else None


def current_inventory(session: Session) -> Inventory:
    """The registry as of the newest audit record this session sees; reloaded only when that record changes."""
    key = registry_state(session)
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    cached = _cache.get(url)
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        inventory = load_inventory(session)
        _cache[url] = (key, inventory)
    return inventory
