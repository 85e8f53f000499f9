"""audit: keyed chain, append-only triggers, login throttling

Re-keys the existing audit chain: the old unkeyed SHA-256 chain is verified first (the migration refuses, saying
where, if it is broken), secret columns are removed from the records' images, then every record gets its
HMAC-SHA256 under the key derived from settings (security/chain.py). Then triggers make audit_log append-only.

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


def _redacted(text: str | None, hidden: frozenset[str] | None) -> str | None:
    if text is None or not hidden:
        return text
    value = orjson.loads(text)
    if not isinstance(value, dict) or not hidden & value.keys():
        return text
    return orjson.dumps({k: v for k, v in value.items() if k not in hidden}).decode()


def rekey(bind) -> int:
    """Verify the legacy chain, then write the keyed one; the number of records re-keyed."""
    from tslcd.security import chain, secrets

    dialect = bind.dialect.name
    last = bind.exec_driver_sql("SELECT max(id) FROM audit_log").scalar() or 0
    if not last:
        return 0
    mac = chain.mac_function(secrets.audit_mac_key())
    hidden_by_type = secrets.declared_secrets()
    select_sql = chain.select_sql(dialect)
    json_in = "CAST(:{} AS JSON)" if dialect == "postgresql" else ":{}"  # SQLite: the text as it is
    update = sa.text(f'UPDATE audit_log SET prev_hash = :prev_hash, hash = :hash, '
                     f'"before" = {json_in.format("before")}, "after" = {json_in.format("after")} WHERE id = :id')
    old_prev, new_prev, expected = chain.GENESIS, chain.GENESIS, 1
    for lo in range(1, last + 1, BATCH):
        cursor = bind.connection.driver_connection.cursor()
        cursor.execute(select_sql, (lo, min(lo + BATCH - 1, last)))
        rows = cursor.fetchall()
        cursor.close()
        changes = []
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
            fields = (new_prev, *r[1:9], before, after, r[11])
            new_prev = mac(chain.canonical(fields))
            changes.append({"id": rid, "prev_hash": fields[0], "hash": new_prev, "before": before, "after": after})
        if changes:
            bind.execute(update, changes)
    if expected != last + 1:
        _refuse(f"record {expected} is missing")
    return last


def _refuse(problem: str) -> None:
    raise RuntimeError(
        f"migration 0004 stopped: the existing audit chain is broken ({problem}), so it was not re-keyed and nothing "
        "was changed. Find out what happened to that record (compare with a backup of audit_log) before upgrading; "
        "re-keying would make the broken chain look intact.")
