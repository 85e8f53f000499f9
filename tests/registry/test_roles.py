import pytest
from sqlalchemy import select

from tests.factories import build_tiny
from tslcd.registry.models import Agency, Link
from tslcd.security.models import Role


@pytest.fixture
def tiny(session, admin):
    return build_tiny(session, admin)


def _slugs(client, path, h):
    return sorted(x.get("slug") or x.get("name") for x in client.get(path, headers=h).json()["results"])


def test_partner_sees_only_its_segments(client, session, tiny, make_token):
    h = make_token(Role.partner, operator_id=tiny.vnpt)
    assert _slugs(client, "/api/v1/links", h) == ["pe1-cpeb-1", "pe1-cpeb-2", "pe1-sw1", "sw1-cpea"]
    assert _slugs(client, "/api/v1/devices", h) == ["cpe-a", "cpe-b", "sw-1"]
    assert _slugs(client, "/api/v1/sites", h) == ["ap-a", "ap-b", "cn-00004"]
    viettel = make_token(Role.partner, operator_id=tiny.viettel)
    assert _slugs(client, "/api/v1/links", viettel) == ["rc1-pe48"]


def test_partner_edits_its_links_only(client, session, tiny, make_token):
    h = make_token(Role.partner, operator_id=tiny.vnpt)
    own = tiny.id_of(session, Link, "sw1-cpea")
    other = tiny.id_of(session, Link, "rc1-pe1")
    assert client.patch(f"/api/v1/links/{own}", json={"capacity": "200M"}, headers=h).status_code == 200
    assert client.patch(f"/api/v1/links/{other}", json={"capacity": "1G"}, headers=h).status_code == 404
    r = client.patch(f"/api/v1/links/{own}", json={"operator_id": tiny.viettel}, headers=h)
    assert r.status_code == 403 and "follows the agreements" in r.json()["detail"]
    r = client.post("/api/v1/sites", json={"slug": "x", "name": "x", "kind": "gateway"}, headers=h)
    assert r.status_code == 403


def test_agency_user_sees_its_own_agency(client, session, tiny, make_token):
    agency_id = session.scalar(select(Agency.id).where(Agency.code == "001.01.00.H01"))
    h = make_token(Role.agency, agency_id=agency_id)
    assert [a["code"] for a in client.get("/api/v1/agencies", headers=h).json()["results"]] == ["001.01.00.H01"]
    assert _slugs(client, "/api/v1/links", h) == ["sw1-cpea"]
    assert _slugs(client, "/api/v1/devices", h) == ["cpe-a"]
    subs = client.get("/api/v1/subscriptions", headers=h).json()
    assert subs["count"] == 1 and subs["results"][0]["agency_id"] == agency_id
    own = tiny.id_of(session, Link, "sw1-cpea")
    assert client.patch(f"/api/v1/links/{own}", json={"capacity": "1G"}, headers=h).status_code == 403


def test_auditor_reads_everything_changes_nothing(client, session, tiny, make_token):
    h = make_token(Role.auditor)
    assert client.get("/api/v1/links", headers=h).json()["count"] == 6
    assert client.post("/api/v1/services", json={"code": "x", "name": "x"}, headers=h).status_code == 403
    log = client.get("/api/v1/audit", headers=h).json()
    assert log["count"] > 30 and log["results"][0]["id"] > log["results"][1]["id"]
    assert client.get("/api/v1/audit/verify", headers=h).json()["ok"] is True


def test_noc_edits_but_cannot_read_audit_or_manage_users(client, session, tiny, make_token):
    h = make_token(Role.noc)
    assert client.post("/api/v1/services", json={"code": "tel_080", "name": "Điện thoại 080"},
                       headers=h).status_code == 201
    assert client.get("/api/v1/audit", headers=h).status_code == 403
    assert client.get("/api/v1/users", headers=h).status_code == 403


def test_every_api_write_is_audited_with_actor_and_request_id(client, session, tiny, make_token):
    h = make_token(Role.noc)
    r = client.post("/api/v1/services", json={"code": "telegraph", "name": "Điện báo"},
                    headers={**h, "x-request-id": "req-42"})
    assert r.headers["x-request-id"] == "req-42"
    log = client.get("/api/v1/audit", params={"object_type": "services", "limit": 1},
                     headers=make_token(Role.admin)).json()["results"][0]
    assert (log["action"], log["request_id"], log["after"]["code"]) == ("create", "req-42", "telegraph")
    assert log["actor"].startswith("noc-")


def test_partner_creates_equipment_only_where_it_is_responsible(client, session, tiny, make_token):
    from tslcd.registry.models import Site

    h = make_token(Role.partner, operator_id=tiny.vnpt)
    commune_site = session.scalar(select(Site.id).where(Site.slug == "cn-00004"))
    r = client.post("/api/v1/devices", json={"name": "sw-2", "site_id": commune_site, "role": "access_switch",
                                             "tier": "access_2"}, headers=h)
    assert r.status_code == 201 and r.json()["operator_id"] == tiny.vnpt
    r = client.post("/api/v1/devices", json={"name": "core-9", "site_id": commune_site, "role": "core_router",
                                             "tier": "backbone"}, headers=h)
    assert r.status_code == 403


def test_only_admins_change_administrative_units(client, tiny, make_token):
    body = {"code": "99999", "kind": "commune", "name": "Xã Thử", "parent_id": tiny.province_id}
    assert client.post("/api/v1/admin-units", json=body, headers=make_token(Role.noc)).status_code == 403
    assert client.post("/api/v1/admin-units", json=body, headers=make_token(Role.admin)).status_code == 201
