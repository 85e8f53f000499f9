"""Run Alembic migrations from inside the package, so `tslcd db upgrade` needs no alembic.ini."""

import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
PARTITION = re.compile(r"telemetry_(rates_p\d{8}|rollups_(5m|1h|1d)(_p\d{6})?)$")


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def include_name(name: str | None, type_: str, _parent: Any) -> bool:
    """What autogenerate and the schema comparison look at: not the partitions telemetry creates at run time, nor
    the search indexes core.search creates beside the tables (FTS5 tables on SQLite, trigram indexes)."""
    from tslcd.core.search import is_index_object

    if type_ == "table" and PARTITION.match(name or ""):
        return False
    return not is_index_object(name)


def upgrade(revision: str = "head", connection: Connection | None = None) -> None:
    command.upgrade(alembic_config(connection), revision)


def revision(message: str) -> None:
    command.revision(alembic_config(), message=message, autogenerate=True)
