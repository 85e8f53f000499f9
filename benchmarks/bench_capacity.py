"""The capacity report over 1,000 links x 30 days of 5-minute data, beside the bare SQL aggregate.

    python benchmarks/bench_capacity.py [--postgres URL] [--links 1000] [--days 30]

A national-shaped network (34 provinces with 3 uplinks each to the regional centres, the rest access links) is
written straight into a fresh database (a new SQLite file; with --postgres also a throwaway database on that
server, dropped afterwards), then its roll-ups in bulk: 5-minute ones for every link and day (diurnal traffic,
some links growing), and the hourly and daily ones computed from them. The report (auto resolution: hourly for
30 days) is timed three times, after ANALYZE; the bare limits are one GROUP BY over the same hourly roll-ups it
reads, and over the 5-minute ones. Prints one JSON line.
"""

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import bindparam, insert, make_url, text
from sqlalchemy.orm import Session

import tslcd.registry.models as rm
import tslcd.security.models  # noqa: F401  (tables)
import tslcd.telemetry.models  # noqa: F401
from tslcd.core.database import Base, make_engine, scratch_database
from tslcd.security.actor import SYSTEM
from tslcd.telemetry import capacity, storage
from tslcd.telemetry.models import RollupPeriod

TARGET_SECONDS = 2.0
PROVINCES = 34
UPLINKS_PER_PROVINCE = 3
G = 10**9


@contextmanager
def fresh_database(url: str | None, folder: Path) -> Iterator[str]:
    if url is None:
        yield f"sqlite:///{folder / 'capacity.db'}"
        return
    with scratch_database(url) as scratch:
        yield scratch


def build_network(session: Session, links: int) -> list[tuple[int, int]]:
    """Provinces with a PE each; uplinks from a regional core, access links to commune switches.
    Returns (a interface id, capacity) per link."""
    session.execute(insert(rm.AdminUnit), [{"id": p, "code": f"{p:02d}", "kind": rm.UnitKind.province,
                                            "name": f"Tỉnh {p:02d}"} for p in range(1, PROVINCES + 1)])
    session.execute(insert(rm.Operator), [{"id": 1, "slug": "cbdtw", "name": "CBĐTW"}])
    session.execute(insert(rm.Site), [{"id": p, "slug": f"pc-{p:02d}", "name": f"Trung tâm tỉnh {p:02d}",
                                       "unit_id": p, "province_id": p, "kind": rm.SiteKind.provincial_centre}
                                      for p in range(1, PROVINCES + 1)])
    devices = [{"id": p, "name": f"pe-{p:02d}", "site_id": p, "role": rm.DeviceRole.pe_router,
                "tier": rm.Tier.access_1, "province_id": p, "operator_id": 1} for p in range(1, PROVINCES + 1)]
    core = PROVINCES + 1
    devices.append({"id": core, "name": "core-1", "site_id": 1, "role": rm.DeviceRole.core_router,
                    "tier": rm.Tier.backbone, "province_id": 1, "operator_id": 1})
    far_ends = [core + 1 + k for k in range(links)]  # one switch (or core port) per link's b end
    devices += [{"id": d, "name": f"sw-{d}", "site_id": (d % PROVINCES) + 1, "role": rm.DeviceRole.access_switch,
                 "tier": rm.Tier.access_2, "province_id": (d % PROVINCES) + 1, "operator_id": 1}
                for d in far_ends]
    session.execute(insert(rm.Device), devices)
    rows, interfaces, result = [], [], []
    uplinks = PROVINCES * UPLINKS_PER_PROVINCE
    for k in range(links):
        a, b = 2 * k + 1, 2 * k + 2
        if k < uplinks:
            province = k % PROVINCES + 1
            a_device, b_device, tier, cap = core, province, rm.Tier.access_1, 10 * G
        else:
            province = k % PROVINCES + 1
            a_device, b_device, tier, cap = province, far_ends[k], rm.Tier.access_2, G
        interfaces += [{"id": a, "device_id": a_device, "name": f"xe-{k}"},
                       {"id": b, "device_id": b_device, "name": f"ge-{k}"}]
        rows.append({"id": k + 1, "slug": f"link-{k + 1}", "a_interface_id": a, "b_interface_id": b,
                     "a_device_id": a_device, "b_device_id": b_device, "capacity": cap, "tier": tier,
                     "province_id": province, "operator_id": 1})
        result.append((a, cap))
    session.execute(insert(rm.Interface), interfaces)
    session.execute(insert(rm.Link), rows)
    session.commit()
    return result


def write_rollups(session: Session, links: list[tuple[int, int]], first_day: datetime, days: int) -> int:
    """Diurnal 5-minute traffic per link (some links growing), and the hourly and daily roll-ups of it."""
    rng = np.random.default_rng(2016)
    base = rng.uniform(0.1, 0.85, len(links))
    growth = np.where(rng.random(len(links)) < 0.2, rng.uniform(0.002, 0.01, len(links)), 0.0)
    caps = np.array([c for _, c in links], dtype=float)
    shape = 0.65 + 0.35 * np.sin(np.linspace(-np.pi / 2, 1.5 * np.pi, 288, endpoint=False))
    written = 0
    for d in range(days):
        day = first_day + timedelta(days=d)
        level = np.clip(base + growth * d, 0, 1.2)[:, None] * shape[None, :] * caps[:, None]  # links x 288
        out_avg = level * rng.uniform(0.95, 1.05, level.shape)
        in_avg, out_max = 0.4 * out_avg, out_avg * 1.15
        in_max = in_avg * 1.15
        stamps = [day + timedelta(minutes=5 * i) for i in range(288)]
        five = [(iid, stamps[i], 5, float(in_avg[r, i]), float(out_avg[r, i]), float(in_max[r, i]),
                 float(out_max[r, i])) for r, (iid, _) in enumerate(links) for i in range(288)]
        storage.write_rollups(session, RollupPeriod.five_minutes, five)
        hour = [(iid, day + timedelta(hours=h), 60, float(in_avg[r, 12 * h:12 * h + 12].mean()),
                 float(out_avg[r, 12 * h:12 * h + 12].mean()), float(in_max[r, 12 * h:12 * h + 12].max()),
                 float(out_max[r, 12 * h:12 * h + 12].max())) for r, (iid, _) in enumerate(links) for h in range(24)]
        storage.write_rollups(session, RollupPeriod.hour, hour)
        storage.write_rollups(session, RollupPeriod.day, [
            (iid, day, 1440, float(in_avg[r].mean()), float(out_avg[r].mean()), float(in_max[r].max()),
             float(out_max[r].max())) for r, (iid, _) in enumerate(links)])
        session.commit()
        written += len(five) + len(hour) + len(links)
    return written


def bare_aggregate(session: Session, period: str, interface_ids: list[int], start: datetime, end: datetime) -> dict:
    """What the database alone needs to read the same rows as the report: one GROUP BY per interface."""
    stmt = text("SELECT interface_id, max(in_max), max(out_max), avg(in_avg), avg(out_avg), count(*) "
                "FROM telemetry_rollups WHERE period = :p AND interface_id IN :ids AND ts >= :s AND ts < :e "
                "GROUP BY interface_id").bindparams(bindparam("ids", expanding=True))
    params = {"p": period, "ids": interface_ids, "s": storage.db_time(session, start),
              "e": storage.db_time(session, end)}
    began = time.perf_counter()
    rows = session.execute(stmt, params).all()
    took = time.perf_counter() - began
    return {"period": period, "rows": sum(r[-1] for r in rows), "seconds": round(took, 3)}


def run_backend(url: str, links_count: int, days: int) -> dict:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    first_day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    end = first_day + timedelta(days=days)
    with Session(engine) as session:
        links = build_network(session, links_count)
        began = time.perf_counter()
        rows = write_rollups(session, links, first_day, days)
        session.execute(text("ANALYZE"))  # the statistics autovacuum would have gathered by report time
        session.commit()
        setup = time.perf_counter() - began
    timings = []
    with Session(engine) as session:
        for _ in range(3):
            began = time.perf_counter()
            report = capacity.capacity_report(session=session, actor=SYSTEM, start=first_day, end=end)
            timings.append(round(time.perf_counter() - began, 3))
        ids = [interface_id for interface_id, _ in links]
        bare = [bare_aggregate(session, period, ids, first_day, end) for period in ("1h", "5m")]
    engine.dispose()
    return {"backend": make_url(url).get_backend_name(), "links": links_count, "days": days,
            "rollup_rows_written": rows, "setup_seconds": round(setup, 1), "report_seconds": timings,
            "resolution": report.resolution, "summary": report.summary, "summary_vi": report.summary_vi,
            "forecasts_crossing": report.crossing_count, "links_listed": len(report.links.results),
            "report_json_bytes": len(report.model_dump_json()),
            "bare_sql_aggregate": bare, "meets_target": sorted(timings)[1] < TARGET_SECONDS}  # the median


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--postgres", help="also run on a throwaway database on this PostgreSQL server")
    ap.add_argument("--links", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="tslcd-bench-") as tmp:
        for url in (None, args.postgres) if args.postgres else (None,):
            with fresh_database(url, Path(tmp)) as fresh:
                results.append(run_backend(fresh, args.links, args.days))
    print(json.dumps({"benchmark": "capacity_report", "target_seconds": TARGET_SECONDS, "results": results},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
