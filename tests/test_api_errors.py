"""Item 7: every error is problem+json with the request id; the database's own text never reaches a client."""

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

PROBLEM = "application/problem+json"


@pytest.fixture
def app():
    from tslcd.api import create_app

    app = create_app()

    def boom(kind: str):
        orig = Exception('duplicate key value violates unique constraint "uq_secret_table" DETAIL: Key (code)=(x)')
        if kind == "integrity":
            raise IntegrityError("INSERT INTO secret_table …", {}, orig)
        if kind == "data":
            raise DataError("INSERT …", {}, Exception("value too long for type character varying(40)"))
        if kind == "busy":
            raise OperationalError("SELECT …", {}, Exception("database is locked"))
        if kind == "overflow":
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        raise RuntimeError("an unexpected bug with internal detail /srv/secret/path")

    app.add_api_route("/boom/{kind}", boom)
    return app


@pytest.mark.parametrize("kind,status,leaked", [
    ("integrity", 409, "uq_secret_table"), ("data", 422, "character varying"), ("busy", 503, "database is locked"),
    ("overflow", 422, "SQLite INTEGER"), ("bug", 500, "/srv/secret/path")])
def test_errors_are_problems_without_internal_text(app, caplog, kind, status, leaked):
    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.WARNING, logger="tslcd.api"):
        r = client.get(f"/boom/{kind}", headers={"x-request-id": "req-77"})
    assert r.status_code == status and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["request_id"] == "req-77" and r.headers["x-request-id"] == "req-77"
    assert leaked not in r.text
    assert any("req-77" in rec.getMessage() for rec in caplog.records)  # the details are in the server's log
    if kind == "busy":
        assert r.headers["retry-after"]
    if kind == "bug":
        assert body["type"] == "/problems/internal" and "req-77" in body["detail"]
        assert any(rec.exc_info for rec in caplog.records)


def test_a_hostile_request_id_is_replaced(app):
    client = TestClient(app, raise_server_exceptions=False)
    r = client.get("/boom/bug", headers={"x-request-id": "x" * 500})
    assert len(r.json()["request_id"]) == 32


def test_unknown_paths_and_methods_are_problems(app):
    client = TestClient(app)
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = client.put("/api/v1/sites")
    assert r.status_code == 405 and r.headers["content-type"] == PROBLEM
