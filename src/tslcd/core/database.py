"""Engine, sessions and the declarative base shared by every domain."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import MetaData, Table, create_engine, event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from tslcd.core.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


@event.listens_for(Base.metadata, "before_create")
def _never_reuse_ids(metadata: MetaData, _connection, **_kw) -> None:
    """SQLite hands a deleted row's id to the next insert unless the table is AUTOINCREMENT: ids are never reused,
    so two objects never share one history in the audit log (PostgreSQL's sequences never go back)."""
    for table in metadata.tables.values():
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and pk[0].name == "id":
            table.dialect_options["sqlite"]["autoincrement"] = True


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA cache_size=-8192")  # 8 MiB a connection: a pool of them stays small
    cur.close()
    dbapi_conn.isolation_level = None  # SQLAlchemy's begin event issues BEGIN itself


def _sqlite_begin(conn) -> None:
    # Writers take the lock at BEGIN, so two writers queue instead of failing midway
    # and the audit chain is appended by one transaction at a time.
    immediate = conn.get_execution_options().get("tslcd_write", True)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and foreign keys, its folder is created."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, json_serializer=_json)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # psycopg prepares a statement after five runs, and PostgreSQL may then plan it once for any parameter: a
    # generic plan cannot use the trigram index for LIKE '%…%' (searches went from 2 ms to 80 ms). Plan each run.
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, json_serializer=_json,
                           connect_args={"options": "-c plan_cache_mode=force_custom_plan"})
    return engine


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None


def configure(url: str) -> Engine:
    """Point the process at a database (settings by default; tests choose their own)."""
    global _engine, _factory
    if _engine is not None:
        _engine.dispose()
    _engine = make_engine(url)
    _factory = sessionmaker(bind=_engine, expire_on_commit=False)
    return _engine


def get_engine() -> Engine:
    if _engine is None:
        from tslcd.core.config import get_settings

        configure(get_settings().database_url)
    assert _engine is not None
    return _engine


def new_session(*, write: bool = True) -> Session:
    """A session; read-only ones do not take SQLite's write lock."""
    engine = get_engine()
    assert _factory is not None
    if write:
        return _factory()
    return _factory(bind=engine.execution_options(tslcd_write=False))


@contextmanager
def session_scope(*, write: bool = True) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    session = new_session(write=write)
    try:
        yield session
        session.commit()
    except BaseException as exc:
        if getattr(exc, "keep_writes", False):
            session.commit()
        else:
            session.rollback()
        raise
    finally:
        session.close()


def is_postgres(session_or_engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows of one shape and return their new ids in row order, on the driver's bulk path.

    Ordered INSERT … RETURNING is sent row by row on SQLite and re-parsed per 1,000 rows by psycopg; drawing
    the ids first lets the rows go in one executemany (SQLite, where BEGIN IMMEDIATE keeps other writers out
    meanwhile) or one COPY (PostgreSQL, ids from the table's sequence).
    """
    if not rows:
        return []
    from tslcd.core import search

    search.fill(table.name, rows)
    if is_postgres(session):
        ids = list(session.scalars(text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                                   {"t": table.name, "n": len(rows)}))
        copy_rows(session, table, [{"id": i, **row} for i, row in zip(ids, rows)])
    else:
        # An AUTOINCREMENT table remembers the largest id it ever held; explicit ids above it move it on.
        seq = session.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table.name}).scalar() \
            if _has_sqlite_sequence(session) else None
        top = max(session.scalar(select(func.max(table.c.id))) or 0, seq or 0)
        ids = list(range(top + 1, top + 1 + len(rows)))
        payload = [{"id": i, **row} for i, row in zip(ids, rows)]
        session.execute(table.insert(), payload)
        search.sync(session.connection(), table.name, payload)
    return ids


def _has_sqlite_sequence(session: Session) -> bool:
    return session.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first() is not None


def copy_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Write rows of one shape with PostgreSQL's COPY, applying the column defaults and conversions of an INSERT."""
    dialect = session.get_bind().dialect
    given = list(rows[0])
    defaults = {c.key: c.default for c in table.columns if c.key not in given and c.default is not None}
    names = given + list(defaults)
    convert = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            values = [row[n] for n in given] + [d.arg(None) if d.is_callable else d.arg for d in defaults.values()]
            copy.write_row([f(v) if f is not None and v is not None else v for f, v in zip(convert, values)])


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database on `server_url`'s server, dropped afterwards.

    Tests and benchmarks that need a database of their own (migrations, big fixtures, bulk loads) use it.
    """
    from sqlalchemy.engine import make_url

    server = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"tslcd_scratch_{uuid.uuid4().hex[:12]}"
    with server.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        server.dispose()
