"""A national-axis-sized directory: import 111,000 agencies (with parents in the same file), then search and page.

    python benchmarks/bench_directory.py [--postgres URL] [--agencies 111000]

Prints one JSON line, a result per backend, with the bare insert of the same rows and a plain LIKE scan of the
same searches (the way `q` worked before its folded, indexed key) measured in the same run.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time

import orjson
from sqlalchemy import text

from tslcd.core import database
from tslcd.core.database import Base, scratch_database
from tslcd.registry import service
from tslcd.security.actor import SYSTEM
import tslcd.registry.models  # noqa: F401
import tslcd.security.models  # noqa: F401
import tslcd.telemetry.models  # noqa: F401


def directory(n: int) -> list[dict]:
    """Ministries (G), provinces (H) and their departments and units, children listed before their parents."""
    rows = []
    tops = [f"000.00.00.{'G' if i < 40 else 'H'}{i % 100:02d}" for i in range(100)]
    per_top = (n - len(tops)) // len(tops)
    for t, top in enumerate(tops):
        suffix = top.split(".")[-1]
        for k in range(per_top):
            dept, unit = divmod(k, 100)
            dept += 1
            if unit == 0:
                rows.append({"code": f"000.{dept:02d}.00.{suffix}", "name": f"Sở/Vụ {dept} của {suffix}",
                             "kind": "state", "parent": top})
            else:
                rows.append({"code": f"{unit:03d}.{dept:02d}.00.{suffix}", "name": f"Đơn vị {unit} thuộc sở {dept}",
                             "kind": "state", "parent": f"000.{dept:02d}.00.{suffix}"})
    rows.reverse()  # children first: the import must order the writes itself
    rows += [{"code": top, "name": f"Cơ quan {top}", "kind": "state", "parent": None} for top in tops]
    return rows


def run(url: str, rows: list[dict]) -> dict:
    engine = database.configure(url)
    Base.metadata.create_all(engine)
    payload = orjson.dumps(rows)
    t0 = time.perf_counter()
    with database.session_scope() as session:
        report = service.import_objects(session=session, actor=SYSTEM, res=service.resource("agencies"),
                                        data=payload, fmt="json")
    took = time.perf_counter() - t0
    res = service.resource("agencies")
    timings = {"search": [], "page": [], "ilike": []}
    # What people type: without diacritics or case, a department number, a unit, a code fragment
    queries = ([f"so {i}" for i in range(1, 13)] + [f"DON VI {i} thuoc so {i % 11 + 1}" for i in range(1, 13)]
               + [f"sở/vụ {i}" for i in range(1, 13)] + [f"{i:03d}.01" for i in range(1, 15)])
    with database.session_scope(write=False) as session:
        for i, q in enumerate(queries):
            t = time.perf_counter()
            count, _ = service.list_objects(session=session, actor=SYSTEM, res=res, q=q, limit=100)
            timings["search"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            service.list_objects(session=session, actor=SYSTEM, res=res, limit=100, offset=i * 2000)
            timings["page"].append((time.perf_counter() - t) * 1000)
            # The old way, measured in the same run: ILIKE over the columns (and it needs the exact diacritics)
            t = time.perf_counter()
            session.execute(text("SELECT count(*) FROM agencies WHERE name LIKE :p OR code LIKE :p"),
                            {"p": f"%{q}%"}).scalar()
            session.execute(text("SELECT id FROM agencies WHERE name LIKE :p OR code LIKE :p ORDER BY id LIMIT 100"),
                            {"p": f"%{q}%"}).all()
            timings["ilike"].append((time.perf_counter() - t) * 1000)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bare_agencies (code varchar(40) primary key, name varchar(300),"
                          " kind varchar(24), parent varchar(40))"))
        t = time.perf_counter()
        conn.execute(text("INSERT INTO bare_agencies (code, name, kind, parent) VALUES (:code, :name, :kind, "
                          ":parent)"), rows)
        bare = time.perf_counter() - t
        conn.execute(text("DROP TABLE bare_agencies"))
    return {"backend": engine.dialect.name, "agencies": report.created, "import_s": round(took, 2),
            "agencies_per_s": round(report.created / took),
            "search_median_ms": round(statistics.median(timings["search"]), 1),
            "search_p90_ms": round(statistics.quantiles(timings["search"], n=10)[-1], 1),
            "search_max_ms": round(max(timings["search"]), 1),
            "ilike_scan_median_ms": round(statistics.median(timings["ilike"]), 1),
            "page_median_ms": round(statistics.median(timings["page"]), 1),
            "bare_insert_s": round(bare, 2), "ratio_to_bare_insert": round(took / bare, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", help="server URL; a throwaway database is created on it")
    ap.add_argument("--agencies", type=int, default=111_000)
    args = ap.parse_args()
    rows = directory(args.agencies)
    results = [run(f"sqlite:///{tempfile.mkdtemp(prefix='tslcd-dir-')}/dir.db", rows)]
    if args.postgres:
        with scratch_database(args.postgres) as url:
            results.append(run(url, rows))
            database.get_engine().dispose()
    print(json.dumps({"benchmark": "agency_directory", "results": results}))


if __name__ == "__main__":
    sys.exit(main())
