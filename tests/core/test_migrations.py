"""The migrations build exactly the schema the models declare, on both backends."""


import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tslcd.core.database import Base, make_engine
from tslcd.core.migrate import include_name, upgrade


@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_upgrade_matches_models(fresh_url):
    engine = make_engine(fresh_url)
    with engine.connect() as conn:
        upgrade(connection=conn)
        conn.commit()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name}), Base.metadata)
        # Alembic cannot compare indexes on expressions (the audit log's): they are compared by name and SQL.
        expression_indexes = {i.name for t in Base.metadata.tables.values() for i in t.indexes
                              if any(not hasattr(e, "name") or e.__class__.__name__ != "Column" for e in i.expressions)}
        if engine.dialect.name == "postgresql":
            made = {r[0] for r in conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
        else:
            made = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}
    engine.dispose()
    assert diff == []
    assert expression_indexes and expression_indexes <= made
