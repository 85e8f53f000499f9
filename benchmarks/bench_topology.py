"""Topology engine against the bare limits, on national-shaped graphs, in one run.

    python benchmarks/bench_topology.py [--agencies 12000 111000] [--samples 1000] [--db URL]

Without --db the graphs are generated in memory with the shape of shared/peers/registry/README.md: 6 backbone
centres (3 regional, 3 backup), 34 provinces with 2 gateways each, 3,321 communes, and one CPE per agency (12,000
as in the demo, 111,000 as in the national directory). With --db the network is read from that database (the demo
loaded) by the same engine the API uses. For each graph: engine build, impact of one link (bridges and
non-bridges apart) and of one device, whole-country single points of failure; and the bare limits on the same
graph: a naive networkx BFS for one failure, networkx bridges + articulation points. Prints one JSON line.
"""

import argparse
import json
import random
import statistics
import time

import networkx as nx

from tslcd.topology.graph import ROOT, Network, engine_for

REGIONS = 3
PROVINCES = 34
COMMUNES = 3_321


def national_rows(agencies: int, rng: random.Random) -> dict[str, list[tuple]]:
    """Rows in the engine's column order: centres meshed, gateway pairs, communes, one CPE per agency.

    Gateways of a province hang from their region's regional and backup centres and from each other; one
    commune in four is dual-homed to both gateways; one agency in ten has two access links to its commune.
    """
    sites, devices, links, agency_rows, subscriptions = [], [], [], [], []

    def device(kind: str, province: int | None, role: str, agency: int | None = None) -> int:
        ident = len(devices) + 1
        sites.append((ident, kind, agency, f"site-{ident}"))
        devices.append((ident, ident, "active", province, f"dev-{ident}", role, 1))
        return ident

    def link(a: int, b: int, tier: str, province: int | None) -> int:
        ident = len(links) + 1
        links.append((ident, a, b, "active", tier, 1 if tier != "access_2" else 2, f"link-{ident}", 10**9, province))
        return ident

    regional = [device("regional_centre", None, "core_router") for _ in range(REGIONS)]
    backup = [device("backup_centre", None, "core_router") for _ in range(REGIONS)]
    for i in range(REGIONS):
        link(regional[i], regional[(i + 1) % REGIONS], "backbone", None)
        link(regional[i], backup[i], "backbone", None)
    communes: list[tuple[int, int]] = []
    for p in range(1, PROVINCES + 1):
        region = p % REGIONS
        gw1, gw2 = device("gateway", p, "gateway_router"), device("gateway", p, "gateway_router")
        link(regional[region], gw1, "access_1", p)
        link(backup[region], gw2, "access_1", p)
        link(gw1, gw2, "access_1", p)
        for c in range(COMMUNES // PROVINCES + (p <= COMMUNES % PROVINCES)):
            node = device("commune_node", p, "access_switch")
            link(gw1 if c % 2 else gw2, node, "access_2", p)
            if c % 4 == 0:
                link(gw2 if c % 2 else gw1, node, "access_2", p)
            communes.append((node, p))
    for a in range(1, agencies + 1):
        commune, p = rng.choice(communes)
        agency_rows.append((a, f"000.00.{a % 100:02d}.H{a % 1000:03d}", p, "active"))
        cpe = device("agency_premises", p, "cpe", agency=a)
        access = link(commune, cpe, "access_2", p)
        if a % 10 == 0:
            link(commune, cpe, "access_2", p)
        subscriptions.append((a, a, access, "active"))
    return {"devices": devices, "links": links, "sites": sites, "agencies": agency_rows,
            "subscriptions": subscriptions}


def ms_summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 4),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 4), "n": len(ordered)}


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def networkx_graph(net: Network) -> nx.MultiGraph:
    g = nx.MultiGraph()
    g.add_nodes_from(range(len(net.adj)))
    live = (*net.edge_of_link.values(), *net.root_edge_of.values())
    g.add_edges_from((net.edge_a[e], net.edge_b[e], e) for e in live)
    return g


def naive_lost(g: nx.MultiGraph, equipment: list[list[int]], edge: tuple[int, int, int]) -> int:
    """Agencies lost by one link failure, the naive way: remove it, BFS from the root, look at every agency."""
    g.remove_edge(*edge)
    reach = nx.node_connected_component(g, ROOT)
    g.add_edge(*edge)
    return sum(1 for nodes in equipment if not any(n in reach for n in nodes))


def measure(net: Network, build_s: float, rng: random.Random, samples: int) -> dict:
    analyse_s, _ = timed(lambda: (net.structure(), net.served()))
    st = net.structure()
    live = list(net.edge_of_link.items())
    bridges = [link_id for link_id, e in live if st.is_bridge[e]]
    others = [link_id for link_id, e in live if not st.is_bridge[e]]
    devices = [d for d, n in net.node_of.items() if st.dfs.tin[n] >= 0]
    out = {"devices": len(devices), "links": len(live), "agencies": len(net.agencies),
           "bridges": len(bridges), "build_s": round(build_s + analyse_s, 3), "analyse_s": round(analyse_s, 3)}
    for name, pool, kind in (("impact_bridge_link", bridges, "links"), ("impact_other_link", others, "links"),
                             ("impact_device", devices, "devices")):
        picks = [rng.choice(pool) for _ in range(samples)] if pool else []
        times = [timed(lambda x=x: net.impact(**{kind: [x]}))[0] for x in picks]
        out[name] = ms_summary(times) if times else None
    spof_s, spof = timed(lambda: sorted(net.single_points_of_failure(), key=lambda i: -i[2].agencies))
    out["spof_country_s"] = round(spof_s, 4)
    out["spof_items"] = len(spof)

    g = networkx_graph(net)
    equipment = list(net.served().agency_nodes.values())  # served agencies' devices
    naive_picks = [rng.choice(bridges + others) for _ in range(min(samples, 50))]
    naive_times, agree = [], 0
    for link_id in naive_picks:
        e = net.edge_of_link[link_id]
        seconds, lost = timed(lambda: naive_lost(g, equipment, (net.edge_a[e], net.edge_b[e], e)))
        naive_times.append(seconds)
        agree += lost == len(net.impact(links=[link_id]).agencies_lost)
    out["naive_bfs_one_link"] = ms_summary(naive_times)
    out["naive_agrees"] = f"{agree}/{len(naive_picks)}"
    simple = nx.Graph(g)
    nx_s, _ = timed(lambda: (list(nx.bridges(simple)), list(nx.articulation_points(simple))))
    out["nx_bridges_articulation_s"] = round(nx_s, 3)
    fast = out["impact_bridge_link"] or out["impact_other_link"]
    out["ratio_naive_bfs_to_impact"] = round(out["naive_bfs_one_link"]["median_ms"] / fast["median_ms"], 1)
    out["ratio_nx_to_spof_with_analysis"] = round(nx_s / (spof_s + analyse_s), 1)
    return out


def from_database(url: str, rng: random.Random, samples: int) -> dict:
    """The demo network as the API sees it: loaded by the engine, and whole-country spof through the service."""
    from tslcd.core.database import configure, session_scope
    from tslcd.security.actor import SYSTEM
    from tslcd.topology import service

    configure(url)
    with session_scope(write=False) as session:
        engine = engine_for(session)
        load_s, net = timed(lambda: engine.refresh(session))
        out = measure(net, load_s, rng, samples)
        out["spof_service_s"] = round(timed(lambda: service.spof(session=session, actor=SYSTEM))[0], 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agencies", type=int, nargs="+", default=[12_000, 111_000])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", help="database URL with the demo loaded (default: generated graphs in memory)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    results = {}
    if args.db:
        results["database"] = from_database(args.db, rng, args.samples)
    else:
        for n in args.agencies:
            rows = national_rows(n, rng)
            build_s, net = timed(lambda: Network.from_rows(**rows))
            results[f"agencies_{n}"] = measure(net, build_s, rng, args.samples)
    print(json.dumps({"benchmark": "topology", "targets": {"impact_median_ms": 20, "spof_country_s": 2},
                      "graphs": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
