"""What the assurance API reads and takes."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tslcd.assurance.models import IncidentState, Priority, TaskState
from tslcd.core.inputs import InputModel, Multiline


class IncidentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    title: str
    description: str
    state: IncidentState
    is_open: bool
    priority: Priority
    computed_priority: Priority
    priority_reason: str | None
    source: str
    root_type: str | None
    root_id: int | None
    root_name: str
    operator_id: int | None
    joint: bool
    province_id: int | None
    agencies_lost: int
    agencies_redundancy_lost: int
    subscriptions_lost: int
    symptoms: int
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ts: datetime
    actor: str
    kind: str
    from_state: str | None
    to_state: str | None
    text: str


class IncidentAlarmRead(BaseModel):
    alarm_id: int
    role: str
    kind: str
    object_type: str
    object_id: int
    message: str
    first_seen: datetime
    cleared_at: datetime | None


class AffectedAgency(BaseModel):
    agency_id: int
    code: str
    name: str
    effect: str  # lost | redundancy


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    operator_id: int
    title: str
    state: TaskState
    coordinator: bool
    updated_at: datetime


class TransitionIn(InputModel):
    state: IncidentState
    reason: Multiline = Field(min_length=1, max_length=2000)


class PriorityIn(InputModel):
    priority: Priority
    reason: Multiline = Field(min_length=1, max_length=2000)


class CorrelationRead(BaseModel):
    opened: list[IncidentRead]
    grouped: int
