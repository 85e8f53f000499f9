"""The secret scan itself (tests/conftest.py) catches what it must; and the known leaks stay closed."""

import pytest

from tests.conftest import _leaks
from tests.factories import build_tiny
from tslcd.security.models import Role


def test_the_scan_sees_hashes_markers_and_stored_secrets():
    assert _leaks([("x", 'after {"password_hash": "$argon2id$v=19$…"}')], set())
    assert _leaks([("x", "community sentinel-ro")], set())
    assert _leaks([("x", "abc0123")], {"abc0123"})
    assert not _leaks([("x", "nothing here")], {"abc0123"})


def test_no_path_shows_a_password_hash_or_a_community(client, session, admin, make_token):
    build_tiny(session, admin)
    h = make_token(Role.admin)
    r = client.post("/api/v1/users", json={"username": "lan", "role": "auditor", "password": "sentinel-pass-123"},
                    headers=h)
    assert r.status_code == 201
    r = client.post("/api/v1/snmp-credentials", json={"name": "ro2", "version": "v2c", "community": "sentinel-c2"},
                    headers=h)
    assert r.status_code == 201
    auditor = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "lan", "password": "sentinel-pass-123"}).json()["token"]}
    for path in ("/api/v1/audit?object_type=users", "/api/v1/audit?object_type=snmp_credentials",
                 "/api/v1/audit?object_type=api_tokens", "/api/v1/users", "/api/v1/snmp-credentials",
                 "/api/v1/snmp-credentials/export", "/api/v1/snmp-credentials/export?format=json"):
        for who in (h, auditor):
            assert client.get(path, headers=who).status_code in (200, 403)
    # Every response above, the audit log and the logs are scanned when this test ends (tests/conftest.py).


@pytest.mark.parametrize("name", ["users", "snmp-credentials"])
def test_exports_and_lists_of_objects_with_secrets(client, session, admin, make_token, name):
    build_tiny(session, admin)
    h = make_token(Role.admin)
    if name == "snmp-credentials":
        client.post("/api/v1/snmp-credentials", json={"name": "v3", "version": "v3", "username": "u",
                                                      "auth_protocol": "SHA", "auth_key": "sentinel-auth-key",
                                                      "priv_protocol": "AES", "priv_key": "sentinel-priv-key"},
                    headers=h)
        assert client.get(f"/api/v1/{name}/export", headers=h).status_code == 200
    assert client.get(f"/api/v1/{name}", headers=h).status_code == 200


def test_the_client_records_every_response_for_the_scan(client, request):
    client.get("/api/v1/auth/me")
    assert request.node.tslcd_responses and "/api/v1/auth/me" in request.node.tslcd_responses[-1][0]


def test_the_session_hands_its_audit_to_the_scan(session, admin, request):
    from tslcd.security import audit

    audit.lock(session)
    audit.record_many(session=session, actor=admin, changes=[audit.Change("create", "sites", 1, "x", after={"a": 1})])
    from tests.conftest import _collect_stored

    _collect_stored(request, session)
    assert request.node.tslcd_audit and request.node.tslcd_audit[-1][0].startswith("audit record")
