"""GET of a 100-row page of agencies, and of one link's failure impact, over real HTTP, beside the bare SQL.

    python benchmarks/bench_api.py [--db URL] [--requests 300]

Without --db a temporary SQLite database gets the national demo data first. Prints one JSON line.
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
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", help="database URL (default: a new SQLite file with the demo)")
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='tslcd-bench-')}/bench.db"
    token = prepare(url)

    from tslcd.core.database import get_engine

    engine = get_engine()
    with engine.connect() as conn:
        total = conn.scalar(text("SELECT count(*) FROM agencies"))
        slugs = [r[0] for r in conn.execute(text("SELECT slug FROM links WHERE status = 'active' ORDER BY id"))]
    rng = random.Random(7)
    offsets = [rng.randrange(0, max(total - 100, 1)) for _ in range(args.requests)]

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
                        .raise_for_status(), args.requests)
            links = iter(rng.choices(slugs, k=args.requests + 1))
            client.get("/api/v1/topology/impact", params={"link": next(links)})  # builds the in-memory graph
            impact = timed(lambda: client.get("/api/v1/topology/impact", params={"link": next(links)})
                           .raise_for_status(), args.requests)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)

    it = iter(offsets)

    def bare() -> None:
        with engine.connect() as conn:
            conn.scalar(text("SELECT count(*) FROM agencies"))
            conn.execute(text("SELECT * FROM agencies ORDER BY id LIMIT 100 OFFSET :o"), {"o": next(it)}).all()

    raw = timed(bare, args.requests)
    api_s, raw_s = summary(api), summary(raw)
    print(json.dumps({"benchmark": "api_agencies_page", "backend": engine.dialect.name, "agencies": total,
                      "requests": args.requests, "api": api_s, "bare_sql": raw_s,
                      "impact_one_link_http": summary(impact),
                      "ratio_to_bare_sql": round(api_s["median_ms"] / raw_s["median_ms"], 1),
                      "netbox_devices_page_median_ms": 399,
                      "speedup_vs_netbox": round(399 / api_s["median_ms"], 1),
                      "target_median_ms": 20}))


if __name__ == "__main__":
    main()
