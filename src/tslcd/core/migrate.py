"""Run Alembic migrations from inside the package, so `tslcd db upgrade` needs no alembic.ini."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(revision: str = "head", connection: Connection | None = None) -> None:
    command.upgrade(alembic_config(connection), revision)


def revision(message: str) -> None:
    command.revision(alembic_config(), message=message, autogenerate=True)
