"""The audit log in the database itself: migration 0004 re-keys an existing chain, and on PostgreSQL the
application's role may only read and append."""

import hashlib
import uuid
from datetime import datetime, timezone

import orjson
import pytest
from sqlalchemy import MetaData, Table, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tests.conftest import own_database
from tslcd.core.database import make_engine
from tslcd.core.errors import DomainValidationError
from tslcd.core.migrate import upgrade
from tslcd.security import audit, service
from tslcd.security.actor import SYSTEM
from tslcd.security.dbroles import grant_app_role
from tslcd.security.models import AuditRecord, Role
from tslcd.security.schemas import UserCreate


def _legacy_digest(prev_hash: str, row: dict) -> str:
    """The unkeyed chain of revisions 0001-0003, as it was written."""
    ts = row["ts"].astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")
    payload = orjson.dumps([row["id"], ts, row["actor"], row["request_id"], row["action"], row["object_type"],
                            row["object_id"], row["object_repr"], row["before"], row["after"], row["note"]],
                           option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + payload).hexdigest()


def _legacy_log(engine, n=6) -> None:
    ts = datetime(2026, 5, 1, 8, 30, 0, 123456, tzinfo=timezone.utc)
    prev, rows = "0" * 64, []
    for i in range(1, n + 1):
        after = {"username": "lan", "password_hash": "$argon2id$v=19$m=65536$legacy"} if i == 2 else \
            {"slug": f"site-{i}", "name": "Trạm Quảng Ninh"}
        row = {"id": i, "ts": ts, "actor": "admin", "request_id": None, "action": "create",
               "object_type": "users" if i == 2 else "sites", "object_id": i, "object_repr": f"<object {i}>",
               "before": None, "after": after, "note": None}
        row["prev_hash"], row["hash"] = prev, _legacy_digest(prev, row)
        prev = row["hash"]
        rows.append(row)
    with engine.begin() as conn:  # the table as revisions 0001-0003 made it
        conn.execute(Table("audit_log", MetaData(), autoload_with=conn).insert(), rows)


def _upgrade(engine, revision="head") -> None:
    with engine.connect() as conn:
        upgrade(revision, connection=conn)
        conn.commit()


def test_migration_rekeys_the_existing_chain(fresh_url):
    engine = make_engine(fresh_url)
    try:
        _upgrade(engine, "0003")
        _legacy_log(engine)
        _upgrade(engine)
        with Session(engine) as s:
            result = audit.verify(session=s, actor=SYSTEM, full=True)
            assert (result.ok, result.checked) == (True, 6), result
            users = s.get(AuditRecord, 2)
            assert users.after == {"username": "lan"}  # the password hash the old log kept is gone
            assert s.get(AuditRecord, 3).after == {"slug": "site-3", "name": "Trạm Quảng Ninh"}
            with pytest.raises(DBAPIError, match="append-only"):
                s.execute(text("UPDATE audit_log SET body = body WHERE id = 1"))
            s.rollback()
            service.create_user(session=s, actor=SYSTEM, user_in=UserCreate(username="after", role=Role.noc))
            s.commit()
            assert audit.verify(session=s, actor=SYSTEM).checked == 1  # incremental after the first verify
    finally:
        engine.dispose()


def test_migration_refuses_a_broken_legacy_chain(fresh_url):
    engine = make_engine(fresh_url)
    try:
        _upgrade(engine, "0003")
        _legacy_log(engine)
        with engine.begin() as conn:  # no triggers before 0004
            conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE id = 4"))
        with pytest.raises(RuntimeError, match=r"broken \(record 4 was altered after it was written\)"):
            _upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
            assert conn.execute(text("SELECT actor FROM audit_log WHERE id = 4")).scalar() == "someone-else"
    finally:
        engine.dispose()


def test_the_application_role_may_only_read_and_append(engine, tmp_path_factory):
    """On PostgreSQL the server runs as a role granted by `tslcd db grant`: the database itself refuses it any
    change to audit_log, and it cannot disable the triggers either. SQLite has no roles and says so."""
    if engine.dialect.name != "postgresql":
        with engine.connect() as conn, pytest.raises(DomainValidationError, match="PostgreSQL only"):
            grant_app_role(conn, "tslcd_app")
        return
    role = f"tslcd_app_{uuid.uuid4().hex[:8]}"
    server = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    try:
        with own_database(engine, tmp_path_factory) as own:
            with own.begin() as conn:
                with pytest.raises(DomainValidationError, match="superuser"):
                    grant_app_role(conn, "postgres")
            with own.begin() as conn:
                grant_app_role(conn, role)
            app = make_engine(make_url(own.url).set(username=role).render_as_string(hide_password=False))
            try:
                with Session(app) as s:
                    assert s.scalar(text("SELECT current_user")) == role
                    service.create_user(session=s, actor=SYSTEM, user_in=UserCreate(username="lan", role=Role.noc))
                    s.commit()
                    assert audit.verify(session=s, actor=SYSTEM).ok
                    for statement in ("UPDATE audit_log SET body = body WHERE id = 1", "DELETE FROM audit_log",
                                      "TRUNCATE audit_log"):
                        with pytest.raises(DBAPIError, match="permission denied"):
                            s.execute(text(statement))
                        s.rollback()
                    for statement in ("ALTER TABLE audit_log DISABLE TRIGGER USER",
                                      "DROP TRIGGER audit_log_append_only ON audit_log"):
                        with pytest.raises(DBAPIError, match="must be (the )?owner"):
                            s.execute(text(statement))
                        s.rollback()
            finally:
                app.dispose()
    finally:
        with server.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        server.dispose()
