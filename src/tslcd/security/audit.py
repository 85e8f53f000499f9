"""Append-only audit log in which every record carries the hash of the one before it."""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from tslcd.core.database import copy_rows, is_postgres, utcnow
from tslcd.core.errors import PermissionDenied
from tslcd.core.listing import paginate
from tslcd.security.actor import Actor
from tslcd.security.models import AuditRecord, Role

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x7453_4C43  # "tSLC": serialises appenders on PostgreSQL


def jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return _utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def snapshot(obj: Any) -> dict[str, Any]:
    """Column values of an ORM object, JSON-safe, without the columns a model marks secret."""
    hidden = getattr(obj, "__audit_exclude__", ())
    return {
        attr.key: jsonable(getattr(obj, attr.key))
        for attr in inspect(obj).mapper.column_attrs
        if attr.key not in hidden and attr.key not in ("created_at", "updated_at")
    }


def _utc_text(ts: datetime) -> str:
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts.isoformat(timespec="microseconds")


def _digest(prev_hash: str, row: dict[str, Any]) -> str:
    payload = orjson.dumps(
        [row["id"], _utc_text(row["ts"]), row["actor"], row["request_id"], row["action"], row["object_type"],
         row["object_id"], row["object_repr"], row["before"], row["after"], row["note"]],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(prev_hash.encode() + payload).hexdigest()


@dataclass
class Change:
    action: str  # create | update | delete | <verb>
    object_type: str
    object_id: int | None
    object_repr: str = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    note: str | None = None


def _head(session: Session) -> tuple[int, str]:
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    row = session.execute(select(AuditRecord.id, AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1)).first()
    return (row[0], row[1]) if row else (0, GENESIS)


def record_many(*, session: Session, actor: Actor, changes: Iterable[Change]) -> int:
    """Append changes in one batch (imports write thousands at once)."""
    last_id, prev = _head(session)
    ts = utcnow()
    rows = []
    for change in changes:
        last_id += 1
        row = {
            "id": last_id, "ts": ts, "actor": actor.username, "request_id": actor.request_id,
            "action": change.action, "object_type": change.object_type, "object_id": change.object_id,
            "object_repr": change.object_repr[:300], "before": change.before, "after": change.after,
            "note": change.note,
        }
        row["prev_hash"] = prev
        row["hash"] = prev = _digest(prev, row)
        rows.append(row)
    if rows and is_postgres(session):
        copy_rows(session, AuditRecord.__table__, rows)  # imports append thousands of records at once
    elif rows:
        session.execute(AuditRecord.__table__.insert(), rows)
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
        object_repr=str(obj) if obj is not None else "", before=before, after=after, note=note)])


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problem: str | None = None
    record_id: int | None = None


def verify(*, session: Session, actor: Actor) -> VerifyResult:
    """Recompute the chain; any edited, removed or reordered record breaks it."""
    require_audit_reader(actor)
    prev, expected_id, checked = GENESIS, 1, 0
    cols = [c for c in AuditRecord.__table__.columns]
    result = session.execute(select(*cols).order_by(AuditRecord.id).execution_options(yield_per=5000))
    for r in result.mappings():
        if r["id"] != expected_id:
            return VerifyResult(False, checked, f"record {expected_id} is missing (next is {r['id']})", expected_id)
        if r["prev_hash"] != prev:
            return VerifyResult(False, checked, f"record {r['id']} does not follow the record before it", r["id"])
        if _digest(prev, dict(r)) != r["hash"]:
            return VerifyResult(False, checked, f"record {r['id']} was altered after it was written", r["id"])
        prev, expected_id, checked = r["hash"], expected_id + 1, checked + 1
    return VerifyResult(True, checked)


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
