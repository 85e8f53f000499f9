"""/metrics in the Prometheus text format: current utilization per link, the pollers' health, active alarms.

Read from the database on scrape (any API process answers the same, whichever process polled), through a
snapshot kept a few seconds so that several Prometheus servers scraping together cost one read. Served without
a token when TSLCD_METRICS_ENABLED is on (the default): the server binds to loopback unless told otherwise, and
a scraper is then a local process; turn it off on a server exposed wider.
"""

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tslcd.core.database import is_postgres, utcnow
from tslcd.core.deps import SessionDep
from tslcd.registry.models import AdminUnit, Link, Operator, Status
from tslcd.telemetry.models import Alarm, PollerCycle
from tslcd.telemetry.storage import as_utc, db_time

CACHE_SECONDS = 10.0
# A link's newest rate counts as current for this long (a few poll intervals).
CURRENT_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class LinkNow:
    slug: str
    tier: str
    province: str
    operator: str
    capacity: int
    in_bps: float | None  # seen from the a end
    out_bps: float | None
    oper_up: bool | None


@dataclass(frozen=True)
class PollerNow:
    shard: str
    started_at: float  # epoch seconds
    duration_s: float
    devices: int
    interfaces: int
    failures: int


@dataclass(frozen=True)
class Snapshot:
    links: list[LinkNow]
    pollers: list[PollerNow]
    alarms: list[tuple[str, str, int]]  # kind, severity, active count


def _latest_rates(session: Session) -> dict[int, tuple[float | None, float | None, bool | None]]:
    """Each interface's newest rate with a value in the current window."""
    since = db_time(session, utcnow() - CURRENT_WINDOW)
    if is_postgres(session):
        sql = ("SELECT DISTINCT ON (interface_id) interface_id, in_bps, out_bps, oper_up FROM telemetry_rates "
               "WHERE ts > :since AND (in_bps IS NOT NULL OR out_bps IS NOT NULL) ORDER BY interface_id, ts DESC")
    else:  # SQLite takes the other columns from the row holding max(ts)
        sql = ("SELECT interface_id, in_bps, out_bps, oper_up, max(ts) FROM telemetry_rates WHERE ts > :since "
               "AND (in_bps IS NOT NULL OR out_bps IS NOT NULL) GROUP BY interface_id")
    return {r[0]: (r[1], r[2], None if r[3] is None else bool(r[3]))
            for r in session.execute(text(sql), {"since": since})}


def read_snapshot(session: Session) -> Snapshot:
    rates = _latest_rates(session)
    provinces = dict(session.execute(select(AdminUnit.id, AdminUnit.code).where(
        AdminUnit.id.in_(select(Link.province_id).distinct()))).all())
    operators = dict(session.execute(select(Operator.id, Operator.slug)).all())
    links = []
    for r in session.execute(select(Link.slug, Link.tier, Link.province_id, Link.operator_id, Link.capacity,
                                    Link.a_interface_id, Link.b_interface_id).where(Link.status == Status.active)):
        if r.a_interface_id in rates:
            in_bps, out_bps, up = rates[r.a_interface_id]
        elif r.b_interface_id in rates:
            out_bps, in_bps, up = rates[r.b_interface_id]
        else:
            in_bps = out_bps = up = None
        links.append(LinkNow(r.slug, r.tier.value, provinces.get(r.province_id, ""),
                             operators.get(r.operator_id, ""), r.capacity, in_bps, out_bps, up))
    newest = select(PollerCycle.shard, func.max(PollerCycle.started_at).label("started_at")) \
        .group_by(PollerCycle.shard).subquery()
    pollers = [PollerNow(c.shard, as_utc(c.started_at).timestamp(), c.duration_s, c.devices, c.interfaces,
                         c.failures)
               for c in session.scalars(select(PollerCycle).join(newest, (PollerCycle.shard == newest.c.shard)
                                                                 & (PollerCycle.started_at == newest.c.started_at)))]
    alarms = [(k.value, s.value, n) for k, s, n in session.execute(
        select(Alarm.kind, Alarm.severity, func.count()).where(Alarm.cleared_at.is_(None))
        .group_by(Alarm.kind, Alarm.severity))]
    return Snapshot(links, pollers, alarms)


class SnapshotCache:
    """The last snapshot and when it was read; one per application."""

    def __init__(self, max_age: float = CACHE_SECONDS):
        self.max_age = max_age
        self._lock = threading.Lock()
        self._value: tuple[float, Snapshot] | None = None

    def get(self, read: Callable[[], Snapshot]) -> Snapshot:
        with self._lock:
            if self._value is None or time.monotonic() - self._value[0] > self.max_age:
                self._value = (time.monotonic(), read())
            return self._value[1]


class TelemetryCollector:
    """A prometheus_client collector over one snapshot."""

    def __init__(self, snapshot: Callable[[], Snapshot]):
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        labels = ["link", "tier", "province", "operator"]
        utilization = GaugeMetricFamily("tslcd_link_utilization_ratio",
                                        "Newest rate over capacity, per direction seen from the link's a end",
                                        labels=[*labels, "direction"])
        traffic = GaugeMetricFamily("tslcd_link_traffic_bits_per_second", "Newest rate of the link",
                                    labels=[*labels, "direction"])
        capacity = GaugeMetricFamily("tslcd_link_capacity_bits_per_second", "Capacity in the registry",
                                     labels=labels)
        oper = GaugeMetricFamily("tslcd_link_oper_up", "1 if the measuring end reports the link up", labels=labels)
        for link in snap.links:
            values = [link.slug, link.tier, link.province, link.operator]
            capacity.add_metric(values, link.capacity)
            if link.oper_up is not None:
                oper.add_metric(values, 1.0 if link.oper_up else 0.0)
            for direction, bps in (("in", link.in_bps), ("out", link.out_bps)):
                if bps is not None:
                    traffic.add_metric([*values, direction], bps)
                    utilization.add_metric([*values, direction], bps / link.capacity)
        yield from (utilization, traffic, capacity, oper)
        shard = ["shard"]
        families = {
            "last": GaugeMetricFamily("tslcd_poller_last_cycle_timestamp_seconds", "Start of the newest poll cycle",
                                      labels=shard),
            "duration": GaugeMetricFamily("tslcd_poller_cycle_duration_seconds", "Duration of the newest poll cycle",
                                          labels=shard),
            "devices": GaugeMetricFamily("tslcd_poller_cycle_devices", "Devices polled in the newest cycle",
                                         labels=shard),
            "interfaces": GaugeMetricFamily("tslcd_poller_cycle_interfaces", "Interfaces polled in the newest cycle",
                                            labels=shard),
            "failures": GaugeMetricFamily("tslcd_poller_cycle_failures", "Devices that failed in the newest cycle",
                                          labels=shard),
        }
        for p in snap.pollers:
            for key, value in (("last", p.started_at), ("duration", p.duration_s), ("devices", p.devices),
                               ("interfaces", p.interfaces), ("failures", p.failures)):
                families[key].add_metric([p.shard], value)
        yield from families.values()
        active = GaugeMetricFamily("tslcd_alarms_active", "Active alarms", labels=["kind", "severity"])
        for kind, severity, count in snap.alarms:
            active.add_metric([kind, severity], count)
        yield active


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics_view(request: Request, session: SessionDep) -> Response:
    cache: SnapshotCache = request.app.state.telemetry_metrics
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(lambda: cache.get(lambda: read_snapshot(session))))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    """Serve /metrics from this application, with its own snapshot cache."""
    app.state.telemetry_metrics = SnapshotCache()
    app.include_router(router)
