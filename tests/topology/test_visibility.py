"""Topology answers show a partner or an agency user only what a direct GET would show them (issue 11, item 4).

On the tiny network of tests/factories.py CBĐTW runs rc-1, pe-1 and their link; VNPT the commune switch sw-1, the
CPEs and the access links. Each foreign object in an answer must be one the actor is refused by a direct GET,
and must appear only as a segment naming its operator.
"""

import json

import pytest

from tests.factories import build_tiny
from tslcd.registry.models import Agency, Device, Link, Site
from tslcd.security.models import Role

WARD, CITY, GOV = "001.01.00.H01", "000.00.00.H01", "000.00.00.G22"
FOREIGN_NAMES = ("rc-1", "pe-1", "rc1-pe1", "rc-north", "pc-01", "10.0.0.1", "10.1.0.1", "ASR", "MX960")


@pytest.fixture
def tiny(session, admin):
    return build_tiny(session, admin)


@pytest.fixture
def vnpt(tiny, make_token):
    return make_token(Role.partner, operator_id=tiny.vnpt)


@pytest.fixture
def ward(tiny, session, make_token):
    return make_token(Role.agency, agency_id=tiny.id_of(session, Agency, WARD))


def hidden_ids(client, headers, session, tiny) -> dict[str, set[int]]:
    """The devices, links and sites of the tiny network that a direct GET refuses to this actor."""
    hidden = {}
    for table, model, keys in (("devices", Device, ("rc-1", "pe-1", "pe-48", "sw-1", "cpe-a", "cpe-b")),
                               ("links", Link, ("rc1-pe1", "rc1-pe48", "pe1-sw1", "sw1-cpea", "pe1-cpeb-1",
                                                "pe1-cpeb-2")),
                               ("sites", Site, ("rc-north", "pc-01", "pc-48", "cn-00004", "ap-a", "ap-b"))):
        ids = {tiny.id_of(session, model, k) for k in keys}
        hidden[table] = {i for i in ids if client.get(f"/api/v1/{table}/{i}", headers=headers).status_code == 404}
    return hidden


def assert_no_foreign(body: dict, hidden: dict[str, set[int]]) -> None:
    """No id of a hidden object anywhere under an id-bearing key, and no name, site or address of CBĐTW's parts."""
    text = json.dumps(body, ensure_ascii=False)
    for name in FOREIGN_NAMES:
        assert f'"{name}"' not in text and name not in text.replace("CBĐTW", ""), name

    def walk(node):
        if isinstance(node, dict):
            if "id" in node and node.get("kind") in ("device", "link"):
                assert node["id"] not in hidden[f"{node['kind']}s"], node
            if "slug" in node and "tier" not in node and "id" in node:  # a site
                assert node["id"] not in hidden["sites"], node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)


def test_the_fixture_hides_cbdtw_parts_from_the_partner(client, vnpt, session, tiny):
    hidden = hidden_ids(client, vnpt, session, tiny)
    assert {tiny.id_of(session, Device, "rc-1"), tiny.id_of(session, Device, "pe-1")} <= hidden["devices"]
    assert tiny.id_of(session, Link, "rc1-pe1") in hidden["links"]
    assert tiny.id_of(session, Device, "sw-1") not in hidden["devices"]


def test_partner_path_names_cbdtw_only_as_a_segment(client, vnpt, session, tiny):
    r = client.get("/api/v1/topology/path", params={"from_agency": WARD, "to_agency": CITY}, headers=vnpt)
    assert r.status_code == 200, r.text
    body = r.json()
    assert_no_foreign(body, hidden_ids(client, vnpt, session, tiny))
    steps = [(s["kind"], s.get("name") or s.get("slug") or s.get("label")) for s in body["steps"]]
    assert steps == [("device", "cpe-a"), ("link", "sw1-cpea"), ("device", "sw-1"), ("link", "pe1-sw1"),
                     ("segment", "Phân đoạn CBĐTW"), ("link", "pe1-cpeb-1"), ("device", "cpe-b")]
    segment = body["steps"][4]
    assert segment == {"kind": "segment", "operator": "CBĐTW", "label": "Phân đoạn CBĐTW"}
    assert body["links"] == 3 and body["to_agency"]["code"] == CITY  # partners see the agency directory
    assert body["steps"][2]["site"]["slug"] == "cn-00004"  # its own parts keep every detail


def test_admin_path_is_complete(client, make_token, session, tiny):
    r = client.get("/api/v1/topology/path", params={"from_agency": WARD, "to_agency": CITY},
                   headers=make_token(Role.auditor))
    names = [s.get("name") or s.get("slug") for s in r.json()["steps"]]
    assert names == ["cpe-a", "sw1-cpea", "sw-1", "pe1-sw1", "pe-1", "pe1-cpeb-1", "cpe-b"]
    assert r.json()["steps"][4]["site"]["slug"] == "pc-01"


def test_agency_path_shows_its_own_premises_and_segments(client, ward, session, tiny):
    r = client.get("/api/v1/topology/path", params={"from_agency": WARD, "to_agency": CITY}, headers=ward)
    assert r.status_code == 200, r.text
    body = r.json()
    hidden = hidden_ids(client, ward, session, tiny)
    assert tiny.id_of(session, Device, "sw-1") in hidden["devices"]
    assert_no_foreign(body, hidden)
    steps = [(s["kind"], s.get("name") or s.get("slug") or s.get("label")) for s in body["steps"]]
    assert steps == [("device", "cpe-a"), ("link", "sw1-cpea"), ("segment", "Phân đoạn VNPT"),
                     ("segment", "Phân đoạn CBĐTW"), ("segment", "Phân đoạn VNPT")]
    for other in ("sw-1", "pe1-sw1", "cpe-b", "pe1-cpeb-1", "Ủy ban nhân dân Thành phố Hà Nội"):
        assert other not in r.text
    assert body["from_agency"]["code"] == WARD
    assert body["to_agency"] == {"redacted": True, "label": "Cơ quan khác"}  # GET /agencies/<it> is 404 too
    assert client.get(f"/api/v1/agencies/{tiny.id_of(session, Agency, CITY)}", headers=ward).status_code == 404


def test_agency_path_by_id_does_not_reveal_the_other_agency(client, ward, session, tiny):
    gov = tiny.id_of(session, Agency, GOV)
    r = client.get("/api/v1/topology/path", params={"from_agency": WARD, "to_agency": gov}, headers=ward)
    assert r.status_code == 404 and GOV not in r.text and "Văn phòng" not in r.text
    assert f"'{gov}'" in r.json()["detail"] or str(gov) in r.json()["detail"]


def test_partner_spof_lists_only_its_own_parts(client, vnpt, make_token, session, tiny):
    admin = client.get("/api/v1/topology/spof", params={"province": "01"}, headers=make_token(Role.noc)).json()
    assert {"pe-1", "rc1-pe1"} <= {i["name"] for i in admin["items"]}  # CBĐTW's parts are SPOFs there
    r = client.get("/api/v1/topology/spof", params={"province": "01"}, headers=vnpt)
    assert r.status_code == 200, r.text
    body = r.json()
    assert_no_foreign(body, hidden_ids(client, vnpt, session, tiny))
    assert {i["operator_id"] for i in body["items"]} == {tiny.vnpt}
    assert body["total"] == len(body["items"]) == sum(p["links"] + p["devices"] for p in body["by_province"])
    assert body["total"] < admin["total"]
    for item in body["items"]:
        kind = "links" if item["kind"] == "link" else "devices"
        assert client.get(f"/api/v1/{kind}/{item['id']}", headers=vnpt).status_code == 200


def test_partner_impact_of_foreign_parts_is_not_found(client, vnpt, session, tiny):
    pe1 = tiny.id_of(session, Device, "pe-1")
    for params in ({"device": pe1}, {"device": "pe-1"}, {"link": "rc1-pe1"}, {"site": "pc-01"}):
        r = client.get("/api/v1/topology/impact", params=params, headers=vnpt)
        assert r.status_code == 404, (params, r.text)
        assert "pc-01" not in r.text or params == {"site": "pc-01"}
    assert client.get(f"/api/v1/devices/{pe1}", headers=vnpt).status_code == 404  # the same answer as a GET


def test_partner_impact_counts_only_what_it_may_see(client, vnpt, make_token, session, tiny):
    """sw-1's failure cuts cpe-a off: both VNPT's; the answer lists no CBĐTW device or link."""
    r = client.get("/api/v1/topology/impact", params={"device": "sw-1"}, headers=vnpt)
    assert r.status_code == 200, r.text
    body = r.json()
    assert_no_foreign(body, hidden_ids(client, vnpt, session, tiny))
    assert [d["name"] for d in body["failed_devices"]] == ["sw-1"]
    assert body["devices_cut_off"] == 2 and [a["code"] for a in body["agencies_lost"]] == [WARD]


def test_partner_site_failure_with_foreign_equipment_is_refused_without_names(client, vnpt, session, tiny, admin):
    from tslcd.registry import schemas as rs
    from tslcd.registry import service as registry

    # A VNPT switch placed at CBĐTW's provincial centre: the site becomes visible to VNPT, pe-1 stays hidden.
    registry.create_object(session=session, actor=admin, res=registry.resource("devices"), obj_in=rs.DeviceCreate(
        name="sw-pc", site_id=tiny.id_of(session, Site, "pc-01"), role="access_switch", tier="access_2"))
    r = client.get("/api/v1/topology/impact", params={"site": "pc-01"}, headers=vnpt)
    assert r.status_code == 403 and "pe-1" not in r.text, r.text


def test_partner_redundancy_counts_agencies_of_its_provinces(client, vnpt):
    r = client.get("/api/v1/topology/redundancy", params={"province": "01"}, headers=vnpt)
    assert r.status_code == 200 and r.json()["total"]["agencies"] == 3


def test_openapi_describes_the_redacted_forms(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"PathSegment", "RedactedAgency", "PathDevice", "PathLink"} <= schemas.keys()
    assert set(schemas["PathSegment"]["properties"]) == {"kind", "operator", "label"}
    steps = schemas["PathRead"]["properties"]["steps"]["items"]
    assert steps["discriminator"]["propertyName"] == "kind"
