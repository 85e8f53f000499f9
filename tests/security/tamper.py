"""What an attacker with the database owner's rights does to the audit log: bypass the triggers, then edit.

Everything runs inside the test's transaction, so the triggers are back once it is rolled back.
"""

import hashlib

import orjson
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tslcd.security import chain
from tslcd.security.models import AuditRecord


def bypass_triggers(session: Session) -> None:
    """Drop (SQLite) or disable (PostgreSQL) the append-only triggers, as the owner of the table can."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
    else:
        session.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        session.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))


def _body(session: Session, record_id: int) -> list:
    return orjson.loads(session.execute(text("SELECT body FROM audit_log WHERE id = :id"), {"id": record_id}).scalar())


def edit(session: Session, record_id: int, **values) -> None:
    """Change fields of a record's body (its other columns are generated from the body and cannot be set)."""
    bypass_triggers(session)
    body = _body(session, record_id)
    for name, value in values.items():
        body[chain.FIELDS.index(name)] = orjson.loads(value) if name in ("before", "after") else value
    session.execute(text("UPDATE audit_log SET body = :b WHERE id = :id"),
                    {"b": orjson.dumps(body).decode(), "id": record_id})


def delete(session: Session, where: str) -> None:
    bypass_triggers(session)
    session.execute(text(f"DELETE FROM audit_log WHERE {where}"))


def reorder(session: Session, a: int, b: int) -> None:
    bypass_triggers(session)
    session.execute(text("UPDATE audit_log SET id = -1 WHERE id = :a"), {"a": a})
    session.execute(text("UPDATE audit_log SET id = :a WHERE id = :b"), {"a": a, "b": b})
    session.execute(text("UPDATE audit_log SET id = :b WHERE id = -1"), {"b": b})


def stored_rows(session: Session) -> list[tuple]:
    """(id, body, hash, mac, prev_hash) of every record, in order."""
    return [tuple(r) for r in session.execute(
        select(AuditRecord.id, AuditRecord.body, AuditRecord.hash, AuditRecord.mac, AuditRecord.prev_hash)
        .order_by(AuditRecord.id)).all()]


def rewrite(session: Session, record_id: int, object_repr: str) -> None:
    """Edit one record and recompute every later record's body and link, as one can without the key (the format
    and SHA-256 are public); the MACs stay as they were."""
    bypass_triggers(session)
    prev = None
    for rid, body_text, stored_hash, _mac, _prev in stored_rows(session):
        if rid < record_id:
            prev = stored_hash
            continue
        body = orjson.loads(body_text)
        body[0] = prev if prev is not None else chain.GENESIS
        if rid == record_id:
            body[8] = object_repr
        raw = orjson.dumps(body)
        prev = hashlib.sha256(raw).hexdigest()
        session.execute(text("UPDATE audit_log SET body = :b, hash = :h WHERE id = :id"),
                        {"b": raw.decode(), "h": prev, "id": rid})
