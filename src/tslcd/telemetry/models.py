"""Measurements of the network: interface rates, their roll-ups, alarms, and the pollers' own health.

On PostgreSQL the two measurement tables are partitioned by time (see storage.py), so that retention drops whole
partitions instead of deleting rows; on SQLite they are plain WITHOUT ROWID tables clustered on their key.
"""

import enum
from datetime import datetime

from sqlalchemy import (Boolean, CheckConstraint, Enum, Float, ForeignKey, Index, Integer, String, Text,
                        text)
from sqlalchemy.orm import Mapped, mapped_column

from tslcd.core.database import Base
from tslcd.core.types import UTCDateTime
from tslcd.registry.models import Tier


class Rate(Base):
    """Traffic of one interface over one poll interval, in bit/s; a missing value is a gap, never a zero.

    No foreign key: written at poller speed (COPY on PostgreSQL, where the table is range-partitioned by day).
    The time index serves the roll-up job and retention; BRIN on PostgreSQL, since rows arrive in time order.
    """

    __tablename__ = "telemetry_rates"
    __table_args__ = (
        Index("ix_telemetry_rates_ts", "ts", postgresql_using="brin"),
        {"postgresql_partition_by": "RANGE (ts)", "sqlite_with_rowid": False},
    )

    interface_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)  # end of the interval
    interval_s: Mapped[float] = mapped_column(Float)
    in_bps: Mapped[float | None] = mapped_column(Float)
    out_bps: Mapped[float | None] = mapped_column(Float)
    oper_up: Mapped[bool | None] = mapped_column(Boolean)


class RollupPeriod(str, enum.Enum):
    five_minutes = "5m"
    hour = "1h"
    day = "1d"


class Rollup(Base):
    """Rates of one interface summarised over 5 minutes, an hour or a day; kept longer than the raw rates.

    On PostgreSQL partitioned by period, then by month, so each period's retention drops its own months.
    """

    __tablename__ = "telemetry_rollups"
    __table_args__ = (
        Index("ix_telemetry_rollups_period_ts", "period", "ts"),
        {"postgresql_partition_by": "LIST (period)", "sqlite_with_rowid": False},
    )

    period: Mapped[str] = mapped_column(String(2), primary_key=True)
    interface_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)  # start of the bucket
    samples: Mapped[int] = mapped_column(Integer)  # rates with a value (gaps are not counted)
    in_avg: Mapped[float | None] = mapped_column(Float)
    out_avg: Mapped[float | None] = mapped_column(Float)
    in_max: Mapped[float | None] = mapped_column(Float)
    out_max: Mapped[float | None] = mapped_column(Float)


class AlarmKind(str, enum.Enum):
    utilization_warning = "utilization_warning"  # above the first threshold (default 60 %)
    utilization_critical = "utilization_critical"  # above the second threshold (default 80 %)
    link_down = "link_down"
    speed_mismatch = "speed_mismatch"  # the device reports a speed other than the registry's capacity
    device_unreachable = "device_unreachable"
    # The interface has only 32-bit counters, which wrap too fast for its speed at the poll interval: no rate.
    counter_too_narrow = "counter_too_narrow"


class Direction(str, enum.Enum):
    """A link's direction, seen from its a end: utilization alarms are per direction."""

    a_to_b = "a_to_b"
    b_to_a = "b_to_a"


def dedup_key(kind: AlarmKind, object_type: str, object_id: int, part: str | None = None) -> str:
    """The one active alarm per condition and object: kind:object_type:object_id[:part] (part: a direction)."""
    key = f"{kind.value}:{object_type}:{object_id}"
    return f"{key}:{part}" if part else key


class Severity(str, enum.Enum):
    info = "info"
    warning = "warning"
    major = "major"
    critical = "critical"


class RollupMark(Base):
    """How far the raw rates have been rolled up; an ingest of late samples moves it back to be recomputed."""

    __tablename__ = "telemetry_rollup_marks"

    period: Mapped[str] = mapped_column(String(2), primary_key=True)
    done_until: Mapped[datetime] = mapped_column(UTCDateTime())


class Alarm(Base):
    """One condition on one object, deduplicated: repeats raise `occurrences`, clearing closes it.

    Incident handling (assurance) reads this table; telemetry never calls it.
    """

    __tablename__ = "alarms"
    __table_args__ = (
        Index("uq_alarms_active_key", "dedup_key", unique=True, sqlite_where=text("cleared_at IS NULL"),
              postgresql_where=text("cleared_at IS NULL")),
        Index("ix_alarms_open", "cleared_at", "severity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(120))  # kind:object_type:object_id
    kind: Mapped[AlarmKind] = mapped_column(Enum(AlarmKind, native_enum=False, length=32))
    severity: Mapped[Severity] = mapped_column(Enum(Severity, native_enum=False, length=16))
    source: Mapped[str] = mapped_column(String(16))  # poll | trap | push | import
    object_type: Mapped[str] = mapped_column(String(24))  # links | interfaces | devices
    object_id: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"), index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"), index=True)
    province_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="SET NULL"), index=True)
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Threshold(Base):
    """Utilization thresholds for a tier or one link; the most specific one applies (default 60 % / 80 %)."""

    __tablename__ = "thresholds"
    __table_args__ = (CheckConstraint("(tier IS NULL) <> (link_id IS NULL)", name="tier_or_link"),
                      CheckConstraint("warning_pct > 0 AND warning_pct < critical_pct", name="ordered"))

    id: Mapped[int] = mapped_column(primary_key=True)
    tier: Mapped[Tier | None] = mapped_column(Enum(Tier, native_enum=False, length=24), unique=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"), unique=True)
    warning_pct: Mapped[float] = mapped_column(Float, default=60.0)
    critical_pct: Mapped[float] = mapped_column(Float, default=80.0)

    def __str__(self) -> str:
        if self.tier is not None:
            return f"tier {getattr(self.tier, 'value', self.tier)}"
        return f"link {self.link_id}"


class PollerCycle(Base):
    """One poll cycle of one poller shard: what /metrics and the console show of the pollers' health."""

    __tablename__ = "poller_cycles"

    id: Mapped[int] = mapped_column(primary_key=True)
    shard: Mapped[str] = mapped_column(String(16), index=True)  # "1/1", "2/4"
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    duration_s: Mapped[float] = mapped_column(Float)
    devices: Mapped[int] = mapped_column(Integer)
    interfaces: Mapped[int] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer)
