"""Shapes of telemetry: what pollers hand to ingest (plain dataclasses, cheap at 10,000 a second) and what the
API reads and writes (pydantic)."""

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from tslcd.registry.models import Tier
from tslcd.telemetry.models import AlarmKind, Severity


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# Every time in a response: UTC with its offset ("…Z"), whatever the backend or the query handed back.
Timestamp = Annotated[datetime, AfterValidator(_utc)]


# The poller's contract
@dataclass(slots=True)
class RateSample:
    """One interface over one interval, computed by the poller (or pushed)."""

    interface_id: int
    ts: datetime  # UTC, end of the interval
    interval_s: float
    in_bps: float | None  # None: gap (counter wrap ambiguity, agent restart, first poll)
    out_bps: float | None
    oper_up: bool | None  # ifOperStatus == up
    speed_bps: int | None  # ifHighSpeed*1e6 (or ifSpeed) as reported by the device, None if unknown
    # Poller only: > 0 when the 32-bit counter in use cannot measure this speed (bit/s) at `blind_s` seconds, so
    # the rates are gaps; 0 when the counters can measure the port; None: not judged (pushed samples).
    blind_bps: int | None = None
    blind_s: float = 0.0


@dataclass(slots=True)
class DeviceStatus:
    """A device stopped answering SNMP (and why), or answers again."""

    device_id: int
    reachable: bool
    ts: datetime
    reason: str = ""


@dataclass(slots=True)
class PollTarget:
    """A device to poll: where, with which credential, and which ifIndex is which registry interface."""

    device_id: int
    name: str
    mgmt_address: str  # host or host:port
    credential_id: int
    interfaces: dict[int, int]  # if_index -> interface_id
    speeds: dict[int, int] = field(default_factory=dict)  # if_index -> the registry's speed in bit/s, if known


@dataclass(slots=True)
class IngestResult:
    stored: int  # new rates written
    duplicates: int  # rates already stored for the same interface and time, left as they were
    alarms_raised: int  # new alarms (repeats of an active alarm are not counted)
    alarms_cleared: int


# Pushed samples
class SampleIn(BaseModel):
    """One pushed rate: the interface by id, or by device name and interface name.

    Rates, not counters: turning counters into rates needs the previous reading of every interface and a rule for
    wraps and restarts, which the sender already has; a pushed rate stands alone, so a batch can be checked and
    stored all at once.
    """

    model_config = ConfigDict(extra="forbid")

    interface_id: int | None = None
    device: str | None = None
    interface: str | None = None
    ts: AwareDatetime = Field(description="end of the interval, with its UTC offset (e.g. 2025-07-01T10:05:00Z)")
    interval_s: float = Field(gt=0, le=86400)
    in_bps: float | None = Field(default=None, ge=0, description="bit/s; null marks a gap")
    out_bps: float | None = Field(default=None, ge=0, description="bit/s; null marks a gap")
    oper_up: bool | None = None
    speed_bps: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _names_the_interface(self) -> "SampleIn":
        if self.interface_id is None and (self.device is None or self.interface is None):
            raise ValueError("give interface_id, or device and interface")
        return self


class IngestRead(BaseModel):
    stored: int
    duplicates: int
    alarms_raised: int
    alarms_cleared: int


# Series and utilization
Resolution = Literal["raw", "5m", "1h", "1d"]
Basis = Literal["p95", "peak"]


class SeriesPoint(BaseModel):
    ts: Timestamp  # raw: end of the interval; roll-ups: start of the bucket
    in_bps: float | None  # raw: the rate; roll-ups: the average
    out_bps: float | None
    in_max: float | None = None
    out_max: float | None = None
    samples: int | None = None  # roll-ups only
    oper_up: bool | None = None  # raw only
    in_pct: float | None = None  # link series: % of the link's capacity
    out_pct: float | None = None


class SeriesRead(BaseModel):
    interface_id: int | None = None
    link_id: int | None = None
    side: Literal["a", "b"] | None = None  # link series: whose interface measured it (b: in and out swapped)
    resolution: Resolution
    start: Timestamp
    end: Timestamp
    points: list[SeriesPoint]


class ProvinceBrief(BaseModel):
    id: int
    code: str
    name: str


class LinkBrief(BaseModel):
    id: int
    slug: str
    tier: Tier
    capacity: int
    province_id: int | None
    operator_id: int | None


class Forecast(BaseModel):
    """When the link's daily peak is expected to cross the critical threshold, from a robust linear trend."""

    status: Literal["crosses", "already_over", "not_rising", "not_enough_data"]
    crossing_date: date | None = None
    slope_pct_per_day: float | None = None
    days: int  # days with data behind the trend
    text: str  # English
    text_vi: str


class LinkUtilization(BaseModel):
    link: LinkBrief
    side: Literal["a", "b"] | None  # None: no data in the period
    peak_in_pct: float | None
    peak_out_pct: float | None
    p95_in_pct: float | None
    p95_out_pct: float | None
    avg_in_pct: float | None
    avg_out_pct: float | None
    peak_pct: float | None  # the busier direction
    p95_pct: float | None
    forecast: Forecast | None = None


class ProvinceUtilization(BaseModel):
    """A province's uplinks (its access_1 links to the regional and backup centres) taken together."""

    province: ProvinceBrief
    uplinks: int
    measured_uplinks: int  # with data in the period; capacity and traffic are theirs
    capacity: int  # bit/s of the measured uplinks
    peak_in_pct: float | None
    peak_out_pct: float | None
    p95_in_pct: float | None
    p95_out_pct: float | None
    peak_pct: float | None
    p95_pct: float | None


class UtilizationPeriod(BaseModel):
    start: Timestamp
    end: Timestamp
    resolution: Resolution
    percentile_of: str  # what the 95th percentile is taken over


class LinkUtilizationList(UtilizationPeriod):
    links: list[LinkUtilization]


class ProvinceUtilizationList(UtilizationPeriod):
    provinces: list[ProvinceUtilization]


class CapacityClasses(BaseModel):
    under: list[ProvinceUtilization]  # below the warning threshold
    between: list[ProvinceUtilization]
    over: list[ProvinceUtilization]  # above the critical threshold
    no_data: list[ProvinceUtilization]


class LinkTable(BaseModel):
    """One page of the links with data in the period, busiest first; links without data are only counted."""

    count: int  # links with data
    limit: int
    offset: int
    without_data: int
    results: list[LinkUtilization]


class CapacityReport(UtilizationPeriod):
    basis: Basis
    warning_pct: float
    critical_pct: float
    provinces_measured: int
    provinces_under: int
    provinces_over: int
    summary: str  # "47 of 60 provinces under 60 %, 2 over 80 %"
    summary_vi: str  # "47/60 tỉnh dưới 60 %, 2 tỉnh trên 80 %"
    provinces: CapacityClasses
    top_links: list[LinkUtilization]  # the `top` busiest
    crossing_count: int  # links whose trend crosses the critical threshold within 10 years
    crossing: list[LinkUtilization]  # the `top` soonest of them
    links: LinkTable


# Alarms and thresholds
class AlarmRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    dedup_key: str
    kind: AlarmKind
    severity: Severity
    source: str
    object_type: str
    object_id: int
    device_id: int | None
    link_id: int | None
    operator_id: int | None
    province_id: int | None
    message: str
    value: float | None
    first_seen: Timestamp
    last_seen: Timestamp
    occurrences: int
    cleared_at: Timestamp | None


class ThresholdIn(BaseModel):
    """Thresholds for one tier or one link (give exactly one of them)."""

    tier: Tier | None = None
    link_id: int | None = None
    warning_pct: float = Field(gt=0, le=100)
    critical_pct: float = Field(gt=0, le=100)

    @model_validator(mode="after")
    def _one_scope_ordered(self) -> "ThresholdIn":
        if (self.tier is None) == (self.link_id is None):
            raise ValueError("give either tier or link_id")
        if self.warning_pct >= self.critical_pct:
            raise ValueError("warning_pct must be below critical_pct")
        return self


class PollerCycleRead(BaseModel):
    """One poll cycle of one shard; `duration_s` is the whole cycle: polling, writing the rates and the alarms."""

    model_config = ConfigDict(from_attributes=True)

    shard: str
    started_at: Timestamp
    duration_s: float
    devices: int
    interfaces: int
    failures: int


class ThresholdRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    tier: Tier | None
    link_id: int | None
    warning_pct: float
    critical_pct: float
