"""Every database test runs on SQLite and on the throwaway PostgreSQL that `make test` starts.

Each test runs in a transaction that is rolled back, so tests never see each other's rows.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tslcd.core import database
from tslcd.core.database import Base, make_engine, scratch_database
from tslcd.security.actor import Actor
from tslcd.security.models import Role

BACKENDS = ["sqlite", "postgres"]


def started_server(variable: str, what: str) -> str:
    """Where a server `make test` started listens (PostgreSQL, NATS, snmpd): failing in CI, skipping (with the
    reason) when the suite is run by hand without them."""
    value = os.environ.get(variable)
    if not value:
        if os.environ.get("CI"):
            pytest.fail(f"{variable} is not set: run the suite through `make test`")
        pytest.skip(f"needs the {what} that `make test` starts ({variable})")
    return value


def backend_url(backend: str, tmp_path_factory) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    return started_server("TSLCD_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture(scope="session", params=BACKENDS)
def engine(request, tmp_path_factory) -> Iterator[Engine]:
    import tslcd.assurance.models  # noqa: F401  (tables)
    import tslcd.registry.models  # noqa: F401
    import tslcd.security.models  # noqa: F401
    import tslcd.telemetry.models  # noqa: F401

    eng = database.configure(backend_url(request.param, tmp_path_factory))
    Base.metadata.drop_all(eng)
    Base.metadata.create_all(eng)
    yield eng
    Base.metadata.drop_all(eng)
    eng.dispose()


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Session]:
    """A session whose commits are savepoints inside one transaction that is rolled back at the end."""
    conn = engine.connect()
    trans = conn.begin()
    sess = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield sess
    finally:
        sess.close()
        trans.rollback()
        conn.close()


@contextmanager
def own_database(engine: Engine, tmp_path_factory) -> Iterator[Engine]:
    """An empty database with the schema on the same backend as `engine`, dropped afterwards.

    Big fixtures live here, so that the shared test database stays small and its tests stay independent.
    """
    if engine.dialect.name == "sqlite":
        with _engine_with_schema(f"sqlite:///{tmp_path_factory.mktemp('own') / 'own.db'}") as own:
            yield own
        return
    with scratch_database(engine.url.render_as_string(hide_password=False)) as url:
        with _engine_with_schema(url) as own:
            yield own


@contextmanager
def _engine_with_schema(url: str) -> Iterator[Engine]:
    own = make_engine(url)
    try:
        Base.metadata.create_all(own)
        yield own
    finally:
        own.dispose()


@pytest.fixture(autouse=True)
def _alarm_repeats_written_at_once(monkeypatch) -> None:
    """Tests see every repeat of an alarm written (production writes an unchanged repeat once a minute; the test of
    that throttle sets it back)."""
    from tslcd.telemetry import alarms

    monkeypatch.setattr(alarms, "REPEAT_WRITE_S", 0.0)
    alarms._repeats.clear()


@pytest.fixture(autouse=True, scope="session")
def _one_lock_order() -> Iterator[None]:
    """Every audited write takes the audit lock before its first row (item 28): in tests a write that forgets is an
    error, so a new write path cannot bring the deadlock back."""
    from tslcd.security import audit

    audit.require_lock(True)
    yield
    audit.require_lock(False)


@pytest.fixture(autouse=True)
def _audit_checkpoints(tmp_path_factory) -> Iterator[None]:
    """Each test has its own audit checkpoint file: its records are rolled back, so its checkpoints must go too."""
    from tslcd.security import audit

    audit.set_checkpoint_dir(tmp_path_factory.mktemp("audit"))
    yield
    audit.set_checkpoint_dir(None)


# Secrets never leave: every response a test's client receives, every audit record its session holds and every log
# record it produced are scanned for password hashes, token hashes and the secrets tests create (by convention they
# contain "sentinel-": passwords, SNMP communities and keys).
SECRET_MARKERS = ("$argon2", "sentinel-")


def _secrets_of(session: Session) -> set[str]:
    from sqlalchemy import text

    found = set(session.scalars(text("SELECT token_hash FROM api_tokens")))
    found |= {h for h in session.scalars(text("SELECT password_hash FROM users")) if h}
    return found


def _leaks(texts, secrets: set[str]) -> list[str]:
    problems = []
    for where, text in texts:
        for marker in (*SECRET_MARKERS, *secrets):
            if marker and marker in text:
                problems.append(f"{where} contains {marker[:16]}…: {text[:200]}")
    return problems


@pytest.fixture(autouse=True)
def _no_secret_leaves(request, caplog) -> Iterator[None]:
    responses: list[tuple[str, str]] = []
    request.node.tslcd_responses = responses
    yield
    texts = list(responses) + getattr(request.node, "tslcd_audit", [])
    texts += [(f"log {r.name}", r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "")) for r in caplog.records]
    problems = _leaks(texts, getattr(request.node, "tslcd_secrets", set()))
    assert not problems, "a secret left the platform:\n" + "\n".join(problems[:5])


def _collect_stored(request, session: Session) -> None:
    """What the test left in its database, read before it is rolled back: secrets to look for, audit to look in."""
    from sqlalchemy import text

    try:
        session.flush()
        request.node.tslcd_secrets = _secrets_of(session)
        request.node.tslcd_audit = [(f"audit record {r[0]}", " ".join(str(c) for c in r[1:])) for r in session.execute(
            text("SELECT id, body FROM audit_log"))]
    except Exception:  # a test that broke its own session on purpose has nothing left to read
        session.rollback()


@pytest.fixture
def nats_url() -> str:
    """The throwaway NATS (JetStream) server `make test` starts."""
    return started_server("TSLCD_TEST_NATS_URL", "NATS server")


@pytest.fixture(params=BACKENDS)
def fresh_url(request, tmp_path) -> Iterator[str]:
    """The URL of an empty database (no schema) on each backend, for migration tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    with scratch_database(backend_url("postgres", None)) as url:
        yield url


@contextmanager
def serving(engine: Engine, tmp_path_factory) -> Iterator[str]:
    """A database of its own (schema made), which the process's sessions (session_scope, the API without
    overrides, the CLI) use meanwhile; the URL is yielded, the previous database restored afterwards."""
    with own_database(engine, tmp_path_factory) as own:
        previous = database._engine, database._factory
        url = own.url.render_as_string(hide_password=False)
        database.configure(url)
        try:
            yield url
        finally:
            database._engine.dispose()
            database._engine, database._factory = previous


@pytest.fixture
def session(request, engine: Engine) -> Iterator[Session]:
    with rolled_back(engine) as sess:
        yield sess
        _collect_stored(request, sess)


@pytest.fixture
def admin() -> Actor:
    return Actor(username="test-admin", role=Role.admin, user_id=None)


@pytest.fixture
def client(request, session: Session) -> Iterator[TestClient]:
    """The API over the test's session; pass a token with `auth_headers`."""
    from tslcd.api import create_app
    from tslcd.core.deps import get_session

    app = create_app()

    def _session():
        yield session
        session.flush()

    app.dependency_overrides[get_session] = _session
    with TestClient(app) as c:
        c.event_hooks["response"].append(lambda r: _record(request, r))
        yield c


def _record(request, response) -> None:
    response.read()
    request.node.tslcd_responses.append((f"response to {response.request.method} {response.request.url.path}",
                                         response.text))


@pytest.fixture
def make_token(session: Session):
    """make_token(role, operator_id=None, agency_id=None) -> Authorization headers for a new user."""
    from tslcd.security import service
    from tslcd.security.actor import SYSTEM
    from tslcd.security.schemas import UserCreate

    counter = iter(range(1, 10_000))

    def _make(role: Role, operator_id: int | None = None, agency_id: int | None = None) -> dict[str, str]:
        user = service.create_user(session=session, actor=SYSTEM, user_in=UserCreate(
            username=f"{role.value}-{next(counter)}", role=role, operator_id=operator_id, agency_id=agency_id))
        plain, _ = service.issue_token(session=session, actor=SYSTEM, user=user)
        return {"Authorization": f"Bearer {plain}"}

    return _make
