"""The whole national demo loaded through the registry's import path into fresh databases, beside the bare limits.

    python benchmarks/bench_import.py [--db URL] [--postgres URL]

By default the demo goes into a new SQLite file. --db replaces that backend (a SQLite file that does not exist
yet, or a PostgreSQL server); --postgres adds a PostgreSQL server. On a PostgreSQL server a throwaway database is
created for the run and dropped after it. The bare limits are measured in the same run, on the same machine: raw
sqlite3 executemany of 111,000 agency-like rows (code, Vietnamese name, unit), and psycopg COPY of the same rows
when a PostgreSQL server is given. Prints one JSON line.

Two phases are timed apart: the administrative units (reference data that the registry bulk-loads once, one insert
per level, not through the import path), then the demo network through `import_objects`, the path users take. Only
the second is compared with NetBox. NetBox's figures are not measured here: they are constants from the peers'
measurements (PEERS_FILE, a Markdown table), and the JSON says so and whether the file still states them.
"""

import argparse
import json
import resource
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import psycopg
from sqlalchemy import make_url
from sqlalchemy.orm import Session

import tslcd.registry.models  # noqa: F401  (tables)
import tslcd.security.models  # noqa: F401
from tslcd.core.database import Base, make_engine, scratch_database
from tslcd.registry import demo, service
from tslcd.registry.adminunits import load_admin_units
from tslcd.security.actor import SYSTEM

from peers import from_peers_file  # benchmarks/peers.py

DIRECTORY_ROWS = 111_000  # entries of the national axis directory in 2025

# NetBox 4.6.8 importing a national-shaped data set through its REST API, as the peers measured it on a machine of
# this kind: (figure, the text of the peers file that states it).
PEERS_FILE = "../shared/peers/registry/README.md"  # relative to the project root
NETBOX = {
    "all_objects_per_s": (17, "| all, with 45,170 change-log records | ≈ 28,000 | ≈ 17/s | 1,656 s |"),
    "sites_per_s": (47, "| 3,358 | 47/s | 72 s |"),
    "devices_per_s": (4.0, "| 3,432 (+17,724 interfaces) | 4.0/s | 858 s |"),
    "cables_per_s": (5.0, "| 3,423 | 5.0/s | 688 s |"),
}


def netbox_figures() -> dict:
    return from_peers_file(PEERS_FILE, "NetBox 4.6.8, REST bulk POST of 100 objects per request, one client, "
                           "2 gunicorn workers, PostgreSQL 15", NETBOX)


def directory_rows() -> list[tuple[str, str, str]]:
    """Agency-like rows shaped as in the national directory: code, Vietnamese name, unit code."""
    return [(f"{i % 1000:03d}.{i // 1000 % 100:02d}.{i // 100_000:02d}.H{i % 97:02d}",
             f"Ủy ban nhân dân xã Đông Hòa số {i}", f"{i % 3321:05d}") for i in range(DIRECTORY_ROWS)]


def rate(count: int, seconds: float) -> dict[str, float]:
    return {"seconds": round(seconds, 3), "per_s": round(count / seconds)}


def bare_sqlite(rows: list[tuple[str, str, str]], folder: Path) -> dict[str, float]:
    """The floor for SQLite: one executemany in one transaction, WAL as the application runs it."""
    conn = sqlite3.connect(folder / "bare.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE agencies (id INTEGER PRIMARY KEY, code TEXT UNIQUE, name TEXT, unit TEXT)")
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO agencies (code, name, unit) VALUES (?, ?, ?)", rows)
    conn.execute("COMMIT")
    took = time.perf_counter() - start
    conn.close()
    return rate(len(rows), took)


def bare_postgres(rows: list[tuple[str, str, str]], url: str) -> dict[str, float]:
    """The floor for PostgreSQL: COPY FROM STDIN in one transaction."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        conn.execute("CREATE TABLE bare_agencies (id serial PRIMARY KEY, code text UNIQUE, name text, unit text)")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor().copy("COPY bare_agencies (code, name, unit) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return rate(len(rows), time.perf_counter() - start)


@contextmanager
def fresh_database(url: str | None, folder: Path) -> Iterator[str]:
    """A URL of an empty database: a new SQLite file, or a throwaway database on a PostgreSQL server."""
    if url is None or url.startswith("sqlite"):
        path = Path(make_url(url).database) if url else folder / "demo.db"
        if path.exists():
            raise SystemExit(f"{path} exists; the benchmark loads into a new database")
        yield f"sqlite:///{path}"
        return
    with scratch_database(url) as scratch:
        yield scratch


def load_national(url: str) -> dict:
    """Schema, then two transactions, each timed from its first row to its commit: the administrative units, then
    the demo network through the import path, one `import_objects` call per object type as `load_demo` makes them
    (timed per type; generating the rows is timed apart, since a user's file already exists)."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        start = time.perf_counter()
        units = load_admin_units(session=session, actor=SYSTEM)
        session.commit()
        units_took = time.perf_counter() - start
        start = time.perf_counter()
        generated = {name: orjson.dumps(rows) for name, rows in demo.generate_rows(session=session).items()}
        generate_took = time.perf_counter() - start
        per_type = {}
        start, cpu_start = time.perf_counter(), time.process_time()
        for name, data in generated.items():
            t0 = time.perf_counter()
            report = service.import_objects(session=session, actor=SYSTEM, res=service.resource(name), data=data,
                                            fmt="json")
            per_type[name] = {"objects": report.created, "seconds": round(time.perf_counter() - t0, 3)}
        t0 = time.perf_counter()
        session.commit()
        commit_took = time.perf_counter() - t0
        took, cpu_took = time.perf_counter() - start, time.process_time() - cpu_start
        if not demo.is_loaded(session=session):
            raise SystemExit("the demo network is not in the database after the import")
    engine.dispose()
    for row in per_type.values():
        row["per_s"] = round(row["objects"] / row["seconds"]) if row["seconds"] else None
    total, units_total = sum(r["objects"] for r in per_type.values()), sum(units.values())
    return {"backend": engine.dialect.name,
            "user_path": {"what": "the demo network through import_objects (JSON rows parsed, validated, checked, "
                                  "written, audited), one transaction",
                          "objects": per_type, "total_objects": total, "seconds": round(took, 2),
                          "commit_seconds": round(commit_took, 2), "objects_per_s": round(total / took),
                          "benchmark_process_cpu_seconds": round(cpu_took, 2),
                          "generating_the_rows_seconds": round(generate_took, 2)},
            "bulk_admin_units": {"what": "administrative units and their successions, one audited bulk insert per "
                                         "level: reference data loaded once, not through the import path",
                                 "objects": units, "total_objects": units_total, "seconds": round(units_took, 2),
                                 "objects_per_s": round(units_total / units_took)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", help="database to load into instead of a new SQLite file")
    ap.add_argument("--postgres", help="also load into a throwaway database on this PostgreSQL server")
    args = ap.parse_args()
    rows = directory_rows()
    with tempfile.TemporaryDirectory(prefix="tslcd-bench-") as tmp:
        folder = Path(tmp)
        results, bare = [], {"rows": DIRECTORY_ROWS, "sqlite3_executemany": bare_sqlite(rows, folder)}
        for url in (args.db, args.postgres) if args.postgres else (args.db,):
            with fresh_database(url, folder) as fresh:
                results.append(load_national(fresh))
                if fresh.startswith("postgresql"):
                    bare["postgres_copy"] = bare_postgres(rows, fresh)
    netbox = netbox_figures()
    for result in results:
        limit = bare["postgres_copy" if result["backend"] == "postgresql" else "sqlite3_executemany"]["per_s"]
        user, units = result["user_path"], result["bulk_admin_units"]
        user["share_of_bare_insert_rate"] = round(user["objects_per_s"] / limit, 3)
        user["times_netbox_all_objects_rate"] = round(user["objects_per_s"]
                                                      / netbox["all_objects_per_s_from_peers_file"])
        objects = user["objects"]
        for ours, theirs in (("sites", "sites_per_s"), ("links", "cables_per_s")):
            if objects[ours]["per_s"]:
                objects[ours][f"times_netbox_{theirs}"] = round(objects[ours]["per_s"]
                                                                / netbox[f"{theirs}_from_peers_file"])
        # NetBox's device rate includes the interfaces it creates from templates: ours with the interfaces' import
        devices, interfaces = objects["devices"], objects["interfaces"]
        with_interfaces = devices["objects"] / (devices["seconds"] + interfaces["seconds"])
        devices["with_their_interfaces_per_s"] = round(with_interfaces)
        devices["times_netbox_devices_per_s"] = round(with_interfaces / netbox["devices_per_s_from_peers_file"])
        units["share_of_bare_insert_rate"] = round(units["objects_per_s"] / limit, 3)
    print(json.dumps({"benchmark": "import_national_demo", "results": results,
                      "bare_limit": {"measured_in_this_run": True, **bare}, "netbox": netbox,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
