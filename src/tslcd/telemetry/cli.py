"""`tslcd report capacity`, `tslcd samples import`, `tslcd telemetry rollup|prune`."""

from datetime import datetime
from pathlib import Path

import typer

from tslcd.core.database import session_scope
from tslcd.security.actor import SYSTEM
from tslcd.telemetry import capacity, schemas, service, storage
from tslcd.core.text import table

report_app = typer.Typer(help="Báo cáo (reports).", no_args_is_help=True)
samples_app = typer.Typer(help="Số liệu đo (measured samples).", no_args_is_help=True)
telemetry_app = typer.Typer(help="Lưu trữ số liệu đo: tổng hợp, thời hạn lưu (roll-ups, retention).",
                            no_args_is_help=True)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _show_report(r: schemas.CapacityReport, top: int) -> str:
    value = "p95_pct" if r.basis == "p95" else "peak_pct"
    measure = f"95th percentile of {r.percentile_of}" if r.basis == "p95" else "peaks"
    out = [f"{r.start:%Y-%m-%d %H:%M} – {r.end:%Y-%m-%d %H:%M} UTC; by the {measure} (resolution {r.resolution})",
           r.summary_vi, r.summary, ""]
    labels = {"over": f"trên {r.critical_pct:g} %", "between": "giữa hai ngưỡng",
              "under": f"dưới {r.warning_pct:g} %", "no_data": "chưa có số liệu"}
    rows = [(p.province.code, p.province.name, labels[group], p.measured_uplinks, f"{p.capacity / 1e9:g}",
             _pct(getattr(p, value)), _pct(p.peak_pct))
            for group in ("over", "between", "under", "no_data") for p in getattr(r.provinces, group)]
    out.append(table(["Mã", "Tỉnh/thành (province)", "Nhóm", "Tuyến lên", "Gb/s", f"{r.basis} %", "Đỉnh %"], rows))
    if r.top_links:
        out += ["", f"Tuyến bận nhất (top {top} links):",
                table(["Tuyến (link)", "Cấp", "Gb/s", "p95 %", "Đỉnh %", "Dự báo (forecast)"],
                      [(f.link.slug, f.link.tier.value, f"{f.link.capacity / 1e9:g}", _pct(f.p95_pct),
                        _pct(f.peak_pct), f.forecast.text_vi if f.forecast else "") for f in r.top_links])]
    if r.crossing:
        shown = f"{len(r.crossing)} of {r.crossing_count}" if r.crossing_count > len(r.crossing) else "all"
        out += ["", f"Tuyến sẽ vượt {r.critical_pct:g} % (links crossing, soonest first: {shown}):",
                table(["Tuyến (link)", "Ngày (date)", "%/ngày", "Dự báo"],
                      [(f.link.slug, f.forecast.crossing_date, f"{f.forecast.slope_pct_per_day:+.2f}",
                        f.forecast.text_vi) for f in r.crossing])]
    out += ["", f"{r.links.count} tuyến có số liệu, {r.links.without_data} tuyến chưa có số liệu "
                f"({r.links.count} links with data, {r.links.without_data} without)"]
    return "\n".join(out)


@report_app.command("capacity")
def capacity_cmd(start: str = typer.Option(None, "--from", help=(
                     f"date (YYYY-MM-DD) or time; default: {capacity.DEFAULT_SPAN_TEXT} before --to")),
                 end: str = typer.Option(None, "--to", help="date (included) or time; default: now"),
                 format: str = typer.Option("table", help="table, csv or json"),
                 basis: str = typer.Option("p95", help="class provinces by p95 or peak"),
                 csv_table: str = typer.Option("provinces", "--table", help="CSV: provinces or links"),
                 top: int = typer.Option(10, min=1, help="busiest (and soonest crossing) links listed"),
                 limit: int = typer.Option(capacity.LINKS_LIMIT, min=1, max=capacity.LINKS_LIMIT_MAX, help=(
                     "links with data in the link table (JSON, CSV of links); links without data are counted")),
                 offset: int = typer.Option(0, min=0, help="first link of the link table")) -> None:
    """Capacity report: "N/M tỉnh dưới 60 %, K tỉnh trên 80 %", the provinces behind it, top links, forecasts."""
    if format not in ("table", "csv", "json") or basis not in ("p95", "peak") or csv_table not in ("provinces",
                                                                                                 "links"):
        raise typer.BadParameter("--format table|csv|json, --basis p95|peak, --table provinces|links")
    begin, stop = service.parse_period(start, end, default_span=capacity.DEFAULT_SPAN)
    with session_scope(write=False) as session:
        report = capacity.capacity_report(session=session, actor=SYSTEM, start=begin, end=stop, basis=basis,
                                          top=top, limit=limit, offset=offset)
    if format == "json":
        typer.echo(report.model_dump_json(indent=2))
    elif format == "csv":
        typer.echo(capacity.report_csv(report, csv_table).decode(), nl=False)
    else:
        typer.echo(_show_report(report, top))


@samples_app.command("import")
def import_cmd(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
               format: str = typer.Option(None, help="csv or json (default: from the file name)")) -> None:
    """Import measured rates (device,interface,ts,interval_s,in_bps,out_bps[,oper_up,speed_bps]): all or nothing.

    History raises no alarms; its roll-ups are computed right after."""
    fmt = format or ("json" if file.suffix.lower() == ".json" else "csv")
    with session_scope() as session:
        result = service.import_samples(session=session, actor=SYSTEM, data=file.read_bytes(), fmt=fmt,
                                        source="import")
        rolled = service.rollup(session=session)
    typer.echo(f"samples: {result.stored} stored, {result.duplicates} already stored; roll-ups: {_ranges(rolled)}")


def _ranges(result: storage.RollupResult) -> str:
    if result.skipped:
        return "another roll-up is running; it will include these"
    if not result.ranges:
        return "nothing to roll up"
    return "; ".join(f"{p} {lo:%Y-%m-%d %H:%M} – {hi:%Y-%m-%d %H:%M}" for p, (lo, hi) in result.ranges.items())


@telemetry_app.command("rollup")
def rollup_cmd(since: datetime = typer.Option(None, help="recompute from this UTC time (a backfill)")) -> None:
    """Roll raw rates up into 5-minute, hourly and daily summaries (run every few minutes)."""
    with session_scope() as session:
        result = service.rollup(session=session, since=storage.as_utc(since) if since else None)
    typer.echo(f"roll-ups: {_ranges(result)}")


@telemetry_app.command("prune")
def prune_cmd() -> None:
    """Remove measurements older than their retention (TSLCD_RATES_RETENTION_DAYS, TSLCD_ROLLUP_*)."""
    with session_scope() as session:
        result = service.prune(session=session)
    cut = ", ".join(f"{k} before {v:%Y-%m-%d}" for k, v in result.cutoffs.items())
    typer.echo(f"removed {cut}: {len(result.partitions_dropped)} partitions dropped, "
               f"{result.rows_deleted} rows deleted")
