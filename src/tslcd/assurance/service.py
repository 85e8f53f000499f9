"""Incidents from alarms: correlation by topology, impact, priority, routing to the responsible operator.

Correlation (`correlate`) takes the open link-down and device-unreachable alarms no incident holds yet and walks
them from the network's root outwards (DFS preorder of the topology): an alarm on an element that lost the root
*because* an element above it failed is a symptom of that element's incident; the first failed element on each
branch is a root cause and opens an incident. Elements cut off by the root of an open incident join it, so a cut
gateway uplink that takes 200 CPEs and their links with it is one incident. An element's position is its device's
node (for a link, the deeper end); at equal position a link comes before a device: a device cut off with all its
links is reported as the link that cut it off.

Routing: the root element's responsible operator (from the registry, itself from the agreements). A root link
whose two ends belong to different operators is on their interconnection: a joint incident, one task per
operator, coordinated by the operator of the backbone.

Every change is in the audit log; `incident.*` and `task.*` events go out once the transaction commits.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event, exists, func, or_, select
from sqlalchemy.orm import Session

from tslcd.assurance.models import (OPEN_STATES, STATE_LABELS, Incident, IncidentAgency, IncidentAlarm,
                                    IncidentEvent, IncidentState, Priority, Task, TaskState)
from tslcd.core import events
from tslcd.core.database import utcnow
from tslcd.core.errors import Conflict, DomainValidationError, NotFound, PermissionDenied
from tslcd.core.listing import paginate
from tslcd.registry.models import Agency, AdminUnit, Agreement, Tier, UnitKind
from tslcd.security import audit
from tslcd.security.actor import Actor
from tslcd.security.models import Role
from tslcd.telemetry.alarms import visible_alarms
from tslcd.telemetry.models import Alarm, AlarmKind
from tslcd.topology.graph import Network, current_network
from tslcd.topology.service import visible_ids

CORRELATED_KINDS = (AlarmKind.link_down, AlarmKind.device_unreachable)
SUBJECT = "incident"
events.declare_stream("TSLCD_ASSURANCE", ["incident.>", "task.>"])

# Which state may follow which (every transition carries a reason).
TRANSITIONS: dict[IncidentState, tuple[IncidentState, ...]] = {
    IncidentState.new: (IncidentState.acknowledged, IncidentState.in_progress, IncidentState.resolved,
                        IncidentState.cancelled),
    IncidentState.acknowledged: (IncidentState.in_progress, IncidentState.on_hold, IncidentState.resolved,
                                 IncidentState.cancelled),
    IncidentState.in_progress: (IncidentState.on_hold, IncidentState.resolved, IncidentState.cancelled),
    IncidentState.on_hold: (IncidentState.in_progress, IncidentState.resolved, IncidentState.cancelled),
    IncidentState.resolved: (IncidentState.closed, IncidentState.in_progress),
    IncidentState.closed: (),
    IncidentState.cancelled: (),
}


# Events after commit, never for rolled-back work
_PENDING = "tslcd_assurance_events"


def _publish_after_commit(session: Session, subject: str, payload: dict[str, Any]) -> None:
    tx = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((tx, subject, payload))


@event.listens_for(Session, "after_transaction_end")
def _flush_events(session: Session, transaction) -> None:
    """The outermost transaction ended: what is still pending was committed (rollbacks removed theirs first;
    SQLAlchemy's after_commit also fires on releasing a savepoint, too early)."""
    if transaction.parent is None:
        for _tx, subject, payload in session.info.pop(_PENDING, ()):
            events.publish(subject, payload)


@event.listens_for(Session, "after_soft_rollback")
def _drop_events(session: Session, previous) -> None:
    """Work rolled back (a savepoint or all of it) publishes nothing."""
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [p for p in pending if not audit.within(p[0], previous)]


# Who sees and changes what
def visible(stmt, actor: Actor):
    """Incidents an actor may see: operations roles and auditors all; a partner those of its operator (its own
    or with a task of its operator); an agency those that affect it."""
    if actor.sees_everything:
        return stmt
    if actor.role == Role.partner and actor.operator_id:
        return stmt.where(or_(Incident.operator_id == actor.operator_id, exists().where(
            Task.incident_id == Incident.id, Task.operator_id == actor.operator_id)))
    if actor.role == Role.agency and actor.agency_id:
        return stmt.where(exists().where(IncidentAgency.incident_id == Incident.id,
                                         IncidentAgency.agency_id == actor.agency_id))
    return stmt.where(False)


def _require_handler(actor: Actor, incident: Incident, session: Session) -> None:
    """Changing an incident: admin and NOC; a partner on an incident of its operator or one it has a task in."""
    if actor.edits_everything:
        return
    if actor.role == Role.partner and actor.operator_id and (incident.operator_id == actor.operator_id or session.scalar(
            select(Task.id).where(Task.incident_id == incident.id, Task.operator_id == actor.operator_id))):
        return
    raise PermissionDenied("only the NOC and the operator responsible for an incident handle it")


def get_incident(*, session: Session, actor: Actor, incident_id: int) -> Incident:
    incident = session.scalar(visible(select(Incident), actor).where(Incident.id == incident_id))
    if incident is None:
        raise NotFound(f"incident {incident_id} not found")
    return incident


def get_by_number(*, session: Session, actor: Actor, number: str) -> Incident:
    incident = session.scalar(visible(select(Incident), actor).where(Incident.number == number.strip().upper()))
    if incident is None:
        raise NotFound(f"incident {number} not found")
    return incident


def list_incidents(*, session: Session, actor: Actor, state: Sequence[IncidentState] | None = None,
                   is_open: bool | None = None, priority: Sequence[Priority] | None = None,
                   operator_id: Sequence[int] | None = None, province_id: Sequence[int] | None = None,
                   agency_id: int | None = None, limit: int = 50, offset: int = 0) -> tuple[int, list[Incident]]:
    """Newest first."""
    stmt = visible(select(Incident), actor)
    if is_open is not None:
        stmt = stmt.where(Incident.is_open.is_(is_open))
    for column, values in ((Incident.state, state), (Incident.priority, priority),
                           (Incident.operator_id, operator_id), (Incident.province_id, province_id)):
        if values:
            stmt = stmt.where(column.in_(values))
    if agency_id is not None:
        stmt = stmt.where(exists().where(IncidentAgency.incident_id == Incident.id,
                                         IncidentAgency.agency_id == agency_id))
    return paginate(session=session, stmt=stmt, limit=limit, offset=offset, order_by=Incident.id.desc())


HIDDEN = "(ngoài phạm vi quản lý)"  # what stands for an element the reader may not see


def hidden_roots(session: Session, actor: Actor, incidents: Sequence[Incident]) -> set[int]:
    """Ids of the incidents whose root element the actor may not see in the registry (another operator's
    network): their element's name is left out of what the actor reads."""
    if actor.sees_everything:
        return set()
    hidden: set[int] = set()
    for table in ("links", "devices"):
        mine = [i for i in incidents if i.root_type == table and i.root_id is not None]
        if mine:
            seen = visible_ids(session=session, actor=actor, table=table, ids={i.root_id for i in mine})
            hidden |= {i.id for i in mine if i.root_id not in seen}
    return hidden


def readable(incident: Incident, hidden: bool) -> dict[str, Any]:
    """An incident's fields as its reader may see them."""
    values = {c.key: getattr(incident, c.key) for c in Incident.__table__.columns}
    if hidden and incident.root_name:
        for key in ("title", "description"):
            values[key] = values[key].replace(incident.root_name, HIDDEN)
        values.update(root_name=HIDDEN, root_id=None)
    return values


def timeline(*, session: Session, actor: Actor, incident_id: int) -> list[IncidentEvent]:
    incident = get_incident(session=session, actor=actor, incident_id=incident_id)
    rows = list(session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                .order_by(IncidentEvent.id)))
    if hidden_roots(session, actor, [incident]):
        for row in rows:
            session.expunge(row)  # shown redacted, never written back
            row.text = row.text.replace(incident.root_name, HIDDEN)
    return rows


def incident_alarms(*, session: Session, actor: Actor, incident_id: int) -> list[tuple[Alarm, str]]:
    """The incident's alarms the actor may see (as monitoring scopes alarms)."""
    get_incident(session=session, actor=actor, incident_id=incident_id)
    stmt = (select(Alarm, IncidentAlarm.role).join(IncidentAlarm, IncidentAlarm.alarm_id == Alarm.id)
            .where(IncidentAlarm.incident_id == incident_id).order_by(IncidentAlarm.role, Alarm.id))
    return [(a, role) for a, role in session.execute(visible_alarms(stmt, actor))]


def incident_agencies(*, session: Session, actor: Actor, incident_id: int) -> list[tuple[Agency, str]]:
    get_incident(session=session, actor=actor, incident_id=incident_id)
    stmt = (select(Agency, IncidentAgency.effect).join(IncidentAgency, IncidentAgency.agency_id == Agency.id)
            .where(IncidentAgency.incident_id == incident_id).order_by(IncidentAgency.effect, Agency.code))
    if actor.role == Role.agency:  # an agency sees that it is affected, not who else is
        stmt = stmt.where(Agency.id == actor.agency_id)
    return [(a, effect) for a, effect in session.execute(stmt)]


def list_tasks(*, session: Session, actor: Actor, incident_id: int | None = None, is_open: bool | None = None,
               limit: int = 50, offset: int = 0) -> tuple[int, list[Task]]:
    """Tasks: a partner sees only its operator's; an agency none."""
    stmt = select(Task).join(Incident, Incident.id == Task.incident_id)
    if actor.role == Role.partner:
        stmt = stmt.where(Task.operator_id == (actor.operator_id or -1))
    elif not actor.sees_everything:
        stmt = stmt.where(False)
    if incident_id is not None:
        stmt = stmt.where(Task.incident_id == incident_id)
    if is_open is not None:
        done = Task.state.in_((TaskState.done, TaskState.cancelled))
        stmt = stmt.where(~done if is_open else done)
    return paginate(session=session, stmt=stmt, limit=limit, offset=offset, order_by=Task.id.desc())


# Changes
def _event(session: Session, incident: Incident, actor: Actor, kind: str, text: str, *,
           from_state: IncidentState | None = None, to_state: IncidentState | None = None, now: datetime) -> None:
    session.add(IncidentEvent(incident_id=incident.id, ts=now, actor=actor.username, kind=kind, text=text,
                              from_state=from_state.value if from_state else None,
                              to_state=to_state.value if to_state else None))


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise DomainValidationError("a reason is required", errors=[{"loc": ["body", "reason"],
                                                                    "msg": "a reason is required"}])
    return reason


def transition(*, session: Session, actor: Actor, incident_id: int, to: IncidentState, reason: str) -> Incident:
    """Move an incident to another state, with a reason; the timeline and the audit log record it."""
    audit.lock(session)
    incident = get_incident(session=session, actor=actor, incident_id=incident_id)
    _require_handler(actor, incident, session)
    reason = _reason(reason)
    current = incident.state
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(s.value for s in TRANSITIONS[current]) or "none (the incident is finished)"
        raise Conflict(f"incident {incident.number} is {current.value} ({STATE_LABELS[current]}): it cannot become "
                       f"{to.value}; it can become {allowed}")
    if to in OPEN_STATES and current not in OPEN_STATES and incident.root_key and session.scalar(
            select(Incident.number).where(Incident.is_open.is_(True), Incident.root_key == incident.root_key,
                                          Incident.id != incident.id)):
        raise Conflict(f"incident {incident.number} cannot be reopened: another open incident has the same root "
                       f"cause ({incident.root_name})")
    before = audit.snapshot(incident)
    now = utcnow()
    incident.state, incident.is_open, incident.updated_at = to, to in OPEN_STATES, now
    if to in (IncidentState.acknowledged, IncidentState.in_progress, IncidentState.on_hold) \
            and incident.acknowledged_at is None:
        incident.acknowledged_at = now
    if to == IncidentState.resolved:
        incident.resolved_at = now
    if to == IncidentState.in_progress and current == IncidentState.resolved:
        incident.resolved_at = None  # reopened
    if to in (IncidentState.closed, IncidentState.cancelled):
        incident.closed_at = now
    _event(session, incident, actor, "state", reason, from_state=current, to_state=to, now=now)
    if to in (IncidentState.closed, IncidentState.cancelled):
        for task in session.scalars(select(Task).where(Task.incident_id == incident.id,
                                                       Task.state.in_((TaskState.open, TaskState.in_progress)))):
            task_before = audit.snapshot(task)
            task.state, task.updated_at = (TaskState.done if to == IncidentState.closed else TaskState.cancelled), now
            audit.record(session=session, actor=actor, action="update", obj=task, before=task_before)
    session.flush()
    audit.record(session=session, actor=actor, action="update", obj=incident, before=before, note=reason)
    _publish_after_commit(session, f"{SUBJECT}.{to.value}", _payload(incident))
    return incident


def set_priority(*, session: Session, actor: Actor, incident_id: int, priority: Priority, reason: str) -> Incident:
    """The NOC overrides the computed priority, with a reason."""
    audit.lock(session)
    incident = get_incident(session=session, actor=actor, incident_id=incident_id)
    if not actor.edits_everything:
        raise PermissionDenied("only the NOC sets an incident's priority")
    reason = _reason(reason)
    before = audit.snapshot(incident)
    now = utcnow()
    _event(session, incident, actor, "priority", f"{incident.priority.value} → {priority.value}: {reason}", now=now)
    incident.priority, incident.priority_reason, incident.updated_at = priority, reason, now
    session.flush()
    audit.record(session=session, actor=actor, action="update", obj=incident, before=before, note=reason)
    _publish_after_commit(session, f"{SUBJECT}.priority", _payload(incident))
    return incident


def _payload(incident: Incident) -> dict[str, Any]:
    return {"id": incident.id, "number": incident.number, "state": incident.state.value,
            "priority": incident.priority.value, "operator_id": incident.operator_id, "joint": incident.joint,
            "root": incident.root_key, "agencies_lost": incident.agencies_lost}


# Correlation
@dataclass
class Correlation:
    opened: list[Incident] = field(default_factory=list)
    grouped: int = 0  # alarms added to incidents (opened or already open)
    incidents_touched: set[int] = field(default_factory=set)


@dataclass
class _Open:
    incident: Incident
    lost: set[int]  # devices cut off with its root
    new_symptoms: int = 0


def _position(net: Network, kind: str, object_id: int) -> tuple[int, int]:
    """(DFS preorder number of the element's node, 0 for a link / 1 for a device); unreached elements last."""
    tin = net.structure().dfs.tin
    if kind == "links":
        edge = net.edge_of_link.get(object_id)
        if edge is None:
            return (1 << 62, 0)
        a, b = net.edge_a[edge], net.edge_b[edge]
        return (max(tin[a], tin[b]) if min(tin[a], tin[b]) >= 0 else 1 << 62, 0)
    node = net.node_of.get(object_id)
    return ((tin[node] if node is not None and tin[node] >= 0 else 1 << 62), 1)


def _lost_by(net: Network, kind: str, object_id: int):
    impact = net.impact(links=[object_id]) if kind == "links" else net.impact(devices=[object_id])
    return impact, set(impact.devices_lost) | ({object_id} if kind == "devices" else set())


def _holder(cut_off: dict[int, "_Open"], net: Network, kind: str, object_id: int) -> "_Open | None":
    """The open incident whose root cut this element off: the device itself, or either end of the link."""
    if kind == "devices":
        return cut_off.get(object_id)
    row = net.links.get(object_id)
    return (cut_off.get(row.a_device_id) or cut_off.get(row.b_device_id)) if row is not None else None


def correlate(*, session: Session, actor: Actor, now: datetime | None = None) -> Correlation:
    """Group the open link-down and device-unreachable alarms no incident holds yet (see the module's text)."""
    if not actor.edits_everything:
        raise PermissionDenied("only the NOC runs the correlation")
    audit.lock(session)
    now = now or utcnow()
    result = Correlation()
    alarms = list(session.scalars(
        select(Alarm).where(Alarm.cleared_at.is_(None), Alarm.kind.in_(CORRELATED_KINDS),
                            ~exists().where(IncidentAlarm.alarm_id == Alarm.id))))
    if not alarms:
        return result
    with current_network(session) as net:
        opened: list[_Open] = []
        by_root: dict[str, _Open] = {}
        cut_off: dict[int, _Open] = {}  # device -> the open incident whose root cut it off (the oldest first)

        def hold(entry: _Open) -> None:
            opened.append(entry)
            by_root[entry.incident.root_key] = entry
            for device_id in entry.lost:
                cut_off.setdefault(device_id, entry)

        for incident in session.scalars(select(Incident).where(Incident.is_open.is_(True),
                                                               Incident.root_key.is_not(None))
                                        .order_by(Incident.id)):
            hold(_Open(incident, _lost_by(net, incident.root_type, incident.root_id)[1]))
        candidates = sorted(alarms, key=lambda a: (_position(net, a.object_type, a.object_id), a.id))
        grouped: list[tuple[_Open, Alarm, str]] = []
        for alarm in candidates:
            kind, oid = alarm.object_type, alarm.object_id
            if kind not in ("links", "devices"):
                continue
            key = f"{kind}:{oid}"
            holder = by_root.get(key)
            role = "root" if holder is not None else "symptom"
            if holder is None:
                holder = _holder(cut_off, net, kind, oid)
            if holder is None:
                holder = _open_incident(session, actor, net, kind, oid, now)
                hold(holder)
                result.opened.append(holder.incident)
                role = "root"
            grouped.append((holder, alarm, role))
        for holder, alarm, role in grouped:
            session.add(IncidentAlarm(alarm_id=alarm.id, incident_id=holder.incident.id, role=role))
            if role == "symptom":
                holder.new_symptoms += 1
            result.incidents_touched.add(holder.incident.id)
        result.grouped = len(grouped)
        fresh = {id(i) for i in result.opened}
        for entry in opened:
            if entry.new_symptoms and id(entry.incident) not in fresh:
                before = audit.snapshot(entry.incident)
                entry.incident.symptoms += entry.new_symptoms
                entry.incident.updated_at = now
                _event(session, entry.incident, actor, "symptoms",
                       f"{entry.new_symptoms} cảnh báo được gộp vào sự cố", now=now)
                audit.record(session=session, actor=actor, action="update", obj=entry.incident, before=before,
                             note=f"{entry.new_symptoms} alarms grouped")
                _publish_after_commit(session, f"{SUBJECT}.updated", _payload(entry.incident))
            elif entry.new_symptoms:
                entry.incident.symptoms += entry.new_symptoms
        session.flush()
        for incident in result.opened:  # recorded once complete (with its symptoms)
            audit.record(session=session, actor=actor, action="create", obj=incident)
            _publish_after_commit(session, f"{SUBJECT}.opened", _payload(incident))
    return result


def _coordinator(session: Session, on: datetime) -> int | None:
    """The operator of the backbone nationwide (CBĐTW): it coordinates joint incidents."""
    return session.scalar(select(Agreement.operator_id).where(
        Agreement.tier == Tier.backbone, Agreement.province_id.is_(None),
        or_(Agreement.valid_from.is_(None), Agreement.valid_from <= on.date()),
        or_(Agreement.valid_to.is_(None), Agreement.valid_to >= on.date())).order_by(Agreement.id).limit(1))


def priority_of(session: Session, lost: Sequence[int], redundancy_lost: Sequence[int]) -> Priority:
    """P1: a central body lost service, or 50 agencies or more; P2: a provincial body, or 10 or more; P3: any
    agency lost service; P4: none did (at most redundancy lost)."""
    if not lost:
        return Priority.p4
    levels = {kind for kind, in session.execute(
        select(AdminUnit.kind).join(Agency, Agency.unit_id == AdminUnit.id).where(Agency.id.in_(lost)).distinct())}
    if UnitKind.central in levels or len(lost) >= 50:
        return Priority.p1
    if UnitKind.province in levels or len(lost) >= 10:
        return Priority.p2
    return Priority.p3


def _next_number(session: Session, now: datetime) -> str:
    prefix = f"SC-{now.year}-"
    last = session.scalar(select(func.max(Incident.number)).where(Incident.number.like(f"{prefix}%")))
    return f"{prefix}{(int(last[len(prefix):]) if last else 0) + 1:06d}"


def _open_incident(session: Session, actor: Actor, net: Network, kind: str, oid: int, now: datetime) -> _Open:
    impact, lost = _lost_by(net, kind, oid)
    if kind == "links":
        row = net.links.get(oid)
        name = row.slug if row else f"link {oid}"
        operators = {row.operator_id} if row else set()
        ends = {net.devices[d].operator_id for d in ((row.a_device_id, row.b_device_id) if row else ())
                if d in net.devices}
        operators = {o for o in operators | ends if o is not None}
        joint = len({o for o in ends if o is not None}) > 1
        owner = row.operator_id if row else None
        province = row.province_id if row else None
        title = f"Mất kết nối tuyến {name}"
    else:
        row = net.devices.get(oid)
        name = row.name if row else f"device {oid}"
        owner = row.operator_id if row else None
        operators = {owner} if owner else set()
        joint = False
        province = row.province_id if row else None
        title = f"Mất kết nối thiết bị {name}"
    if impact.agencies_lost:
        title += f": {len(impact.agencies_lost)} cơ quan mất dịch vụ"
    elif impact.agencies_redundancy_lost:
        title += f": {len(impact.agencies_redundancy_lost)} cơ quan mất dự phòng"
    coordinator = _coordinator(session, now) if joint else None
    priority = priority_of(session, impact.agencies_lost, impact.agencies_redundancy_lost)
    incident = Incident(
        number=_next_number(session, now), title=title[:300], source="alarm", state=IncidentState.new, is_open=True,
        description=(f"Nguyên nhân gốc: {'tuyến' if kind == 'links' else 'thiết bị'} {name}. "
                     f"{len(impact.agencies_lost)} cơ quan mất dịch vụ, {len(impact.agencies_redundancy_lost)} cơ quan "
                     f"mất dự phòng, {len(impact.subscriptions_lost)} thuê bao bị ảnh hưởng."),
        priority=priority, computed_priority=priority, root_key=f"{kind}:{oid}", root_type=kind, root_id=oid,
        root_name=name[:200], operator_id=coordinator or owner, joint=joint, province_id=province,
        agencies_lost=len(impact.agencies_lost), agencies_redundancy_lost=len(impact.agencies_redundancy_lost),
        subscriptions_lost=len(impact.subscriptions_lost), symptoms=0, opened_at=now, updated_at=now)
    session.add(incident)
    session.flush()
    for agency_id in impact.agencies_lost:
        session.add(IncidentAgency(incident_id=incident.id, agency_id=agency_id, effect="lost"))
    for agency_id in impact.agencies_redundancy_lost:
        session.add(IncidentAgency(incident_id=incident.id, agency_id=agency_id, effect="redundancy"))
    task_operators = sorted(operators | ({coordinator} if coordinator else set()))
    for operator_id in task_operators:
        task = Task(incident_id=incident.id, operator_id=operator_id, state=TaskState.open, updated_at=now,
                    coordinator=operator_id == coordinator, title=(
                        ("Điều phối xử lý sự cố " if operator_id == coordinator else "Xử lý sự cố ")
                        + f"{incident.number} ({name})")[:300])
        session.add(task)
        session.flush()
        audit.record(session=session, actor=actor, action="create", obj=task)
        _publish_after_commit(session, "task.created", {"id": task.id, "incident_id": incident.id,
                                                        "operator_id": operator_id})
    _event(session, incident, actor, "opened", f"Mở từ cảnh báo trên {'tuyến' if kind == 'links' else 'thiết bị'} "
           f"{name}; ưu tiên {priority.value}", now=now)
    return _Open(incident, lost)


def incidents_by_ids(session: Session, ids: Iterable[int]) -> list[Incident]:
    return list(session.scalars(select(Incident).where(Incident.id.in_(list(ids))).order_by(Incident.id)))
