"""Users, API tokens, login throttling and the keyed, append-only audit log."""

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.orm import Mapped, column_property, mapped_column

from tslcd.core.database import Base, TimestampMixin, utcnow
from tslcd.core.types import UTCDateTime


class Role(str, enum.Enum):
    """What a user may see and change; enforced in the services."""

    admin = "admin"
    noc = "noc"  # CBĐTW network operation centre: the whole network
    partner = "partner"  # a partner operator: only the segments it is responsible for
    agency = "agency"  # an agency's staff: its own agency
    auditor = "auditor"  # read-only, plus the audit log


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __secret_columns__ = ("password_hash",)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    # Foreign keys to registry tables are declared there (registry depends on security, not the reverse).
    operator_id: Mapped[int | None] = mapped_column(Integer, index=True)
    agency_id: Mapped[int | None] = mapped_column(Integer, index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    def __str__(self) -> str:
        return f"{self.username} ({getattr(self.role, 'value', self.role)})" if self.role else self.username


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, so a stolen database yields no usable token."""

    __tablename__ = "api_tokens"
    __secret_columns__ = ("token_hash",)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __str__(self) -> str:
        return f"token {self.prefix}… ({self.name})" if self.name else f"token {self.prefix}…"


class LoginThrottle(Base):
    """Failed logins counted per username (known or not) and per client address; shared by every server process."""

    __tablename__ = "login_throttle"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # "user" | "address"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in the current window
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    lockouts: Mapped[int] = mapped_column(Integer, default=0)  # each one doubles the next lock-out
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class _BodyField(FunctionElement):
    """Field `index` of an audit record's body (the JSON array the chain hashes), read in SQL.

    SQLite: json_extract; PostgreSQL: from the body parsed as jsonb. Typed, so values come back as the columns
    they replace did (times aware UTC, images as dicts).
    """

    inherit_cache = True
    name = "tslcd_audit_field"
    _traverse_internals = [*FunctionElement._traverse_internals, ("index", InternalTraversal.dp_plain_obj),
                           ("kind", InternalTraversal.dp_plain_obj)]

    def __init__(self, body, index: int, kind: str = "text"):
        self.index, self.kind = index, kind  # kind: text | int | ts | json
        self.type = {"int": Integer(), "json": JSON(), "ts": UTCDateTime()}.get(kind, Text())
        super().__init__(body)


def _body_sql(element: _BodyField, compiler, **kw) -> str:
    return compiler.process(list(element.clauses)[0], **kw)


@compiles(_BodyField, "sqlite")
def _body_field_sqlite(element: _BodyField, compiler, **kw) -> str:
    return f"json_extract({_body_sql(element, compiler, **kw)}, '$[{element.index}]')"


@compiles(_BodyField, "postgresql")
def _body_field_pg(element: _BodyField, compiler, **kw) -> str:
    i, body = element.index, f"{_body_sql(element, compiler, **kw)}::jsonb"
    if element.kind == "json":
        return f"nullif(({body} -> {i}), 'null'::jsonb)"
    if element.kind == "int":
        return f"(({body} ->> {i})::integer)"
    if element.kind == "ts":
        return f"((({body} ->> {i})::timestamp) AT TIME ZONE 'UTC')"
    return f"({body} ->> {i})"


class AuditRecord(Base):
    """One change, append-only. A record is stored as the `body` the chain hashes (security/chain.py), its SHA-256
    link and its MAC, nothing else: every other attribute is read out of the body in SQL, so no column can say
    something else than the hashed body. The filters have expression indexes.

    Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on both backends; on PostgreSQL the application
    role is also given no right to do them (`tslcd db grant`).
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    body: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of body: the next record's link
    mac: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256 of body under the audit key

    prev_hash: Mapped[str] = column_property(_BodyField(body.column, 0))
    ts: Mapped[datetime] = column_property(_BodyField(body.column, 2, "ts"))
    actor: Mapped[str] = column_property(_BodyField(body.column, 3))
    request_id: Mapped[str | None] = column_property(_BodyField(body.column, 4))
    action: Mapped[str] = column_property(_BodyField(body.column, 5))
    object_type: Mapped[str] = column_property(_BodyField(body.column, 6))
    object_id: Mapped[int | None] = column_property(_BodyField(body.column, 7, "int"))
    object_repr: Mapped[str] = column_property(_BodyField(body.column, 8))
    before: Mapped[dict | None] = column_property(_BodyField(body.column, 9, "json"))
    after: Mapped[dict | None] = column_property(_BodyField(body.column, 10, "json"))
    note: Mapped[str | None] = column_property(_BodyField(body.column, 11))

    __table_args__ = (
        Index("ix_audit_log_object", _BodyField(body.column, 6), _BodyField(body.column, 7, "int")),
        Index("ix_audit_log_actor", _BodyField(body.column, 3)),
    )


APPEND_ONLY_FUNCTION = "tslcd_audit_append_only"


def append_only_ddl(dialect: str) -> list[str]:
    """The statements that make audit_log append-only on `dialect` (create_all and migration 0004 share them)."""
    if dialect == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {APPEND_ONLY_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'audit_log is append-only: ' || TG_OP || ' refused',
                          ERRCODE = 'insufficient_privilege';
END
$fn$""",
            "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
            f"CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            f"FOR EACH ROW EXECUTE FUNCTION {APPEND_ONLY_FUNCTION}()",
            "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
            f"CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {APPEND_ONLY_FUNCTION}()",
        ]
    if dialect == "sqlite":
        return [
            "DROP TRIGGER IF EXISTS audit_log_no_update",
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
            "DROP TRIGGER IF EXISTS audit_log_no_delete",
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
        ]
    return []


def drop_append_only_ddl(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return ["DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
                "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
                f"DROP FUNCTION IF EXISTS {APPEND_ONLY_FUNCTION}()"]
    if dialect == "sqlite":
        return ["DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete"]
    return []


@event.listens_for(AuditRecord.__table__, "after_create")
def _append_only(_table, connection, **_kw) -> None:
    for statement in append_only_ddl(connection.dialect.name):
        connection.exec_driver_sql(statement)
