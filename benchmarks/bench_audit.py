"""Audit chain verification against its bare limits, on SQLite and (with --postgres) PostgreSQL, in one run.

    python benchmarks/bench_audit.py [--records 300000] [--day 10000] [--postgres URL]

For each backend, a database of its own gets `--records` audit records written through audit.record_many (shaped
like registry changes: a site's after-image with Vietnamese names, 20 records per commit, so the checkpoint file
has one line per commit as in production), then:
- full verify in this process and in worker processes (kept between verifications, as the server keeps them;
  records/s; the target is >= 500,000/s);
- incremental verify: after a verification, a day's records (`--day`, 10,000 by default: about twice the changes
  a national registry import of a province's agencies writes, far above a day of API edits) are appended in commits
  of 5 records, and the next verify checks only them (ms, the median of three days; the target is < 100 ms);
  (PostgreSQL: the table is vacuumed after the bulk write, as autovacuum does with an insert-only table, so that
  the incremental check's count of records is an index-only scan);
- the bare limits on the same rows in the same run: the database's part of the check alone (the batch queries,
  nothing done with their result), SHA-256 over the bodies and nothing else (one core each), and both together
  times the machine's cores (the ceiling for checking in worker processes); for comparison an HMAC per record (the cost the
  chain avoids by sealing with one MAC) and Ed25519 per record; the chain as it was verified before (ORM rows, JSON
  parsed, SHA-256 over re-serialised values) as the peer.
Prints one JSON line.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import hashlib  # noqa: E402

import orjson  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import tslcd.registry.models  # noqa: E402,F401  (tables)
import tslcd.telemetry.models  # noqa: E402,F401
from tslcd.core.database import Base, make_engine, scratch_database  # noqa: E402
from tslcd.security import audit, chain, secrets  # noqa: E402
from tslcd.security.actor import Actor  # noqa: E402
from tslcd.security.models import AuditRecord, Role  # noqa: E402

ACTOR = Actor(username="bench-admin", role=Role.admin, request_id="0f3c2a9e1b7d4c55")


def _changes(start: int, n: int) -> list[audit.Change]:
    return [audit.Change("update" if i % 3 else "create", "sites", i, f"tram-{i}", before=None if i % 3 == 0 else {
        "id": i, "slug": f"tram-{i}", "name": f"Trạm viễn thông xã Quảng Ninh {i}", "kind": "pop",
        "province_id": 22, "agency_id": None, "status": "active", "lat": 21.0 + i / 1e6, "lon": 107.3},
        after={"id": i, "slug": f"tram-{i}", "name": f"Trạm viễn thông xã Quảng Ninh {i}", "kind": "pop",
               "province_id": 22, "agency_id": i % 97 or None, "status": "active", "lat": 21.0 + i / 1e6,
               "lon": 107.3}) for i in range(start, start + n)]


def _append(engine, start: int, n: int, per_commit: int) -> None:
    with Session(engine) as s:
        for lo in range(start, start + n, per_commit):
            audit.lock(s)
            audit.record_many(session=s, actor=ACTOR, changes=_changes(lo, min(per_commit, start + n - lo)))
            s.commit()


def _best(fn, repeat=3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _bodies(engine) -> list[bytes]:
    with engine.connect() as conn:
        body = "convert_to(body, 'UTF8')" if engine.dialect.name == "postgresql" else "CAST(body AS BLOB)"
        return [bytes(r[0]) for r in conn.exec_driver_sql(f"SELECT {body} FROM audit_log ORDER BY id")]


def _fetch_batches(engine) -> int:
    """The database's part of the check alone: every batch query, nothing done with what it returns."""
    dialect = engine.dialect.name
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        cur = chain.batch_cursor(dialect, raw)
        last = conn.exec_driver_sql("SELECT max(id) FROM audit_log").scalar()
        n = 0
        for lo, hi in chain.ranges(1, last):
            cur.execute(chain._BATCH_SQL[dialect], (lo, hi))
            n += cur.fetchone()[0]
        conn.rollback()
        return n


def _legacy_verify(engine) -> int:
    """The verification before this change: ORM-typed rows, parsed JSON, sorted re-serialisation, SHA-256."""
    cols = [getattr(AuditRecord, name).label(name) for name in ("id", *chain.FIELDS, "hash")]
    with Session(engine) as s:
        n = 0
        for r in s.execute(select(*cols).order_by(AuditRecord.id).execution_options(yield_per=5000)).mappings():
            ts = r["ts"].replace(tzinfo=None).isoformat(timespec="microseconds")
            payload = orjson.dumps([r["id"], ts, r["actor"], r["request_id"], r["action"], r["object_type"],
                                    r["object_id"], r["object_repr"], r["before"], r["after"], r["note"]],
                                   option=orjson.OPT_SORT_KEYS)
            hashlib.sha256(r["prev_hash"].encode() + payload).hexdigest()
            n += 1
        return n


def measure(engine, records: int, day: int) -> dict:
    t = time.perf_counter()
    _append(engine, 1, records, 20)
    write_s = time.perf_counter() - t
    if engine.dialect.name == "postgresql":  # what autovacuum does to an insert-only table of this size
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE audit_log")
    with Session(engine) as s:
        single_s, single = _best(lambda: audit.verify(session=s, actor=ACTOR, full=True, workers=1), 2)
        s.rollback()
        chain.discard_pool()  # the first verification of a process: its workers are not running yet
        cold_s, _ = _best(lambda: audit.verify(session=s, actor=ACTOR, full=True), 1)
        s.rollback()
        chain.pool(min(os.cpu_count() or 1, 4))  # as a server keeps them after its first long verification
        parallel_s, parallel = _best(lambda: audit.verify(session=s, actor=ACTOR, full=True), 2)
        s.rollback()
    assert single.ok and parallel.ok and single.checked == parallel.checked == records, (single, parallel)
    fetch_s, fetched = _best(lambda: _fetch_batches(engine), 2)
    messages = _bodies(engine)
    sha_s, _ = _best(lambda: b"".join(map(chain._digest, map(chain._sha, messages))), 2)
    mac = chain.mac_function(secrets.audit_mac_key())
    hmac_s, _ = _best(lambda: [mac(m) for m in messages], 2)
    key = secrets.checkpoint_signing_key()
    sample = messages[:2000]
    sigs = [key.sign(m) for m in sample]
    pub = key.public_key()
    t = time.perf_counter()
    for m, sig in zip(sample, sigs):
        pub.verify(sig, m)
    ed_s = time.perf_counter() - t
    legacy_s, legacy_n = _best(lambda: _legacy_verify(engine), 1)
    # Incremental: verified above; a day's records come in small commits; verify again (three days, the median).
    days = []
    for n in range(3):
        _append(engine, records + 1 + n * day, day, 5)
        with Session(engine) as s:
            inc_s, inc = _best(lambda: audit.verify(session=s, actor=ACTOR), 1)
            s.rollback()
        assert inc.ok and inc.mode == "incremental" and inc.checked == day, inc
        days.append(inc_s)
    inc_s = sorted(days)[1]
    with Session(engine) as s:  # and again with nothing new (verify is repeated every few minutes)
        idle_s, idle = _best(lambda: audit.verify(session=s, actor=ACTOR), 3)
    return {
        "records": records, "write_records_per_s": round(records / write_s),
        "full_verify_1_process_records_per_s": round(records / single_s),
        "full_verify_records_per_s": round(records / parallel_s), "full_verify_s": round(parallel_s, 3),
        "full_verify_first_in_process_s": round(cold_s, 3),  # its workers not started: in this process
        "full_verify_processes": min(os.cpu_count() or 1, 4) if records >= audit.PARALLEL_FROM else 1,
        "incremental_day_records": day, "incremental_verify_ms": round(inc_s * 1000, 1),
        "incremental_nothing_new_ms": round(idle_s * 1000, 1),
        "bare_fetch_records_per_s": round(fetched / fetch_s),
        "bare_sha256_records_per_s": round(len(messages) / sha_s),
        "bare_fetch_plus_sha256_records_per_s": round(1 / (fetch_s / fetched + sha_s / len(messages))),
        "bare_limit_all_cores_records_per_s": round((os.cpu_count() or 1) / (fetch_s / fetched
                                                                             + sha_s / len(messages))),
        "per_record_hmac_records_per_s": round(len(messages) / hmac_s),
        "ed25519_verify_records_per_s": round(len(sample) / ed_s),
        "peer_unkeyed_orm_verify_records_per_s": round(legacy_n / legacy_s),
    }


@contextmanager
def sqlite_engine(folder: Path):
    engine = make_engine(f"sqlite:///{folder / 'bench_audit.db'}")
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def postgres_engine(url: str):
    with scratch_database(url) as scratch:
        engine = make_engine(scratch)
        Base.metadata.create_all(engine)
        try:
            yield engine
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--day", type=int, default=10_000)
    parser.add_argument("--postgres", help="server URL; a scratch database is made on it and dropped")
    args = parser.parse_args()
    out = {"benchmark": "audit", "cpus": os.cpu_count(), "targets": {"full_verify_records_per_s": 500_000,
                                                                     "incremental_verify_ms": 100}}
    with tempfile.TemporaryDirectory(prefix="tslcd-bench-audit-") as tmp:
        folder = Path(tmp)
        audit.set_checkpoint_dir(folder / "sqlite-checkpoints")
        with sqlite_engine(folder) as engine:
            out["sqlite"] = measure(engine, args.records, args.day)
        if args.postgres:
            audit.set_checkpoint_dir(folder / "postgres-checkpoints")
            with postgres_engine(args.postgres) as engine:
                out["postgres"] = measure(engine, args.records, args.day)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
