"""The capacity report: "N of M provinces under 60 %, K over 80 %" for any period, the lists behind it, the
busiest links, and when each link is expected to cross the critical threshold.

A province is measured when at least one of its uplinks has data in the period; it is classed by the peak or by
the 95th percentile of its uplinks' utilization taken together (the `basis`; the 2016 survey's wording "used
under 60 % of their capacity" reads best as the 95th percentile, the default), strictly under the warning
threshold, strictly over the critical one, or between.

Forecasts fit a robust straight line to each link's daily peaks (Huber's T norm, iteratively reweighted least
squares with a MAD scale, as statsmodels' RLM does by default), so a few freak days do not move the trend.
RLM fits one series at a time, about a millisecond each; the same iterations run here on every link at once as
array operations, which keeps a report over thousands of links within its time budget.
"""

import math
from statistics import NormalDist
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from sqlalchemy.orm import Session

from tslcd.core.bulk import write_rows
from tslcd.core.config import get_settings
from tslcd.core.errors import DomainValidationError
from tslcd.security.actor import Actor
from tslcd.telemetry import schemas as s
from tslcd.telemetry.alarms import pct_vi
from tslcd.telemetry.storage import floor_time
from tslcd.telemetry.utilization import (LinkRow, Points, link_figures, load_points, period_of, province_figures,
                                         visible_links)

# MAD / this estimates a normal standard deviation (statsmodels' `mad`: scipy's norm.ppf(0.75), the same number).
MAD_NORMAL = NormalDist().inv_cdf(0.75)
FORECAST_HORIZON_DAYS = 3650
# The report's period when `from` is not given: this long before `to` (the other telemetry reads: an hour).
DEFAULT_SPAN = timedelta(days=30)
DEFAULT_SPAN_TEXT = "30 days"
# The link table is paginated: a national network has some 16,000 links, most without data in a test period.
LINKS_LIMIT, LINKS_LIMIT_MAX = 100, 1000


def _weighted_fit(weights: np.ndarray, days: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares of y on (1, day), one row per link."""
    total = np.maximum(weights.sum(axis=1), 1e-300)
    mean_x = (weights * days).sum(axis=1) / total
    mean_y = (weights * y).sum(axis=1) / total
    dx = days - mean_x[:, None]
    spread = (weights * dx * dx).sum(axis=1)
    slope = np.divide((weights * dx * (y - mean_y[:, None])).sum(axis=1), spread, out=np.zeros_like(spread),
                      where=spread > 0)
    return mean_y - slope * mean_x, slope


def robust_trends(peaks: np.ndarray, *, maxiter: int = 50, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Intercepts and slopes of Huber-robust lines through each row of `peaks` (NaN: no value that day)."""
    days = np.arange(peaks.shape[1], dtype=float)
    present = ~np.isnan(peaks)
    y = np.nan_to_num(peaks)
    from statsmodels.robust.norms import HuberT  # loaded by the first forecast, not by every command and server

    norm = HuberT()
    intercept, slope = _weighted_fit(present.astype(float), days, y)
    running = present.sum(axis=1) > 2
    for _ in range(maxiter):
        rows = np.flatnonzero(running)
        if not len(rows):
            break
        resid = np.where(present[rows], y[rows] - (intercept[rows, None] + slope[rows, None] * days), np.nan)
        scale = np.nanmedian(np.abs(resid), axis=1) / MAD_NORMAL
        fitted = scale <= 0  # a perfect fit: nothing left to down-weight
        z = np.nan_to_num(resid / np.where(fitted, 1.0, scale)[:, None])
        weights = np.where(present[rows], norm.weights(z), 0.0)
        new_intercept, new_slope = _weighted_fit(weights, days, y[rows])
        moved = np.abs(new_intercept - intercept[rows]) + np.abs(new_slope - slope[rows])
        keep = ~fitted
        intercept[rows[keep]], slope[rows[keep]] = new_intercept[keep], new_slope[keep]
        running[rows[fitted | (moved <= tol * (1 + np.abs(slope[rows])))]] = False
    return intercept, slope


def daily_peaks(points: Sequence[Points], capacities: Sequence[int], first_day: datetime, days: int) -> np.ndarray:
    """Links x days: the busier direction's highest rate each UTC day, in % of capacity (NaN: no data)."""
    peaks = np.full((len(points), days), np.nan)
    origin = first_day.timestamp()
    for row, (p, capacity) in enumerate(zip(points, capacities)):
        day = ((p.epoch - origin) // 86400).astype(int)
        busier = np.fmax(p.in_max, p.out_max) * (100.0 / capacity)
        inside = (day >= 0) & (day < days) & ~np.isnan(busier)
        np.fmax.at(peaks[row], day[inside], busier[inside])
    return peaks


def forecasts(links: Sequence[LinkRow], points: dict[int, Points], start: datetime, end: datetime,
              critical_pct: float) -> dict[int, s.Forecast]:
    """When each link's daily peak crosses `critical_pct`, or why it cannot be said."""
    min_days = get_settings().forecast_min_days
    first_day = floor_time(start, 86400)
    days = max(1, math.ceil((end - first_day).total_seconds() / 86400))
    measured = [link for link in links if link.id in points]
    peaks = daily_peaks([points[link.id] for link in measured], [link.capacity for link in measured], first_day,
                        days)
    counts = (~np.isnan(peaks)).sum(axis=1)
    intercept, slope = robust_trends(peaks)
    result = {}
    for row, link in enumerate(measured):
        n = int(counts[row])
        if n < min_days:
            result[link.id] = s.Forecast(status="not_enough_data", days=n,
                                         text=f"not enough data ({n} of {min_days} days needed)",
                                         text_vi=f"chưa đủ dữ liệu ({n}/{min_days} ngày)")
            continue
        a, b = float(intercept[row]), float(slope[row])
        last_day = float(np.flatnonzero(~np.isnan(peaks[row]))[-1])
        level = a + b * last_day
        if level >= critical_pct:
            result[link.id] = s.Forecast(status="already_over", slope_pct_per_day=round(b, 4), days=n,
                                         text=f"already over {critical_pct:g} % (trend at {level:.1f} %)",
                                         text_vi=f"đã vượt {critical_pct:g} % (xu hướng ở mức {pct_vi(level)})")
            continue
        crossing = (critical_pct - a) / b if b > 0 else math.inf
        if crossing - last_day > FORECAST_HORIZON_DAYS:
            result[link.id] = s.Forecast(status="not_rising", slope_pct_per_day=round(b, 4), days=n,
                                         text=f"does not reach {critical_pct:g} % within 10 years",
                                         text_vi=f"không tới {critical_pct:g} % trong 10 năm tới")
            continue
        when = first_day + timedelta(days=math.ceil(crossing))
        result[link.id] = s.Forecast(status="crosses", crossing_date=when.date(), slope_pct_per_day=round(b, 4),
                                     days=n, text=f"crosses {critical_pct:g} % around {when:%Y-%m-%d}",
                                     text_vi=f"dự kiến vượt {critical_pct:g} % vào khoảng {when:%d/%m/%Y}")
    return result


def _basis_value(figures: s.ProvinceUtilization | s.LinkUtilization, basis: s.Basis) -> float | None:
    return figures.p95_pct if basis == "p95" else figures.peak_pct


def capacity_report(*, session: Session, actor: Actor, start: datetime, end: datetime, basis: s.Basis = "p95",
                    warning_pct: float | None = None, critical_pct: float | None = None, top: int = 10,
                    resolution: s.Resolution | Literal["auto"] = "auto", limit: int = LINKS_LIMIT,
                    offset: int = 0) -> s.CapacityReport:
    """Provinces classed by their uplinks' utilization, the busiest links and their forecasts, for a period.

    The link table holds one page (`limit`, `offset`) of the links with data, busiest first, with their total;
    links without data in the period are counted only, so a report stays small however big the network.
    """
    settings = get_settings()
    warning = settings.utilization_warning_pct if warning_pct is None else warning_pct
    critical = settings.utilization_critical_pct if critical_pct is None else critical_pct
    if not 0 < warning < critical:
        raise DomainValidationError("the warning threshold must be above 0 and below the critical one",
                                    errors=[{"loc": ["warning_pct"], "msg": f"{warning:g} vs {critical:g}"}])
    if not 1 <= limit <= LINKS_LIMIT_MAX or offset < 0:
        raise DomainValidationError(f"limit must be 1-{LINKS_LIMIT_MAX} and offset 0 or more",
                                    errors=[{"loc": ["limit" if offset >= 0 else "offset"],
                                             "msg": f"limit {limit}, offset {offset}"}])
    period = period_of(start, end, resolution)
    links = visible_links(session, actor)
    points = load_points(session, links, start, end, period.resolution)
    predicted = forecasts(links, points, start, end, critical)
    figures = []
    for link in links:
        if link.id not in points:
            continue
        f = link_figures(link, points[link.id])
        f.forecast = predicted.get(link.id)
        figures.append(f)
    figures.sort(key=lambda f: (_basis_value(f, basis) is not None, _basis_value(f, basis) or 0.0), reverse=True)
    crossing = sorted((f for f in figures if f.forecast and f.forecast.status == "crosses"),
                      key=lambda f: (f.forecast.crossing_date, f.link.slug))
    classes = s.CapacityClasses(under=[], between=[], over=[], no_data=[])
    for p in province_figures(session, links, points):
        value = _basis_value(p, basis)
        group = ("no_data" if value is None else "under" if value < warning else "over" if value > critical
                 else "between")
        getattr(classes, group).append(p)
    measured = len(classes.under) + len(classes.between) + len(classes.over)
    n, k = len(classes.under), len(classes.over)
    return s.CapacityReport(
        **period.model_dump(), basis=basis, warning_pct=warning, critical_pct=critical, provinces_measured=measured,
        provinces_under=n, provinces_over=k,
        summary=f"{n} of {measured} provinces under {warning:g} %, {k} over {critical:g} %",
        summary_vi=f"{n}/{measured} tỉnh dưới {warning:g} %, {k} tỉnh trên {critical:g} %",
        provinces=classes, top_links=[f for f in figures[:top] if _basis_value(f, basis) is not None],
        crossing_count=len(crossing), crossing=crossing[:top],
        links=s.LinkTable(count=len(figures), limit=limit, offset=offset, without_data=len(links) - len(figures),
                          results=figures[offset:offset + limit]))


PROVINCE_COLUMNS = ["province_code", "province_name", "class", "uplinks", "measured_uplinks", "capacity_bps",
                    "peak_in_pct", "peak_out_pct", "p95_in_pct", "p95_out_pct", "peak_pct", "p95_pct"]
LINK_COLUMNS = ["link", "tier", "province_id", "operator_id", "capacity_bps", "side", "peak_in_pct",
                "peak_out_pct", "p95_in_pct", "p95_out_pct", "avg_in_pct", "avg_out_pct", "peak_pct", "p95_pct",
                "forecast", "crossing_date", "slope_pct_per_day"]
_FIGURES = ["peak_in_pct", "peak_out_pct", "p95_in_pct", "p95_out_pct", "peak_pct", "p95_pct"]


def report_csv(report: s.CapacityReport, table: Literal["provinces", "links"] = "provinces") -> bytes:
    """One table of the report as CSV: provinces with their class, or the report's page of links (with data)
    with their forecast."""
    if table == "provinces":
        rows = [{"province_code": p.province.code, "province_name": p.province.name, "class": group,
                 "uplinks": p.uplinks, "measured_uplinks": p.measured_uplinks, "capacity_bps": p.capacity,
                 **{c: getattr(p, c) for c in _FIGURES}}
                for group in ("over", "between", "under", "no_data")
                for p in getattr(report.provinces, group)]
        return write_rows(rows, PROVINCE_COLUMNS, "csv")
    rows = [{"link": f.link.slug, "tier": f.link.tier.value, "province_id": f.link.province_id,
             "operator_id": f.link.operator_id, "capacity_bps": f.link.capacity, "side": f.side,
             **{c: getattr(f, c) for c in [*_FIGURES, "avg_in_pct", "avg_out_pct"]},
             "forecast": f.forecast.status if f.forecast else None,
             "crossing_date": f.forecast.crossing_date if f.forecast else None,
             "slope_pct_per_day": f.forecast.slope_pct_per_day if f.forecast else None}
            for f in report.links.results]
    return write_rows(rows, LINK_COLUMNS, "csv")
