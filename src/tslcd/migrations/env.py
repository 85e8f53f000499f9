"""Alembic environment: the URL comes from tslcd's settings unless the caller set one."""

from alembic import context

from tslcd.core.database import Base, get_engine
from tslcd.core.migrate import include_name
import tslcd.assurance.models  # noqa: F401  (registers tables)
import tslcd.registry.models  # noqa: F401
import tslcd.security.models  # noqa: F401
import tslcd.telemetry.models  # noqa: F401

config = context.config
connectable = config.attributes.get("connection") or get_engine()


def run() -> None:
    def migrate(connection) -> None:
        # SQLite rebuilds tables to change them (AUTOINCREMENT, 0003): foreign keys are switched off for that, which
        # SQLite allows only outside a transaction, and checked afterwards.
        sqlite = connection.dialect.name == "sqlite" and not connection.in_transaction()
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                          include_name=include_name)
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left {len(broken)} broken foreign keys, e.g. {broken[0]}")

    if hasattr(connectable, "connect"):
        with connectable.connect() as connection:
            migrate(connection)
            connection.commit()
            if connection.dialect.name == "sqlite":
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
    else:
        migrate(connectable)
        if connectable.dialect.name == "sqlite" and not connectable.in_transaction():
            connectable.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


run()
