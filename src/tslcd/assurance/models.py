"""Incidents, the alarms they group, their timeline and the tasks of each operator."""

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from tslcd.core.database import Base
from tslcd.core.types import UTCDateTime


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=16, validate_strings=True)


class IncidentState(str, enum.Enum):
    new = "new"  # mới
    acknowledged = "acknowledged"  # đã tiếp nhận
    in_progress = "in_progress"  # đang xử lý
    on_hold = "on_hold"  # tạm dừng: waiting on the agency, a supplier, a site visit
    resolved = "resolved"  # đã khắc phục
    closed = "closed"  # đóng
    cancelled = "cancelled"  # hủy: a false alarm


STATE_LABELS = {
    IncidentState.new: "Mới", IncidentState.acknowledged: "Đã tiếp nhận", IncidentState.in_progress: "Đang xử lý",
    IncidentState.on_hold: "Tạm dừng", IncidentState.resolved: "Đã khắc phục", IncidentState.closed: "Đóng",
    IncidentState.cancelled: "Hủy",
}
OPEN_STATES = (IncidentState.new, IncidentState.acknowledged, IncidentState.in_progress, IncidentState.on_hold)


class Priority(str, enum.Enum):
    p1 = "P1"
    p2 = "P2"
    p3 = "P3"
    p4 = "P4"


class TaskState(str, enum.Enum):
    open = "open"
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"


class Incident(Base):
    """One fault and everything it explains: a root cause on one element, its symptoms, its impact, who handles it.

    `root_key` ("links:12", "devices:7") names the root element; while an incident is open no other open incident
    has the same root (a partial unique index), so the same failure seen twice never makes two incidents.
    """

    __tablename__ = "incidents"
    __table_args__ = (
        Index("uq_incidents_open_root", "root_key", unique=True, sqlite_where=text("is_open"),
              postgresql_where=text("is_open")),
        Index("ix_incidents_state", "is_open", "priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)  # SC-2026-000123
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[IncidentState] = mapped_column(_enum(IncidentState), default=IncidentState.new)
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    priority: Mapped[Priority] = mapped_column(_enum(Priority))
    computed_priority: Mapped[Priority] = mapped_column(_enum(Priority))
    priority_reason: Mapped[str | None] = mapped_column(Text)  # why the NOC overrode the computed priority
    source: Mapped[str] = mapped_column(String(16))  # alarm | manual
    root_key: Mapped[str | None] = mapped_column(String(40))
    root_type: Mapped[str | None] = mapped_column(String(16))  # links | devices
    root_id: Mapped[int | None] = mapped_column(Integer)
    root_name: Mapped[str] = mapped_column(String(200), default="")
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"), index=True)
    joint: Mapped[bool] = mapped_column(Boolean, default=False)  # on the interconnection of two operators
    province_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="SET NULL"), index=True)
    agencies_lost: Mapped[int] = mapped_column(Integer, default=0)
    agencies_redundancy_lost: Mapped[int] = mapped_column(Integer, default=0)
    subscriptions_lost: Mapped[int] = mapped_column(Integer, default=0)
    symptoms: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __str__(self) -> str:
        return f"{self.number} {self.title}"


class IncidentAlarm(Base):
    """An alarm grouped into an incident: its root cause or a symptom. An alarm belongs to one incident."""

    __tablename__ = "incident_alarms"

    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(8))  # root | symptom


class IncidentAgency(Base):
    """An agency the incident affects: it lost service, or only its redundancy (for scoping and the impact list)."""

    __tablename__ = "incident_agencies"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)
    effect: Mapped[str] = mapped_column(String(16))  # lost | redundancy


class IncidentEvent(Base):
    """The timeline: opened, every transition with its reason, priority overrides, grouped alarms, notes."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # opened | state | priority | symptoms | note
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")


class Task(Base):
    """The work of one operator on an incident (a joint incident has one per operator)."""

    __tablename__ = "incident_tasks"
    __table_args__ = (UniqueConstraint("incident_id", "operator_id", name="one_per_operator"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    state: Mapped[TaskState] = mapped_column(_enum(TaskState), default=TaskState.open)
    coordinator: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __str__(self) -> str:
        return f"task {self.id}: {self.title}"
