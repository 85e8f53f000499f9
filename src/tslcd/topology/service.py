"""Topology questions with their role rules: path between agencies, failure impact, single points of failure.

Admin, NOC and auditors ask anything. A partner traces paths, asks the impact of its own links and devices only,
and sees single points of failure and redundancy in the provinces where it is responsible for something. An
agency's staff trace paths from or to their own agency, nothing else.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tslcd.core.errors import DomainValidationError, NotFound, PermissionDenied
from tslcd.registry.models import AdminUnit, UnitKind
from tslcd.security.actor import Actor
from tslcd.security.models import Role
from tslcd.topology import schemas as s
from tslcd.topology.graph import Network, current_network

Ref = int | str


# Permissions
def _require_operations_role(actor: Actor, question: str) -> None:
    if not actor.sees_everything and actor.role != Role.partner:
        raise PermissionDenied(f"role {actor.role.value} cannot ask {question}")


def _partner_provinces(net: Network, operator_id: int | None) -> set[int]:
    """Provinces where the operator is responsible for at least one device or link."""
    return ({d.province_id for d in net.devices.values() if d.operator_id == operator_id}
            | {link.province_id for link in net.links.values() if link.operator_id == operator_id}) - {None}


def _check_partner_failures(net: Network, actor: Actor, link_ids: list[int], device_ids: list[int]) -> None:
    foreign = [f"link {net.links[i].slug}" for i in link_ids if net.links[i].operator_id != actor.operator_id]
    foreign += [f"device {net.devices[i].name}" for i in device_ids
                if net.devices[i].operator_id != actor.operator_id]
    if foreign:
        raise PermissionDenied(f"your operator is not responsible for {', '.join(foreign)}; a partner may ask the "
                               "impact of its own links and devices only")


def _scope_provinces(session: Session, net: Network, actor: Actor, province: Ref | None
                     ) -> tuple[AdminUnit | None, set[int] | None]:
    """The province asked for, and the provinces the actor may see (None: all)."""
    unit = get_province(session=session, ref=province) if province is not None else None
    allowed = _partner_provinces(net, actor.operator_id) if actor.role == Role.partner else None
    if unit is not None and allowed is not None and unit.id not in allowed:
        raise PermissionDenied(f"your operator is responsible for nothing in {unit.name}")
    if unit is not None:
        allowed = {unit.id}
    return unit, allowed


# Lookups
def get_province(*, session: Session, ref: Ref) -> AdminUnit:
    """A province by code (the current unit bearing it, e.g. "01" = Hà Nội) or else by id."""
    units = session.scalars(select(AdminUnit).where(AdminUnit.kind == UnitKind.province,
                                                    AdminUnit.code == str(ref))).all()
    if units:
        return max(units, key=lambda u: (u.valid_to or date.max, u.valid_from or date.min))
    unit = session.get(AdminUnit, int(ref)) if str(ref).isdigit() else None
    if unit is None or unit.kind != UnitKind.province:
        raise NotFound(f"no province with code or id '{ref}'")
    return unit


def _resolve(net: Network, table: str, ref: Ref, label: str) -> int:
    """An id from an id or a natural key; a natural key wins when a name is made of digits."""
    found = net.key_map(table).get(str(ref))
    if found is not None:
        return found
    if str(ref).isdigit() and int(ref) in net.tables[table]:
        return int(ref)
    raise NotFound(f"no {label} '{ref}'")


def _provinces(session: Session, ids: Iterable[int | None]) -> dict[int, s.ProvinceBrief]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(AdminUnit.id, AdminUnit.code, AdminUnit.name).where(AdminUnit.id.in_(wanted)))
    return {r.id: s.ProvinceBrief(id=r.id, code=r.code, name=r.name) for r in rows}


def _agency(net: Network, agency_id: int) -> s.AgencyBrief:
    row = net.agencies[agency_id]
    return s.AgencyBrief(id=agency_id, code=row.code, name=row.name, province_id=row.province_id)


def _device(net: Network, device_id: int) -> s.DeviceBrief:
    row = net.devices[device_id]
    site = net.sites.get(row.site_id)
    return s.DeviceBrief(id=device_id, name=row.name, role=row.role, province_id=row.province_id,
                         operator_id=row.operator_id,
                         site=s.SiteBrief(id=row.site_id, slug=site.slug, name=site.name) if site else None)


def _link(net: Network, link_id: int) -> s.LinkBrief:
    row = net.links[link_id]
    return s.LinkBrief(id=link_id, slug=row.slug, tier=row.tier, operator_id=row.operator_id, capacity=row.capacity)


def _unique(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(ids))


# Questions
def path(*, session: Session, actor: Actor, from_agency: Ref, to_agency: Ref) -> s.PathRead:
    """Fewest-hop path over active links from one agency's devices to the other's."""
    with current_network(session) as net:
        a, b = _resolve(net, "agencies", from_agency, "agency"), _resolve(net, "agencies", to_agency, "agency")
        if actor.role == Role.agency:
            if actor.agency_id not in (a, b):
                raise PermissionDenied("agency users trace paths only from or to their own agency")
        else:
            _require_operations_role(actor, "for paths")
        ends = {}
        for agency_id in (a, b):
            ends[agency_id] = net.agency_devices(agency_id)
            if not ends[agency_id]:
                raise NotFound(f"agency {net.agencies[agency_id].code} has no active device at its premises",
                               title="No path")
        hops = net.path(ends[a], ends[b])
        if hops is None:
            raise NotFound(f"no path over active links between {net.agencies[a].code} and {net.agencies[b].code}",
                           title="No path")
        return s.PathRead(from_agency=_agency(net, a), to_agency=_agency(net, b), links=len(hops) - 1,
                          hops=[s.PathHop(device=_device(net, d), link=_link(net, l) if l else None)
                                for d, l in hops])


def impact(*, session: Session, actor: Actor, links: Sequence[Ref] = (), devices: Sequence[Ref] = (),
           sites: Sequence[Ref] = ()) -> s.ImpactRead:
    """What a failure of these links, devices and sites (all their devices) takes away."""
    _require_operations_role(actor, "for failure impact")
    if not (links or devices or sites):
        raise DomainValidationError("name at least one link, device or site that fails",
                                    errors=[{"loc": ["links"], "msg": "all three lists are empty"}])
    with current_network(session) as net:
        link_ids = _unique(_resolve(net, "links", r, "link") for r in links)
        site_ids = _unique(_resolve(net, "sites", r, "site") for r in sites)
        device_ids = _unique([*(_resolve(net, "devices", r, "device") for r in devices),
                              *(d for site_id in site_ids for d in net.devices_at_site(site_id))])
        if actor.role == Role.partner:
            _check_partner_failures(net, actor, link_ids, device_ids)
        result = net.impact(links=link_ids, devices=device_ids)
        lost = [_agency(net, a) for a in result.agencies_lost]
        degraded = [_agency(net, a) for a in result.agencies_redundancy_lost]
        subscription_province = Counter(net.agencies[net.subscriptions[i].agency_id].province_id
                                        for i in result.subscriptions_lost)
        counts = {p: Counter() for p in {a.province_id for a in lost + degraded} | subscription_province.keys()}
        for a in lost:
            counts[a.province_id]["lost"] += 1
        for a in degraded:
            counts[a.province_id]["degraded"] += 1
        for province_id, n in subscription_province.items():
            counts[province_id]["subscriptions"] += n
        provinces = _provinces(session, counts)
        return s.ImpactRead(
            failed_links=[_link(net, i) for i in link_ids], failed_devices=[_device(net, i) for i in device_ids],
            already_inactive=[f"link {net.links[i].slug}" for i in result.inactive_links]
            + [f"device {net.devices[i].name}" for i in result.inactive_devices],
            agencies_lost=lost, agencies_redundancy_lost=degraded, subscriptions_lost=result.subscriptions_lost,
            devices_cut_off=result.devices_cut_off,
            by_province=sorted((s.ProvinceImpact(province=provinces.get(p), agencies_lost=c["lost"],
                                                 agencies_redundancy_lost=c["degraded"],
                                                 subscriptions_lost=c["subscriptions"]) for p, c in counts.items()),
                               key=lambda r: (-r.agencies_lost, -r.agencies_redundancy_lost, -r.subscriptions_lost,
                                              r.province.code if r.province else "")))


def spof(*, session: Session, actor: Actor, province: Ref | None = None, min_agencies: int = 1,
         limit: int = 1000) -> s.SpofRead:
    """Bridges and cut devices whose single failure cuts off agencies, worst first.

    Every agency's own single access link is one, so the list is long: `min_agencies` keeps the shared ones and
    `limit` bounds the list; the per-province counts always cover everything that passed the filters.
    """
    _require_operations_role(actor, "for single points of failure")
    with current_network(session) as net:
        unit, allowed = _scope_provinces(session, net, actor, province)
        found = []
        for kind, object_id, loss in net.single_points_of_failure():
            row = net.links[object_id] if kind == "link" else net.devices[object_id]
            if loss.agencies >= min_agencies and (allowed is None or row.province_id in allowed):
                found.append((kind, object_id, row, loss))
        found.sort(key=lambda f: (-f[3].agencies, -f[3].subscriptions, f[0], f[2].slug if f[0] == "link"
                                  else f[2].name))
        items = [s.SpofItem(kind=kind, id=object_id, name=row.slug if kind == "link" else row.name,
                            tier=row.tier if kind == "link" else None, role=row.role if kind == "device" else None,
                            province_id=row.province_id, operator_id=row.operator_id, agencies_lost=loss.agencies,
                            subscriptions_lost=loss.subscriptions) for kind, object_id, row, loss in found[:limit]]
    per_province: dict[int | None, Counter] = {}
    for kind, _, row, loss in found:
        c = per_province.setdefault(row.province_id, Counter())
        c[kind] += 1
        c["worst"] = max(c["worst"], loss.agencies)
    provinces = _provinces(session, per_province)
    return s.SpofRead(
        province=s.ProvinceBrief(id=unit.id, code=unit.code, name=unit.name) if unit else None, total=len(found),
        items=items,
        by_province=sorted((s.ProvinceSpof(province=provinces.get(p), links=c["link"], devices=c["device"],
                                           agencies_exposed=c["worst"]) for p, c in per_province.items()),
                           key=lambda r: (-r.agencies_exposed, r.province.code if r.province else "")))


def redundancy(*, session: Session, actor: Actor, province: Ref | None = None) -> s.RedundancyRead:
    """Per province: the share of agencies that no single link failure can cut off the core."""
    _require_operations_role(actor, "for redundancy")
    with current_network(session) as net:
        _, allowed = _scope_provinces(session, net, actor, province)
        states: dict[int | None, Counter] = {}
        for agency_id, row in net.agencies.items():
            if row.status == "active" and (allowed is None or row.province_id in allowed):
                states.setdefault(row.province_id, Counter())[net.service_state(agency_id)] += 1
    if allowed is not None:
        for province_id in allowed:
            states.setdefault(province_id, Counter())
    provinces = _provinces(session, states)

    def summary(province: s.ProvinceBrief | None, c: Counter) -> s.ProvinceRedundancy:
        total = sum(c.values())
        return s.ProvinceRedundancy(province=province, agencies=total, redundant=c["redundant"],
                                    single_homed=c["single"], unserved=c["unserved"], no_equipment=c["no_equipment"],
                                    score=c["redundant"] / total if total else 0.0)

    rows = sorted((summary(provinces.get(p), c) for p, c in states.items()),
                  key=lambda r: (r.score, r.province.code if r.province else ""))
    return s.RedundancyRead(provinces=rows, total=summary(None, sum(states.values(), Counter())))
