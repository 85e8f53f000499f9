from datetime import timedelta

from sqlalchemy import update

from tslcd.core.database import utcnow
from tslcd.security import service
from tslcd.security.actor import SYSTEM
from tslcd.security.models import ApiToken, Role
from tslcd.security.schemas import UserCreate

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
