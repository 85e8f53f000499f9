"""Alembic environment: the URL comes from tslcd's settings unless the caller set one."""

from alembic import context

from tslcd.core.database import Base, get_engine
import tslcd.registry.models  # noqa: F401  (registers tables)
import tslcd.security.models  # noqa: F401
import tslcd.telemetry.models  # noqa: F401

config = context.config
connectable = config.attributes.get("connection") or get_engine()


def run() -> None:
    def migrate(connection) -> None:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    if hasattr(connectable, "connect"):
        with connectable.connect() as connection:
            migrate(connection)
            connection.commit()
    else:
        migrate(connectable)


run()
