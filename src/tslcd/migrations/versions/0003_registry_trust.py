"""registry trust: ids never reused (SQLite AUTOINCREMENT), diacritics-insensitive search keys and their indexes

SQLite gives a deleted row's id to the next insert unless the table is AUTOINCREMENT, so two objects could share
one history in the audit log: every table with an integer id is rebuilt as AUTOINCREMENT (SQLite's documented
rebuild: new table, copy, drop, rename, indexes and triggers again), and its sequence starts above the largest id
it ever held — in the table, or named by the audit log. PostgreSQL's sequences never go back.

Searchable tables get `search_key` (their searched columns without diacritics or case, see core/search.py), filled
for existing rows, and its index: FTS5 trigram on SQLite, pg_trgm GIN on PostgreSQL.

Revision ID: 0003
Revises: 0002
"""
import re

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Searched columns per table, as they were at this revision (core/search.py keeps the current declaration).
SEARCH = {"admin_units": ("name", "code"), "operators": ("name", "slug"), "agencies": ("name", "code"),
          "sites": ("name", "slug"), "devices": ("name", "mgmt_address"), "interfaces": ("name", "description"),
          "links": ("slug",), "services": ("name", "code")}
# Tables with an integer id, parents before children (the copy keeps every id, so the order only matters for
# readability: foreign keys are off during the rebuild and checked after it).
ID_TABLES = ["admin_units", "operators", "services", "snmp_credentials", "users", "audit_log", "agencies",
             "agreements", "api_tokens", "sites", "devices", "interfaces", "links", "subscriptions",
             "poller_cycles", "alarms", "thresholds"]


def _rebuild_autoincrement(conn, table: str) -> None:
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (table,)).scalar()
    if sql is None or "AUTOINCREMENT" in sql.upper():
        return
    pk = re.search(r",\s*CONSTRAINT (\w+) PRIMARY KEY \(id\)", sql)
    column = re.search(r"\bid INTEGER NOT NULL\b", sql)
    if pk is None or column is None:
        raise RuntimeError(f"unexpected definition of {table}: cannot make its id AUTOINCREMENT")
    new_sql = sql[:pk.start()] + sql[pk.end():]
    new_sql = new_sql.replace(column.group(0), "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT", 1)
    new_sql = re.sub(rf"^CREATE TABLE \"?{table}\"?", f"CREATE TABLE _new_{table}", new_sql)
    extras = [r[0] for r in conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL",
        (table,))]
    columns = ", ".join(f'"{r[1]}"' for r in conn.exec_driver_sql(f'PRAGMA table_info("{table}")'))
    conn.exec_driver_sql(new_sql)
    conn.exec_driver_sql(f'INSERT INTO _new_{table} ({columns}) SELECT {columns} FROM "{table}"')
    conn.exec_driver_sql(f'DROP TABLE "{table}"')
    conn.exec_driver_sql(f'ALTER TABLE _new_{table} RENAME TO "{table}"')
    for statement in extras:
        conn.exec_driver_sql(statement)
    top = conn.exec_driver_sql(f'SELECT max(id) FROM "{table}"').scalar() or 0
    if table != "audit_log":
        named = conn.exec_driver_sql("SELECT max(object_id) FROM audit_log WHERE object_type = ?", (table,)).scalar()
        top = max(top, named or 0)
    if top:
        conn.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
        conn.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, top))


def _fill_search_keys(conn, table: str, fields: tuple[str, ...]) -> None:
    from tslcd.core.search import key_of

    rows = conn.execute(sa.text(f"SELECT id, {', '.join(fields)} FROM {table}")).mappings().all()
    if rows:
        conn.execute(sa.text(f"UPDATE {table} SET search_key = :k WHERE id = :id"),
                     [{"id": r["id"], "k": key_of(r, fields)} for r in rows])


def upgrade() -> None:
    from tslcd.core.search import create_index

    conn = op.get_bind()
    with op.batch_alter_table("agencies", schema=None) as batch_op:  # lists default to what is in force today
        batch_op.create_index(batch_op.f("ix_agencies_valid_from"), ["valid_from"], unique=False)
        batch_op.create_index(batch_op.f("ix_agencies_valid_to"), ["valid_to"], unique=False)
    if conn.dialect.name == "sqlite":
        for table in ID_TABLES:
            _rebuild_autoincrement(conn, table)
    for table, fields in SEARCH.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("search_key", sa.Text(), server_default="", nullable=False))
        _fill_search_keys(conn, table, fields)
        create_index(conn, table, populate=True)


def downgrade() -> None:
    from tslcd.core.search import drop_index

    conn = op.get_bind()
    with op.batch_alter_table("agencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agencies_valid_to"))
        batch_op.drop_index(batch_op.f("ix_agencies_valid_from"))
    for table in SEARCH:
        drop_index(conn, table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("search_key")
