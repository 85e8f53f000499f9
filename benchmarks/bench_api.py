"""GET of a 100-row page of agencies, and of one link's failure impact, over real HTTP, beside the bare SQL.

    python benchmarks/bench_api.py [--db URL | --postgres URL] [--requests 300]

Without either, a temporary SQLite database gets the national demo first. --postgres creates a throwaway database on
that PostgreSQL server for the run and drops it after; --db uses the given database as it is (migrating it and
loading the demo when it is not there, and leaving both). The bare SQL is measured in the same run; NetBox's figures
are constants from the peers' measurements (PEERS_FILE), labelled so in the JSON. Prints one JSON line.
"""

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
from sqlalchemy import text

from peers import from_peers_file  # benchmarks/peers.py

# NetBox 4.6.8 reads as the peers measured them on a machine of this kind: (figure, the text of the file stating it).
PEERS_FILE = "../shared/peers/registry/README.md"  # relative to the project root
NETBOX = {
    "devices_page_median_ms": (399, "`GET /api/dcim/devices/?limit=100` 399 ms median"),
    "devices_page_warm_median_ms": (239, "(239 ms with the 4-client run's warm caches)"),
    "cable_trace_median_ms": (78, "a cable trace 78 ms median"),
}
TARGET_MEDIAN_MS = 20  # the project's own target for a 100-row page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(url: str) -> str:
    """Migrated database with the demo loaded, and an admin token."""
    os.environ["TSLCD_DATABASE_URL"] = url
    from tslcd.core.database import session_scope
    from tslcd.core.migrate import upgrade
    from tslcd.registry import demo
    from tslcd.security import service
    from tslcd.security.actor import SYSTEM

    upgrade()
    with session_scope() as session:
        if not demo.is_loaded(session=session):
            demo.load_demo(session=session, actor=SYSTEM)
        _, token = service.ensure_admin(session=session, username="bench")
    return token


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(len(ms) * 0.95) - 1], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--db", help="an existing database to use as it is (default: a new SQLite file)")
    where.add_argument("--postgres", help="a PostgreSQL server: the run uses a throwaway database on it")
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    if args.postgres:
        from tslcd.core.database import scratch_database

        with scratch_database(args.postgres) as url:
            run(url, args.requests)
    elif args.db:
        run(args.db, args.requests)
    else:
        with tempfile.TemporaryDirectory(prefix="tslcd-bench-") as tmp:
            run(f"sqlite:///{tmp}/bench.db", args.requests)


def run(url: str, requests: int) -> None:
    token = prepare(url)

    from tslcd.core.database import get_engine

    engine = get_engine()
    with engine.connect() as conn:
        total = conn.scalar(text("SELECT count(*) FROM agencies"))
        slugs = [r[0] for r in conn.execute(text("SELECT slug FROM links WHERE status = 'active' ORDER BY id"))]
    rng = random.Random(7)
    offsets = [rng.randrange(0, max(total - 100, 1)) for _ in range(requests)]

    port = free_port()
    env = {**os.environ, "TSLCD_DATABASE_URL": url}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "tslcd.api:create_app", "--factory", "--host",
                               "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env,
                              start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            for _ in range(100):
                try:
                    client.get("/openapi.json")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            it = iter(offsets * 2)
            timed(lambda: client.get("/api/v1/agencies", params={"limit": 100, "offset": next(it)}), 20)
            it = iter(offsets)
            api = timed(lambda: client.get("/api/v1/agencies", params={"limit": 100, "offset": next(it)})
                        .raise_for_status(), requests)
            links = iter(rng.choices(slugs, k=requests + 1))
            client.get("/api/v1/topology/impact", params={"link": next(links)})  # builds the in-memory graph
            impact = timed(lambda: client.get("/api/v1/topology/impact", params={"link": next(links)})
                           .raise_for_status(), requests)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)

    it = iter(offsets)

    def bare() -> None:
        with engine.connect() as conn:
            conn.scalar(text("SELECT count(*) FROM agencies"))
            conn.execute(text("SELECT * FROM agencies ORDER BY id LIMIT 100 OFFSET :o"), {"o": next(it)}).all()

    raw = timed(bare, requests)
    engine.dispose()
    api_s, raw_s, impact_s = summary(api), summary(raw), summary(impact)
    netbox = from_peers_file(PEERS_FILE, "NetBox 4.6.8 with gunicorn (2 workers), PostgreSQL 15 and Redis", NETBOX)
    print(json.dumps({"benchmark": "api_agencies_page", "backend": engine.dialect.name, "agencies": total,
                      "requests": requests,
                      "api": {"measured_in_this_run": True, "what": "GET /api/v1/agencies?limit=100 at random offsets",
                              **api_s},
                      "bare_sql": {"measured_in_this_run": True, "what": "the count and the page in plain SQL",
                                   **raw_s},
                      "impact_one_link_http": {"measured_in_this_run": True, **impact_s},
                      "ratio_to_bare_sql": round(api_s["median_ms"] / raw_s["median_ms"], 1),
                      "netbox": netbox,
                      "times_faster_than_netbox_devices_page": round(
                          netbox["devices_page_median_ms_from_peers_file"] / api_s["median_ms"], 1),
                      "target_median_ms": TARGET_MEDIAN_MS}))


if __name__ == "__main__":
    main()
