"""Traffic and utilization read back: series of an interface or a link, and per-link and per-province figures.

A link's traffic is what its a end measures, or (when the a end has no data in the period) what its b end
measures with in and out swapped; "in" and "out" are always seen from the a end. Utilization is traffic over the
link's capacity in the registry now.

What a period reads: up to a day, the raw rates (summarised into 5-minute buckets on the fly); up to 5 days the
5-minute roll-ups; up to 62 days the hourly ones; beyond, the daily ones — each only while it is still kept,
otherwise the next coarser. So a report touches at most about 1,500 points per link. Peaks are exact at every
resolution (a roll-up keeps the maximum of the rates it covers); averages and the 95th percentile are of the
buckets read: 5-minute averages (the usual definition) up to 5 days, hourly or daily averages beyond.
"""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tslcd.core.database import is_postgres, utcnow
from tslcd.registry import service as registry
from tslcd.registry.models import AdminUnit, Link, Status, Tier
from tslcd.security.actor import Actor
from tslcd.telemetry import schemas as s
from tslcd.telemetry.models import RollupMark, RollupPeriod
from tslcd.telemetry.storage import (as_utc, db_time, epoch_sql, floor_time, rate_buckets_select,
                                     retention_cutoffs)

RESOLUTION_SPAN = (("raw", timedelta(days=1)), ("5m", timedelta(days=5)), ("1h", timedelta(days=62)))
BUCKET_SECONDS = {"raw": 300, "5m": 300, "1h": 3600, "1d": 86400}
PERCENTILE_OF = {"raw": "5-minute averages", "5m": "5-minute averages", "1h": "hourly averages",
                 "1d": "daily averages"}


def choose_resolution(start: datetime, end: datetime, now: datetime | None = None) -> s.Resolution:
    """The finest source that keeps the point count low and still holds data from `start`."""
    cutoffs = retention_cutoffs(now or utcnow())
    for resolution, span in RESOLUTION_SPAN:
        if end - start <= span and start >= cutoffs["rates" if resolution == "raw" else resolution]:
            return resolution  # type: ignore[return-value]
    return "1d"


@dataclass(frozen=True)
class LinkRow:
    id: int
    slug: str
    tier: Tier
    capacity: int
    province_id: int | None
    operator_id: int | None
    a_interface_id: int
    b_interface_id: int

    def brief(self) -> s.LinkBrief:
        return s.LinkBrief(id=self.id, slug=self.slug, tier=self.tier, capacity=self.capacity,
                           province_id=self.province_id, operator_id=self.operator_id)


def visible_links(session: Session, actor: Actor, *, link_ids: Sequence[int] | None = None,
                  tiers: Sequence[Tier] | None = None, province_ids: Sequence[int] | None = None,
                  operator_ids: Sequence[int] | None = None) -> list[LinkRow]:
    """Links the actor may see (the registry's scope), filtered; only active ones unless named by id."""
    stmt = select(Link.id, Link.slug, Link.tier, Link.capacity, Link.province_id, Link.operator_id,
                  Link.a_interface_id, Link.b_interface_id).order_by(Link.id)
    stmt = registry.visible(actor=actor, res=registry.resource("links"), stmt=stmt)
    if not link_ids:
        stmt = stmt.where(Link.status == Status.active)
    for column, values in ((Link.id, link_ids), (Link.tier, tiers), (Link.province_id, province_ids),
                           (Link.operator_id, operator_ids)):
        if values:
            stmt = stmt.where(column.in_(values))
    return [LinkRow(*r) for r in session.execute(stmt)]


@dataclass
class Points:
    """One link's buckets, in and out seen from its a end (NaN: no value)."""

    side: Literal["a", "b"]
    epoch: np.ndarray  # bucket start, seconds
    in_avg: np.ndarray
    out_avg: np.ndarray
    in_max: np.ndarray
    out_max: np.ndarray


COLUMNS = 6  # interface_id, bucket epoch, in_avg, out_avg, in_max, out_max


def _fetch_table(session: Session, sql: str, params: dict) -> np.ndarray:
    """The rows of `sql` (COLUMNS numbers, NULL as NaN) as one float array ordered by interface and bucket.

    A report reads hundreds of thousands of buckets, and Python row objects would cost more than the query: on
    PostgreSQL each interface's buckets come as float8 arrays in one binary row, which numpy takes as they are.
    `sql` uses :name placeholders.
    """
    if not is_postgres(session):
        cursor = session.connection().connection.driver_connection.cursor()
        cursor.execute(sql + " ORDER BY 1, 2", params)
        return np.array(cursor.fetchall(), dtype=float).reshape(-1, COLUMNS)
    names = ", ".join(f"c{i}" for i in range(COLUMNS))
    arrays = ", ".join(f"array_agg(coalesce(CAST(c{i} AS float8), 'NaN') ORDER BY c1)" for i in range(1, COLUMNS))
    grouped = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s",
                     f"SELECT c0, {arrays} FROM ({sql}) AS q({names}) GROUP BY c0 ORDER BY c0")
    cursor = session.connection().connection.driver_connection.cursor(binary=True)
    cursor.execute(grouped, params)
    blocks = []
    for interface_id, *columns in cursor.fetchall():
        block = np.empty((len(columns[0]), COLUMNS))
        block[:, 0] = interface_id
        block[:, 1:] = np.array(columns, dtype=float).T
        blocks.append(block)
    return np.concatenate(blocks) if blocks else np.empty((0, COLUMNS))


def _read_buckets(session: Session, interface_ids: list[int], start: datetime, end: datetime,
                  resolution: s.Resolution) -> dict[int, np.ndarray]:
    """Rows (epoch, in_avg, out_avg, in_max, out_max) per interface, in time order."""
    if not interface_ids:
        return {}
    postgres = is_postgres(session)
    in_ids = "interface_id = ANY(:ids)" if postgres else "interface_id IN (SELECT value FROM json_each(:ids))"
    if resolution == "raw":
        sql = (f"SELECT interface_id, bucket, in_avg, out_avg, in_max, out_max FROM ("
               f"{rate_buckets_select(postgres, 300, f'ts > :start AND ts <= :end AND {in_ids}')}) AS b")
    else:
        # Roll-ups up to where the roll-up job has got, then the raw rates after it summarised the same way, so
        # that a report sees traffic from the first poll intervals on, not only after the next roll-up run.
        seconds = BUCKET_SECONDS[resolution]
        sql = (f"SELECT interface_id, {epoch_sql(postgres)} AS bucket, in_avg, out_avg, in_max, out_max "
               f"FROM telemetry_rollups WHERE period = :period AND ts >= :start AND ts < :rolled AND {in_ids} "
               "UNION ALL SELECT interface_id, bucket, in_avg, out_avg, in_max, out_max FROM ("
               f"{rate_buckets_select(postgres, seconds, f'ts > :tail AND ts <= :end AND {in_ids}')}) AS t")
    rolled = _rolled_up_until(session, resolution, start, end)
    table = _fetch_table(session, sql, {
        "start": db_time(session, start), "end": db_time(session, end), "rolled": db_time(session, rolled),
        "tail": db_time(session, max(start, rolled)), "period": resolution,
        "ids": interface_ids if postgres else json.dumps(interface_ids)})
    if not len(table):
        return {}
    ids, first = np.unique(table[:, 0], return_index=True)
    bounds = [*first[1:], len(table)]
    return {int(iid): table[lo:hi, 1:] for iid, lo, hi in zip(ids, first, bounds)}


def _rolled_up_until(session: Session, resolution: s.Resolution, start: datetime, end: datetime) -> datetime:
    """Where roll-ups of this resolution stop (whole buckets before the job's mark), within the period.

    Before the job's first run every stored rate is still raw (roll-ups, if any, came from elsewhere).
    """
    mark = session.get(RollupMark, RollupPeriod.five_minutes.value)
    if mark is not None:
        done = as_utc(mark.done_until)
    else:
        first = session.scalar(text("SELECT min(ts) FROM telemetry_rates"))
        if first is None:
            return end
        # A rate stamped at a bucket's edge belongs to the bucket it ends.
        done = as_utc(first if isinstance(first, datetime) else datetime.fromisoformat(first)) - timedelta(
            microseconds=1)
    return min(end, max(start, floor_time(done, BUCKET_SECONDS[resolution])))


def load_points(session: Session, links: Sequence[LinkRow], start: datetime, end: datetime,
                resolution: s.Resolution) -> dict[int, Points]:
    """Each link's buckets from its a end, else from its b end (swapped); links without data are left out."""
    found = _read_buckets(session, [link.a_interface_id for link in links], start, end, resolution)
    points = {link.id: Points("a", *found[link.a_interface_id].T) for link in links if link.a_interface_id in found}
    missing = [link for link in links if link.id not in points]
    if missing:
        found = _read_buckets(session, [link.b_interface_id for link in missing], start, end, resolution)
        for link in missing:
            if link.b_interface_id in found:
                epoch, b_in, b_out, b_in_max, b_out_max = found[link.b_interface_id].T
                points[link.id] = Points("b", epoch, b_out, b_in, b_out_max, b_in_max)
    return points


def percentile95(values: np.ndarray) -> float | None:
    """Nearest-rank 95th percentile (the top 5 % of buckets dropped), as capacity billing counts it."""
    values = values[~np.isnan(values)]
    return float(np.percentile(values, 95, method="inverted_cdf")) if len(values) else None


def _pct(value: float | None, capacity: float) -> float | None:
    return None if value is None or np.isnan(value) else round(100.0 * value / capacity, 2)


def _nanmax(values: np.ndarray) -> float | None:
    return float(np.nanmax(values)) if np.any(~np.isnan(values)) else None


def _nanmean(values: np.ndarray) -> float | None:
    return float(np.nanmean(values)) if np.any(~np.isnan(values)) else None


def _busier(a: float | None, b: float | None) -> float | None:
    return max((v for v in (a, b) if v is not None), default=None)


def link_figures(link: LinkRow, points: Points | None) -> s.LinkUtilization:
    if points is None:
        return s.LinkUtilization(link=link.brief(), side=None, peak_in_pct=None, peak_out_pct=None,
                                 p95_in_pct=None, p95_out_pct=None, avg_in_pct=None, avg_out_pct=None,
                                 peak_pct=None, p95_pct=None)
    cap = link.capacity
    peak_in, peak_out = _pct(_nanmax(points.in_max), cap), _pct(_nanmax(points.out_max), cap)
    p95_in, p95_out = _pct(percentile95(points.in_avg), cap), _pct(percentile95(points.out_avg), cap)
    return s.LinkUtilization(link=link.brief(), side=points.side, peak_in_pct=peak_in, peak_out_pct=peak_out,
                             p95_in_pct=p95_in, p95_out_pct=p95_out, avg_in_pct=_pct(_nanmean(points.in_avg), cap),
                             avg_out_pct=_pct(_nanmean(points.out_avg), cap), peak_pct=_busier(peak_in, peak_out),
                             p95_pct=_busier(p95_in, p95_out))


def _provinces(session: Session, ids: set[int]) -> dict[int, s.ProvinceBrief]:
    rows = session.execute(select(AdminUnit.id, AdminUnit.code, AdminUnit.name).where(AdminUnit.id.in_(ids)))
    return {r.id: s.ProvinceBrief(id=r.id, code=r.code, name=r.name) for r in rows}


def province_figures(session: Session, links: Sequence[LinkRow], points: dict[int, Points]
                     ) -> list[s.ProvinceUtilization]:
    """Each province's uplinks (its access_1 links) as one pipe: their traffic summed per bucket over the
    capacity of those with data. The peak sums the uplinks' bucket maxima (exact for one uplink, an upper
    bound for several); the 95th percentile is of the summed averages."""
    uplinks: dict[int, list[LinkRow]] = {}
    for link in links:
        if link.tier == Tier.access_1 and link.province_id is not None:
            uplinks.setdefault(link.province_id, []).append(link)
    briefs = _provinces(session, set(uplinks))
    result = []
    for province_id, members in uplinks.items():
        measured = [link for link in members if link.id in points]
        capacity = sum(link.capacity for link in measured)
        figures: dict[str, float | None] = dict.fromkeys(("peak_in", "peak_out", "p95_in", "p95_out"))
        if measured:
            epoch = np.concatenate([points[link.id].epoch for link in measured])
            buckets, where = np.unique(epoch, return_inverse=True)
            for direction in ("in", "out"):
                def summed(column: str) -> np.ndarray:
                    values = np.concatenate([getattr(points[link.id], f"{direction}_{column}") for link in measured])
                    total = np.bincount(where, np.nan_to_num(values), minlength=len(buckets))
                    seen = np.bincount(where, ~np.isnan(values), minlength=len(buckets))
                    return np.where(seen > 0, total, np.nan)
                figures[f"peak_{direction}"] = _pct(_nanmax(summed("max")), capacity)
                figures[f"p95_{direction}"] = _pct(percentile95(summed("avg")), capacity)
        result.append(s.ProvinceUtilization(
            province=briefs[province_id], uplinks=len(members), measured_uplinks=len(measured), capacity=capacity,
            peak_in_pct=figures["peak_in"], peak_out_pct=figures["peak_out"], p95_in_pct=figures["p95_in"],
            p95_out_pct=figures["p95_out"], peak_pct=_busier(figures["peak_in"], figures["peak_out"]),
            p95_pct=_busier(figures["p95_in"], figures["p95_out"])))
    return sorted(result, key=lambda p: p.province.code)


def period_of(start: datetime, end: datetime, resolution: s.Resolution | Literal["auto"]) -> s.UtilizationPeriod:
    chosen = choose_resolution(start, end) if resolution == "auto" else resolution
    return s.UtilizationPeriod(start=start, end=end, resolution=chosen, percentile_of=PERCENTILE_OF[chosen])


def links_utilization(*, session: Session, actor: Actor, start: datetime, end: datetime,
                      resolution: s.Resolution | Literal["auto"] = "auto", link_ids: Sequence[int] | None = None,
                      tiers: Sequence[Tier] | None = None, province_ids: Sequence[int] | None = None,
                      operator_ids: Sequence[int] | None = None) -> s.LinkUtilizationList:
    """Peak, 95th percentile and average per direction of every visible link, busiest first."""
    period = period_of(start, end, resolution)
    links = visible_links(session, actor, link_ids=link_ids, tiers=tiers, province_ids=province_ids,
                          operator_ids=operator_ids)
    points = load_points(session, links, start, end, period.resolution)
    figures = [link_figures(link, points.get(link.id)) for link in links]
    figures.sort(key=lambda f: -1.0 if f.p95_pct is None else f.p95_pct, reverse=True)
    return s.LinkUtilizationList(**period.model_dump(), links=figures)


def provinces_utilization(*, session: Session, actor: Actor, start: datetime, end: datetime,
                          resolution: s.Resolution | Literal["auto"] = "auto",
                          province_ids: Sequence[int] | None = None) -> s.ProvinceUtilizationList:
    """Utilization of each province's uplinks taken together, over the uplinks the actor sees."""
    period = period_of(start, end, resolution)
    links = visible_links(session, actor, tiers=[Tier.access_1], province_ids=province_ids)
    points = load_points(session, links, start, end, period.resolution)
    return s.ProvinceUtilizationList(**period.model_dump(),
                                     provinces=province_figures(session, links, points))


# Series
def _raw_series(session: Session, interface_id: int, start: datetime, end: datetime) -> list[s.SeriesPoint]:
    rows = session.execute(text(
        "SELECT ts, in_bps, out_bps, oper_up FROM telemetry_rates WHERE interface_id = :i AND ts > :start "
        "AND ts <= :end ORDER BY ts"), {"i": interface_id, "start": db_time(session, start),
                                        "end": db_time(session, end)})
    return [s.SeriesPoint(ts=as_utc(_datetime(r.ts)), in_bps=r.in_bps, out_bps=r.out_bps,
                          oper_up=None if r.oper_up is None else bool(r.oper_up)) for r in rows]


def _datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _rollup_series(session: Session, interface_id: int, start: datetime, end: datetime,
                   resolution: s.Resolution) -> list[s.SeriesPoint]:
    rows = session.execute(text(
        "SELECT ts, samples, in_avg, out_avg, in_max, out_max FROM telemetry_rollups WHERE period = :p AND "
        "interface_id = :i AND ts >= :start AND ts < :end ORDER BY ts"),
        {"p": resolution, "i": interface_id, "start": db_time(session, start), "end": db_time(session, end)})
    return [s.SeriesPoint(ts=as_utc(_datetime(r.ts)), in_bps=r.in_avg, out_bps=r.out_avg, in_max=r.in_max,
                          out_max=r.out_max, samples=r.samples) for r in rows]


def _series(session: Session, interface_id: int, start: datetime, end: datetime,
            resolution: s.Resolution) -> list[s.SeriesPoint]:
    if resolution == "raw":
        return _raw_series(session, interface_id, start, end)
    return _rollup_series(session, interface_id, start, end, resolution)


def interface_series(*, session: Session, actor: Actor, interface_id: int, start: datetime, end: datetime,
                     resolution: s.Resolution | Literal["auto"] = "auto") -> s.SeriesRead:
    """Rates of one interface as stored: raw, or one roll-up period."""
    registry.get_object(session=session, actor=actor, res=registry.resource("interfaces"), obj_id=interface_id)
    chosen = choose_resolution(start, end) if resolution == "auto" else resolution
    return s.SeriesRead(interface_id=interface_id, resolution=chosen, start=start, end=end,
                        points=_series(session, interface_id, start, end, chosen))


def link_series(*, session: Session, actor: Actor, link_id: int, start: datetime, end: datetime,
                resolution: s.Resolution | Literal["auto"] = "auto") -> s.SeriesRead:
    """A link's traffic and utilization over time, from its a end, else its b end with in and out swapped."""
    link: Link = registry.get_object(session=session, actor=actor, res=registry.resource("links"), obj_id=link_id)
    chosen = choose_resolution(start, end) if resolution == "auto" else resolution
    side, points = "a", _series(session, link.a_interface_id, start, end, chosen)
    if not any(p.in_bps is not None or p.out_bps is not None for p in points):
        b_points = _series(session, link.b_interface_id, start, end, chosen)
        if b_points:
            side, points = "b", [p.model_copy(update={"in_bps": p.out_bps, "out_bps": p.in_bps,
                                                      "in_max": p.out_max, "out_max": p.in_max})
                                 for p in b_points]
    for p in points:
        p.in_pct = _pct(p.in_bps, link.capacity)
        p.out_pct = _pct(p.out_bps, link.capacity)
    return s.SeriesRead(link_id=link_id, side=side if points else None, resolution=chosen, start=start, end=end,
                        points=points)
