"""The migrations build exactly the schema the models declare, on both backends."""


import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tslcd.core.database import Base, make_engine
from tslcd.core.migrate import include_name, upgrade


def test_upgrade_matches_models(fresh_url):
    engine = make_engine(fresh_url)
    with engine.connect() as conn:
        upgrade(connection=conn)
        conn.commit()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name}), Base.metadata)
    engine.dispose()
    assert diff == []
