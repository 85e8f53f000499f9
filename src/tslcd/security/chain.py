"""The audit chain's record format and its checker.

A record is stored as its `body`, one compact JSON array (orjson, UTF-8 unescaped, never a raw newline):

    [prev_hash, id, ts, actor, request_id, action, object_type, object_id, object_repr, before, after, note]

`ts` is the UTC time as "YYYY-MM-DD HH:MM:SS.ffffff", `before`/`after` are the images as JSON values (null for
none); every other field the log shows is read out of the body in SQL (security/models.py). Beside it:

- `hash` = SHA-256(body) in hex, the link: `prev_hash` (the body's first field) is the previous record's `hash`
  (64 zeros for the first record);
- `mac` = HMAC-SHA256(key, body) in hex; the key is derived from settings and never stored in the database.

Why that is enough to find any change: the links make the newest record's hash depend on every record before it,
and its MAC (which only the key's holder can make) seals that hash; the writer checks the newest record's hash and
MAC before linking a new record to it (security/audit.py), so no forged head gets sealed later. Rewriting any
record and re-linking all later ones, as anyone can without the key, changes the newest record, whose MAC then
fails; the per-record MACs then name the first rewritten record. Removing records from the end is found by the
signed checkpoints kept outside the database.

Checking a range therefore costs one SHA-256 per record: the database concatenates a batch of bodies and hashes
into two values (one row per batch), and the links are compared as two long strings. A long range is split over
worker processes, each with a connection of its own: the database's part and hashlib's part of different batches
overlap, and the hashing of different batches runs on different cores.
"""

import hashlib
import multiprocessing
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import orjson
from psycopg.adapt import Loader
from psycopg.pq import Format

GENESIS = "0" * 64
FIELDS = ("prev_hash", "id", "ts", "actor", "request_id", "action", "object_type", "object_id", "object_repr",
          "before", "after", "note")
TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
BATCH = 2_000  # records a batch query returns: its two values stay in the CPU's caches
ROWS_BATCH = 20_000  # rows fetched at a time by the exact check
PARAM = {"sqlite": "?", "postgresql": "%s"}

# One row per batch: count, first and last id, the bodies joined by newlines, the hashes joined (as bytes).
_BATCH_SQL = {
    # SQLite reads a rowid range in rowid order (an ORDER BY subquery would copy every row through a co-routine).
    # Should a batch ever come back in another order, its links fail and the exact check decides.
    "sqlite": "SELECT count(*), min(id), max(id), CAST(group_concat(body, char(10)) AS BLOB), "
              "CAST(group_concat(hash, '') AS BLOB) FROM audit_log WHERE id >= ? AND id <= ?",
    "postgresql": "SELECT count(*), min(id), max(id), string_agg(body, E'\\n'), string_agg(hash, '') FROM "
                  "(SELECT id, body, hash FROM audit_log WHERE id >= %s AND id <= %s ORDER BY id) s",  # text as bytes
}
_ROWS_SQL = {
    "sqlite": "SELECT id, CAST(body AS BLOB), hash, mac FROM audit_log WHERE id >= ? AND id <= ? ORDER BY id",
    "postgresql": "SELECT id, convert_to(body, 'UTF8'), hash, mac FROM audit_log WHERE id >= %s AND id <= %s "
                  "ORDER BY id",
}

_sha = hashlib.sha256
_digest = type(_sha()).digest
_link = itemgetter(slice(2, 66))


def encode(fields: Sequence[Any], default: Callable[[Any], Any] | None = None) -> bytes:
    """The body of a record from its 12 values (FIELDS order)."""
    return orjson.dumps(list(fields), default=default, option=orjson.OPT_NON_STR_KEYS)


def link_of(body: bytes) -> str:
    return _sha(body).hexdigest()


def mac_function(key: bytes) -> Callable[[bytes], str]:
    """HMAC-SHA256 (RFC 2104) with the key's inner and outer states computed once: hex digest of a message."""
    block = key.ljust(64, b"\0") if len(key) <= 64 else hashlib.sha256(key).digest().ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    icopy, ocopy = inner.copy, outer.copy

    def mac(message: bytes) -> str:
        i = icopy()
        i.update(message)
        o = ocopy()
        o.update(i.digest())
        return o.hexdigest()

    return mac


def body_id(body: bytes) -> int | None:
    """The id a body names (its second field), None when the body does not start as the writer writes it."""
    if body[:2] != b'["' or body[66:68] != b'",':
        return None
    end = body.find(b",", 68)
    try:
        return int(body[68:end])
    except ValueError:
        return None


@dataclass
class Batch:
    lo: int
    hi: int
    ok: bool  # ids contiguous, every hash = SHA-256(body), every link inside the batch right
    first_link: str = ""  # prev_hash of the batch's first record
    last_hash: str = ""


class RawText(Loader):
    """PostgreSQL text as the bytes the server sends (binary format: UTF-8), not decoded: hashed as it is."""

    format = Format.BINARY

    def load(self, data) -> bytes:
        return bytes(data)


def batch_cursor(dialect: str, conn):
    """A cursor for `check_batch` on a driver connection."""
    if dialect != "postgresql":
        return conn.cursor()
    cursor = conn.cursor(binary=True)
    cursor.adapters.register_loader("text", RawText)
    return cursor


def check_batch(dialect: str, cursor, lo: int, hi: int) -> Batch:
    """Records lo..hi with one query; `ok` False sends the range to `check_rows`, which names the record."""
    cursor.execute(_BATCH_SQL[dialect], (lo, hi))
    count, first, last, bodies_blob, hashes = cursor.fetchone()
    n = hi - lo + 1
    if count != n or first != lo or last != hi or bodies_blob is None:
        return Batch(lo, hi, False)
    bodies = bytes(bodies_blob).split(b"\n")
    if len(bodies) != n:
        return Batch(lo, hi, False)
    computed = b"".join(map(_digest, map(_sha, bodies))).hex()
    links = b"".join(map(_link, bodies))
    ok = (computed.encode() == bytes(hashes) and links[64:] == computed[:-64].encode()
          and body_id(bodies[0]) == lo)
    return Batch(lo, hi, ok, links[:64].decode("ascii", "replace"), computed[-64:])


@dataclass
class Finding:
    problem: str | None = None
    record_id: int | None = None
    checked: int = 0


def check_rows(dialect: str, cursor, lo: int, hi: int, prev: str, mac: Callable[[bytes], str] | None) -> Finding:
    """Record by record (the exact check): ids, hashes, links and, when `mac` is given, MACs; the first problem."""
    cursor.execute(_ROWS_SQL[dialect], (lo, hi))
    found = Finding()
    expected = lo
    while True:
        rows = cursor.fetchmany(ROWS_BATCH)
        if not rows:
            break
        for rid, body, stored_hash, stored_mac in rows:
            body = bytes(body)
            if rid != expected:
                return Finding(f"record {expected} is missing (next is {rid})", expected, found.checked)
            if link_of(body) != stored_hash or body_id(body) != rid:
                return Finding(f"record {rid} was altered after it was written (its body does not match its hash)",
                               rid, found.checked)
            if _link(body).decode("ascii", "replace") != prev:
                return Finding(f"record {rid} does not follow the record before it", rid, found.checked)
            if mac is not None and mac(body) != stored_mac:
                return Finding(f"record {rid} was altered after it was written (its MAC does not hold: it and the "
                               "records after it were re-linked without the key)", rid, found.checked)
            prev, expected = stored_hash, expected + 1
            found.checked += 1
    if expected <= hi:
        return Finding(f"record {expected} is missing", expected, found.checked)
    return found


def ranges(lo: int, hi: int, size: int = BATCH) -> list[tuple[int, int]]:
    return [(a, min(a + size - 1, hi)) for a in range(lo, hi + 1, size)]


def open_reader(dialect: str, dsn: str):
    """A read-only connection of its own (records are append-only: it sees every committed one)."""
    if dialect == "sqlite":
        import sqlite3
        from urllib.parse import quote

        return sqlite3.connect(f"file:{quote(dsn)}?mode=ro", uri=True, check_same_thread=False)
    import psycopg

    conn = psycopg.connect(dsn, autocommit=True)
    conn.read_only = True
    return conn


# Worker processes: hashing holds Python's GIL, so batches are checked in processes of their own, kept for the
# next verification (started from a fork server that has only this module loaded, never from the server itself).
_reader: tuple[tuple[str, str], Any] | None = None
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def check_spans(dialect: str, dsn: str, spans: list[tuple[int, int]]) -> list[Batch]:
    """A worker process's task: consecutive batches on the process's own connection (opened once per database)."""
    global _reader
    for attempt in (1, 2):
        if _reader is None or _reader[0] != (dialect, dsn):
            if _reader is not None:
                _close(_reader[1])
            _reader = ((dialect, dsn), open_reader(dialect, dsn))
        try:
            cursor = batch_cursor(dialect, _reader[1])
            return [check_batch(dialect, cursor, lo, hi) for lo, hi in spans]
        except Exception:
            _close(_reader[1])
            _reader = None  # a connection the server dropped: open another once
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _close(conn) -> None:
    try:
        conn.close()
    except Exception:  # pragma: no cover - closing a connection that already failed
        pass


def pool_ready(workers: int) -> bool:
    """Worker processes of this size are running already (started by an earlier verification)."""
    return _pool is not None and _pool._max_workers == workers


def pool(workers: int) -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers != workers:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload([__name__])
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        return _pool


def discard_pool() -> None:
    """After a failure: the next verification starts new worker processes."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None


def check_in_processes(dialect: str, dsn: str, spans: list[tuple[int, int]], workers: int,
                       per_task: int = 8) -> Iterable[Batch]:
    """Batches in order, checked by worker processes, `per_task` consecutive batches a task."""
    groups = [spans[i:i + per_task] for i in range(0, len(spans), per_task)]
    futures = [pool(workers).submit(check_spans, dialect, dsn, group) for group in groups]
    try:
        for future in futures:
            yield from future.result()
    finally:  # the caller stops at the first bad batch: the rest need not run
        for future in futures:
            future.cancel()


def check_batches(dialect: str, spans: list[tuple[int, int]], cursor) -> Iterable[Batch]:
    """Batches in order on one cursor (this process)."""
    for lo, hi in spans:
        yield check_batch(dialect, cursor, lo, hi)
