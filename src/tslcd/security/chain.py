"""The audit chain's record format and its checker, kept light so that it also runs as a worker process.

Record i is MACed over its stored values, in this order, as one compact JSON array (orjson, UTF-8 unescaped):

    [prev_hash, id, ts, actor, request_id, action, object_type, object_id, object_repr, before, after, note]

where `ts` is the UTC time as "YYYY-MM-DD HH:MM:SS.ffffff" and `before`/`after` are the JSON texts exactly as the
database stores them (NULL for none); `hash` = HMAC-SHA256(key, that array) in hex, and `prev_hash` is the
previous record's `hash` (64 zeros for the first). The key is derived from settings, never stored in the database.

Checking reads the stored text with the raw driver cursor (no ORM objects, no JSON parsing), so a record costs one
row fetch, one orjson call and one HMAC; a long range is split over worker processes
(`python -m tslcd.security.chain`, parameters on stdin), each checking the MACs and links of its own part.
"""

import gc
import hashlib
import sys
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

import orjson

GENESIS = "0" * 64
FIELDS = ("prev_hash", "id", "ts", "actor", "request_id", "action", "object_type", "object_id", "object_repr",
          "before", "after", "note")
TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
BATCH = 20_000

_PG_TS = "to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
_SELECT = {
    "sqlite": "SELECT prev_hash, id, ts, actor, request_id, action, object_type, object_id, object_repr, "
              "before, after, note, hash FROM audit_log WHERE id >= ? AND id <= ? ORDER BY id",
    "postgresql": f"SELECT prev_hash, id, {_PG_TS}, actor, request_id, action, object_type, object_id, object_repr, "
                  "before::text, after::text, note, hash FROM audit_log WHERE id >= %s AND id <= %s ORDER BY id",
}


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


def canonical(fields: Sequence[Any]) -> bytes:
    """The MACed bytes of one record's 12 stored values (FIELDS order)."""
    return orjson.dumps(tuple(fields))


_fields = itemgetter(slice(0, 12))
_prev = itemgetter(0)
_id = itemgetter(1)
_hash = itemgetter(12)


class Checker:
    """Checks consecutive batches of stored rows (FIELDS + hash); remembers where the previous batch ended."""

    def __init__(self, key: bytes, *, prev: str | None, first_id: int):
        self.mac = mac_function(key)
        self.prev, self.next_id, self.checked = prev, first_id, 0
        self.problem: str | None = None
        self.record_id: int | None = None

    def feed(self, rows: list[tuple]) -> bool:
        """False once a problem is found (then `problem` and `record_id` say what and where)."""
        if not rows or self.problem:
            return self.problem is None
        ids = list(map(_id, rows))
        stored = list(map(_hash, rows))
        macs = list(map(self.mac, map(orjson.dumps, map(_fields, rows))))
        prevs = list(map(_prev, rows))
        expected_prevs = [self.prev, *stored[:-1]]
        first_expected = self.next_id
        ids_ok = ids[0] == first_expected and ids[-1] == first_expected + len(ids) - 1
        if self.prev is None:  # the range starts where the record before it is unknown (another part checks it)
            expected_prevs[0] = prevs[0]
        if ids_ok and macs == stored and prevs == expected_prevs:
            self.prev, self.next_id, self.checked = stored[-1], ids[-1] + 1, self.checked + len(rows)
            return True
        for i, rid in enumerate(ids):
            want = first_expected + i
            if rid != want:
                self.problem, self.record_id = f"record {want} is missing (next is {rid})", want
            elif macs[i] != stored[i]:
                self.problem, self.record_id = f"record {rid} was altered after it was written", rid
            elif prevs[i] != expected_prevs[i]:
                self.problem, self.record_id = f"record {rid} does not follow the record before it", rid
            else:
                self.checked += 1
                continue
            return False
        raise AssertionError("a batch failed without a bad record")  # pragma: no cover

    def finish(self, last_id: int) -> bool:
        """After the last batch: records up to `last_id` must all have been seen."""
        if self.problem is None and self.next_id <= last_id:
            self.problem, self.record_id = f"record {self.next_id} is missing", self.next_id
        return self.problem is None


def select_sql(dialect: str) -> str:
    return _SELECT[dialect]


def check_rows(batches: Iterable[list[tuple]], key: bytes, *, prev: str | None, first_id: int,
               last_id: int) -> Checker:
    """Run the checker over batches of rows; garbage collection is paused meanwhile (it only costs time here)."""
    checker = Checker(key, prev=prev, first_id=first_id)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for rows in batches:
            if not checker.feed(rows):
                break
        checker.finish(last_id)
    finally:
        if was_enabled:
            gc.enable()
    return checker


def batches_of(cursor, size: int = BATCH) -> Iterable[list[tuple]]:
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield rows


def check_range(dialect: str, dsn: str, key: bytes, lo: int, hi: int) -> dict[str, Any]:
    """Check records lo..hi on a connection of its own (the worker's job). The record before `lo` gives the link."""
    if dialect == "sqlite":
        import sqlite3
        from urllib.parse import quote

        conn = sqlite3.connect(f"file:{quote(dsn)}?mode=ro", uri=True)
        cursor = conn.execute(_SELECT["sqlite"], (max(lo - 1, 1), hi))
    else:
        import psycopg

        conn = psycopg.connect(dsn)
        conn.read_only = True
        cursor = conn.cursor(name="tslcd_audit_check", binary=True)
        cursor.itersize = BATCH
        cursor.execute(_SELECT["postgresql"], (max(lo - 1, 1), hi))
    try:
        first = cursor.fetchmany(1)
        prev: str | None = GENESIS if lo == 1 else None
        pending = first
        if lo > 1 and first and first[0][1] == lo - 1:
            prev, pending = first[0][12], []

        def all_batches():
            if pending:
                yield pending
            yield from batches_of(cursor)

        checker = check_rows(all_batches(), key, prev=prev, first_id=lo, last_id=hi)
        return {"checked": checker.checked, "problem": checker.problem, "record_id": checker.record_id}
    finally:
        conn.close()


def _worker_main() -> None:
    params = orjson.loads(sys.stdin.buffer.read())
    result = check_range(params["dialect"], params["dsn"], bytes.fromhex(params["key"]), params["lo"], params["hi"])
    sys.stdout.buffer.write(orjson.dumps(result))


if __name__ == "__main__":
    _worker_main()
