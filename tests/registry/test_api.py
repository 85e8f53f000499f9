from sqlalchemy import select

from tests.factories import build_tiny
from tslcd.registry.models import Site
from tslcd.security.models import Role

PROBLEM = "application/problem+json"


def test_list_filters_search_and_pagination(client, session, admin, make_token):
    build_tiny(session, admin)
    h = make_token(Role.noc)
    page = client.get("/api/v1/sites", params={"limit": 2, "offset": 1}, headers=h).json()
    assert (page["count"], page["limit"], page["offset"], len(page["results"])) == (6, 2, 1, 2)
    premises = client.get("/api/v1/sites", params={"kind": "agency_premises"}, headers=h).json()
    assert sorted(s["slug"] for s in premises["results"]) == ["ap-a", "ap-b"]
    both = client.get("/api/v1/sites", params=[("kind", "agency_premises"), ("kind", "regional_centre")],
                      headers=h).json()
    assert both["count"] == 3
    found = client.get("/api/v1/agencies", params={"q": "Phường Ba Đình"}, headers=h).json()
    assert [a["code"] for a in found["results"]] == ["001.01.00.H01"]


def test_admin_units_as_of(client, session, admin, make_token):
    build_tiny(session, admin)
    h = make_token(Role.noc)
    after = client.get("/api/v1/admin-units", params={"kind": "province", "as_of": "2025-07-01"}, headers=h).json()
    before = client.get("/api/v1/admin-units", params={"kind": "province", "as_of": "2025-06-30"}, headers=h).json()
    assert after["count"] == 2 and before["count"] == 0


def test_create_get_update_delete_site(client, session, admin, make_token):
    t = build_tiny(session, admin)
    h = make_token(Role.noc)
    r = client.post("/api/v1/sites", json={"slug": "gw-01-1", "name": "Cổng kết nối 1", "kind": "gateway",
                                           "unit_id": t.commune_id}, headers=h)
    assert r.status_code == 201, r.text
    site = r.json()
    assert site["province_id"] == t.province_id  # derived from the commune
    assert client.get(f"/api/v1/sites/{site['id']}", headers=h).json()["slug"] == "gw-01-1"
    r = client.patch(f"/api/v1/sites/{site['id']}", json={"status": "planned"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "planned"
    assert client.delete(f"/api/v1/sites/{site['id']}", headers=h).status_code == 204
    r = client.get(f"/api/v1/sites/{site['id']}", headers=h)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


def test_delete_site_in_use_is_409_naming_dependents(client, session, admin, make_token):
    build_tiny(session, admin)
    site_id = session.scalar(select(Site.id).where(Site.slug == "pc-01"))
    r = client.delete(f"/api/v1/sites/{site_id}", headers=make_token(Role.noc))
    assert r.status_code == 409
    body = r.json()
    assert body["type"] == "/problems/conflict"
    assert body["errors"] == [{"loc": ["site_id"], "msg": "1 devices reference site pc-01"}]


def test_duplicate_slug_is_409(client, session, admin, make_token):
    t = build_tiny(session, admin)
    r = client.post("/api/v1/sites", json={"slug": "pc-01", "name": "x", "kind": "gateway",
                                           "unit_id": t.province_id}, headers=make_token(Role.noc))
    assert r.status_code == 409 and "already exists" in r.json()["detail"]


def test_bad_agency_code_says_why(client, session, admin, make_token):
    build_tiny(session, admin)
    r = client.post("/api/v1/agencies", json={"code": "000.00.00.22G", "name": "Bộ X", "kind": "state"},
                    headers=make_token(Role.noc))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert "last group '22G' (level 1, the top-level organisation) must be three characters" in r.json()["detail"]


def test_unknown_reference_is_422(client, session, admin, make_token):
    build_tiny(session, admin)
    r = client.post("/api/v1/devices", json={"name": "x", "site_id": 999999, "role": "cpe", "tier": "premises"},
                    headers=make_token(Role.noc))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["site_id"]


def test_snmp_secrets_never_leave(client, session, admin, make_token):
    build_tiny(session, admin)
    h = make_token(Role.admin)
    r = client.post("/api/v1/snmp-credentials", json={"name": "v3-main", "version": "v3", "username": "poller",
                                                      "auth_protocol": "SHA", "auth_key": "s3cret-auth-key",
                                                      "priv_protocol": "AES", "priv_key": "s3cret-priv-key"},
                    headers=h)
    assert r.status_code == 201
    cred_id = r.json()["id"]
    for text in (r.text, client.get(f"/api/v1/snmp-credentials/{cred_id}", headers=h).text,
                 client.get("/api/v1/snmp-credentials/export?format=json", headers=h).text,
                 client.get("/api/v1/audit?object_type=snmp_credentials", headers=h).text):
        assert "s3cret" not in text and "secret" not in text
    r = client.post("/api/v1/snmp-credentials", json={"name": "v2", "version": "v2c"}, headers=h)
    assert r.status_code == 422 and "community" in r.json()["detail"]


def test_csv_import_endpoint_reports_rows(client, session, admin, make_token):
    build_tiny(session, admin)
    body = "slug,name,kind,unit\ngw-a,Cổng A,gateway,01\ngw-b,Cổng B,gateway,77\n"
    r = client.post("/api/v1/sites/import", content=body.encode(), headers={**make_token(Role.noc),
                                                                            "content-type": "text/csv"})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"row": 3, "column": "unit", "msg": "no unit '77'"}]
    assert session.scalar(select(Site.id).where(Site.slug == "gw-a")) is None


def test_openapi_documents_filters(client):
    spec = client.get("/openapi.json").json()
    names = {p["name"] for p in spec["paths"]["/api/v1/links"]["get"]["parameters"]}
    assert {"tier", "operator_id", "province_id", "q", "limit", "offset"} <= names


def test_filters_by_id_and_by_natural_key(client, session, admin, make_token):
    t = build_tiny(session, admin)
    h = make_token(Role.noc)
    by_id = client.get("/api/v1/links", params={"province_id": str(t.other_province_id)}, headers=h).json()
    by_code = client.get("/api/v1/links", params={"province": "48"}, headers=h).json()
    assert [x["slug"] for x in by_id["results"]] == [x["slug"] for x in by_code["results"]] == ["rc1-pe48"]
    on_site = client.get("/api/v1/devices", params={"site": "pc-01"}, headers=h).json()
    assert [d["name"] for d in on_site["results"]] == ["pe-1"]
    r = client.get("/api/v1/devices", params={"site": "nowhere"}, headers=h)
    assert r.status_code == 422 and r.json()["detail"] == "no site 'nowhere'"
    r = client.get("/api/v1/devices", params={"site_id": "abc"}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
