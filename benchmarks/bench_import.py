"""The whole national demo loaded through the registry's import path into fresh databases, beside the bare limits.

    python benchmarks/bench_import.py [--db URL] [--postgres URL]

By default the demo goes into a new SQLite file. --db replaces that backend (a SQLite file that does not exist
yet, or a PostgreSQL server); --postgres adds a PostgreSQL server. On a PostgreSQL server a throwaway database is
created for the run and dropped after it. The bare limits are measured in the same run, on the same machine: raw
sqlite3 executemany of 111,000 agency-like rows (code, Vietnamese name, unit), and psycopg COPY of the same rows
when a PostgreSQL server is given. Prints one JSON line.
"""

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import make_url
from sqlalchemy.orm import Session

import tslcd.registry.models  # noqa: F401  (tables)
import tslcd.security.models  # noqa: F401
from tslcd.core.database import Base, make_engine, scratch_database
from tslcd.registry.demo import load_demo
from tslcd.security.actor import SYSTEM

DIRECTORY_ROWS = 111_000  # entries of the national axis directory in 2025
NETBOX_OBJECTS_PER_S = 17  # shared/peers/registry/README.md: the same kind of data set through NetBox's API


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
    """Schema, then the national demo in one transaction, timed from the first row to the commit."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        start = time.perf_counter()
        counts = load_demo(session=session, actor=SYSTEM)
        session.commit()
        took = time.perf_counter() - start
    engine.dispose()
    total = sum(counts.values())
    return {"backend": engine.dialect.name, "objects": counts, "total_objects": total, "seconds": round(took, 2),
            "objects_per_s": round(total / took)}


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
    for result in results:
        limit = bare["postgres_copy" if result["backend"] == "postgresql" else "sqlite3_executemany"]["per_s"]
        result["share_of_bare_insert_rate"] = round(result["objects_per_s"] / limit, 3)
        result["times_netbox_rate"] = round(result["objects_per_s"] / NETBOX_OBJECTS_PER_S)
    print(json.dumps({"benchmark": "import_national_demo", "results": results, "bare_limit": bare},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
