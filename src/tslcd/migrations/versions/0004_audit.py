"""audit: keyed chain, append-only triggers, login throttling

Rebuilds the audit log in the keyed format (security/chain.py): the old unkeyed SHA-256 chain is verified first
(the migration refuses, saying where, if it is broken), secret columns are removed from the records' images, then
every record is written as one hashed body, its SHA-256 link and its HMAC-SHA256 under the key derived from
settings, the other columns generated from the body. Then triggers make audit_log append-only.

Revision ID: 0004
Revises: 0003
"""
import hashlib
from datetime import datetime

import orjson
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    op.create_table(
        'login_throttle',
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lockouts', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('kind', 'key', name=op.f('pk_login_throttle')),
    )
    bind = op.get_bind()
    rekey(bind)
    from tslcd.security.models import append_only_ddl

    for statement in append_only_ddl(bind.dialect.name):
        bind.exec_driver_sql(statement)


def downgrade() -> None:
    from tslcd.security.models import drop_append_only_ddl

    bind = op.get_bind()
    for statement in drop_append_only_ddl(bind.dialect.name):
        bind.exec_driver_sql(statement)
    op.drop_table('login_throttle')


def _legacy_digest(prev_hash: str, r: tuple) -> str:
    """The hash of a record under the chain of 0001-0003 (unkeyed SHA-256 over the parsed values)."""
    _, rid, ts, actor, request_id, action, object_type, object_id, object_repr, before, after, note = r[:12]
    ts_text = datetime.fromisoformat(ts).isoformat(timespec="microseconds")
    payload = orjson.dumps(
        [rid, ts_text, actor, request_id, action, object_type, object_id, object_repr,
         orjson.loads(before) if before is not None else None, orjson.loads(after) if after is not None else None,
         note], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + payload).hexdigest()


def _redacted(text: str | None, hidden: frozenset[str] | None):
    """The image as a JSON value, without the secret columns."""
    if text is None:
        return None
    value = orjson.loads(text)
    if isinstance(value, dict) and hidden and hidden & value.keys():
        return {k: v for k, v in value.items() if k not in hidden}
    return value


_LEGACY_SELECT = ("SELECT prev_hash, id, {ts}, actor, request_id, action, object_type, object_id, object_repr, "
                  "{before}, {after}, note, hash FROM audit_log_legacy WHERE id >= {p} AND id <= {p} ORDER BY id")


def rekey(bind) -> int:
    """Verify the legacy chain, then write the keyed one in a new audit_log; the number of records re-keyed."""
    from tslcd.security import chain, secrets
    from tslcd.security.models import AuditRecord

    dialect = bind.dialect.name
    bind.exec_driver_sql("DROP INDEX IF EXISTS ix_audit_log_object_type")
    bind.exec_driver_sql("ALTER TABLE audit_log RENAME TO audit_log_legacy")
    if dialect == "postgresql":
        bind.exec_driver_sql("ALTER TABLE audit_log_legacy RENAME CONSTRAINT pk_audit_log TO pk_audit_log_legacy")
        bind.exec_driver_sql("ALTER SEQUENCE IF EXISTS audit_log_id_seq RENAME TO audit_log_legacy_id_seq")
    AuditRecord.__table__.dialect_options["sqlite"]["autoincrement"] = True  # as create_all makes it
    AuditRecord.__table__.create(bind)
    last = bind.exec_driver_sql("SELECT max(id) FROM audit_log_legacy").scalar() or 0
    mac = chain.mac_function(secrets.audit_mac_key())
    hidden_by_type = secrets.declared_secrets()
    p = "%s" if dialect == "postgresql" else "?"
    as_text = '"{}"::text' if dialect == "postgresql" else '"{}"'
    ts = "to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')" if dialect == "postgresql" else "ts"
    select_sql = _LEGACY_SELECT.format(ts=ts, before=as_text.format("before"), after=as_text.format("after"), p=p)
    insert = f"INSERT INTO audit_log (id, body, hash, mac) VALUES ({p}, {p}, {p}, {p})"
    old_prev, new_prev, expected = chain.GENESIS, chain.GENESIS, 1
    for lo in range(1, last + 1, BATCH):
        cursor = bind.connection.driver_connection.cursor()
        cursor.execute(select_sql, (lo, min(lo + BATCH - 1, last)))
        rows = cursor.fetchall()
        cursor.close()
        new_rows = []
        for r in rows:
            rid = r[1]
            if rid != expected:
                _refuse(f"record {expected} is missing (next is {rid})")
            if r[0] != old_prev:
                _refuse(f"record {rid} does not follow the record before it")
            if _legacy_digest(old_prev, r) != r[12]:
                _refuse(f"record {rid} was altered after it was written")
            old_prev, expected = r[12], expected + 1
            hidden = hidden_by_type.get(r[6])
            before, after = _redacted(r[9], hidden), _redacted(r[10], hidden)
            ts = datetime.fromisoformat(r[2])
            body = chain.encode((new_prev, rid, ts.strftime(chain.TS_FORMAT), *r[3:9], before, after, r[11]))
            new_prev = chain.link_of(body)
            new_rows.append((rid, body.decode(), new_prev, mac(body)))
        if new_rows:
            cursor = bind.connection.driver_connection.cursor()
            cursor.executemany(insert, new_rows)
            cursor.close()
    if expected != last + 1:
        _refuse(f"record {expected} is missing")
    bind.exec_driver_sql("DROP TABLE audit_log_legacy")
    return last


def _refuse(problem: str) -> None:
    raise RuntimeError(
        f"migration 0004 stopped: the existing audit chain is broken ({problem}), so it was not re-keyed and nothing "
        "was changed. Find out what happened to that record (compare with a backup of audit_log) before upgrading; "
        "re-keying would make the broken chain look intact.")
