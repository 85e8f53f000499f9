"""The fast impact against a naive networkx reference on random small networks (seeded, no database)."""

import random

import networkx as nx
import pytest

from tslcd.topology.graph import Network

ROOT = "root"


def random_network(rng: random.Random):
    """Rows for a random network: a few backbone devices, parallel links, inactive parts, agencies of 0-2 devices."""
    n_devices = rng.randint(4, 16)
    n_agencies = rng.randint(1, 8)
    agencies = [(a, f"A{a}", rng.choice([1, 2]), rng.choice(["active"] * 5 + ["retired"]))
                for a in range(1, n_agencies + 1)]
    sites, devices = [], []
    for d in range(1, n_devices + 1):
        kind = "regional_centre" if d <= rng.randint(1, 2) else rng.choice(["gateway", "commune_node",
                                                                           "agency_premises"])
        agency = rng.randint(1, n_agencies) if kind == "agency_premises" else None
        sites.append((d, kind, agency, f"s{d}"))
        status = "active" if rng.random() < 0.9 else "down"
        devices.append((d, d, status, rng.choice([1, 2]), f"dev{d}", "cpe", None))
    links = []
    for lid in range(1, rng.randint(n_devices - 1, 2 * n_devices) + 1):
        a, b = rng.sample(range(1, n_devices + 1), 2)
        if links and rng.random() < 0.2:  # a parallel link
            _, a, b, *_ = rng.choice(links)
        status = "active" if rng.random() < 0.9 else "planned"
        links.append((lid, a, b, status, "access_2", None, f"l{lid}", 1000, rng.choice([1, 2])))
    subscriptions = [(s, rng.randint(1, n_agencies), rng.choice([None] + [l[0] for l in links]),
                      rng.choice(["active"] * 4 + ["retired"])) for s in range(1, rng.randint(0, 10) + 1)]
    return dict(devices=devices, links=links, sites=sites, agencies=agencies, subscriptions=subscriptions)


class Naive:
    """Whole-graph BFS for every question: slow and obviously right."""

    def __init__(self, rows):
        self.devices = {d[0]: d for d in rows["devices"]}
        self.links = {l[0]: l for l in rows["links"]}
        self.sites = {s[0]: s for s in rows["sites"]}
        self.g = nx.MultiGraph()
        self.g.add_node(ROOT)
        active = {d for d, row in self.devices.items() if row[2] == "active"}
        self.g.add_nodes_from(active)
        for d in active:
            if self.sites[self.devices[d][1]][1] == "regional_centre":
                self.g.add_edge(ROOT, d, key="root")
        for lid, a, b, status, *_ in rows["links"]:
            if status == "active" and a in active and b in active:
                self.g.add_edge(a, b, key=lid)
        self.agencies = {a[0] for a in rows["agencies"] if a[3] == "active"}
        self.equipment = {a: {d for d in active if self.sites[self.devices[d][1]][2] == a} for a in self.agencies}
        self.subscriptions = [s for s in rows["subscriptions"] if s[3] == "active" and s[1] in self.agencies]

    def without(self, links, devices):
        h = self.g.copy()
        h.remove_edges_from([(a, b, lid) for lid in links for _, a, b, *_ in [self.links[lid]]
                             if h.has_edge(a, b, lid)])
        h.remove_nodes_from([d for d in devices if d in h])
        return h

    @staticmethod
    def reach(h):
        return nx.node_connected_component(h, ROOT)

    def redundant(self, h, agency):
        reach = self.reach(h)
        if not self.equipment[agency] & reach:
            return False
        for a, b, key in list(h.edges(keys=True)):
            if key == "root" or a not in reach:
                continue
            h.remove_edge(a, b, key)
            cut = not self.equipment[agency] & self.reach(h)
            h.add_edge(a, b, key=key)
            if cut:
                return False
        return True

    def link_works(self, h, reach, lid):
        _, a, b, *_ = self.links[lid]
        return h.has_edge(a, b, lid) and a in reach

    def impact(self, links, devices):
        h = self.without(links, devices)
        before, after = self.reach(self.g), self.reach(h)
        served = {a for a in self.agencies if self.equipment[a] & before}
        lost = {a for a in served if not self.equipment[a] & after}
        redundancy = {a for a in served - lost if self.redundant(self.g, a) and not self.redundant(h, a)}
        subs = set()
        for sid, agency, link, _ in self.subscriptions:
            if self.equipment[agency]:
                if agency in lost:
                    subs.add(sid)
            elif link is not None and self.link_works(self.g, before, link) and not self.link_works(h, after, link):
                subs.add(sid)
        return sorted(lost), sorted(redundancy), sorted(subs), len(before - after)

    def hops(self, sources, targets):
        """Links on the fewest-hop path between two sets of devices over real links, None if there is none."""
        g = self.g.copy()
        g.remove_node(ROOT)
        lengths = [nx.shortest_path_length(g, a, b) for a in sources for b in targets
                   if a in g and b in g and nx.has_path(g, a, b)]
        return min(lengths, default=None)


@pytest.mark.parametrize("seed", range(8))
def test_impact_matches_naive_bfs(seed):
    rng = random.Random(seed)
    for _ in range(60):
        rows = random_network(rng)
        net, naive = Network.from_rows(**rows), Naive(rows)
        link_ids, device_ids = [l[0] for l in rows["links"]], [d[0] for d in rows["devices"]]
        for _ in range(6):
            links = rng.sample(link_ids, rng.randint(0, min(3, len(link_ids))))
            devices = rng.sample(device_ids, rng.randint(0, 2)) if rng.random() < 0.5 else []
            got = net.impact(links=links, devices=devices)
            active_devices = [d for d in devices if rows["devices"][d - 1][2] == "active"]
            expected = naive.impact(links, active_devices)
            assert (got.agencies_lost, got.agencies_redundancy_lost, got.subscriptions_lost) == expected[:3], \
                (seed, rows, links, devices)
            assert got.devices_cut_off == expected[3]


@pytest.mark.parametrize("seed", range(4))
def test_paths_are_shortest_and_real(seed):
    """The engine's breadth-first path has networkx's fewest hops, and every hop is an active link between them."""
    rng = random.Random(300 + seed)
    for _ in range(60):
        rows = random_network(rng)
        net, naive = Network.from_rows(**rows), Naive(rows)
        active = [d[0] for d in rows["devices"] if d[2] == "active"]
        for _ in range(4):
            sources, targets = rng.sample(active, min(2, len(active))), rng.sample(active, 1)
            got, expected = net.path(sources, targets), naive.hops(sources, targets)
            if expected is None:
                assert got is None, (rows, sources, targets)
                continue
            assert got is not None and len(got) - 1 == expected, (rows, sources, targets, got)
            assert got[0][0] in sources and got[-1][0] in targets and got[0][1] is None
            for (prev, _), (device, link_id) in zip(got, got[1:]):
                link = net.links[link_id]
                assert link.status == "active" and {link.a_device_id, link.b_device_id} == {prev, device}
                parallel = [i for i, row in net.links.items() if row.status == "active"
                            and {row.a_device_id, row.b_device_id} == {prev, device}]
                assert link_id == min(parallel)


@pytest.mark.parametrize("seed", range(4))
def test_spof_counts_match_impact(seed):
    """spof's counts come from subtree sums; they must agree with the impact of the same single failure."""
    rng = random.Random(100 + seed)
    for _ in range(60):
        rows = random_network(rng)
        net = Network.from_rows(**rows)
        listed = {(kind, object_id): loss for kind, object_id, loss in net.single_points_of_failure()}
        for kind, table in (("link", "links"), ("device", "devices")):
            for row in rows[table]:
                full = net.impact(**{table: [row[0]]})
                expected = (len(full.agencies_lost), len(full.subscriptions_lost))
                loss = listed.get((kind, row[0]))
                if loss is not None:
                    assert tuple(loss) == expected
                elif kind == "link":  # a link that is not listed cuts no agency off (only, at most, the
                    assert expected[0] == 0  # subscription of an agency without equipment that it carries)
                elif net.structure().separated.get(net.node_of[row[0]]):  # a cut device left out cuts off
                    assert expected == (0, 0)  # nothing; other devices take away only their own agencies


def mutate(rows, rng: random.Random):
    """One random registry change, as (table, id, new values or None for a delete); `rows` is updated too."""
    table = rng.choice([t for t in ("devices", "links", "links", "sites", "agencies", "subscriptions") if rows[t]])
    by_id = {r[0]: list(r) for r in rows[table]}
    columns = {"devices": ("site_id", "status", "province_id", "name", "role", "operator_id"),
               "links": ("a_device_id", "b_device_id", "status", "tier", "operator_id", "slug", "capacity",
                         "province_id"),
               "sites": ("kind", "agency_id", "slug"), "agencies": ("code", "province_id", "status"),
               "subscriptions": ("agency_id", "access_link_id", "status")}[table]
    device_ids = [d[0] for d in rows["devices"]]
    if table == "links" and rng.random() < 0.4:  # a new link, or a deleted one
        if rng.random() < 0.6 or not by_id:
            new_id = max(by_id, default=0) + 1
            a, b = rng.sample(device_ids, 2)
            by_id[new_id] = [new_id, a, b, "active", "access_2", None, f"l{new_id}", 1000, 1]
            change = (table, new_id, dict(zip(columns, by_id[new_id][1:])))
        else:
            gone = rng.choice(list(by_id))
            del by_id[gone]
            change = (table, gone, None)
    else:
        row_id = rng.choice(list(by_id))
        column = {"devices": rng.choice(["status", "site_id"]), "links": "status",
                  "sites": rng.choice(["kind", "agency_id"]), "agencies": "status",
                  "subscriptions": rng.choice(["status", "access_link_id"])}[table]
        value = {"status": rng.choice(["active", "active", "down"]), "site_id": rng.choice(device_ids),
                 "kind": rng.choice(["regional_centre", "gateway", "agency_premises"]),
                 "agency_id": rng.choice([None, *(a[0] for a in rows["agencies"])]),
                 "access_link_id": rng.choice([None, *(link[0] for link in rows["links"])])}[column]
        by_id[row_id][1 + columns.index(column)] = value
        change = (table, row_id, {column: value})
    rows[table] = [tuple(r) for r in by_id.values()]
    return change


@pytest.mark.parametrize("seed", range(4))
def test_incremental_changes_match_a_fresh_build(seed):
    rng = random.Random(200 + seed)
    for _ in range(30):
        rows = random_network(rng)
        net = Network.from_rows(**rows)
        for _ in range(rng.randint(1, 12)):
            table, row_id, values = mutate(rows, rng)
            if values is None:
                net.remove(table, row_id)
            else:
                net.upsert(table, row_id, values)
            if rng.random() < 0.5:
                fresh = Network.from_rows(**rows)
                link_ids, device_ids = [l[0] for l in rows["links"]], [d[0] for d in rows["devices"]]
                links = rng.sample(link_ids, min(2, len(link_ids)))
                devices = rng.sample(device_ids, 1) if rng.random() < 0.3 else []
                assert net.impact(links=links, devices=devices) == fresh.impact(links=links, devices=devices)
                ends = rng.sample(device_ids, min(2, len(device_ids)))
                hops = [None if p is None else len(p) for p in (net.path(ends[:1], ends[1:]),
                                                                fresh.path(ends[:1], ends[1:]))]
                assert hops[0] == hops[1]  # equal lengths: ties may be broken differently
                assert sorted(net.single_points_of_failure()) == sorted(fresh.single_points_of_failure())
                assert {a: net.service_state(a) for a in net.agencies} == \
                    {a: fresh.service_state(a) for a in fresh.agencies}
