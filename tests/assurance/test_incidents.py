"""Alarms to incidents on the tiny network: one incident per fault with its symptoms, impact, priority, routing."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from tests.factories import build_tiny
from tslcd.assurance import service
from tslcd.assurance.models import Incident, IncidentState, Priority, Task
from tslcd.core import events
from tslcd.core.errors import Conflict, DomainValidationError, NotFound, PermissionDenied
from tslcd.registry.models import Agency, Device, Link
from tslcd.security.actor import Actor
from tslcd.security.models import AuditRecord, Role
from tslcd.telemetry.models import Alarm, AlarmKind, Severity

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def tiny(session, admin):
    built = build_tiny(session, admin)
    session.commit()
    return built


def _down(session, tiny, *, links=(), devices=(), at=T0) -> list[Alarm]:
    """The alarms the poller raises when these links are down and these devices unreachable."""
    made = []
    for slug in links:
        link = session.get(Link, tiny.id_of(session, Link, slug))
        made.append(Alarm(dedup_key=f"link_down:links:{link.id}", kind=AlarmKind.link_down, severity=Severity.major,
                          source="poll", object_type="links", object_id=link.id, link_id=link.id,
                          operator_id=link.operator_id, message=f"{slug} down", first_seen=at, last_seen=at))
    for name in devices:
        device = session.get(Device, tiny.id_of(session, Device, name))
        made.append(Alarm(dedup_key=f"device_unreachable:devices:{device.id}", kind=AlarmKind.device_unreachable,
                          severity=Severity.critical, source="poll", object_type="devices", object_id=device.id,
                          device_id=device.id, operator_id=device.operator_id, message=f"{name} unreachable",
                          first_seen=at, last_seen=at))
    session.add_all(made)
    session.commit()  # the poller's own transaction (the fixture's commit is a savepoint)
    return made


def test_a_cut_uplink_is_one_incident_with_its_symptoms(session, admin, tiny):
    _down(session, tiny, links=["pe1-sw1", "sw1-cpea", "rc1-pe1", "pe1-cpeb-1", "pe1-cpeb-2"],
          devices=["cpe-a", "sw-1", "pe-1", "cpe-b"])
    result = service.correlate(session=session, actor=admin)
    assert len(result.opened) == 1 and result.grouped == 9
    incident = result.opened[0]
    assert (incident.root_type, incident.root_name, incident.symptoms) == ("links", "rc1-pe1", 8)
    assert incident.number == f"SC-{datetime.now(timezone.utc).year}-000001"
    assert incident.agencies_lost == 2 and incident.state == IncidentState.new
    assert incident.priority == Priority.p2  # the city's People's Committee (a provincial body) lost service
    assert incident.operator_id == tiny.cbdtw and not incident.joint
    assert "rc1-pe1" in incident.title and "2 cơ quan mất dịch vụ" in incident.title
    roles = {a.object_id: r for a, r in service.incident_alarms(session=session, actor=admin,
                                                                 incident_id=incident.id)}
    assert list(roles.values()).count("root") == 1
    assert roles[tiny.id_of(session, Link, "rc1-pe1")] == "root"
    lost = {a.code for a, effect in service.incident_agencies(session=session, actor=admin, incident_id=incident.id)
            if effect == "lost"}
    assert lost == {"001.01.00.H01", "000.00.00.H01"}
    assert service.correlate(session=session, actor=admin).grouped == 0  # idempotent: nothing twice
    assert session.scalar(select(AuditRecord.id).where(AuditRecord.object_type == "incidents",
                                                       AuditRecord.object_id == incident.id))


def test_alarms_arriving_later_join_the_open_incident(session, admin, tiny):
    _down(session, tiny, links=["pe1-sw1"])
    first = service.correlate(session=session, actor=admin).opened[0]
    _down(session, tiny, links=["sw1-cpea"], devices=["sw-1", "cpe-a"], at=T0 + timedelta(seconds=30))
    later = service.correlate(session=session, actor=admin)
    assert later.opened == [] and later.grouped == 3
    session.refresh(first)
    assert first.symptoms == 3
    assert [e.kind for e in service.timeline(session=session, actor=admin, incident_id=first.id)] == [
        "opened", "symptoms"]


def test_an_interconnection_fault_is_joint_with_a_task_per_operator(session, admin, tiny):
    """pe1-sw1 joins CBĐTW's PE to VNPT's switch: both operators get a task, CBĐTW coordinates."""
    _down(session, tiny, links=["pe1-sw1"], devices=["sw-1", "cpe-a"])
    incident = service.correlate(session=session, actor=admin).opened[0]
    assert incident.joint and incident.operator_id == tiny.cbdtw
    tasks = {t.operator_id: t for t in session.scalars(select(Task).where(Task.incident_id == incident.id))}
    assert set(tasks) == {tiny.cbdtw, tiny.vnpt} and tasks[tiny.cbdtw].coordinator
    assert incident.priority == Priority.p3  # a commune's committee lost service
    partner = Actor(username="vnpt-noc", role=Role.partner, operator_id=tiny.vnpt)
    assert service.get_incident(session=session, actor=partner, incident_id=incident.id).id == incident.id
    _, seen = service.list_tasks(session=session, actor=partner)
    assert [t.operator_id for t in seen] == [tiny.vnpt]  # only its own task


def test_a_fault_that_cuts_no_agency_is_p4(session, admin, tiny):
    """cpe-b keeps its second link to pe-1: nobody lost service."""
    _down(session, tiny, links=["pe1-cpeb-1"])
    incident = service.correlate(session=session, actor=admin).opened[0]
    assert (incident.priority, incident.agencies_lost, incident.symptoms) == (Priority.p4, 0, 0)
    assert "mất dịch vụ" not in incident.title


def test_a_partner_sees_only_its_operators_incidents(session, admin, tiny):
    _down(session, tiny, links=["rc1-pe1"], devices=["pe-1"])
    cbdtw_only = service.correlate(session=session, actor=admin).opened[0]
    assert not cbdtw_only.joint
    viettel = Actor(username="viettel-noc", role=Role.partner, operator_id=tiny.viettel)
    with pytest.raises(NotFound):
        service.get_incident(session=session, actor=viettel, incident_id=cbdtw_only.id)
    assert service.list_incidents(session=session, actor=viettel)[0] == 0
    with pytest.raises(NotFound):
        service.transition(session=session, actor=viettel, incident_id=cbdtw_only.id, to=IncidentState.acknowledged,
                           reason="x")
    agency = session.scalar(select(Agency.id).where(Agency.code == "001.01.00.H01"))
    clerk = Actor(username="clerk", role=Role.agency, agency_id=agency)
    assert service.list_incidents(session=session, actor=clerk)[0] == 1  # it is affected
    assert [a.code for a, _ in service.incident_agencies(session=session, actor=clerk,
                                                         incident_id=cbdtw_only.id)] == ["001.01.00.H01"]
    with pytest.raises(PermissionDenied):
        service.transition(session=session, actor=clerk, incident_id=cbdtw_only.id, to=IncidentState.acknowledged,
                           reason="x")


def test_the_state_machine_needs_a_reason_and_allowed_steps(session, admin, tiny):
    _down(session, tiny, links=["pe1-cpeb-1"])
    incident = service.correlate(session=session, actor=admin).opened[0]
    with pytest.raises(DomainValidationError):
        service.transition(session=session, actor=admin, incident_id=incident.id, to=IncidentState.acknowledged,
                           reason="  ")
    with pytest.raises(Conflict, match="cannot become closed"):
        service.transition(session=session, actor=admin, incident_id=incident.id, to=IncidentState.closed,
                           reason="done")
    for state in (IncidentState.acknowledged, IncidentState.in_progress, IncidentState.on_hold,
                  IncidentState.in_progress, IncidentState.resolved):
        service.transition(session=session, actor=admin, incident_id=incident.id, to=state, reason=f"→ {state.value}")
    assert incident.acknowledged_at and incident.resolved_at and not incident.is_open
    # The root is free again: the same fault seen again after resolution opens a new incident.
    session.commit()
    session.execute(Alarm.__table__.update().values(cleared_at=T0 + timedelta(minutes=5)))
    _down(session, tiny, links=["pe1-cpeb-1"], at=T0 + timedelta(minutes=10))
    again = service.correlate(session=session, actor=admin).opened
    assert len(again) == 1 and again[0].number.endswith("000002")
    with pytest.raises(Conflict, match="cannot be reopened"):
        service.transition(session=session, actor=admin, incident_id=incident.id, to=IncidentState.in_progress,
                           reason="not fixed")
    service.transition(session=session, actor=admin, incident_id=incident.id, to=IncidentState.closed, reason="ok")
    states = [(e.from_state, e.to_state) for e in service.timeline(session=session, actor=admin,
                                                                  incident_id=incident.id) if e.kind == "state"]
    assert states[0] == ("new", "acknowledged") and states[-1] == ("resolved", "closed")


def test_the_noc_overrides_the_priority_with_a_reason(session, admin, tiny):
    _down(session, tiny, links=["pe1-cpeb-1"])
    incident = service.correlate(session=session, actor=admin).opened[0]
    service.set_priority(session=session, actor=admin, incident_id=incident.id, priority=Priority.p1,
                         reason="hội nghị truyền hình đang diễn ra")
    assert (incident.priority, incident.computed_priority) == (Priority.p1, Priority.p4)
    partner = Actor(username="vnpt", role=Role.partner, operator_id=tiny.vnpt)
    with pytest.raises(PermissionDenied):
        service.set_priority(session=session, actor=partner, incident_id=incident.id, priority=Priority.p4,
                             reason="x")


def test_events_go_out_after_commit_only(session, admin, tiny):
    seen = []
    unsubscribe = events.subscribe("incident.>", lambda subject, payload: seen.append(subject))
    try:
        _down(session, tiny, links=["pe1-cpeb-1"])
        with session.begin_nested():
            opened = service.correlate(session=session, actor=admin).opened[0]
        assert seen == []
        with pytest.raises(RuntimeError), session.begin_nested():  # rolled-back work publishes nothing
            service.transition(session=session, actor=admin, incident_id=opened.id, to=IncidentState.acknowledged,
                               reason="x")
            raise RuntimeError
        session.commit()
        assert seen == ["incident.opened"]
    finally:
        unsubscribe()


def test_the_api_lists_and_moves_incidents(client, session, admin, tiny, make_token):
    _down(session, tiny, links=["pe1-sw1"], devices=["sw-1", "cpe-a"])
    noc = make_token(Role.noc)
    r = client.post("/api/v1/assurance/correlate", headers=noc)
    assert r.status_code == 200 and len(r.json()["opened"]) == 1, r.text
    incident = r.json()["opened"][0]
    vnpt = make_token(Role.partner, operator_id=tiny.vnpt)
    listed = client.get("/api/v1/assurance/incidents", params={"open": "true"}, headers=vnpt).json()
    assert [i["number"] for i in listed["results"]] == [incident["number"]]
    r = client.post(f"/api/v1/assurance/incidents/{incident['id']}/transition",
                    json={"state": "acknowledged", "reason": "VNPT tiếp nhận"}, headers=vnpt)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged", r.text
    r = client.post(f"/api/v1/assurance/incidents/{incident['id']}/transition",
                    json={"state": "closed", "reason": "x"}, headers=vnpt)
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    r = client.post(f"/api/v1/assurance/incidents/{incident['id']}/transition", json={"state": "closed"},
                    headers=vnpt)
    assert r.status_code == 422 and "reason" in r.text
    timeline = client.get(f"/api/v1/assurance/incidents/{incident['id']}/timeline", headers=vnpt).json()
    assert timeline[-1]["text"] == "VNPT tiếp nhận" and timeline[-1]["ts"].endswith(("Z", "+00:00"))
    assert client.post("/api/v1/assurance/correlate", headers=vnpt).status_code == 403


def test_readers_outside_the_root_operator_do_not_learn_its_elements(client, session, admin, tiny, make_token):
    """An agency that lost service sees its incident, but not the name of CBĐTW's link that caused it."""
    _down(session, tiny, links=["rc1-pe1"])
    incident = service.correlate(session=session, actor=admin).opened[0]
    agency = session.scalar(select(Agency.id).where(Agency.code == "001.01.00.H01"))
    clerk = make_token(Role.agency, agency_id=agency)
    for path in ("", f"/{incident.id}", f"/{incident.id}/timeline", f"/{incident.id}/alarms",
                 f"/{incident.id}/agencies"):
        r = client.get(f"/api/v1/assurance/incidents{path}", headers=clerk)
        assert r.status_code == 200 and "rc1-pe1" not in r.text and "rc-1" not in r.text, (path, r.text)
    assert client.get(f"/api/v1/assurance/incidents/{incident.id}", headers=clerk).json()["root_name"] == \
        service.HIDDEN
    noc = make_token(Role.noc)
    assert client.get(f"/api/v1/assurance/incidents/{incident.id}", headers=noc).json()["root_name"] == "rc1-pe1"
