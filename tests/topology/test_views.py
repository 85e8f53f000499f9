"""The topology API: role rules and problem+json errors."""

from tslcd.security.models import Role

A1, A3 = "000.00.01.H01", "000.00.03.H01"


def test_impact_by_query_and_by_body(net, client, make_token):
    admin = make_token(Role.admin)
    r = client.get("/api/v1/topology/impact", params={"link": ["up-2a", "up-2b"]}, headers=admin)
    assert r.status_code == 200
    assert [a["code"] for a in r.json()["agencies_lost"]] == [A3, "000.00.04.H01"]
    r = client.post("/api/v1/topology/impact", json={"devices": ["gw-1"], "sites": []}, headers=admin)
    assert r.status_code == 200
    body = r.json()
    assert [a["code"] for a in body["agencies_redundancy_lost"]] == [A3]
    assert body["by_province"][0]["province"]["name"] == "Thành phố Hà Nội"


def test_unknown_objects_are_problem_json_404(net, client, make_token):
    admin = make_token(Role.admin)
    r = client.get("/api/v1/topology/impact", params={"link": "no-such-link"}, headers=admin)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/not-found" and "no-such-link" in r.json()["detail"]
    r = client.get("/api/v1/topology/path", params={"from_agency": A1, "to_agency": "000.00.99.H01"}, headers=admin)
    assert r.status_code == 404
    r = client.get("/api/v1/topology/spof", params={"province": "98"}, headers=admin)
    assert r.status_code == 404


def test_partner_asks_impact_of_its_own_links_only(net, client, make_token):
    vnpt = make_token(Role.partner, operator_id=net.ids["vnpt"])
    assert client.get("/api/v1/topology/impact", params={"link": "up-1"}, headers=vnpt).status_code == 200
    r = client.get("/api/v1/topology/impact", params={"link": "bb-1"}, headers=vnpt)
    assert r.status_code == 404  # CBĐTW's link, as for a direct GET
    assert r.json()["type"] == "/problems/not-found" and "bb-1" in r.json()["detail"]
    assert client.post("/api/v1/topology/impact", json={"sites": ["gw"]}, headers=vnpt).status_code == 404


def test_partner_sees_spof_where_it_is_responsible(net, client, make_token):
    vnpt = make_token(Role.partner, operator_id=net.ids["vnpt"])
    r = client.get("/api/v1/topology/spof", headers=vnpt)
    assert r.status_code == 200
    assert {i["province_id"] for i in r.json()["items"]} == {net.ids["01"]}
    assert client.get("/api/v1/topology/spof", params={"province": "79"}, headers=vnpt).status_code == 403
    r = client.get("/api/v1/topology/redundancy", params={"province": "01"}, headers=vnpt)
    assert r.status_code == 200 and r.json()["total"]["redundant"] == 1


def test_agency_traces_paths_from_its_own_agency_only(net, client, make_token):
    own = make_token(Role.agency, agency_id=net.ids["A1"])
    r = client.get("/api/v1/topology/path", params={"from_agency": A1, "to_agency": A3}, headers=own)
    assert r.status_code == 200 and r.json()["links"] == 5
    r = client.get("/api/v1/topology/path", params={"from_agency": "000.00.02.H01", "to_agency": A3}, headers=own)
    assert r.status_code == 403
    assert client.get("/api/v1/topology/impact", params={"link": "up-1"}, headers=own).status_code == 403
    assert client.get("/api/v1/topology/spof", headers=own).status_code == 403
    assert client.get("/api/v1/topology/redundancy", headers=own).status_code == 403


def test_no_path_is_404_problem(net, client, make_token):
    r = client.get("/api/v1/topology/path", params={"from_agency": A1, "to_agency": "000.00.06.H01"},
                   headers=make_token(Role.noc))
    assert r.status_code == 404 and r.json()["title"] == "No path"


def test_requires_a_token(net, client):
    assert client.get("/api/v1/topology/spof").status_code == 401
