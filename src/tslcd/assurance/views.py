"""REST endpoints of assurance: incidents, their timeline, alarms, affected agencies and tasks."""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from tslcd.assurance import schemas, service
from tslcd.assurance.models import IncidentState, Priority
from tslcd.core.config import get_settings
from tslcd.core.deps import ObjectId, Offset, SessionDep
from tslcd.core.inputs import ID_MAX
from tslcd.core.listing import Page
from tslcd.security.deps import ActorDep

router = APIRouter(prefix="/assurance", tags=["assurance"])
IdsQuery = Annotated[list[Annotated[int, Field(ge=1, le=ID_MAX)]] | None, Query()]
Limit = Annotated[int, Query(ge=1, le=get_settings().page_size_max)]


@router.get("/incidents")
def incidents_view(session: SessionDep, actor: ActorDep,
                   state: Annotated[list[IncidentState] | None, Query()] = None,
                   open: Annotated[bool | None, Query(description="true: not resolved, closed or cancelled")] = None,
                   priority: Annotated[list[Priority] | None, Query()] = None, operator_id: IdsQuery = None,
                   province_id: IdsQuery = None, agency_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
                   limit: Limit = 50, offset: Offset = 0) -> Page[schemas.IncidentRead]:
    count, rows = service.list_incidents(session=session, actor=actor, state=state, is_open=open, priority=priority,
                                         operator_id=operator_id, province_id=province_id, agency_id=agency_id,
                                         limit=limit, offset=offset)
    return Page[schemas.IncidentRead](count=count, limit=limit, offset=offset,
                                      results=_read(session, actor, rows))


def _read(session, actor, incidents) -> list[schemas.IncidentRead]:
    hidden = service.hidden_roots(session, actor, incidents)
    return [schemas.IncidentRead(**service.readable(i, i.id in hidden)) for i in incidents]


def _one(session, actor, incident) -> schemas.IncidentRead:
    return _read(session, actor, [incident])[0]


@router.get("/incidents/{incident_id}")
def incident_view(incident_id: ObjectId, session: SessionDep, actor: ActorDep) -> schemas.IncidentRead:
    return _one(session, actor, service.get_incident(session=session, actor=actor, incident_id=incident_id))


@router.get("/incidents/{incident_id}/timeline")
def timeline_view(incident_id: ObjectId, session: SessionDep, actor: ActorDep) -> list[schemas.EventRead]:
    return [schemas.EventRead.model_validate(e)
            for e in service.timeline(session=session, actor=actor, incident_id=incident_id)]


@router.get("/incidents/{incident_id}/alarms")
def incident_alarms_view(incident_id: ObjectId, session: SessionDep, actor: ActorDep
                         ) -> list[schemas.IncidentAlarmRead]:
    return [schemas.IncidentAlarmRead(alarm_id=a.id, role=role, kind=a.kind.value, object_type=a.object_type,
                                      object_id=a.object_id, message=a.message, first_seen=a.first_seen,
                                      cleared_at=a.cleared_at)
            for a, role in service.incident_alarms(session=session, actor=actor, incident_id=incident_id)]


@router.get("/incidents/{incident_id}/agencies")
def incident_agencies_view(incident_id: ObjectId, session: SessionDep, actor: ActorDep
                           ) -> list[schemas.AffectedAgency]:
    return [schemas.AffectedAgency(agency_id=a.id, code=a.code, name=a.name, effect=effect)
            for a, effect in service.incident_agencies(session=session, actor=actor, incident_id=incident_id)]


@router.post("/incidents/{incident_id}/transition")
def transition_view(incident_id: ObjectId, body: schemas.TransitionIn, session: SessionDep,
                    actor: ActorDep) -> schemas.IncidentRead:
    """Move the incident to another state (mới → đã tiếp nhận → đang xử lý ⇄ tạm dừng → đã khắc phục → đóng;
    hủy for a false alarm), with a reason."""
    return _one(session, actor, service.transition(session=session, actor=actor, incident_id=incident_id,
                                                   to=body.state, reason=body.reason))


@router.post("/incidents/{incident_id}/priority")
def priority_view(incident_id: ObjectId, body: schemas.PriorityIn, session: SessionDep,
                  actor: ActorDep) -> schemas.IncidentRead:
    """Override the priority computed from the impact (NOC), with a reason."""
    return _one(session, actor, service.set_priority(session=session, actor=actor, incident_id=incident_id,
                                                     priority=body.priority, reason=body.reason))


@router.get("/tasks")
def tasks_view(session: SessionDep, actor: ActorDep, incident_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
               open: Annotated[bool | None, Query()] = None, limit: Limit = 50,
               offset: Offset = 0) -> Page[schemas.TaskRead]:
    count, rows = service.list_tasks(session=session, actor=actor, incident_id=incident_id, is_open=open,
                                     limit=limit, offset=offset)
    return Page[schemas.TaskRead](count=count, limit=limit, offset=offset,
                                  results=[schemas.TaskRead.model_validate(r) for r in rows])


@router.post("/correlate")
def correlate_view(session: SessionDep, actor: ActorDep) -> schemas.CorrelationRead:
    """Group the open alarms no incident holds yet into incidents now (the scheduler does it continuously)."""
    result = service.correlate(session=session, actor=actor)
    return schemas.CorrelationRead(opened=[schemas.IncidentRead.model_validate(i) for i in result.opened],
                                   grouped=result.grouped)
