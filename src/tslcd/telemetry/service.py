"""Telemetry rules: ingest of rates with their alarms, what the pollers poll, pushed and imported samples,
thresholds, roll-ups and retention.

The poller and the trap receiver call the first six functions; they must stay fast, so ingest writes its batch in
one statement and evaluates alarms in memory against the cached registry (see inventory.py).
"""

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from tslcd.core.bulk import Rows, read_rows
from tslcd.core.config import get_settings
from tslcd.core.errors import DomainValidationError, NotFound, PermissionDenied
from tslcd.core.database import utcnow
from tslcd.core.listing import paginate
from tslcd.registry import service as registry
from tslcd.registry.models import Device, Interface, Link, Status
from tslcd.security import audit
from tslcd.security.actor import Actor
from tslcd.security.models import Role
from tslcd.telemetry import alarms, storage
from tslcd.telemetry.inventory import Inventory, current_inventory
from tslcd.telemetry.models import PollerCycle, Threshold
from tslcd.telemetry.schemas import DeviceStatus, IngestResult, PollTarget, RateSample, SampleIn, ThresholdIn
from tslcd.telemetry.storage import UTC, as_utc

# Pushed samples may run a little ahead of the server's clock, never further.
CLOCK_SKEW = timedelta(minutes=5)


# The poller's contract
def ingest(*, session: Session, samples: Sequence[RateSample], source: str = "poll",
           raise_alarms: bool = True) -> IngestResult:
    """Store rates in one batched write, then evaluate alarms on the newest sample of each interface.

    `raise_alarms=False` is for imports of history: old measurements say nothing about the network now.
    """
    if not samples:
        return IngestResult(0, 0, 0, 0)
    rows: list[storage.RateRow] = []
    latest: dict[int, tuple[datetime, RateSample]] = {}
    for s in samples:
        ts = s.ts if s.ts.tzinfo is not None else s.ts.replace(tzinfo=UTC)
        rows.append((s.interface_id, ts, s.interval_s, s.in_bps, s.out_bps, s.oper_up))
        newest = latest.get(s.interface_id)
        if newest is None or ts >= newest[0]:
            latest[s.interface_id] = (ts, s)
    stamps = [r[1] for r in rows]
    first, last = min(stamps), max(stamps)
    stored = storage.write_rates(session, rows, first, last)
    storage.mark_late(session, first, utcnow())
    raised = cleared = 0
    if raise_alarms:
        active = alarms.active_keys(session)
        changes = alarms.evaluate_samples(current_inventory(session), (s for _, s in latest.values()), active)
        raised, cleared = alarms.apply(session, changes, source, active)
    return IngestResult(stored=stored, duplicates=len(rows) - stored, alarms_raised=raised, alarms_cleared=cleared)


def device_statuses(*, session: Session, statuses: Sequence[DeviceStatus]) -> tuple[int, int]:
    """A whole cycle's devices that stopped or resumed answering, in one batched write: (raised, cleared).

    Raises (or repeats) each silent device's unreachable alarm and clears those of devices answering again; a
    device deleted meanwhile is ignored. One upsert and one update for every device of the cycle, however many.
    """
    if not statuses:
        return 0, 0
    active = alarms.active_keys(session)
    changes = alarms.device_changes(current_inventory(session), statuses, active)
    return alarms.apply(session, changes, "poll", active)


def device_unreachable(*, session: Session, device_id: int, ts: datetime, reason: str) -> None:
    """Raise, or repeat, the device's unreachable alarm; a device deleted meanwhile is ignored."""
    device_statuses(session=session, statuses=[DeviceStatus(device_id, False, ts, reason)])


def device_reachable(*, session: Session, device_id: int, ts: datetime) -> None:
    """Clear the device's unreachable alarm, if one is active."""
    device_statuses(session=session, statuses=[DeviceStatus(device_id, True, ts)])


def link_status_event(*, session: Session, interface_id: int, up: bool, ts: datetime, source: str = "trap") -> None:
    """A linkDown/linkUp from an interface: raises or clears its link's link_down alarm at once."""
    changes = alarms.Changes()
    alarms.link_state(changes, alarms.active_keys(session), current_inventory(session), interface_id, up,
                      as_utc(ts))
    alarms.apply(session, changes, source)


def record_cycle(*, session: Session, shard: str, started_at: datetime, duration_s: float, devices: int,
                 interfaces: int, failures: int) -> None:
    """Keep one poll cycle's figures for /metrics and the API (`duration_s`: the whole cycle, alarms included);
    retention removes them with the raw rates."""
    session.add(PollerCycle(shard=shard, started_at=as_utc(started_at), duration_s=duration_s, devices=devices,
                            interfaces=interfaces, failures=failures))
    session.flush()


def poll_targets(*, session: Session, shard_index: int = 0, shard_count: int = 1) -> list[PollTarget]:
    """Active devices with a management address and a credential, split among shards by device id; with each
    polled interface's speed as registered (the faster of the interface's speed and its link's capacity)."""
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        raise DomainValidationError(f"shard {shard_index} does not exist among {shard_count} shards")
    stmt = select(Device.id, Device.name, Device.mgmt_address, Device.snmp_credential_id).where(
        Device.status == Status.active, func.coalesce(Device.mgmt_address, "") != "",
        Device.snmp_credential_id.is_not(None)).order_by(Device.id)
    if shard_count > 1:
        stmt = stmt.where(Device.id % shard_count == shard_index)
    targets = {r.id: PollTarget(r.id, r.name, r.mgmt_address, r.snmp_credential_id, {})
               for r in session.execute(stmt)}
    a_end, b_end = aliased(Link), aliased(Link)
    ports = (select(Interface.device_id, Interface.if_index, Interface.id, Interface.speed, a_end.capacity,
                    b_end.capacity)
             .outerjoin(a_end, a_end.a_interface_id == Interface.id)
             .outerjoin(b_end, b_end.b_interface_id == Interface.id)
             .where(Interface.enabled.is_(True), Interface.if_index.is_not(None),
                    Interface.device_id.in_(stmt.with_only_columns(Device.id).order_by(None))))
    for device_id, if_index, interface_id, *speeds in session.execute(ports):
        target = targets[device_id]
        target.interfaces[if_index] = interface_id
        fastest = max((v for v in speeds if v), default=0)
        if fastest:
            target.speeds[if_index] = fastest
    return list(targets.values())


# Pushed and imported samples
def _interface_names(inventory: Inventory) -> dict[tuple[str, str], int]:
    return {(inventory.devices[i.device_id].name, i.name): iid for iid, i in inventory.interfaces.items()}


def import_samples(*, session: Session, actor: Actor, data: bytes | str, fmt: str,
                   source: str = "push") -> IngestResult:
    """Check every row of a pushed batch or an imported file, then store all of them or none.

    Rows name interfaces by id or by device and interface name; each bad row is reported with its line (CSV) or
    1-based position (JSON). A partner pushes for the devices its operator is responsible for.
    """
    if not (actor.edits_everything or actor.role == Role.partner):
        raise PermissionDenied(f"role {actor.role.value} cannot push measurements")
    inventory = current_inventory(session)
    names: dict[tuple[str, str], int] | None = None
    now = utcnow()
    oldest = storage.retention_cutoffs(now)["rates"]
    rows = Rows("samples")
    samples: list[RateSample] = []
    seen: dict[tuple[int, datetime], int] = {}
    for line, raw in read_rows(data, fmt):
        try:
            item = SampleIn.model_validate(raw)
        except ValidationError as exc:
            rows.add_validation(line, exc)
            continue
        interface_id = item.interface_id
        if interface_id is None:
            names = names if names is not None else _interface_names(inventory)
            interface_id = names.get((item.device, item.interface))
            if interface_id is None:
                rows.add(line, f"device '{item.device}' has no interface '{item.interface}'", "interface")
                continue
        iface = inventory.interfaces.get(interface_id)
        if iface is None:
            rows.add(line, f"no interface {interface_id}", "interface_id")
            continue
        if actor.role == Role.partner and inventory.devices[iface.device_id].operator_id != actor.operator_id:
            rows.add(line, "this interface is not in a segment your operator is responsible for", "interface_id")
            continue
        ts = as_utc(item.ts)
        if ts < oldest:
            rows.add(line, f"older than {oldest:%Y-%m-%d}: raw rates are kept "
                           f"{get_settings().rates_retention_days} days", "ts")
            continue
        if ts > now + CLOCK_SKEW:
            rows.add(line, "in the future", "ts")
            continue
        if (interface_id, ts) in seen:
            rows.add(line, f"same interface and time as row {seen[interface_id, ts]}", "ts")
            continue
        seen[interface_id, ts] = line
        samples.append(RateSample(interface_id, ts, item.interval_s, item.in_bps, item.out_bps, item.oper_up,
                                  item.speed_bps))
    rows.raise_if_any()
    return ingest(session=session, samples=samples, source=source, raise_alarms=source != "import")


# Thresholds
def _require_editor(actor: Actor) -> None:
    if not actor.edits_everything:
        raise PermissionDenied("only administrators and the NOC change utilization thresholds")


def list_thresholds(*, session: Session, actor: Actor) -> list[Threshold]:
    """Tier thresholds, and those of the links the actor sees."""
    stmt = select(Threshold).order_by(Threshold.id)
    if not actor.sees_everything:
        links = registry.visible(actor=actor, res=registry.resource("links"), stmt=select(Link.id))
        stmt = stmt.where((Threshold.link_id.is_(None)) | Threshold.link_id.in_(links))
    return list(session.scalars(stmt))


def set_threshold(*, session: Session, actor: Actor, threshold_in: ThresholdIn) -> Threshold:
    """Create or change the thresholds of a tier or a link (audited: alarms follow them at the next ingest)."""
    _require_editor(actor)
    audit.lock(session)  # one lock order: the audit chain's lock before any row is written
    if threshold_in.link_id is not None and session.get(Link, threshold_in.link_id) is None:
        raise NotFound(f"no link {threshold_in.link_id}")
    column = Threshold.link_id if threshold_in.link_id is not None else Threshold.tier
    value = threshold_in.link_id if threshold_in.link_id is not None else threshold_in.tier
    threshold = session.scalar(select(Threshold).where(column == value))
    values = threshold_in.model_dump()
    if threshold is None:
        threshold = Threshold(**values)
        session.add(threshold)
        session.flush()
        audit.record(session=session, actor=actor, action="create", obj=threshold)
        return threshold
    before = audit.snapshot(threshold)
    threshold.warning_pct, threshold.critical_pct = values["warning_pct"], values["critical_pct"]
    session.flush()
    audit.record(session=session, actor=actor, action="update", obj=threshold, before=before)
    return threshold


def delete_threshold(*, session: Session, actor: Actor, threshold_id: int) -> None:
    """Back to the tier's thresholds (for a link) or the defaults (for a tier)."""
    _require_editor(actor)
    audit.lock(session)
    threshold = session.get(Threshold, threshold_id)
    if threshold is None:
        raise NotFound(f"no threshold {threshold_id}")
    before = audit.snapshot(threshold)
    session.delete(threshold)
    session.flush()
    audit.record(session=session, actor=actor, action="delete", obj=threshold, before=before)


# Periods
def parse_period(start: str | None, end: str | None, *, default_span: timedelta = timedelta(hours=1)
                 ) -> tuple[datetime, datetime]:
    """[start, end) from text: a date means its whole UTC day (an end date is included); times without an
    offset are UTC; the end defaults to now and the start to `default_span` before it."""
    def parse(value: str, is_end: bool, name: str) -> datetime:
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                return datetime(day.year, day.month, day.day, tzinfo=UTC) + (timedelta(days=1) if is_end
                                                                               else timedelta())
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            raise DomainValidationError(f"{name} '{value}' is neither a date (YYYY-MM-DD) nor a time (ISO 8601)",
                                        errors=[{"loc": [name], "msg": "not a date or time"}]) from None

    stop = parse(end, True, "to") if end else utcnow()
    begin = parse(start, False, "from") if start else stop - default_span
    if begin >= stop:
        raise DomainValidationError("the period ends before it starts",
                                    errors=[{"loc": ["from"], "msg": "must be before 'to'"}])
    return begin, stop


# Roll-ups and retention
def rollup(*, session: Session, since: datetime | None = None, until: datetime | None = None
           ) -> storage.RollupResult:
    """Roll up what the raw rates completed since the last run (or since `since`)."""
    return storage.rollup(session, since=since, until=until)


def prune(*, session: Session, now: datetime | None = None) -> storage.PruneResult:
    """Enforce retention: raw rates, each roll-up period and poller cycles past their time go."""
    return storage.prune(session, now=now)


# The pollers' health
def list_poller_cycles(*, session: Session, actor: Actor, shard: str | None = None, limit: int = 50,
                       offset: int = 0) -> tuple[int, list[PollerCycle]]:
    """Poll cycles newest first: how long each took (polling, rates and alarms) and how many devices failed."""
    if not actor.sees_everything:
        raise PermissionDenied("only administrators, the NOC and auditors see the pollers' health")
    stmt = select(PollerCycle)
    if shard is not None:
        stmt = stmt.where(PollerCycle.shard == shard)
    return paginate(session=session, stmt=stmt, limit=limit, offset=offset,
                    order_by=PollerCycle.id.desc())
