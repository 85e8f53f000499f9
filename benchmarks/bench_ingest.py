"""Rates through `telemetry.service.ingest` and through the HTTP push API, beside the bare insert limit.

    python benchmarks/bench_ingest.py [--postgres URL] [--interfaces 10000] [--cycles 20]

A synthetic network of `interfaces` / 2 links (both ends measured) is written straight into a fresh database
(a new SQLite file; with --postgres also a throwaway database on that server, dropped afterwards). Then
`cycles` poll cycles of one rate per interface go through `ingest`, one call and one commit per cycle as the
poller does, with a few links over their thresholds so alarms are evaluated and written. The push API gets
its own rates (JSON batches of 5,000, in-process HTTP). The bare limit is raw sqlite3 executemany / psycopg
binary COPY of the same rows into a table of the same shape, in the same run. Prints one JSON line.
"""

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import psycopg
from sqlalchemy import insert, make_url
from sqlalchemy.orm import Session

import tslcd.registry.models as rm
import tslcd.security.models  # noqa: F401  (tables)
import tslcd.telemetry.models  # noqa: F401
from tslcd.core import database
from tslcd.core.database import Base, make_engine, scratch_database
from tslcd.telemetry import service
from tslcd.telemetry.schemas import RateSample
from tslcd.telemetry.storage import sqlite_text

TARGET_PER_S = 100_000
CAPACITY = 10**9
PUSH_BATCH = 5_000


@contextmanager
def fresh_database(url: str | None, folder: Path) -> Iterator[str]:
    if url is None:
        yield f"sqlite:///{folder / 'ingest.db'}"
        return
    with scratch_database(url) as scratch:
        yield scratch


def build_network(session: Session, interfaces: int) -> list[int]:
    """A province, a site, a device per 48 ports and a link per two ports; returns the interface ids."""
    session.execute(insert(rm.AdminUnit), [{"id": 1, "code": "01", "kind": rm.UnitKind.province, "name": "Hà Nội"}])
    session.execute(insert(rm.Operator), [{"id": 1, "slug": "cbdtw", "name": "CBĐTW"}])
    session.execute(insert(rm.Site), [{"id": 1, "slug": "pc-01", "name": "Trung tâm tỉnh", "unit_id": 1,
                                       "province_id": 1, "kind": rm.SiteKind.provincial_centre}])
    devices = (interfaces + 47) // 48
    session.execute(insert(rm.Device), [
        {"id": d + 1, "name": f"sw-{d + 1}", "site_id": 1, "role": rm.DeviceRole.access_switch,
         "tier": rm.Tier.access_2, "province_id": 1, "operator_id": 1} for d in range(devices)])
    session.execute(insert(rm.Interface), [
        {"id": i + 1, "device_id": i // 48 + 1, "name": f"ge-0/0/{i % 48}", "if_index": i % 48 + 1,
         "speed": CAPACITY} for i in range(interfaces)])
    half = interfaces // 2  # link k joins interface k of the first half to interface k of the second
    session.execute(insert(rm.Link), [
        {"id": k, "slug": f"link-{k}", "a_interface_id": k, "b_interface_id": k + half,
         "a_device_id": (k - 1) // 48 + 1, "b_device_id": (k + half - 1) // 48 + 1, "capacity": CAPACITY,
         "tier": rm.Tier.access_2, "province_id": 1, "operator_id": 1} for k in range(1, half + 1)])
    session.commit()
    return list(range(1, interfaces + 1))


def cycles(interface_ids: list[int], count: int, start: datetime) -> list[list[RateSample]]:
    """One rate per interface per minute; every 97th interface runs hot (alarms), the rest at 5-45 %."""
    batches = []
    for c in range(count):
        ts = start + timedelta(minutes=c)
        batches.append([RateSample(i, ts, 60.0, (0.05 + (i % 9) * 0.05) * CAPACITY,
                                   (0.85 if i % 97 == 0 else 0.1) * CAPACITY, True, CAPACITY)
                        for i in interface_ids])
    return batches


def rate(count: int, seconds: float) -> dict[str, float]:
    return {"samples": count, "seconds": round(seconds, 3), "per_s": round(count / seconds)}


def through_ingest(url: str, batches: list[list[RateSample]]) -> dict:
    engine = database.configure(url)
    total, raised, start = 0, 0, time.perf_counter()
    for batch in batches:
        with Session(engine) as session:
            result = service.ingest(session=session, samples=batch)
            session.commit()
        total += result.stored
        raised += result.alarms_raised
    out = rate(total, time.perf_counter() - start)
    out["alarms_raised"] = raised
    return out


def through_http(url: str, interface_ids: list[int], start: datetime, count: int) -> dict:
    """JSON batches POSTed to /api/v1/telemetry/samples in-process (no network), bodies encoded beforehand."""
    from fastapi.testclient import TestClient

    from tslcd.api import create_app
    from tslcd.security import service as security
    from tslcd.security.actor import SYSTEM
    from tslcd.security.models import Role
    from tslcd.security.schemas import UserCreate

    engine = database.configure(url)
    with Session(engine) as session:
        user = security.create_user(session=session, actor=SYSTEM, user_in=UserCreate(username="pusher",
                                                                                      role=Role.noc))
        token, _ = security.issue_token(session=session, actor=SYSTEM, user=user)
        session.commit()
    rows = [{"interface_id": i, "ts": (start + timedelta(minutes=m)).isoformat(), "interval_s": 60.0,
             "in_bps": 2e8, "out_bps": 1e8, "oper_up": True}
            for m in range(count // len(interface_ids) + 1) for i in interface_ids][:count]
    bodies = [orjson.dumps(rows[i:i + PUSH_BATCH]) for i in range(0, len(rows), PUSH_BATCH)]
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    with TestClient(create_app()) as client:
        began = time.perf_counter()
        for body in bodies:
            response = client.post("/api/v1/telemetry/samples", content=body, headers=headers)
            assert response.status_code == 200, response.text
        took = time.perf_counter() - began
    return rate(len(rows), took)


def bare_sqlite(rows: list[tuple], folder: Path) -> dict:
    conn = sqlite3.connect(folder / "bare.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE rates (interface_id INTEGER NOT NULL, ts DATETIME NOT NULL, interval_s FLOAT, "
                 "in_bps FLOAT, out_bps FLOAT, oper_up BOOLEAN, PRIMARY KEY (interface_id, ts)) WITHOUT ROWID")
    conn.execute("CREATE INDEX ix_rates_ts ON rates (ts)")
    text_rows = [(r[0], sqlite_text(r[1]), *r[2:]) for r in rows]
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO rates VALUES (?, ?, ?, ?, ?, ?)", text_rows)
    conn.execute("COMMIT")
    took = time.perf_counter() - start
    conn.close()
    return rate(len(rows), took)


def bare_postgres(rows: list[tuple], url: str, first: datetime) -> dict:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    day = first.replace(hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(conninfo) as conn:
        conn.execute("CREATE TABLE bare_rates (interface_id int NOT NULL, ts timestamptz NOT NULL, interval_s float8,"
                     " in_bps float8, out_bps float8, oper_up bool, PRIMARY KEY (interface_id, ts))"
                     " PARTITION BY RANGE (ts)")
        conn.execute("CREATE INDEX ON bare_rates USING brin (ts)")
        conn.execute(f"CREATE TABLE bare_rates_p PARTITION OF bare_rates FOR VALUES FROM ('{day.isoformat()}') "
                     f"TO ('{(day + timedelta(days=2)).isoformat()}')")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor().copy("COPY bare_rates FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "timestamptz", "float8", "float8", "float8", "bool"])
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return rate(len(rows), time.perf_counter() - start)


def run_backend(url: str, folder: Path, interface_ids_count: int, cycle_count: int) -> dict:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        ids = build_network(session, interface_ids_count)
    engine.dispose()
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=2)
    batches = cycles(ids, cycle_count, start)
    rows = [(s.interface_id, s.ts, s.interval_s, s.in_bps, s.out_bps, s.oper_up) for b in batches for s in b]
    result = {"backend": make_url(url).get_backend_name(), "ingest": through_ingest(url, batches),
              "push_http": through_http(url, ids, start + timedelta(minutes=cycle_count), 50_000)}
    result["bare_insert"] = (bare_sqlite(rows, folder) if url.startswith("sqlite")
                             else bare_postgres(rows, url, start))
    result["ingest_share_of_bare"] = round(result["ingest"]["per_s"] / result["bare_insert"]["per_s"], 3)
    result["meets_target"] = result["ingest"]["per_s"] >= TARGET_PER_S
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--postgres", help="also run on a throwaway database on this PostgreSQL server")
    ap.add_argument("--interfaces", type=int, default=10_000)
    ap.add_argument("--cycles", type=int, default=20)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="tslcd-bench-") as tmp:
        for url in (None, args.postgres) if args.postgres else (None,):
            with fresh_database(url, Path(tmp)) as fresh:
                results.append(run_backend(fresh, Path(tmp), args.interfaces, args.cycles))
    print(json.dumps({"benchmark": "telemetry_ingest", "target_per_s": TARGET_PER_S,
                      "interfaces": args.interfaces, "batch": args.interfaces, "results": results}))


if __name__ == "__main__":
    main()
