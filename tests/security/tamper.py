"""What an attacker with the database owner's rights does to the audit log: bypass the triggers, then edit.

Everything runs inside the test's transaction, so the triggers are back once it is rolled back.
"""

import hashlib

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from tslcd.security import chain


def bypass_triggers(session: Session) -> None:
    """Drop (SQLite) or disable (PostgreSQL) the append-only triggers, as the owner of the table can."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
    else:
        session.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        session.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))


def edit(session: Session, record_id: int, **values) -> None:
    bypass_triggers(session)
    sets = ", ".join(f'"{k}" = :{k}' for k in values)
    session.execute(text(f"UPDATE audit_log SET {sets} WHERE id = :id"), {"id": record_id, **values})


def delete(session: Session, where: str) -> None:
    bypass_triggers(session)
    session.execute(text(f"DELETE FROM audit_log WHERE {where}"))


def reorder(session: Session, a: int, b: int) -> None:
    bypass_triggers(session)
    session.execute(text("UPDATE audit_log SET id = -1 WHERE id = :a"), {"a": a})
    session.execute(text("UPDATE audit_log SET id = :a WHERE id = :b"), {"a": a, "b": b})
    session.execute(text("UPDATE audit_log SET id = :b WHERE id = -1"), {"b": b})


def stored_rows(session: Session) -> list[tuple]:
    dialect = session.get_bind().dialect.name
    cursor = session.connection().connection.driver_connection.cursor()
    cursor.execute(chain.select_sql(dialect), (1, 10**9))
    rows = cursor.fetchall()
    cursor.close()
    return [tuple(r) for r in rows]


def rewrite(session: Session, record_id: int, object_repr: str) -> None:
    """Edit one record and recompute every later record's hash and link, as one can without the key."""
    bypass_triggers(session)
    rows = stored_rows(session)
    prev = None
    for r in rows:
        if r[1] < record_id:
            prev = r[12]
            continue
        fields = list(r[:12])
        fields[0] = prev if prev is not None else chain.GENESIS
        if r[1] == record_id:
            fields[8] = object_repr
        new_hash = hashlib.sha256(orjson.dumps(tuple(fields))).hexdigest()  # the format is public, the key is not
        session.execute(text("UPDATE audit_log SET prev_hash = :p, hash = :h, object_repr = :o WHERE id = :id"),
                        {"p": fields[0], "h": new_hash, "o": fields[8], "id": r[1]})
        prev = new_hash
