"""The migrations build exactly the schema the models declare, on both backends."""

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tslcd.core.database import Base, make_engine, scratch_database
from tslcd.core.migrate import include_name, upgrade


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    base = os.environ.get("TSLCD_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("TSLCD_TEST_POSTGRES_URL is not set: run the suite through `make test`")
        pytest.skip("needs TSLCD_TEST_POSTGRES_URL (make test sets it)")
    with scratch_database(base) as url:
        yield url


def test_upgrade_matches_models(fresh_url):
    engine = make_engine(fresh_url)
    with engine.connect() as conn:
        upgrade(connection=conn)
        conn.commit()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name}), Base.metadata)
    engine.dispose()
    assert diff == []
