"""Append-only audit log: a keyed hash chain, with signed checkpoints kept outside the audited database.

- A record is one hashed `body` (every other field is read out of it in SQL), linked to the previous record by
  SHA-256 and sealed by an HMAC-SHA256 (format and why it holds in security/chain.py). The key is derived from
  settings (TSLCD_AUDIT_KEY, else TSLCD_SECRET_KEY) and is not in the database, so whoever can write the database
  cannot rewrite the chain so that it still verifies. Before linking, the writer checks the newest record's hash
  and MAC; if they fail, audited changes are refused (AuditChainBroken, 503) rather than sealing a forged head.
- After every commit that appended records, a checkpoint (chain, last id, count, head hash, time), signed with
  Ed25519, is appended to `var/audit/checkpoints.jsonl` and, when TSLCD_NATS_URL is set, published to JetStream
  (`tslcd.audit.checkpoint.<chain>`) for an outside witness. A record removed from the end of the log, or a chain
  rewritten after a checkpoint, no longer matches the checkpoint.
- Triggers refuse UPDATE and DELETE on audit_log on both backends (security/models.py); on PostgreSQL the
  application role is given no right to do them either (`tslcd db grant`).
- `verify` is incremental by default: from the last checkpoint a verification wrote ("verified"), it checks that
  the verified history still ends where it did (same record, same hash, same count) and checks every record after
  it; `full=True` re-checks every record (in worker processes, each with a connection of its own, when the log is long).
- `lock(session)` takes the chain's write lock for the transaction (PostgreSQL advisory lock; SQLite's BEGIN
  IMMEDIATE already serialises writers). Every audited write calls it before its first row write: one lock order.
"""

import fcntl
import itertools
import logging
import os
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from sqlalchemy import event, inspect, select, text
from sqlalchemy.orm import Session

from tslcd.core import events
from tslcd.core.database import is_postgres, utcnow
from tslcd.core.errors import PermissionDenied, Unavailable
from tslcd.core.listing import paginate
from tslcd.security import chain, secrets
from tslcd.security.actor import Actor
from tslcd.security.models import AuditRecord, Role

log = logging.getLogger("tslcd.audit")

GENESIS = chain.GENESIS
_PG_LOCK_KEY = 0x7453_4C43  # "tSLC": serialises appenders on PostgreSQL
CHECKPOINT_STREAM = "TSLCD_AUDIT"
CHECKPOINT_SUBJECT = "tslcd.audit.checkpoint"
PARALLEL_FROM = 60_000  # a check of at least this many records runs in worker processes, once they run
# Starting them (a fork server, then the workers) takes about a second here: before they run, only a range this long
# gains from them (about 350,000 records/s in this process, twice that in two workers).
COLD_PARALLEL_FROM = 600_000
_MAX_LEN = {"actor": 64, "request_id": 64, "action": 16, "object_type": 40, "object_repr": 300}
_LOCKED, _FLUSHED, _PENDING = "tslcd_audit_locked", "tslcd_audit_flushed", "tslcd_audit_pending"

events.declare_stream(CHECKPOINT_STREAM, [f"{CHECKPOINT_SUBJECT}.>"])


# What goes into a record
def jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return _utc(value).isoformat(timespec="microseconds")  # always with its offset (+00:00)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def snapshot(obj: Any) -> dict[str, Any]:
    """Column values of an ORM object, JSON-safe, without its secret columns (secrets.secret_columns)."""
    hidden = secrets.secret_columns(obj) | {"created_at", "updated_at", "search_key"}
    return {
        attr.key: jsonable(getattr(obj, attr.key))
        for attr in inspect(obj).mapper.column_attrs
        if attr.key not in hidden
    }


def redact(object_type: str, values: dict[str, Any] | None) -> dict[str, Any] | None:
    """A record's before/after image without the secret columns of its table (records written before secrets
    were declared once per model may still hold them)."""
    if not values:
        return values
    hidden = secrets.declared_secrets().get(object_type)
    return {k: v for k, v in values.items() if k not in hidden} if hidden else values


def describe(obj: Any) -> str:
    """The text an audit record shows for an object: its own __str__, else "<table> <id>" (never a memory address,
    and a __str__ that fails does not fail the write it describes)."""
    if type(obj).__str__ is not object.__str__:
        try:
            shown = str(obj)
        except Exception:
            log.warning("%s.__str__ failed; the audit record names the object by table and id", type(obj).__name__,
                        exc_info=True)
            shown = ""
        if shown and " object at 0x" not in shown:
            return shown
    return f"{getattr(obj, '__tablename__', type(obj).__name__)} {getattr(obj, 'id', '')}".strip()


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _json_default(value: Any) -> Any:
    if isinstance(value, (Decimal, set, frozenset)):
        return str(value) if isinstance(value, Decimal) else sorted(value)
    if isinstance(value, bytes):
        raise TypeError("bytes in an audit record (a secret?) are refused")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _clean(value: str | None, column: str | None = None) -> str | None:
    """Text both backends store alike: no NUL, no lone surrogates, cut to the column's length."""
    if value is None:
        return None
    value = str(value)
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode()
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode()
    limit = _MAX_LEN.get(column or "")
    return value[:limit] if limit else value


@dataclass
class Change:
    action: str  # create | update | delete | <verb>
    object_type: str
    object_id: int | None
    object_repr: str = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    note: str | None = None


# The write lock
class AuditLockError(RuntimeError):
    """An audited write did not take audit.lock first (only raised once `require_lock(True)`)."""


_strict = False


def require_lock(on: bool = True) -> None:
    """Make a missing `lock` an error: record_many without it, or lock after rows were flushed, raises."""
    global _strict
    _strict = on


def lock(session: Session) -> None:
    """Take the audit chain's write lock for this transaction, before any row is written (one lock order).

    Idempotent within a transaction. PostgreSQL: a transaction-scoped advisory lock; SQLite: the write
    transaction itself (BEGIN IMMEDIATE) already holds the database's write lock.
    """
    tx = session.get_transaction()
    if tx is not None and session.info.get(_LOCKED) is tx:
        return
    if _strict and tx is not None and session.info.get(_FLUSHED) is tx:
        raise AuditLockError("rows were written in this transaction before audit.lock: take the lock first")
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    else:
        session.connection()  # begins the (immediate) write transaction
    session.info[_LOCKED] = session.get_transaction()


def _is_locked(session: Session) -> bool:
    tx = session.get_transaction()
    return tx is not None and session.info.get(_LOCKED) is tx


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _ctx) -> None:
    if _strict and not _is_locked(session):
        session.info[_FLUSHED] = session.get_transaction()


# Appending
class AuditChainBroken(Unavailable):
    """The newest audit record fails its hash or MAC: nothing is linked to it (it would seal a forgery)."""


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strip_nul(v) for v in value]
    return value


_HEAD_SQL = ("SELECT id, body, hash, mac, (SELECT hash FROM audit_log WHERE id = 1) FROM audit_log "
             "ORDER BY id DESC LIMIT 1")


def _head(session: Session, mac) -> tuple[int, str, str | None]:
    """(last id, last hash, hash of record 1 = the chain's name), under the lock, the newest record checked."""
    row = session.execute(text(_HEAD_SQL)).first()
    if not row:
        return 0, GENESIS, None
    body = row[1].encode()
    if chain.link_of(body) != row[2] or mac(body) != row[3] or chain.body_id(body) != row[0]:
        log.critical("audit record %s fails its hash or MAC: audited changes are refused", row[0])
        raise AuditChainBroken(
            f"the newest audit record ({row[0]}) fails its check: the audit log was altered, or the audit key "
            "(TSLCD_AUDIT_KEY / TSLCD_SECRET_KEY) is not the one it was written with. Changes are refused until "
            "that is resolved; `tslcd audit verify --full` names the first bad record.")
    return row[0], row[2], row[4]


_COLUMNS = ("id", "body", "hash", "mac")
_SQLITE_INSERT = f"INSERT INTO audit_log ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_PG_COPY = f"COPY audit_log ({', '.join(_COLUMNS)}) FROM STDIN"


def record_many(*, session: Session, actor: Actor, changes: Iterable[Change]) -> int:
    """Append changes in one batch (imports write thousands at once); takes the lock if the caller did not."""
    if not _is_locked(session):
        if _strict:
            raise AuditLockError("audit.record_many without audit.lock(session) first")
        lock(session)
    changes = list(changes)
    if not changes:
        return 0
    mac = chain.mac_function(secrets.audit_mac_key())
    last_id, prev, chain_id = _head(session, mac)
    ts_text = utcnow().strftime(chain.TS_FORMAT)
    who, request_id = _clean(actor.username, "actor"), _clean(actor.request_id, "request_id")
    rows = []
    for change in changes:
        last_id += 1
        fields = [prev, last_id, ts_text, who, request_id, _clean(change.action, "action"),
                  _clean(change.object_type, "object_type"), change.object_id,
                  _clean(change.object_repr or "", "object_repr"), change.before, change.after, _clean(change.note)]
        body = chain.encode(fields, _json_default)
        if b"\\u0000" in body:  # only the images can hold one; PostgreSQL's jsonb refuses NUL in text
            fields[9], fields[10] = _strip_nul(change.before), _strip_nul(change.after)
            body = chain.encode(fields, _json_default)
        prev = chain.link_of(body)
        rows.append((last_id, body.decode(), prev, mac(body)))
    if chain_id is None:
        chain_id = rows[0][2]
    if is_postgres(session):
        cursor = session.connection().connection.driver_connection.cursor()
        with cursor.copy(_PG_COPY) as copy:
            for row in rows:
                copy.write_row(row)
    else:
        session.connection().exec_driver_sql(_SQLITE_INSERT, rows)
    tx = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((tx, chain_id, last_id, prev))
    return len(rows)


def record(*, session: Session, actor: Actor, action: str, obj: Any = None, object_type: str | None = None,
           before: dict | None = None, after: dict | None = None, note: str | None = None) -> None:
    """Append one change; `obj` supplies type, id, text and (unless given) the after-image."""
    if obj is not None:
        object_type = object_type or obj.__tablename__
        if after is None and action != "delete":
            after = snapshot(obj)
    record_many(session=session, actor=actor, changes=[Change(
        action=action, object_type=object_type or "", object_id=getattr(obj, "id", None),
        object_repr=describe(obj) if obj is not None else "", before=before, after=after, note=note)])


# Checkpoints: after every commit that appended records, never for rolled-back work
@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [p for p in pending if not within(p[0], previous)]


def within(tx, ancestor) -> bool:
    """Whether transaction `tx` is `ancestor` or nested in it."""
    while tx is not None:
        if tx is ancestor:
            return True
        tx = tx.parent
    return False


@event.listens_for(Session, "after_commit")
def _checkpoint_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    session.info.pop(_LOCKED, None)
    session.info.pop(_FLUSHED, None)
    if not pending:
        return
    _, chain_id, last_id, head = max(pending, key=lambda p: p[2])
    try:
        write_checkpoint(chain_id=chain_id, last_id=last_id, head=head, kind="commit")
    except Exception:  # the commit stands; the missing checkpoint is logged, never turned into an error
        log.exception("audit checkpoint for record %s could not be written", last_id)


@event.listens_for(Session, "after_transaction_end")
def _forget_on_end(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_LOCKED, None)
        session.info.pop(_FLUSHED, None)


_checkpoint_dir: Path | None = None


def set_checkpoint_dir(path: Path | str | None) -> None:
    """Where checkpoints go (None: `var_dir`/audit from settings); tests give each test its own."""
    global _checkpoint_dir
    _checkpoint_dir = Path(path) if path is not None else None


def checkpoint_path() -> Path:
    from tslcd.core.config import get_settings

    return (_checkpoint_dir or get_settings().var_dir / "audit") / "checkpoints.jsonl"


def _signed_part(cp: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in cp.items() if k != "sig"}, option=orjson.OPT_SORT_KEYS)


def write_checkpoint(*, chain_id: str, last_id: int, head: str, kind: str) -> dict[str, Any]:
    """Append a signed checkpoint to the file and publish it for the outside witness."""
    cp = {"v": 1, "kind": kind, "chain": chain_id, "last_id": last_id, "count": last_id, "head": head,
          "at": utcnow().isoformat(timespec="microseconds")}
    cp["sig"] = secrets.checkpoint_signing_key().sign(_signed_part(cp)).hex()
    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = orjson.dumps(cp) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        os.close(fd)
    events.publish(f"{CHECKPOINT_SUBJECT}.{chain_id[:16]}", cp)
    return cp


def signature_ok(cp: dict[str, Any]) -> bool:
    try:
        secrets.checkpoint_public_key().verify(bytes.fromhex(cp.get("sig", "")), _signed_part(cp))
        return True
    except (InvalidSignature, ValueError):
        return False


@dataclass
class _Checkpoints:
    newest: dict[str, Any] | None = None  # the one naming the most records
    anchor: dict[str, Any] | None = None  # the newest written by a successful verification
    bad: str | None = None  # a line whose signature does not hold


def _lines_backwards(path: Path, max_bytes: int) -> Iterable[bytes]:
    """The file's lines, last first, reading at most `max_bytes` from its end."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos, rest, read = fh.tell(), b"", 0
        while pos > 0 and read < max_bytes:
            step = min(1 << 20, pos)
            pos -= step
            fh.seek(pos)
            lines = (fh.read(step) + rest).split(b"\n")
            read += step
            rest = lines.pop(0) if pos > 0 else b""  # maybe cut: completed by the next chunk
            yield from reversed(lines)


def _read_checkpoints(chain_id: str, *, want_anchor: bool, max_bytes: int = 64 << 20) -> _Checkpoints:
    """Scan the file from its end: the newest checkpoint of this chain and (if wanted) the newest anchor."""
    found = _Checkpoints()
    path = checkpoint_path()
    if not path.exists():
        return found
    marker = chain_id[:16].encode()
    candidates: list[dict[str, Any]] = []
    for raw in _lines_backwards(path, max_bytes):
        if marker not in raw:
            continue
        if len(candidates) >= 64 and b'"verified"' not in raw:
            continue  # far enough from the end for the newest; only an anchor is still looked for
        try:
            cp = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(cp, dict) or cp.get("chain") != chain_id or not isinstance(cp.get("last_id"), int):
            continue
        if len(candidates) < 64:
            candidates.append(cp)
        if want_anchor and found.anchor is None and cp.get("kind") == "verified":
            if signature_ok(cp):
                found.anchor = cp
            else:
                found.bad = f"a checkpoint in {path} has a bad signature (the file was edited)"
        # Commits can finish in a slightly different order than their ids: look a little past what was found.
        if (found.anchor is not None or not want_anchor) and len(candidates) >= 64:
            break
    if candidates:
        newest = max(candidates, key=lambda c: c["last_id"])
        if signature_ok(newest):
            found.newest = newest
        else:
            found.bad = f"a checkpoint in {path} has a bad signature (the file was edited)"
    return found


# Verification
@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problem: str | None = None
    record_id: int | None = None
    mode: str = "full"  # full | incremental
    first_id: int | None = None  # first record whose MAC was checked
    last_id: int = 0  # the newest record in the log
    checkpoint_id: int | None = None  # the newest checkpoint's last record
    checkpoint_at: datetime | None = None
    witness: str | None = None  # what the outside witness (NATS) said, when configured
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _dsn(session: Session) -> str | None:
    url = session.get_bind().engine.url
    if url.get_backend_name() == "sqlite":
        return url.database if url.database and url.database != ":memory:" else None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


_cursor_names = itertools.count()


def _own_cursor(session: Session, named: bool = False):
    raw = session.connection().connection.driver_connection
    if not is_postgres(session):
        return raw.cursor()
    if named:  # a long exact check streams its rows instead of loading them all
        cursor = raw.cursor(name=f"tslcd_audit_{next(_cursor_names)}", binary=True)
        cursor.itersize = chain.ROWS_BATCH
        return cursor
    return raw.cursor(binary=True)


def _sealed(session: Session, record_id: int, mac) -> bool:
    """The record's MAC holds (the seal of everything before it, once the links are checked)."""
    body_sql = "convert_to(body, 'UTF8')" if is_postgres(session) else "CAST(body AS BLOB)"
    row = session.execute(text(f"SELECT {body_sql}, mac FROM audit_log WHERE id = :i"), {"i": record_id}).first()
    return row is not None and mac(bytes(row[0])) == row[1]


def _batches(session: Session, lo: int, hi: int, workers: int) -> Iterable[chain.Batch]:
    """The fast check of lo..hi: in worker processes when the range is long and the database is a file or a server
    they can reach, else on the session's own connection."""
    dialect, dsn = _dialect(session), _dsn(session)
    spans = chain.ranges(lo, hi)
    n = hi - lo + 1
    if workers > 1 and dsn is not None and n >= PARALLEL_FROM and (
            n >= COLD_PARALLEL_FROM or chain.pool_ready(workers)):
        try:
            yield from chain.check_in_processes(dialect, dsn, spans, workers)
            return
        except Exception as exc:  # the exact check below finds what the workers could not say
            chain.discard_pool()
            log.warning("audit verify workers failed (%s); checking in this process", exc)
            raise _WorkersFailed from exc
    cursor = chain.batch_cursor(dialect, session.connection().connection.driver_connection)
    yield from chain.check_batches(dialect, spans, cursor)


class _WorkersFailed(Exception):
    pass


def _check(session: Session, mac, prev: str, lo: int, hi: int, workers: int) -> chain.Finding:
    """Records lo..hi, the record before them ending in `prev`: links and hashes of all, the MAC of the last."""
    if hi < lo:
        return chain.Finding()
    try:
        return _check_batches(session, mac, prev, lo, hi, workers)
    except _WorkersFailed:
        return _check_batches(session, mac, prev, lo, hi, 1)


def _check_batches(session: Session, mac, prev: str, lo: int, hi: int, workers: int) -> chain.Finding:
    dialect = _dialect(session)
    checked, expected = 0, prev
    for batch in _batches(session, lo, hi, workers):
        if batch.ok and batch.first_link == expected:
            expected, checked = batch.last_hash, checked + batch.hi - batch.lo + 1
            continue
        with closing(_own_cursor(session, named=True)) as cursor:
            found = chain.check_rows(dialect, cursor, batch.lo, batch.hi, expected, None)
        if found.problem:
            found.checked += checked
            return found
        # The batch was read in a moment the workers' connections did not see all of it: the exact check holds.
        expected = session.execute(select(AuditRecord.hash).where(AuditRecord.id == batch.hi)).scalar()
        checked += found.checked
    if not _sealed(session, hi, mac):  # the links hold but the seal does not: find the first rewritten record
        with closing(_own_cursor(session, named=True)) as cursor:
            found = chain.check_rows(dialect, cursor, lo, hi, prev, mac)
        if not found.problem:  # pragma: no cover - the last record's MAC failed above
            found = chain.Finding(f"record {hi} was rewritten after it was written", hi, found.checked)
        return found
    return chain.Finding(checked=checked)


def verify(*, session: Session, actor: Actor, full: bool = False, workers: int | None = None) -> VerifyResult:
    """Check the chain (incremental from the last verified checkpoint unless `full`) and the checkpoints.

    Any edited, removed (in the middle or at the end), reordered or rewritten record is reported with the first
    bad id. A successful verification appends a "verified" checkpoint, the start of the next incremental one.
    """
    require_audit_reader(actor)
    started = time.perf_counter()
    mac = chain.mac_function(secrets.audit_mac_key())
    n_workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    head = session.execute(text(
        "SELECT id, hash, (SELECT hash FROM audit_log WHERE id = 1) FROM audit_log ORDER BY id DESC LIMIT 1")).first()
    last_id, last_hash, chain_id = (head[0], head[1], head[2]) if head else (0, GENESIS, None)
    result = VerifyResult(ok=True, checked=0, last_id=last_id)
    if chain_id is None and last_id:
        chain_id = ""  # record 1 is gone: the full check below names it
    cps = _read_checkpoints(chain_id, want_anchor=not full) if chain_id else _Checkpoints()
    witness = _witness(chain_id, result) if chain_id else None
    anchor = cps.anchor if not full else None
    if anchor is not None and anchor["last_id"] <= last_id:
        stored = session.execute(select(AuditRecord.hash).where(AuditRecord.id == anchor["last_id"])).scalar()
        # All records minus those after the anchor, in one statement (one snapshot): a count over the whole table
        # is served by its smallest index, a count of "id <= n" would read the table itself.
        count = session.execute(text("SELECT (SELECT count(*) FROM audit_log) - (SELECT count(*) FROM audit_log "
                                     "WHERE id > :a)"), {"a": anchor["last_id"]}).scalar()
        if stored == anchor["head"] and count == anchor["count"]:
            result.mode = "incremental"
            lo = anchor["last_id"] + 1
            finding = _check(session, mac, anchor["head"], lo, last_id, n_workers)
            result.first_id = lo if lo <= last_id else None
        else:
            result.notes.append(f"the history verified up to record {anchor['last_id']} changed; checked it all")
            anchor = None
    if result.mode == "full":
        result.first_id = 1 if last_id else None
        finding = _check(session, mac, GENESIS, 1, last_id, n_workers)
    result.checked = finding.checked
    if finding.problem:
        result.ok, result.problem, result.record_id = False, finding.problem, finding.record_id
    for cp, source in ((cps.newest, "checkpoint"), (cps.anchor, "verified checkpoint"),
                       (witness, "witness's checkpoint")):
        if cp is None or not result.ok:
            continue
        if result.checkpoint_id is None or cp["last_id"] > result.checkpoint_id:
            result.checkpoint_id, result.checkpoint_at = cp["last_id"], datetime.fromisoformat(cp["at"])
        if cp["last_id"] > last_id:
            result.ok, result.record_id = False, last_id + 1
            result.problem = (f"record {last_id + 1} is missing: the {source} of {cp['at']} names "
                              f"{cp['last_id']} records, the log ends at {last_id}")
        else:
            stored = session.execute(select(AuditRecord.hash).where(AuditRecord.id == cp["last_id"])).scalar()
            if stored != cp["head"]:
                result.ok, result.record_id = False, cp["last_id"]
                result.problem = f"record {cp['last_id']} differs from the {source} of {cp['at']}"
    if result.ok and cps.bad:
        result.ok, result.problem = False, cps.bad
    if result.ok and last_id and chain_id:
        try:
            write_checkpoint(chain_id=chain_id, last_id=last_id, head=last_hash, kind="verified")
        except OSError as exc:
            result.notes.append(f"the verified checkpoint could not be written: {exc}")
    result.seconds = round(time.perf_counter() - started, 4)
    return result


def _witness(chain_id: str, result: VerifyResult) -> dict[str, Any] | None:
    """The newest checkpoint the outside witness (JetStream) holds for this chain, signature checked."""
    from tslcd.core.config import get_settings

    if not get_settings().nats_url:
        return None
    try:
        cp = events.last_message(f"{CHECKPOINT_SUBJECT}.{chain_id[:16]}")
    except ConnectionError as exc:
        result.witness = f"unreachable: {exc}"
        return None
    if cp is None:
        result.witness = "no checkpoint yet"
        return None
    if cp.get("chain") != chain_id or not signature_ok(cp):
        result.witness = "its newest checkpoint has a bad signature"
        return None
    result.witness = f"checkpoint of record {cp['last_id']} at {cp['at']}"
    return cp


def list_records(*, session: Session, actor: Actor, object_type: str | None = None, object_id: int | None = None,
                 actor_name: str | None = None, limit: int = 50, offset: int = 0):
    """Newest first, filtered by object or actor."""
    require_audit_reader(actor)
    stmt = select(AuditRecord)
    if object_type:
        stmt = stmt.where(AuditRecord.object_type == object_type)
    if object_id is not None:
        stmt = stmt.where(AuditRecord.object_id == object_id)
    if actor_name:
        stmt = stmt.where(AuditRecord.actor == actor_name)
    return paginate(session=session, stmt=stmt, limit=limit, offset=offset, order_by=AuditRecord.id.desc())


def require_audit_reader(actor: Actor) -> None:
    if actor.role not in (Role.admin, Role.auditor):
        raise PermissionDenied("only administrators and auditors read the audit log")
