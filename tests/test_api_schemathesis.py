"""Schemathesis over the whole API, in-process, on both backends: no input may reach a server error, and every
response must match the OpenAPI schema the API publishes (timestamps with their offset, problem+json …).

Bounded so that `make test` stays quick: TSLCD_SCHEMATHESIS_EXAMPLES examples per operation (default 12), positive
and negative data, on the tiny network of tests/factories.py in a database of its own per backend, as an
administrator (the other roles' answers are the permission matrix's business).
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.factories import build_tiny
from tslcd.security.models import Role

EXAMPLES = int(os.environ.get("TSLCD_SCHEMATHESIS_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def api(engine, tmp_path_factory):
    """The app over a database of its own with a small network in it (committed: the fuzzer's writes persist
    from one operation to the next, as they would on a server), and an administrator's token."""
    from tests.conftest import serving
    from tslcd.api import create_app
    from tslcd.core import database
    from tslcd.security import service as security
    from tslcd.security.actor import SYSTEM
    from tslcd.security.schemas import UserCreate

    with serving(engine, tmp_path_factory):
        with database.session_scope() as s:
            build_tiny(s, SYSTEM)
            user = security.create_user(session=s, actor=SYSTEM, user_in=UserCreate(username="fuzz-admin",
                                                                                   role=Role.admin))
            token = security.issue_token(session=s, actor=SYSTEM, user=user)[0]
        yield create_app(), {"Authorization": f"Bearer {token}"}


def _schema():
    from tslcd.api import create_app

    return schemathesis.openapi.from_asgi("/openapi.json", create_app())


schema = _schema()  # the published schema; each test calls its own app, over its own rolled-back session


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
def test_api_never_fails_and_keeps_its_schema(case, api):
    app, headers = api
    case.call_and_validate(app=app, headers=headers, checks=[not_a_server_error, response_schema_conformance])
