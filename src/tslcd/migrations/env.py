"""Alembic environment: the URL comes from tslcd's settings unless the caller set one."""

import re

from alembic import context

from tslcd.core.database import Base, get_engine
import tslcd.registry.models  # noqa: F401  (registers tables)
import tslcd.security.models  # noqa: F401
import tslcd.telemetry.models  # noqa: F401

config = context.config
connectable = config.attributes.get("connection") or get_engine()


PARTITION = re.compile(r"telemetry_(rates_p\d{8}|rollups_(5m|1h|1d)(_p\d{6})?)$")


def _not_a_partition(name, type_, _parent) -> bool:
    """Partitions are made at run time by telemetry storage, so autogenerate must not propose dropping them."""
    return not (type_ == "table" and PARTITION.match(name or ""))


def run() -> None:
    def migrate(connection) -> None:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                          include_name=_not_a_partition)
        with context.begin_transaction():
            context.run_migrations()

    if hasattr(connectable, "connect"):
        with connectable.connect() as connection:
            migrate(connection)
            connection.commit()
    else:
        migrate(connectable)


run()
