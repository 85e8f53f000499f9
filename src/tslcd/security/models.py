"""Users, API tokens, login throttling and the keyed, append-only audit log."""

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

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


class AuditRecord(Base):
    """One change, append-only; `hash` is the HMAC of the record and the previous record's hash (security/audit.py).

    Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on both backends; on PostgreSQL the application
    role is also given no right to do them (`tslcd db grant`).
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    object_type: Mapped[str] = mapped_column(String(40), index=True)
    object_id: Mapped[int | None] = mapped_column(Integer)
    object_repr: Mapped[str] = mapped_column(String(300), default="")
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


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
