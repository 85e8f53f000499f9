"""Diacritics- and case-insensitive substring search, indexed on both backends.

A searchable table keeps `search_key`: its searched columns folded (core.text.fold) and joined. The key is
written with the row (ORM events, bulk inserts and bulk updates call `fill`) and indexed:
- PostgreSQL: a trigram GIN index (extension pg_trgm) on the column, which serves LIKE '%…%';
- SQLite: an FTS5 table with the trigram tokenizer holding the same keys by row id, which serves LIKE '%…%' for
  patterns of three characters or more. It is written by the application, not by triggers: an FTS5 insert from a
  trigger costs ten times one in bulk (100 µs a row), which a 100,000-row import would feel. ORM writes keep it
  through mapper events; bulk writes call `sync`.
Shorter queries, or queries with LIKE wildcards in them, scan `search_key` instead (still folded).
"""

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table, Text, event, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from tslcd.core.text import fold

SEPARATOR = " \u2022 "  # between folded columns; nobody types it, so a match never spans two columns
SEARCH_FIELDS: dict[str, tuple[str, ...]] = {}  # table name -> searched columns


def key_of(values: Mapping[str, Any], fields: Iterable[str]) -> str:
    return SEPARATOR.join(fold(str(values.get(f) or "")) for f in fields)


class Searchable:
    """Mixin: declare `__search_fields__`; the table gets `search_key` and its index."""

    __search_fields__: tuple[str, ...] = ()
    search_key: Mapped[str] = mapped_column(Text, default="", server_default="")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("__tablename__")
        if name and cls.__search_fields__:
            SEARCH_FIELDS[name] = cls.__search_fields__


def _before_write(_mapper, _connection, target: Any) -> None:
    target.search_key = key_of({f: getattr(target, f, None) for f in target.__search_fields__},
                               target.__search_fields__)


def _after_write(_mapper, connection: Connection, target: Any) -> None:
    if connection.dialect.name == "sqlite":
        _sqlite_sync(connection, target.__tablename__, [(target.id, target.search_key)])


def _after_delete(_mapper, connection: Connection, target: Any) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"DELETE FROM {target.__tablename__}_search WHERE rowid = ?", (target.id,))


event.listen(Searchable, "before_insert", _before_write, propagate=True)
event.listen(Searchable, "before_update", _before_write, propagate=True)
event.listen(Searchable, "after_insert", _after_write, propagate=True)
event.listen(Searchable, "after_update", _after_write, propagate=True)
event.listen(Searchable, "after_delete", _after_delete, propagate=True)


def _sqlite_sync(connection: Connection, table_name: str, pairs: list[tuple[int, str]]) -> None:
    fts = f"{table_name}_search"
    connection.exec_driver_sql(f"DELETE FROM {fts} WHERE rowid = ?", [(i,) for i, _ in pairs])
    connection.exec_driver_sql(f"INSERT INTO {fts} (rowid, search_key) VALUES (?, ?)", pairs)


def sync(connection: Connection, table_name: str, rows: list[dict[str, Any]]) -> None:
    """Index rows written in bulk (with their ids and search keys); PostgreSQL's index keeps itself."""
    if table_name in SEARCH_FIELDS and rows and connection.dialect.name == "sqlite":
        _sqlite_sync(connection, table_name, [(r["id"], r["search_key"]) for r in rows])


def fill(table_name: str, rows: list[dict[str, Any]]) -> None:
    """Add `search_key` to rows written in bulk (every searched column must be in the row)."""
    fields = SEARCH_FIELDS.get(table_name)
    if not fields:
        return
    for row in rows:
        row["search_key"] = key_of(row, fields)


def index_names(table_name: str) -> set[str]:
    """Schema objects the search index adds (not in the models' metadata; migrations compare around them)."""
    fts = f"{table_name}_search"
    return {fts, f"{fts}_data", f"{fts}_idx", f"{fts}_content", f"{fts}_docsize", f"{fts}_config",
            f"ix_{table_name}_search_trgm"}


def is_index_object(name: str | None) -> bool:
    return bool(name) and any(name in index_names(t) for t in SEARCH_FIELDS)


def create_index(conn: Connection, table_name: str, *, populate: bool = False) -> None:
    """Create the search index of one table (and fill it from existing rows when `populate`)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS ix_{table_name}_search_trgm ON {table_name} "
                             "USING gin (search_key gin_trgm_ops)")
        return
    fts = f"{table_name}_search"
    conn.exec_driver_sql(f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5(search_key, tokenize='trigram')")
    if populate:
        conn.exec_driver_sql(f"DELETE FROM {fts}")
        conn.exec_driver_sql(f"INSERT INTO {fts} (rowid, search_key) SELECT id, search_key FROM {table_name}")


def drop_index(conn: Connection, table_name: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS ix_{table_name}_search_trgm")
        return
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table_name}_search")


def _after_create(table: Table, conn: Connection, **_kw: Any) -> None:
    if table.name in SEARCH_FIELDS and "search_key" in table.c:
        create_index(conn, table.name)


def _before_drop(table: Table, conn: Connection, **_kw: Any) -> None:
    if table.name in SEARCH_FIELDS:
        drop_index(conn, table.name)


event.listen(Table, "after_create", _after_create)
event.listen(Table, "before_drop", _before_drop)


def _like_pattern(folded: str) -> str:
    return f"%{folded}%"


def matching(table: Table, query: str, *, postgres: bool):
    """A condition on `table` for rows whose search key contains the folded query."""
    folded = fold(query)
    column = table.c.search_key
    if not folded:
        return None
    wildcard = "%" in folded or "_" in folded or "\\" in folded
    if wildcard:
        escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(_like_pattern(escaped), escape="\\")
    if postgres or len(folded) < 3:
        return column.like(_like_pattern(folded))
    fts = f"{table.name}_search"
    ids = select(text("rowid")).select_from(text(fts)).where(text(f"{fts}.search_key LIKE :search_pattern"))
    return table.c.id.in_(ids.params(search_pattern=_like_pattern(folded)))
