"""Telemetry over HTTP: role scoping, pushed samples, the capacity report, thresholds, /metrics."""

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from tests.telemetry.conftest import M, feed, link, sample
from tslcd.registry.models import Agency
from tslcd.security.models import Role
from tslcd.telemetry import service
from tslcd.telemetry.models import Rate

PROBLEM = "application/problem+json"
API = "/api/v1/telemetry"


def _busy(session, day, *slugs):
    """Every named link at 90 % a->b."""
    t = day + timedelta(hours=9)
    feed(session, *[sample(link(session, s).a_interface_id, t, 0, 0.9 * link(session, s).capacity) for s in slugs])
    return t


def test_partners_and_agencies_see_their_own_alarms_and_links(client, session, tiny, make_token, day):
    _busy(session, day, "rc1-pe1", "pe1-sw1", "sw1-cpea")
    agency = session.scalar(select(Agency.id).where(Agency.code == "001.01.00.H01"))
    seen = {}
    for name, headers in (("noc", make_token(Role.noc)), ("vnpt", make_token(Role.partner, operator_id=tiny.vnpt)),
                          ("agency", make_token(Role.agency, agency_id=agency))):
        page = client.get(f"{API}/alarms", params={"active": "true"}, headers=headers).json()
        seen[name] = sorted(a["link_id"] for a in page["results"])
    ids = {s: link(session, s).id for s in ("rc1-pe1", "pe1-sw1", "sw1-cpea")}
    assert seen == {"noc": sorted(ids.values()), "vnpt": sorted([ids["pe1-sw1"], ids["sw1-cpea"]]),
                    "agency": [ids["sw1-cpea"]]}
    partner = make_token(Role.partner, operator_id=tiny.vnpt)
    r = client.get(f"{API}/links/{ids['rc1-pe1']}/series", params={"from": str(day.date())}, headers=partner)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    listed = client.get(f"{API}/utilization/links", params={"from": str(day.date()), "to": str(day.date())},
                        headers=partner).json()["links"]
    assert {f["link"]["slug"] for f in listed} == {"pe1-sw1", "sw1-cpea", "pe1-cpeb-1", "pe1-cpeb-2"}
    busiest = listed[0]
    assert (busiest["p95_out_pct"], busiest["peak_pct"]) == (90.0, 90.0)


def test_alarm_filters(client, session, tiny, make_token, day):
    _busy(session, day, "rc1-pe1", "pe1-sw1")
    h = make_token(Role.noc)
    by_operator = client.get(f"{API}/alarms", params={"operator": "cbdtw"}, headers=h).json()
    assert [a["link_id"] for a in by_operator["results"]] == [link(session, "rc1-pe1").id]
    assert client.get(f"{API}/alarms", params={"province": "48"}, headers=h).json()["count"] == 0
    critical = client.get(f"{API}/alarms", params={"severity": "critical", "kind": "utilization_critical",
                                                   "active": "true"}, headers=h).json()
    assert critical["count"] == 2
    assert client.get(f"{API}/alarms", params={"active": "false"}, headers=h).json()["count"] == 0


def test_push_is_all_or_nothing_with_row_errors(client, session, tiny, make_token):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    h = make_token(Role.noc)
    good = {"device": "pe-1", "interface": "Gi0/0/1", "ts": now.isoformat(), "interval_s": 60, "in_bps": 1e6,
            "out_bps": 2e6, "oper_up": True}
    bad = [good,
           {**good, "interface": "Gi9/9/9"},
           {**good, "ts": now.replace(tzinfo=None).isoformat(), "interval_s": 0},
           {"interface_id": 999999, "ts": now.isoformat(), "interval_s": 60},
           {**good}]
    r = client.post(f"{API}/samples", json=bad, headers=h)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == "/problems/validation" and body["title"] == "Import rejected"
    assert [(e["row"], e["column"]) for e in body["errors"]] == [
        (2, "interface"), (3, "ts"), (3, "interval_s"), (4, "interface_id"), (5, "ts")]
    assert body["errors"][0]["msg"] == "device 'pe-1' has no interface 'Gi9/9/9'"
    assert body["errors"][4]["msg"] == "same interface and time as row 1"
    assert session.scalar(select(Rate).limit(1)) is None

    r = client.post(f"{API}/samples", json=[good, {**good, "ts": (now - timedelta(minutes=1)).isoformat()}],
                    headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {"stored": 2, "duplicates": 0, "alarms_raised": 0, "alarms_cleared": 0}
    csv_body = f"interface_id,ts,interval_s,in_bps,out_bps\n{link(session, 'rc1-pe1').a_interface_id},{now},60,,\n"
    r = client.post(f"{API}/samples", content=csv_body, headers={**h, "content-type": "text/csv"})
    assert r.json()["stored"] == 1
    assert client.post(f"{API}/samples", json=[good], headers=make_token(Role.auditor)).status_code == 403


def test_partner_pushes_only_for_its_devices(client, session, tiny, make_token):
    now = datetime.now(timezone.utc).isoformat()
    viettel = make_token(Role.partner, operator_id=tiny.viettel)
    r = client.post(f"{API}/samples", json=[{"device": "pe-1", "interface": "Te0/0/0", "ts": now,
                                             "interval_s": 60}], headers=viettel)
    assert r.status_code == 422
    assert r.json()["errors"][0]["msg"] == "this interface is not in a segment your operator is responsible for"


def test_capacity_report_json_and_csv(client, session, tiny, make_token, day):
    _busy(session, day, "rc1-pe1")  # Hà Nội's only uplink at 90 %
    h = make_token(Role.noc)
    params = {"from": str(day.date()), "to": str(day.date())}
    report = client.get(f"{API}/reports/capacity", params=params, headers=h).json()
    assert report["summary"] == "0 of 1 provinces under 60 %, 1 over 80 %"
    assert report["summary_vi"] == "0/1 tỉnh dưới 60 %, 1 tỉnh trên 80 %"
    r = client.get(f"{API}/reports/capacity", params={**params, "format": "csv", "table": "links"}, headers=h)
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[1].startswith("rc1-pe1,access_1,")


def test_thresholds_api_is_audited_and_guarded(client, session, tiny, make_token):
    h = make_token(Role.noc)
    r = client.put(f"{API}/thresholds", json={"tier": "access_2", "warning_pct": 50, "critical_pct": 70}, headers=h)
    assert r.status_code == 200 and r.json()["tier"] == "access_2"
    r = client.put(f"{API}/thresholds", json={"tier": "access_2", "warning_pct": 55, "critical_pct": 75}, headers=h)
    assert r.json()["warning_pct"] == 55
    assert [t["warning_pct"] for t in client.get(f"{API}/thresholds", headers=h).json()] == [55]
    r = client.put(f"{API}/thresholds", json={"tier": "access_2", "warning_pct": 80, "critical_pct": 70}, headers=h)
    assert r.status_code == 422
    partner = make_token(Role.partner, operator_id=tiny.vnpt)
    r = client.put(f"{API}/thresholds", json={"tier": "access_2", "warning_pct": 10, "critical_pct": 20},
                   headers=partner)
    assert r.status_code == 403
    audit = client.get("/api/v1/audit", params={"object_type": "thresholds"}, headers=make_token(Role.admin)).json()
    assert [a["action"] for a in audit["results"]] == ["update", "create"]


def test_metrics_show_current_utilization_and_poller_health(client, session, tiny):
    pe1_sw1 = link(session, "pe1-sw1")
    now = datetime.now(timezone.utc)
    feed(session, sample(pe1_sw1.a_interface_id, now - timedelta(minutes=1), 20 * M, 100 * M, interval=60))
    service.record_cycle(session=session, shard="1/1", started_at=now - timedelta(minutes=1), duration_s=12.5,
                         devices=6, interfaces=13, failures=1)
    service.device_unreachable(session=session, device_id=pe1_sw1.b_device_id, ts=now, reason="timeout")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    labels = 'link="pe1-sw1",operator="vnpt",province="01",tier="access_2"'
    assert f'tslcd_link_utilization_ratio{{direction="out",{labels}}} 0.5' in r.text
    assert f'tslcd_link_traffic_bits_per_second{{direction="in",{labels}}} 2e+07' in r.text
    assert f"tslcd_link_capacity_bits_per_second{{{labels}}} 2e+08" in r.text
    assert 'tslcd_poller_cycle_failures{shard="1/1"} 1.0' in r.text
    assert 'tslcd_alarms_active{kind="device_unreachable",severity="major"} 1.0' in r.text


def test_series_and_utilization_endpoints(client, session, tiny, make_token, day):
    t = _busy(session, day, "pe1-sw1")
    pe1_sw1 = link(session, "pe1-sw1")
    h, params = make_token(Role.noc), {"from": str(day.date()), "to": str(day.date())}
    one = client.get(f"{API}/links/{pe1_sw1.id}/utilization", params=params, headers=h).json()
    assert (one["side"], one["p95_out_pct"], one["p95_in_pct"]) == ("a", 90.0, 0.0)
    series = client.get(f"{API}/interfaces/{pe1_sw1.a_interface_id}/series", params=params, headers=h).json()
    assert series["resolution"] == "raw"
    assert [(p["ts"], p["out_bps"], p["oper_up"]) for p in series["points"]] == \
        [(t.isoformat().replace("+00:00", "Z"), 180e6, True)]
    provinces = client.get(f"{API}/utilization/provinces", params=params, headers=h).json()["provinces"]
    assert [(p["province"]["code"], p["uplinks"], p["measured_uplinks"], p["p95_pct"]) for p in provinces] == \
        [("01", 1, 0, None)]
    r = client.get(f"{API}/links/{pe1_sw1.id}/series", params={"from": "yesterday"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"] == [{"loc": ["from"], "msg": "not a date or time"}]


TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$")


def _times(value, path=""):
    """Every (path, text) in a JSON document that reads as a time of day."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _times(v, f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from _times(v, f"{path}[]")
    elif isinstance(value, str) and TIME.match(value):
        yield path, value


def test_every_time_in_every_telemetry_response_carries_its_offset(client, session, tiny, make_token, day):
    """Issue 11 item 20: alarms' times, series points, periods and poller cycles, read through the ORM or raw
    SQL, on both backends: each with its UTC offset."""
    h = make_token(Role.noc)  # audited: before any other write of the transaction
    t = _busy(session, day, "rc1-pe1", "pe1-sw1")
    pe1_sw1 = link(session, "pe1-sw1")
    feed(session, sample(pe1_sw1.a_interface_id, t + timedelta(minutes=5), 0, 0))  # clears: cleared_at
    service.rollup(session=session, until=t + timedelta(hours=2))
    service.record_cycle(session=session, shard="1/1", started_at=t, duration_s=1.5, devices=6, interfaces=13,
                         failures=0)
    period = {"from": str(day.date()), "to": str(day.date())}
    week = {"from": str((day - timedelta(days=3)).date()), "to": str(day.date())}
    urls = [("/alarms", {}), (f"/links/{pe1_sw1.id}/series", period), (f"/links/{pe1_sw1.id}/series", week),
            (f"/interfaces/{pe1_sw1.a_interface_id}/series", period), (f"/links/{pe1_sw1.id}/utilization", period),
            ("/utilization/links", period), ("/utilization/provinces", period), ("/reports/capacity", period),
            ("/poller-cycles", {}), ("/thresholds", {})]
    seen = set()
    for url, params in urls:
        r = client.get(f"{API}{url}", params=params, headers=h)
        assert r.status_code == 200, (url, r.text)
        for path, text in _times(r.json()):
            assert OFFSET.search(text), (url, path, text)
            seen.add(path.split(".")[-1])
    assert {"first_seen", "last_seen", "cleared_at", "ts", "start", "end", "started_at"} <= seen


def test_capacity_report_lists_a_page_of_links_with_data_and_counts_the_rest(client, session, tiny, make_token,
                                                                             day):
    """Issue 11 item 22: with no data every link was listed; now only those with data, a page at a time."""
    h = make_token(Role.noc)
    empty = client.get(f"{API}/reports/capacity", headers=h).json()
    assert empty["links"] == {"count": 0, "limit": 100, "offset": 0, "without_data": 6, "results": []}
    _busy(session, day, "rc1-pe1", "pe1-sw1", "sw1-cpea")
    params = {"from": str(day.date()), "to": str(day.date()), "limit": 2}
    table = client.get(f"{API}/reports/capacity", params=params, headers=h).json()["links"]
    assert (table["count"], table["without_data"], len(table["results"])) == (3, 3, 2)
    rest = client.get(f"{API}/reports/capacity", params={**params, "offset": 2}, headers=h).json()["links"]
    slugs = {f["link"]["slug"] for f in table["results"] + rest["results"]}
    assert slugs == {"rc1-pe1", "pe1-sw1", "sw1-cpea"}
    r = client.get(f"{API}/reports/capacity", params={**params, "format": "csv", "table": "links"}, headers=h)
    assert len(r.text.splitlines()) == 1 + 2
    assert (r.headers["x-total-count"], r.headers["x-links-without-data"]) == ("3", "3")
    r = client.get(f"{API}/reports/capacity", params={**params, "limit": 0}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


def test_the_capacity_reports_default_period_is_what_its_docs_say(client, session, tiny, make_token):
    """Issue 11 item 22: `from` was documented as "an hour before `to`" but was 30 days before it."""
    spec = client.get("/openapi.json").json()["paths"]
    described = {p["name"]: p.get("description", "") for p in spec[f"{API}/reports/capacity"]["get"]["parameters"]}
    assert described["from"] == "date or time; default: 30 days before `to`"
    series = {p["name"]: p.get("description", "") for p in spec[f"{API}/links/{{link_id}}/series"]["get"]["parameters"]}
    assert series["from"] == "date or time; default: an hour before `to`"
    report = client.get(f"{API}/reports/capacity", params={"to": "2026-01-31"}, headers=make_token(Role.noc)).json()
    assert (report["start"], report["end"]) == ("2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z")
    series = client.get(f"{API}/links/{link(session, 'pe1-sw1').id}/series", params={"to": "2026-01-31T12:00:00Z"},
                        headers=make_token(Role.noc)).json()
    assert (series["start"], series["end"]) == ("2026-01-31T11:00:00Z", "2026-01-31T12:00:00Z")


def test_poller_cycles_are_readable_by_the_noc_only(client, session, tiny, make_token):
    noc, partner = make_token(Role.noc), make_token(Role.partner, operator_id=tiny.vnpt)
    now = datetime.now(timezone.utc)
    for minutes, failures in ((2, 3), (1, 0)):
        service.record_cycle(session=session, shard="1/2", started_at=now - timedelta(minutes=minutes),
                             duration_s=9.5, devices=7000, interfaces=20000, failures=failures)
    page = client.get(f"{API}/poller-cycles", params={"shard": "1/2"}, headers=noc).json()
    assert page["count"] == 2 and [c["failures"] for c in page["results"]] == [0, 3]
    assert client.get(f"{API}/poller-cycles", headers=partner).status_code == 403
