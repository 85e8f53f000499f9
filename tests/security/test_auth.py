from datetime import timedelta

import pytest
from sqlalchemy import update

from tslcd.core.database import utcnow
from tslcd.security import service
from tslcd.security.actor import SYSTEM
from tslcd.security.models import ApiToken, Role
from tslcd.security.schemas import UserCreate, UserUpdate

PROBLEM = "application/problem+json"


def _user(session, password="mật-khẩu-đủ-dài", role=Role.noc):
    return service.create_user(session=session, actor=SYSTEM, user_in=UserCreate(
        username="lan", full_name="Nguyễn Thị Lan", password=password, role=role))


def test_password_login_gives_a_working_token(client, session):
    _user(session)
    r = client.post("/api/v1/auth/token", json={"username": "lan", "password": "mật-khẩu-đủ-dài"})
    assert r.status_code == 200
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {r.json()['token']}"})
    assert me.status_code == 200 and me.json()["full_name"] == "Nguyễn Thị Lan"


def test_wrong_password_is_401_problem(client, session):
    _user(session)
    r = client.post("/api/v1/auth/token", json={"username": "lan", "password": "wrong-password"})
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "/problems/not-authenticated"


def test_password_is_stored_as_argon2(session):
    user = _user(session)
    assert user.password_hash.startswith("$argon2id$")


def test_missing_unknown_and_expired_tokens_are_refused(client, session):
    assert client.get("/api/v1/sites").status_code == 401
    assert client.get("/api/v1/sites", headers={"Authorization": "Bearer nope"}).status_code == 401
    user = _user(session)
    plain, token = service.issue_token(session=session, actor=SYSTEM, user=user)
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/sites", headers=headers).status_code == 200
    session.execute(update(ApiToken).where(ApiToken.id == token.id).values(expires_at=utcnow() - timedelta(days=1)))
    r = client.get("/api/v1/sites", headers=headers)
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_only_admins_manage_users(client, make_token):
    body = {"username": "x1", "role": "noc"}
    assert client.post("/api/v1/users", json=body, headers=make_token(Role.noc)).status_code == 403
    assert client.post("/api/v1/users", json=body, headers=make_token(Role.admin)).status_code == 201


def test_partner_user_needs_an_operator(client, make_token):
    r = client.post("/api/v1/users", json={"username": "p1", "role": "partner"}, headers=make_token(Role.admin))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["operator_id"]


def test_partner_user_must_name_an_existing_operator(client, make_token):
    r = client.post("/api/v1/users", json={"username": "p2", "role": "partner", "operator_id": 987654},
                    headers=make_token(Role.admin))
    assert r.status_code == 422 and r.json()["detail"] == "no operator 987654"


# Login throttling
def _login(client, username="lan", password="wrong-password"):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def _login_records(session):
    from sqlalchemy import select

    from tslcd.security.models import AuditRecord

    return session.execute(select(AuditRecord.action, AuditRecord.object_repr, AuditRecord.note, AuditRecord.after)
                           .where(AuditRecord.object_type == "login").order_by(AuditRecord.id)).all()


def test_repeated_wrong_passwords_lock_the_username_out(client, session):
    _user(session)
    answers = [_login(client) for _ in range(5)]
    assert [r.status_code for r in answers] == [401] * 5
    locked = _login(client, password="mật-khẩu-đủ-dài")  # even the right password, while locked out
    assert locked.status_code == 429
    assert locked.headers["content-type"] == PROBLEM and locked.json()["type"] == "/problems/too-many-requests"
    assert 1 <= int(locked.headers["retry-after"]) <= 60
    actions = [a for a, *_ in _login_records(session)]
    assert actions == ["login_failed"] * 5 + ["login_locked", "login_refused"]
    assert all(repr_ == "lan" for _, repr_, *_ in _login_records(session))
    text = str(_login_records(session))
    assert "wrong-password" not in text and "mật-khẩu" not in text


def test_unknown_usernames_are_throttled_alike(client, session):
    """Nothing in the answers tells whether the user exists."""
    _user(session)
    known = [_login(client, "lan") for _ in range(6)]
    unknown = [_login(client, "nobody-here") for _ in range(6)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401] * 5 + [429]
    assert {r.json()["detail"] for r in known[:5]} == {r.json()["detail"] for r in unknown[:5]}


def test_many_usernames_from_one_address_lock_the_address(client, session, monkeypatch):
    from tslcd.core.config import get_settings

    monkeypatch.setattr(get_settings(), "login_max_failures_per_address", 7)
    codes = [_login(client, f"user-{i}").status_code for i in range(8)]
    assert codes == [401] * 7 + [429]
    assert "address" in _login_records(session)[7].note


def test_lock_outs_grow_and_a_success_resets_them(client, session):
    from datetime import timedelta

    from tslcd.security.models import LoginThrottle

    _user(session)
    for _ in range(5):
        _login(client)
    first = session.get(LoginThrottle, ("user", "lan"))
    session.refresh(first)
    first_lock = first.locked_until - first.window_start

    def expire():  # an hour passes
        for row in session.query(LoginThrottle):
            row.locked_until = row.locked_until and row.locked_until - timedelta(hours=1)
            row.window_start -= timedelta(hours=1)
        session.flush()
    expire()
    for _ in range(5):
        _login(client)
    second = session.get(LoginThrottle, ("user", "lan"))
    session.refresh(second)
    assert second.locked_until - second.window_start == 2 * first_lock
    expire()
    assert _login(client, password="mật-khẩu-đủ-dài").status_code == 200
    session.refresh(second)
    assert (second.failures, second.lockouts, second.locked_until) == (0, 0, None)


def test_failed_logins_are_kept_although_the_request_fails(engine, tmp_path_factory, monkeypatch):
    """The real unit of work (no test session): the failure is committed with keep_writes, and a new server
    process sees the lock-out."""
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session, sessionmaker

    from tests.conftest import own_database
    from tslcd.api import create_app
    from tslcd.core import database
    from tslcd.security.models import AuditRecord, LoginThrottle

    with own_database(engine, tmp_path_factory) as own:
        monkeypatch.setattr(database, "_engine", own)
        monkeypatch.setattr(database, "_factory", sessionmaker(bind=own, expire_on_commit=False))
        with TestClient(create_app()) as first:
            assert [_login(first, "ghost").status_code for _ in range(5)] == [401] * 5
        with TestClient(create_app()) as restarted:
            assert _login(restarted, "ghost").status_code == 429
        with Session(own) as s:
            assert s.scalar(select(LoginThrottle.lockouts).where(LoginThrottle.key == "ghost")) == 1
            assert s.scalar(select(func.count()).select_from(AuditRecord)
                            .where(AuditRecord.object_type == "login")) == 7


# Secrets and bindings
def test_auditors_never_see_password_hashes(client, session, make_token):
    """`GET /audit?object_type=users` returned "password_hash": "$argon2id$…" to auditors."""
    user = _user(session)
    service.update_user(session=session, actor=SYSTEM, user=user, user_in=UserUpdate(password="another-long-pass"))
    plain, token = service.issue_token(session=session, actor=SYSTEM, user=user)
    headers = make_token(Role.auditor)
    body = client.get("/api/v1/audit", params={"limit": 1000}, headers=headers).text
    users = client.get("/api/v1/audit", params={"object_type": "users"}, headers=headers).json()["results"]
    assert users and all("password_hash" not in (r["after"] or {}) | (r["before"] or {}) for r in users)
    for secret in ("$argon2", user.password_hash, plain, token.token_hash, "password_hash", "token_hash"):
        assert secret not in body


def test_every_model_declares_its_secrets_once():
    import tslcd.registry.models  # noqa: F401
    from tslcd.security.models import ApiToken, User
    from tslcd.security.secrets import declared_secrets, secret_columns

    assert secret_columns(User) == {"password_hash"} and secret_columns(User()) == {"password_hash"}
    assert secret_columns(ApiToken) == {"token_hash"}
    assert declared_secrets()["snmp_credentials"] == {"secret"}
    assert declared_secrets()["users"] == {"password_hash"}


def test_snapshots_leave_every_declared_secret_out(session):
    from sqlalchemy import select

    from tslcd.core.database import Base
    from tslcd.security import audit
    from tslcd.security.secrets import secret_columns

    user = _user(session)
    assert "password_hash" not in audit.snapshot(user) and audit.snapshot(user)["username"] == "lan"
    for mapper in Base.registry.mappers:
        hidden = secret_columns(mapper.class_)
        if not hidden:
            continue
        obj = session.scalar(select(mapper.class_).limit(1)) or mapper.class_()
        assert not hidden & audit.snapshot(obj).keys(), mapper.class_


def test_security_knows_no_registry_model():
    """security/ asks the registry through bindings; no module of it imports the registry or names its tables."""
    from pathlib import Path

    import tslcd.security

    folder = Path(tslcd.security.__file__).parent
    for path in folder.glob("*.py"):
        source = path.read_text()
        assert "tslcd.registry" not in source.replace("tslcd.registry.users registers", ""), path.name
        assert "FROM operators" not in source and "FROM agencies" not in source, path.name


def test_cli_user_add_resolves_operator_and_agency_through_the_registry(session):
    from tslcd.security import bindings

    from tests.factories import build_tiny

    tiny = build_tiny(session, SYSTEM)
    from tslcd.registry.models import Operator

    slug = session.get(Operator, tiny.vnpt).slug
    assert bindings.find_id(session, "operator", slug) == tiny.vnpt
    assert bindings.exists(session, "operator", tiny.vnpt) and not bindings.exists(session, "agency", 987654)
    from tslcd.core.errors import NotFound

    with pytest.raises(NotFound, match="no agency 'X.99'"):
        bindings.find_id(session, "agency", "X.99")
