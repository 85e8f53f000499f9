"""Topology questions with their role rules: path between agencies, failure impact, single points of failure.

Admin, NOC and auditors ask anything. A partner traces paths, asks the impact of its own links and devices only,
and sees single points of failure and redundancy in the provinces where it is responsible for something. An
agency's staff trace paths from or to their own agency, nothing else.

What an answer shows is decided by the registry's one permission gate (`registry.service.visible`): the database
is asked which of the devices, links, sites, agencies and subscriptions in an answer the actor may see. A path
names the others' parts only as one segment per run of the same operator ("Phân đoạn CBĐTW"); lists and counts
cover only what the actor may see; naming an object the actor may not see is "not found", as a direct GET is.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tslcd.core.errors import DomainValidationError, NotFound, PermissionDenied
from tslcd.registry import service as registry
from tslcd.registry.models import AdminUnit, Agency, Operator, Site, UnitKind
from tslcd.security.actor import Actor
from tslcd.security.models import Role
from tslcd.topology import schemas as s
from tslcd.topology.graph import MODELS, Network, current_network

Ref = int | str


# Permissions
GATE_BATCH = 5_000  # ids per question to the database


def visible_ids(*, session: Session, actor: Actor, table: str, ids: Iterable[int]) -> set[int]:
    """Which of these devices, links, sites, agencies or subscriptions the actor may see: the registry's gate."""
    return registry.visible_ids(session=session, actor=actor, res=registry.resource(table), ids=ids)


def _require_operations_role(actor: Actor, question: str) -> None:
    if not actor.sees_everything and actor.role != Role.partner:
        raise PermissionDenied(f"role {actor.role.value} cannot ask {question}")


def _partner_provinces(net: Network, operator_id: int | None) -> set[int]:
    """Provinces where the operator is responsible for at least one device or link."""
    return ({d.province_id for d in net.devices.values() if d.operator_id == operator_id}
            | {link.province_id for link in net.links.values() if link.operator_id == operator_id}) - {None}


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


def _resolve_visible(session: Session, actor: Actor, net: Network, table: str, refs: Sequence[Ref],
                     label: str) -> list[int]:
    """Ids of the objects named, each one the actor may see; any other is not found, as on a direct GET."""
    ids = [_resolve(net, table, r, label) for r in refs]
    seen = visible_ids(session=session, actor=actor, table=table, ids=ids)
    for ref, object_id in zip(refs, ids):
        if object_id not in seen:
            raise NotFound(f"no {label} '{ref}'")
    return _unique(ids)


def _provinces(session: Session, ids: Iterable[int | None]) -> dict[int, s.ProvinceBrief]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(AdminUnit.id, AdminUnit.code, AdminUnit.name).where(AdminUnit.id.in_(wanted)))
    return {r.id: s.ProvinceBrief(id=r.id, code=r.code, name=r.name) for r in rows}


def _names(session: Session, model: type, ids: Iterable[int]) -> dict[int, str]:
    """Display names, which the network does not keep in memory, of the few objects an answer names."""
    wanted = sorted(set(ids))
    names: dict[int, str] = {}
    for i in range(0, len(wanted), GATE_BATCH):
        rows = session.execute(select(model.id, model.name).where(model.id.in_(wanted[i:i + GATE_BATCH])))
        names.update((r.id, r.name) for r in rows)
    return names


def _agencies(session: Session, net: Network, agency_ids: Sequence[int]) -> list[s.AgencyBrief]:
    names = _names(session, Agency, agency_ids)
    return [s.AgencyBrief(id=a, code=net.agencies[a].code, name=names.get(a, ""),
                          province_id=net.agencies[a].province_id) for a in agency_ids]


def _device(net: Network, device_id: int, sites: dict[int, str], model: type = s.DeviceBrief):
    """A device's brief; its site only if in `sites` (names of the sites the actor may see)."""
    row = net.devices[device_id]
    site = net.sites.get(row.site_id) if row.site_id in sites else None
    return model(id=device_id, name=row.name, role=row.role, province_id=row.province_id,
                 operator_id=row.operator_id,
                 site=s.SiteBrief(id=row.site_id, slug=site.slug, name=sites[row.site_id]) if site else None)


def _link(net: Network, link_id: int, model: type = s.LinkBrief):
    row = net.links[link_id]
    return model(id=link_id, slug=row.slug, tier=row.tier, operator_id=row.operator_id, capacity=row.capacity)


def _sites_seen(session: Session, actor: Actor, net: Network, device_ids: Iterable[int]) -> dict[int, str]:
    """Names of the sites of these devices that the actor may see."""
    seen = visible_ids(session=session, actor=actor, table="sites", ids={net.devices[d].site_id for d in device_ids})
    return _names(session, Site, seen)


def _operator_names(session: Session, operator_ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in operator_ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(Operator.id, Operator.short_name, Operator.slug).where(Operator.id.in_(wanted)))
    return {r.id: r.short_name or r.slug for r in rows}


def _segment(operator: str | None) -> s.PathSegment:
    return s.PathSegment(operator=operator, label=f"Phân đoạn {operator}" if operator else
                         "Phân đoạn của đơn vị khác")


def _steps(session: Session, actor: Actor, net: Network, hops: list[tuple[int, int | None]]) -> list[s.PathStep]:
    """Device, link, device, …; each run of parts the actor may not see becomes one segment per operator."""
    parts = [part for device_id, link_id in hops
             for part in ((("link", link_id),) if link_id else ()) + (("device", device_id),)]
    seen = {"link": visible_ids(session=session, actor=actor, table="links", ids=[i for k, i in parts if k == "link"]),
            "device": visible_ids(session=session, actor=actor, table="devices",
                                  ids=[i for k, i in parts if k == "device"])}
    sites = _sites_seen(session, actor, net, seen["device"])
    steps: list[s.PathDevice | s.PathLink | tuple[str, int | None]] = []  # ("segment", operator id)
    for kind, object_id in parts:
        if object_id in seen[kind]:
            steps.append(_link(net, object_id, s.PathLink) if kind == "link" else
                         _device(net, object_id, sites, s.PathDevice))
            continue
        operator_id = (net.links if kind == "link" else net.devices)[object_id].operator_id
        segment = ("segment", operator_id)
        if not (steps and steps[-1] == segment):
            steps.append(segment)
    names = _operator_names(session, (step[1] for step in steps if isinstance(step, tuple)))
    return [_segment(names.get(step[1])) if isinstance(step, tuple) else step for step in steps]


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
        seen = visible_ids(session=session, actor=actor, table="agencies", ids=(a, b))
        named = {a: net.agencies[a].code if a in seen else str(from_agency),
                 b: net.agencies[b].code if b in seen else str(to_agency)}
        ends = {}
        for agency_id in (a, b):
            ends[agency_id] = net.agency_devices(agency_id)
            if not ends[agency_id]:
                raise NotFound(f"agency {named[agency_id]} has no active device at its premises", title="No path")
        hops = net.path(ends[a], ends[b])
        if hops is None:
            raise NotFound(f"no path over active links between {named[a]} and {named[b]}", title="No path")

        briefs = {brief.id: brief for brief in _agencies(session, net, [i for i in (a, b) if i in seen])}
        other = s.RedactedAgency(label="Cơ quan khác")
        return s.PathRead(from_agency=briefs.get(a, other), to_agency=briefs.get(b, other), links=len(hops) - 1,
                          steps=_steps(session, actor, net, hops))


def impact(*, session: Session, actor: Actor, links: Sequence[Ref] = (), devices: Sequence[Ref] = (),
           sites: Sequence[Ref] = ()) -> s.ImpactRead:
    """What a failure of these links, devices and sites (all their devices) takes away."""
    _require_operations_role(actor, "for failure impact")
    if not (links or devices or sites):
        raise DomainValidationError("name at least one link, device or site that fails",
                                    errors=[{"loc": ["links"], "msg": "all three lists are empty"}])
    with current_network(session) as net:
        link_ids = _resolve_visible(session, actor, net, "links", links, "link")
        site_ids = _resolve_visible(session, actor, net, "sites", sites, "site")
        device_ids = _resolve_visible(session, actor, net, "devices", devices, "device")
        at_sites = _unique(d for site_id in site_ids for d in net.devices_at_site(site_id))
        hidden = set(at_sites) - visible_ids(session=session, actor=actor, table="devices", ids=at_sites)
        if hidden:
            shared = sorted({net.sites[net.devices[d].site_id].slug for d in hidden})
            raise PermissionDenied(f"site {', '.join(shared)} also holds other operators' equipment; a partner may "
                                   "ask the impact of its own links and devices only")
        device_ids = _unique([*device_ids, *at_sites])
        result = net.impact(links=link_ids, devices=device_ids)
        agencies = visible_ids(session=session, actor=actor, table="agencies",
                               ids=result.agencies_lost + result.agencies_redundancy_lost)
        lost = _agencies(session, net, [a for a in result.agencies_lost if a in agencies])
        degraded = _agencies(session, net, [a for a in result.agencies_redundancy_lost if a in agencies])
        subscriptions = sorted(visible_ids(session=session, actor=actor, table="subscriptions",
                                           ids=result.subscriptions_lost))
        cut_off = visible_ids(session=session, actor=actor, table="devices", ids=result.devices_lost)
        subscription_province = Counter(net.agencies[net.subscriptions[i].agency_id].province_id
                                        for i in subscriptions)
        counts = {p: Counter() for p in {a.province_id for a in lost + degraded} | subscription_province.keys()}
        for a in lost:
            counts[a.province_id]["lost"] += 1
        for a in degraded:
            counts[a.province_id]["degraded"] += 1
        for province_id, n in subscription_province.items():
            counts[province_id]["subscriptions"] += n
        provinces = _provinces(session, counts)
        sites_seen = _sites_seen(session, actor, net, device_ids)
        return s.ImpactRead(
            failed_links=[_link(net, i) for i in link_ids],
            failed_devices=[_device(net, i, sites_seen) for i in device_ids],
            already_inactive=[f"link {net.links[i].slug}" for i in result.inactive_links]
            + [f"device {net.devices[i].name}" for i in result.inactive_devices],
            agencies_lost=lost, agencies_redundancy_lost=degraded, subscriptions_lost=subscriptions,
            devices_cut_off=len(cut_off),
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
        seen = {kind: visible_ids(session=session, actor=actor, table=f"{kind}s",
                                  ids=[f[1] for f in found if f[0] == kind]) for kind in ("link", "device")}
        found = [f for f in found if f[1] in seen[f[0]]]
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
        wanted = [agency_id for agency_id, row in net.agencies.items()
                  if row.status == "active" and (allowed is None or row.province_id in allowed)]
        for agency_id in visible_ids(session=session, actor=actor, table="agencies", ids=wanted):
            states.setdefault(net.agencies[agency_id].province_id, Counter())[net.service_state(agency_id)] += 1
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
