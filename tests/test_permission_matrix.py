"""The permission matrix: every role × object type × verb × entry point, each cell asserted allowed or denied.

Rows are declared below (REGISTRY for the registry's object types, ROUTES for every other operation of the API).
A new object type or a new API operation without its row makes `test_every_object_type_and_operation_has_a_row`
fail. Entry points: REST (list, get, create, update, delete), import (create and update rows), export, the CLI
(`tslcd --user NAME import|export`), topology answers and reports (ROUTES). Read scopes: "all" sees every row,
"own" only its segments (another operator's row answers 404 and is absent from lists and exports), "none"
nothing. Write scopes the same: "own" writes only rows of its segments, before and after the change.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import build_tiny, csv
from tslcd.registry import schemas, service
from tslcd.registry.models import Agency, AdminUnit, Device, Interface, Link, Operator, Service, Site, Subscription
from tslcd.registry.resources import RESOURCES
from tslcd.security.models import Role

ROLES = [r.value for r in Role]
A, O, N = "all", "own", "none"


def _row(admin, noc, partner, agency, auditor):
    return {"admin": admin, "noc": noc, "partner": partner, "agency": agency, "auditor": auditor}


# (read, write) per role
REGISTRY = {
    "admin-units": _row((A, A), (A, N), (A, N), (A, N), (A, N)),
    "operators": _row((A, A), (A, A), (A, N), (A, N), (A, N)),
    "agreements": _row((A, A), (A, A), (A, N), (A, N), (A, N)),
    "agencies": _row((A, A), (A, A), (A, N), (O, N), (A, N)),
    "sites": _row((A, A), (A, A), (O, N), (O, N), (A, N)),
    "snmp-credentials": _row((A, A), (A, A), (N, N), (N, N), (A, N)),
    "devices": _row((A, A), (A, A), (O, O), (O, N), (A, N)),
    "interfaces": _row((A, A), (A, A), (O, O), (O, N), (A, N)),
    "links": _row((A, A), (A, A), (O, O), (O, N), (A, N)),
    "services": _row((A, A), (A, A), (A, N), (A, N), (A, N)),
    "subscriptions": _row((A, A), (A, A), (O, N), (O, N), (A, N)),
}


@dataclass
class Objects:
    """Per object type: a row the partner and the agency user may see, one neither may see, request bodies."""

    own: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> role -> id
    foreign: dict[str, int] = field(default_factory=dict)
    create: dict[str, dict] = field(default_factory=dict)  # a body any writer of the type may post
    create_own: dict[str, dict] = field(default_factory=dict)  # a partner's own new row
    create_foreign: dict[str, dict] = field(default_factory=dict)  # a row in another operator's segment
    update: dict[str, dict] = field(default_factory=dict)
    deletable: dict[str, int] = field(default_factory=dict)  # a row nothing uses (in the partner's segment)


def _objects(session, admin, tiny) -> Objects:
    def id_of(model, column, value):
        return session.scalar(select(model.id).where(column == value))

    load = lambda name, text: service.import_objects(session=session, actor=admin, res=service.resource(name),
                                                     data=csv(text), fmt="csv")
    load("interfaces", """device,name,if_index
        sw-1,Gi0/3,3
        cpe-a,Gi0/1,2
        rc-1,xe-0/0/8,8
        pe-1,Gi0/0/8,8""")
    load("devices", """name,site,role,tier
        sw-spare,cn-00004,access_switch,access_2""")
    load("snmp-credentials", """name,version,community
        ro,v2c,sentinel-community-ro""")
    load("subscriptions", """agency,service,bandwidth,access_link
        000.00.00.G22,vpn,1G,rc1-pe48""")
    iface = lambda d, n: session.scalar(select(Interface.id).join(Device).where(Device.name == d, Interface.name == n))
    agency = id_of(Agency, Agency.code, "001.01.00.H01")
    o = Objects()
    o.own = {
        "admin-units": {"partner": tiny.province_id, "agency": tiny.province_id},
        "operators": {"partner": tiny.cbdtw, "agency": tiny.cbdtw},
        "agreements": {r: session.scalar(select(service.resource("agreements").model.id).limit(1))
                       for r in ("partner", "agency")},
        "agencies": {"partner": id_of(Agency, Agency.code, "000.00.00.G22"), "agency": agency},
        "sites": {"partner": id_of(Site, Site.slug, "cn-00004"), "agency": id_of(Site, Site.slug, "ap-a")},
        "snmp-credentials": {"partner": id_of(service.resource("snmp-credentials").model,
                                              service.resource("snmp-credentials").model.name, "ro")} | {
            "agency": id_of(service.resource("snmp-credentials").model,
                            service.resource("snmp-credentials").model.name, "ro")},
        "devices": {"partner": id_of(Device, Device.name, "sw-1"), "agency": id_of(Device, Device.name, "cpe-a")},
        "interfaces": {"partner": iface("sw-1", "Gi0/1"), "agency": iface("cpe-a", "Gi0/0")},
        "links": {"partner": id_of(Link, Link.slug, "pe1-sw1"), "agency": id_of(Link, Link.slug, "sw1-cpea")},
        "services": {"partner": id_of(Service, Service.code, "vpn"), "agency": id_of(Service, Service.code, "vpn")},
        "subscriptions": {"partner": session.scalar(select(Subscription.id).where(Subscription.agency_id == agency)),
                          "agency": session.scalar(select(Subscription.id).where(Subscription.agency_id == agency))},
    }
    o.foreign = {
        "admin-units": tiny.other_province_id, "operators": tiny.viettel,
        "agreements": session.scalar(select(service.resource("agreements").model.id).order_by(
            service.resource("agreements").model.id.desc()).limit(1)),
        "agencies": id_of(Agency, Agency.code, "000.00.00.H01"), "sites": id_of(Site, Site.slug, "rc-north"),
        "snmp-credentials": o.own["snmp-credentials"]["partner"], "devices": id_of(Device, Device.name, "rc-1"),
        "interfaces": iface("rc-1", "xe-0/0/0"), "links": id_of(Link, Link.slug, "rc1-pe1"),
        "services": id_of(Service, Service.code, "internet"),
        "subscriptions": session.scalar(select(Subscription.id).where(
            Subscription.access_link_id == id_of(Link, Link.slug, "rc1-pe48"))),
    }
    o.create = {
        "admin-units": {"code": "99999", "kind": "commune", "name": "Xã Thử", "parent_id": tiny.province_id},
        "operators": {"slug": "fpt", "name": "FPT Telecom"},
        "agreements": {"operator_id": tiny.viettel, "tier": "access_2", "province_id": tiny.other_province_id,
                       "valid_from": "2026-01-01"},
        "agencies": {"code": "000.00.09.H01", "name": "Sở Thử", "kind": "state"},
        "sites": {"slug": "gw-01-9", "name": "Cổng thử", "kind": "gateway", "unit_id": tiny.province_id},
        "snmp-credentials": {"name": "c1", "version": "v2c", "community": "sentinel-community-1"},
        "devices": {"name": "sw-new", "site_id": o.own["sites"]["partner"], "role": "access_switch",
                    "tier": "access_2"},
        "interfaces": {"device_id": o.own["devices"]["partner"], "name": "Gi0/9"},
        "links": {"slug": "sw1-cpea-2", "a_interface_id": iface("sw-1", "Gi0/3"),
                  "b_interface_id": iface("cpe-a", "Gi0/1"), "capacity": "100M", "tier": "access_2"},
        "services": {"code": "x1", "name": "Dịch vụ thử"},
        "subscriptions": {"agency_id": id_of(Agency, Agency.code, "000.00.00.G22"),
                          "service_id": id_of(Service, Service.code, "internet"), "bandwidth": "10M"},
    }
    o.create_own = {k: o.create[k] for k in ("devices", "interfaces", "links")}
    o.create_foreign = {
        "devices": {"name": "core-9", "site_id": id_of(Site, Site.slug, "rc-north"), "role": "core_router",
                    "tier": "backbone"},
        "interfaces": {"device_id": id_of(Device, Device.name, "rc-1"), "name": "xe-9/9/9"},
        "links": {"slug": "rc1-pe1-b", "a_interface_id": iface("rc-1", "xe-0/0/8"),
                  "b_interface_id": iface("pe-1", "Gi0/0/8"), "capacity": "10G", "tier": "access_1"},
    }
    o.update = {"admin-units": {"name": "Tên mới"}, "operators": {"name": "Tên mới"},
                "agreements": {"reference": "Phụ lục mới"}, "agencies": {"name": "Tên mới"},
                "sites": {"name": "Tên mới"}, "snmp-credentials": {"name": "ro", "version": "v2c"},
                "devices": {"model": "Mẫu mới"}, "interfaces": {"description": "Mô tả mới"},
                "links": {"capacity": "150M"}, "services": {"name": "Tên mới"},
                "subscriptions": {"bandwidth": "20M"}}
    o.deletable = {"devices": id_of(Device, Device.name, "sw-spare"), "interfaces": iface("sw-1", "Gi0/3"),
                   "services": id_of(Service, Service.code, "internet")}
    return o


@pytest.fixture
def world(session, admin, make_token):
    tiny = build_tiny(session, admin)
    objects = _objects(session, admin, tiny)
    agency = session.scalar(select(Agency.id).where(Agency.code == "001.01.00.H01"))
    headers = {"admin": make_token(Role.admin), "noc": make_token(Role.noc),
               "partner": make_token(Role.partner, operator_id=tiny.vnpt),
               "agency": make_token(Role.agency, agency_id=agency), "auditor": make_token(Role.auditor)}
    return tiny, objects, headers


def test_every_object_type_and_operation_has_a_row():
    from tslcd.api import create_app

    assert set(REGISTRY) == set(RESOURCES), "fill the permission matrix's row for every object type"
    for name, row in REGISTRY.items():
        assert set(row) == set(ROLES), f"{name}: a cell per role"
    registry_paths = {f"/api/v1/{name}{suffix}" for name in RESOURCES
                      for suffix in ("", "/{obj_id}", "/import", "/export")} | {"/api/v1/admin-units/{obj_id}/lineage"}
    missing = []
    for path, methods in create_app().openapi()["paths"].items():
        for method in methods:
            key = f"{method.upper()} {path}"
            if path not in registry_paths and key not in ROUTES:
                missing.append(key)
    assert not missing, f"operations without a row in the permission matrix: {missing}"
    for key, row in ROUTES.items():
        assert set(row.expect) == set(ROLES), f"{key}: a cell per role"


def _check(failures: list, cell: str, ok: bool, detail: str = "") -> None:
    if not ok:
        failures.append(f"{cell}: {detail}")


def _each_role(session, cell) -> None:
    """Run `cell(role)` for every role on the same network, rolling each role's writes back before the next; every
    failing cell is reported, not only the first."""
    failures: list[str] = []
    for role in ROLES:
        savepoint = session.begin_nested()
        try:
            cell(role, failures)
        except AssertionError as exc:
            failures.append(f"{role}: {exc}")
        finally:
            savepoint.rollback()
            session.expire_all()
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_cells_rest_import_export(client, session, world, name):
    _each_role(session, lambda role, failures: _registry_cells(client, world, name, role, failures))


def _registry_cells(client, world, name, role, all_failures):
    tiny, o, headers = world
    h = headers[role]
    read, write = REGISTRY[name][role]
    base = f"/api/v1/{name}"
    failures: list[str] = []
    own = o.own.get(name, {}).get(role) if role in ("partner", "agency") else o.foreign[name]
    foreign = o.foreign[name]

    # Reads: list, get, export
    r = client.get(base, params={"limit": 1000, "as_of": "all"} if name in ("admin-units", "agencies",
                                                                             "agreements") else {"limit": 1000},
                   headers=h)
    _check(failures, "rest list", r.status_code == 200, r.text)
    listed = {x["id"] for x in r.json().get("results", [])}
    exported = client.get(f"{base}/export", params={"format": "json"}, headers=h)
    _check(failures, "export", exported.status_code == 200, exported.text)
    in_export = {x["id"] for x in exported.json()} if exported.status_code == 200 else set()
    for label, obj_id, visible in (("own", own, read != N), ("foreign", foreign, read == A)):
        if obj_id is None:
            continue
        got = client.get(f"{base}/{obj_id}", headers=h).status_code
        _check(failures, f"rest get {label}", got == (200 if visible else 404), f"status {got}")
        _check(failures, f"rest list {label}", (obj_id in listed) == visible, f"listed={obj_id in listed}")
        _check(failures, f"export {label}", (obj_id in in_export) == visible, f"exported={obj_id in in_export}")

    # Writes: create (REST and import), update (REST and import), delete
    cases = []
    if write == A:
        cases = [("create", o.create[name], True)]
    elif write == O:
        cases = [("create own", o.create_own[name], True), ("create foreign", o.create_foreign[name], False)]
    else:
        cases = [("create", o.create[name], False)]
    for label, body, allowed in cases:
        r = client.post(base, json=body, headers=h)
        _check(failures, f"rest {label}", (r.status_code == 201) == allowed, f"status {r.status_code} {r.text[:200]}")
        if r.status_code == 201:
            client.delete(f"{base}/{r.json()['id']}", headers=headers["admin"])
        r = client.post(f"{base}/import", json=[body], headers=h)
        _check(failures, f"import {label}", (r.status_code == 200) == allowed, f"status {r.status_code} {r.text[:200]}")
        if r.status_code == 200:
            created = client.get(base, params={"limit": 1000}, headers=headers["admin"]).json()["results"]
            client.delete(f"{base}/{max(x['id'] for x in created)}", headers=headers["admin"])
    targets = [("foreign", foreign, write == A)] + ([("own", own, write in (A, O))] if own != foreign and own else [])
    for label, obj_id, allowed in targets:
        r = client.patch(f"{base}/{obj_id}", json=o.update[name], headers=h)
        _check(failures, f"rest update {label}", (r.status_code == 200) == allowed, f"status {r.status_code}")
        r = client.post(f"{base}/import", json=[{"id": obj_id, **o.update[name]}], headers=h)
        _check(failures, f"import update {label}", (r.status_code == 200) == allowed, f"status {r.status_code}")
        denial = r.json().get("errors", [{}])[0].get("msg", "") if r.status_code != 200 else ""
        _check(failures, f"import update {label} says why", allowed or denial, r.text[:200])
    deletable = o.deletable.get(name, foreign)
    r = client.delete(f"{base}/{deletable}", headers=h)
    allowed = write == A or (write == O and name in o.deletable)
    _check(failures, "rest delete", (r.status_code in (204, 409)) == allowed, f"status {r.status_code} {r.text[:200]}")
    all_failures += [f"{role} × {name}: {f}" for f in failures]


# Every other operation: who may call it (ok: 2xx; denied: 403/404; scoped: 2xx showing only its segments)
@dataclass
class Route:
    expect: dict[str, str]
    call: tuple[str, str, dict] = ("GET", "", {})  # method, path with {placeholders}, json/params


OK, DENY, SCOPED, ROWS = "ok", "denied", "scoped", "rows"  # rows: 422 naming the rows it may not write
ROUTES: dict[str, Route] = {
    "POST /api/v1/auth/token": Route(_row(OK, OK, OK, OK, OK)),  # anyone with a password (throttled)
    "GET /api/v1/auth/me": Route(_row(OK, OK, OK, OK, OK), ("GET", "/api/v1/auth/me", {})),
    "GET /api/v1/users": Route(_row(OK, DENY, DENY, DENY, DENY), ("GET", "/api/v1/users", {})),
    "POST /api/v1/users": Route(_row(OK, DENY, DENY, DENY, DENY),
                                ("POST", "/api/v1/users", {"json": {"username": "new-user", "role": "noc"}})),
    "PATCH /api/v1/users/{user_id}": Route(_row(OK, DENY, DENY, DENY, DENY),
                                           ("PATCH", "/api/v1/users/{user_id}", {"json": {"full_name": "X"}})),
    "GET /api/v1/audit": Route(_row(OK, DENY, DENY, DENY, OK), ("GET", "/api/v1/audit", {})),
    "GET /api/v1/audit/verify": Route(_row(OK, DENY, DENY, DENY, OK), ("GET", "/api/v1/audit/verify", {})),
    "GET /api/v1/topology/path": Route(_row(OK, OK, SCOPED, SCOPED, OK), (
        "GET", "/api/v1/topology/path", {"params": {"from_agency": "001.01.00.H01", "to_agency": "000.00.00.H01"}})),
    "GET /api/v1/topology/impact": Route(_row(OK, OK, DENY, DENY, OK), (
        "GET", "/api/v1/topology/impact", {"params": {"link": "rc1-pe1"}})),
    "POST /api/v1/topology/impact": Route(_row(OK, OK, DENY, DENY, OK), (
        "POST", "/api/v1/topology/impact", {"json": {"links": ["rc1-pe1"]}})),
    "GET /api/v1/topology/spof": Route(_row(OK, OK, SCOPED, DENY, OK), ("GET", "/api/v1/topology/spof", {})),
    "GET /api/v1/topology/redundancy": Route(_row(OK, OK, SCOPED, DENY, OK),
                                             ("GET", "/api/v1/topology/redundancy", {})),
    "GET /api/v1/telemetry/interfaces/{interface_id}/series": Route(_row(OK, OK, DENY, DENY, OK), (
        "GET", "/api/v1/telemetry/interfaces/{rc_interface}/series", {})),
    "GET /api/v1/telemetry/links/{link_id}/series": Route(_row(OK, OK, DENY, DENY, OK), (
        "GET", "/api/v1/telemetry/links/{rc_link}/series", {})),
    "GET /api/v1/telemetry/links/{link_id}/utilization": Route(_row(OK, OK, DENY, DENY, OK), (
        "GET", "/api/v1/telemetry/links/{rc_link}/utilization", {})),
    "GET /api/v1/telemetry/utilization/links": Route(_row(OK, OK, SCOPED, SCOPED, OK), (
        "GET", "/api/v1/telemetry/utilization/links", {})),
    "GET /api/v1/telemetry/utilization/provinces": Route(_row(OK, OK, SCOPED, SCOPED, OK), (
        "GET", "/api/v1/telemetry/utilization/provinces", {})),
    "GET /api/v1/telemetry/reports/capacity": Route(_row(OK, OK, SCOPED, SCOPED, OK), (
        "GET", "/api/v1/telemetry/reports/capacity", {})),
    "GET /api/v1/telemetry/alarms": Route(_row(OK, OK, SCOPED, SCOPED, OK), ("GET", "/api/v1/telemetry/alarms", {})),
    "POST /api/v1/telemetry/samples": Route(_row(OK, OK, ROWS, DENY, DENY), (
        "POST", "/api/v1/telemetry/samples", {"json": [{"device": "rc-1", "interface": "xe-0/0/0",
                                                        "ts": "{now}", "interval_s": 60, "in_bps": 1e6,
                                                        "out_bps": 1e6}]})),
    "GET /api/v1/telemetry/poller-cycles": Route(_row(OK, OK, DENY, DENY, OK), (
        "GET", "/api/v1/telemetry/poller-cycles", {})),
    "GET /api/v1/telemetry/thresholds": Route(_row(OK, OK, SCOPED, SCOPED, OK),
                                              ("GET", "/api/v1/telemetry/thresholds", {})),
    "PUT /api/v1/telemetry/thresholds": Route(_row(OK, OK, DENY, DENY, DENY), (
        "PUT", "/api/v1/telemetry/thresholds", {"json": {"tier": "access_2", "warning_pct": 50, "critical_pct": 70}})),
    "DELETE /api/v1/telemetry/thresholds/{threshold_id}": Route(_row(OK, OK, DENY, DENY, DENY), (
        "DELETE", "/api/v1/telemetry/thresholds/{threshold}", {})),
    # Assurance: the incident is CBĐTW's rc1-pe1 cut; the agency user's agency lost service through it.
    "GET /api/v1/assurance/incidents": Route(_row(OK, OK, SCOPED, SCOPED, OK), (
        "GET", "/api/v1/assurance/incidents", {})),
    "GET /api/v1/assurance/incidents/{incident_id}": Route(_row(OK, OK, DENY, SCOPED, OK), (
        "GET", "/api/v1/assurance/incidents/{incident}", {})),
    "GET /api/v1/assurance/incidents/{incident_id}/timeline": Route(_row(OK, OK, DENY, SCOPED, OK), (
        "GET", "/api/v1/assurance/incidents/{incident}/timeline", {})),
    "GET /api/v1/assurance/incidents/{incident_id}/alarms": Route(_row(OK, OK, DENY, SCOPED, OK), (
        "GET", "/api/v1/assurance/incidents/{incident}/alarms", {})),
    "GET /api/v1/assurance/incidents/{incident_id}/agencies": Route(_row(OK, OK, DENY, SCOPED, OK), (
        "GET", "/api/v1/assurance/incidents/{incident}/agencies", {})),
    "POST /api/v1/assurance/incidents/{incident_id}/transition": Route(_row(OK, OK, DENY, DENY, DENY), (
        "POST", "/api/v1/assurance/incidents/{incident}/transition",
        {"json": {"state": "acknowledged", "reason": "tiếp nhận"}})),
    "POST /api/v1/assurance/incidents/{incident_id}/priority": Route(_row(OK, OK, DENY, DENY, DENY), (
        "POST", "/api/v1/assurance/incidents/{incident}/priority", {"json": {"priority": "P1", "reason": "họp"}})),
    "GET /api/v1/assurance/tasks": Route(_row(OK, OK, SCOPED, SCOPED, OK), ("GET", "/api/v1/assurance/tasks", {})),
    "POST /api/v1/assurance/correlate": Route(_row(OK, OK, DENY, DENY, DENY), (
        "POST", "/api/v1/assurance/correlate", {})),
}


def _incident(session, o) -> int:
    """CBĐTW's rc1-pe1 is down: its incident (opened by the correlation, as the scheduler would)."""
    from tslcd.assurance import service as assurance
    from tslcd.security.actor import SYSTEM
    from tslcd.telemetry.models import Alarm, AlarmKind, Severity
    from tslcd.core.database import utcnow

    link = session.get(Link, o.foreign["links"])
    session.add(Alarm(dedup_key=f"link_down:links:{link.id}", kind=AlarmKind.link_down, severity=Severity.major,
                      source="poll", object_type="links", object_id=link.id, link_id=link.id,
                      operator_id=link.operator_id, message=f"{link.slug} down", first_seen=utcnow(),
                      last_seen=utcnow()))
    return assurance.correlate(session=session, actor=SYSTEM).opened[0].id


def _fill(value, names: dict):
    if isinstance(value, str):
        return value.format(**names) if "{" in value else value
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


@pytest.mark.parametrize("key", sorted(k for k in ROUTES if k != "POST /api/v1/auth/token"))
def test_route_cells(client, session, world, key):
    _each_role(session, lambda role, _failures: _route_cell(client, session, world, key, role))


def _route_cell(client, session, world, key, role):
    from datetime import datetime, timezone

    from tslcd.registry.models import Tier
    from tslcd.security.models import User
    from tslcd.telemetry.models import Threshold

    from tslcd.security import audit

    tiny, o, headers = world
    route = ROUTES[key]
    expected = route.expect[role]
    audit.lock(session)
    incident = _incident(session, o) if "/assurance/" in key else None
    threshold = Threshold(tier=Tier.access_1, warning_pct=60, critical_pct=80)
    session.add(threshold)
    session.flush()
    names = {"user_id": session.scalar(select(User.id).where(User.role == Role.noc)),
             "rc_interface": o.foreign["interfaces"], "rc_link": o.foreign["links"], "threshold": threshold.id,
             "incident": incident,
             "now": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}
    method, path, kw = route.call
    r = client.request(method, _fill(path, names), headers=headers[role], **_fill(kw, names))
    if expected in (OK, SCOPED):
        assert 200 <= r.status_code < 300, (role, key, r.status_code, r.text[:300])
    elif expected == ROWS:
        assert r.status_code == 422 and "not in a segment your operator is responsible for" in r.text, r.text
    else:
        assert r.status_code in (403, 404), (role, key, r.status_code, r.text[:300])
    if expected == SCOPED:  # nothing of another operator's network in the answer
        text = r.text
        for name in ("rc-1", "rc1-pe1", "rc-north", "pe-1\"", "xe-0/0/0"):
            assert name not in text, (role, key, name)


# The CLI acts as a user with `tslcd --user NAME`: the same gate, for every object type
@pytest.fixture(scope="module")
def cli_world(engine, tmp_path_factory):
    """A database of its own (the CLI opens its own sessions) with the tiny network and a user per role."""
    from tests.conftest import serving
    from tslcd.core import database
    from tslcd.security import service as security
    from tslcd.security.actor import SYSTEM
    from tslcd.security.schemas import UserCreate

    with serving(engine, tmp_path_factory):
        with database.session_scope() as s:
            tiny = build_tiny(s, SYSTEM)
            objects = _objects(s, SYSTEM, tiny)
            agency = s.scalar(select(Agency.id).where(Agency.code == "001.01.00.H01"))
            for role in ROLES:
                security.create_user(session=s, actor=SYSTEM, user_in=UserCreate(
                    username=f"cli-{role}", role=Role(role), operator_id=tiny.vnpt if role == "partner" else None,
                    agency_id=agency if role == "agency" else None))
        yield objects, tmp_path_factory.mktemp("cli-files")


def _invoke(*args: str):
    from typer.testing import CliRunner

    from tslcd.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_cli_cells(cli_world, name):
    """`tslcd --user cli-ROLE export TYPE` shows what the role may read; importing the administrator's export back
    (every row unchanged) succeeds only for a role that may write every row of the type."""
    from tslcd.core.errors import DomainError

    o, folder = cli_world
    admin_export = folder / f"{name}.json"
    done = _invoke("export", name, "--format", "json", "-o", str(admin_export))
    assert done.exit_code == 0, done.output
    failures = []
    for role in ROLES:
        read, write = REGISTRY[name][role]
        out = folder / f"{name}-{role}.json"
        done = _invoke("--user", f"cli-{role}", "export", name, "--format", "json", "-o", str(out))
        ids = {row["id"] for row in json.loads(out.read_text())} if done.exit_code == 0 else set()
        own = o.own.get(name, {}).get(role) if role in ("partner", "agency") else o.foreign[name]
        if (o.foreign[name] in ids) != (read == A):
            failures.append(f"{role}: export foreign={o.foreign[name] in ids}")
        if own is not None and (own in ids) != (read != N):
            failures.append(f"{role}: export own={own in ids}")
        try:
            done = _invoke("--user", f"cli-{role}", "import", name, str(admin_export))
            imported = done.exit_code == 0
        except DomainError:  # main() turns it into one line and exit 1; the runner sees the error itself
            imported = False
        if imported != (write == A):
            failures.append(f"{role}: import of the full export {'succeeded' if imported else 'failed'}")
    assert not failures, f"{name}: " + "; ".join(failures)


def test_cli_refuses_an_unknown_user(cli_world):
    from tslcd.core.errors import NotFound

    with pytest.raises(NotFound, match="no user 'nobody'"):
        _invoke("--user", "nobody", "export", "devices")


def test_cli_user_errors_are_one_line(tmp_path):
    """Through the real command: one line and exit 1, no traceback."""
    env = {"TSLCD_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "TSLCD_VAR_DIR": str(tmp_path / "var"),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "tslcd", *a], env=env, capture_output=True, text=True,
                                    timeout=300, cwd=tmp_path)
    assert run("db", "upgrade").returncode == 0
    done = run("--user", "nobody", "export", "devices")
    assert done.returncode == 1 and done.stderr.strip() == "error: no user 'nobody'", done.stderr
