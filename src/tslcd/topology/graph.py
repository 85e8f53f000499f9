"""The network as an in-memory graph: devices are nodes, active links are edges, a virtual root is the core.

Every backbone device (at a regional or backup centre) hangs from the virtual root, so "has service" means
"is connected to the root". One iterative Tarjan DFS from the root gives, for every node, its preorder range
(its DFS subtree is a slice of the preorder), its low link, the bridges and the articulation points. From these:

- a failed bridge cuts off exactly the DFS subtree below it;
- a failed device cuts off itself and the child subtrees whose low link does not climb above it;
- the root's 2-edge-connected component R (no bridge between a node and the root) is where redundancy lives:
  an agency is redundant when no single link cuts off all its devices, and every part of the graph outside R
  hangs from R by a bridge. So a failure changes redundancy only through the hanging subtrees it touches and
  through R itself, and the impact of any set of failures is computed on R and on those subtrees alone;
- one failed link inside R creates new bridges exactly where it formed a 2-edge cut with another link: every
  edge of R carries the XOR of random labels of the non-tree edges covering it, and equal labels mark such pairs
  (with 64-bit labels a false pair is a 1-in-2^64 event), so that common case needs no traversal at all.

Links are kept by edge id, never by "the parent node", because two parallel links are redundancy.
The graph is kept current from the audit log (see TopologyEngine) instead of being reloaded per query.

Paths are a breadth-first search on the same adjacency. networkx is not used at run time: its bridges and
articulation points refuse multigraphs (parallel links) and take 5-10x longer for the whole country
(benchmarks/bench_topology.py measures both in the same run), the incremental, local updates above need the DFS
arrays themselves, and a second copy of the graph as networkx's dicts of dicts cost the server some 20 MB.

Memory (issue 11, item 25): the engine keeps only what its questions need. Rows are read in batches, values
shared by many rows (statuses, roles, tiers, kinds, provinces, operators, capacities) are stored once, display
names (site and agency names) stay in the database and are read for the few objects an answer names.
"""

import gc
import random
import threading
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from itertools import accumulate
from typing import Any, NamedTuple

from sqlalchemy import Enum as SAEnum
from sqlalchemy import String, and_, or_, select, type_coerce
from sqlalchemy.orm import Session

from tslcd.registry.models import Agency, Device, Link, Site, Subscription
from tslcd.security.models import AuditRecord

ROOT = 0
ACTIVE = "active"
BACKBONE_SITE_KINDS = frozenset({"regional_centre", "backup_centre"})


class DeviceRow(NamedTuple):
    site_id: int
    status: str
    province_id: int | None
    name: str
    role: str
    operator_id: int | None


class LinkRow(NamedTuple):
    a_device_id: int
    b_device_id: int
    status: str
    tier: str
    operator_id: int | None
    slug: str
    capacity: int
    province_id: int | None


class SiteRow(NamedTuple):
    kind: str
    agency_id: int | None
    slug: str


class AgencyRow(NamedTuple):
    code: str
    province_id: int | None
    status: str


class SubscriptionRow(NamedTuple):
    agency_id: int
    access_link_id: int | None
    status: str


ROW_TYPES: dict[str, type[NamedTuple]] = {
    "devices": DeviceRow, "links": LinkRow, "sites": SiteRow, "agencies": AgencyRow, "subscriptions": SubscriptionRow,
}
MODELS = {"devices": Device, "links": Link, "sites": Site, "agencies": Agency, "subscriptions": Subscription}
KEY_COLUMNS = {"devices": "name", "links": "slug", "sites": "slug", "agencies": "code"}
# Columns with few distinct values: each value is kept once per network, not once per row.
SHARED = {"devices": {"status", "province_id", "role", "operator_id"},
          "links": {"status", "tier", "operator_id", "capacity", "province_id"}, "sites": {"kind"},
          "agencies": {"province_id", "status"}, "subscriptions": {"status"}}
LOAD_BATCH = 10_000  # rows per fetch when the network is read from the database
# Columns whose change alters the graph, or who is served through it.
STRUCTURAL = {"devices": {"site_id", "status"}, "links": {"a_device_id", "b_device_id", "status"},
              "sites": {"kind"}}
SERVICE = {"devices": {"site_id", "status"}, "sites": {"kind", "agency_id"}, "agencies": {"status"},
           "subscriptions": {"agency_id", "access_link_id", "status"}}


class IncompleteChange(Exception):
    """An audit record too partial to apply (e.g. a new row we never saw in full): reload instead."""


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


@contextmanager
def _bulk() -> Iterator[None]:
    """Pause the cyclic collector while hundreds of thousands of small containers are made at once.

    Otherwise it rescans the whole heap again and again: building the national graph took 3x as long.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _frozen(lists: dict[int, list[int]]) -> dict[int, tuple[int, ...]]:
    """The same mapping with tuples: most of these hold one or two ids, and a short tuple is half a short list."""
    return {key: tuple(values) for key, values in lists.items()}


class _Unvisited(dict):
    """A sparse `tin`: nodes never reached read as -1, like the dense list of the full DFS."""

    def __missing__(self, key: int) -> int:
        return -1


@dataclass
class Dfs:
    """Tarjan's arrays for the part of the graph reached from the root (lists, or dicts for a local DFS)."""

    order: list[int]  # preorder; order[tin[v]] == v, and v's subtree is order[tin[v]:tout[v] + 1]
    tin: Any
    tout: Any
    low: Any
    parent: Any
    parent_edge: Any

    def ancestor(self, u: int, v: int) -> bool:
        return self.tin[u] <= self.tin[v] <= self.tout[u]

    def lca(self, nodes: Iterable[int]) -> int:
        it = iter(nodes)
        common = next(it)
        for v in it:
            while not self.ancestor(common, v):
                common = self.parent[common]
        return common


def tarjan(adj: Any, edge_xor: list[int], dfs: Dfs, *, blocked_edges: Any = (), blocked_nodes: Any = ()) -> Dfs:
    """Iterative DFS from the root filling `dfs`; edges are skipped by id (parallel links count as back edges)."""
    tin, tout, low, parent, parent_edge, order = dfs.tin, dfs.tout, dfs.low, dfs.parent, dfs.parent_edge, dfs.order
    tin[ROOT] = low[ROOT] = 0
    parent[ROOT] = parent_edge[ROOT] = -1
    order.append(ROOT)
    nodes, iters = [ROOT], [iter(adj[ROOT])]
    while nodes:
        v = nodes[-1]
        for e in iters[-1]:
            if e == parent_edge[v] or e in blocked_edges:
                continue
            w = edge_xor[e] ^ v
            if w in blocked_nodes:
                continue
            if tin[w] < 0:
                tin[w] = low[w] = len(order)
                parent[w], parent_edge[w] = v, e
                order.append(w)
                nodes.append(w)
                iters.append(iter(adj[w]))
                break
            if tin[w] < low[v]:
                low[v] = tin[w]
        else:
            nodes.pop()
            iters.pop()
            tout[v] = len(order) - 1
            p = parent[v]
            if p >= 0 and low[v] < low[p]:
                low[p] = low[v]
    return dfs


@dataclass
class Structure:
    """What the graph's shape alone tells: the DFS, bridges, cut devices, and how each node hangs from R."""

    dfs: Dfs
    is_bridge: bytearray  # per edge id
    bridges_above: list[int]  # bridges on the tree path from the root; 0 = in R; -1 = not reached
    top: list[int]  # outside R: the node just below the bridge by which its subtree hangs from R
    attach: list[int]  # the node of R through which a node reaches the root (itself when in R)
    separated: dict[int, list[int]]  # cut device -> the children cut off with it
    hanging: dict[int, list[int]]  # node of R -> tops of the subtrees hanging from it
    r_nodes: list[int]
    in_r: bytearray
    r_adj: dict[int, list[int]]  # node of R -> its edges inside R
    r_tins: list[int]  # preorder numbers of the nodes of R, ascending
    cut_label: dict[int, int]  # edge of R -> XOR label of the cycles through it
    cut_pairs: dict[int, list[int]]  # label -> the edges of R sharing it (two or more: pairwise 2-edge cuts)

    def deeper(self, edge_a: int, edge_b: int) -> int:
        tin = self.dfs.tin
        return edge_a if tin[edge_a] > tin[edge_b] else edge_b

    def subtree(self, v: int) -> list[int]:
        return self.dfs.order[self.dfs.tin[v]:self.dfs.tout[v] + 1]

    def cut_with(self, v: int) -> list[int]:
        """Nodes that lose the root when device v fails: v and its separated child subtrees."""
        nodes = [v]
        for child in self.separated.get(v, ()):
            nodes += self.subtree(child)
        return nodes


@dataclass
class Served:
    """Who is served through the graph: agencies by their devices, subscriptions by agency or access link.

    The id lists are tuples, built once per analysis (memory: most hold one or two ids).
    """

    agency_nodes: dict[int, tuple[int, ...]]  # served agency -> its reached device nodes
    unserved: set[int]  # agencies with equipment, none of it connected
    redundant: set[int]
    by_node: dict[int, tuple[int, ...]]  # device node -> served agencies with equipment there
    by_lca: dict[int, tuple[int, ...]]
    redundant_by_attach: dict[int, tuple[int, ...]]
    subscriptions_of: dict[int, tuple[int, ...]]  # served agency -> its active subscriptions
    access_subscriptions_by_edge: dict[int, tuple[int, ...]]  # for agencies without equipment: by their access link
    access_subscriptions_by_node: dict[int, tuple[int, ...]]
    agencies_below: list[int]  # prefix sums over the preorder (an agency counts at its LCA)
    subscriptions_below: list[int]

    def count(self, prefix: list[int], dfs: Dfs, v: int) -> int:
        return prefix[dfs.tout[v] + 1] - prefix[dfs.tin[v]]


@dataclass
class Impact:
    """What a set of failures takes away; failures already out of service are listed as such."""

    agencies_lost: list[int] = field(default_factory=list)
    agencies_redundancy_lost: list[int] = field(default_factory=list)
    subscriptions_lost: list[int] = field(default_factory=list)
    devices_cut_off: int = 0
    devices_lost: list[int] = field(default_factory=list)  # ids of those devices
    inactive_links: list[int] = field(default_factory=list)
    inactive_devices: list[int] = field(default_factory=list)


class Loss(NamedTuple):
    """How many agencies and subscriptions one link or device takes away."""

    agencies: int
    subscriptions: int


class Network:
    """The registry's rows the topology needs, the adjacency over them, and lazily recomputed analyses."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[int, Any]] = {name: {} for name in ROW_TYPES}
        self._links_at: dict[int, list[int]] = {}  # device id -> ids of links ending there (any status)
        self._devices_at: dict[int, list[int]] = {}  # site id -> device ids
        self._shared: dict[Any, Any] = {}  # one object per value of the SHARED columns
        self._keys: dict[str, dict[str, int] | None] = {name: None for name in KEY_COLUMNS}
        self.node_of: dict[int, int] = {}
        self.device_of: list[int] = [0]
        self.adj: list[list[int]] = [[]]
        self.edge_a: list[int] = []
        self.edge_b: list[int] = []
        self.edge_xor: list[int] = []
        self.edge_link: list[int] = []  # 0 for the root's virtual edges
        self.edge_of_link: dict[int, int] = {}
        self.root_edge_of: dict[int, int] = {}
        self._structure: Structure | None = None
        self._served: Served | None = None
        self.analyses = 0  # full DFS runs, for tests and benchmarks

    @property
    def devices(self) -> dict[int, DeviceRow]:
        return self.tables["devices"]

    @property
    def links(self) -> dict[int, LinkRow]:
        return self.tables["links"]

    @property
    def sites(self) -> dict[int, SiteRow]:
        return self.tables["sites"]

    @property
    def agencies(self) -> dict[int, AgencyRow]:
        return self.tables["agencies"]

    @property
    def subscriptions(self) -> dict[int, SubscriptionRow]:
        return self.tables["subscriptions"]

    # Building and changing
    @classmethod
    def from_rows(cls, **rows: Iterable[tuple]) -> "Network":
        """Build from (id, *columns) tuples per table, in the column order of the row types."""
        with _bulk():
            return cls()._fill(rows)

    def _fill(self, rows: Mapping[str, Iterable[tuple]]) -> "Network":
        for name, row_type in ROW_TYPES.items():
            shared = [i for i, column in enumerate(row_type._fields) if column in SHARED[name]]
            canon = self._shared.setdefault
            table = self.tables[name] = {}
            for r in rows.get(name, ()):
                values = list(r[1:])
                for i in shared:
                    values[i] = canon(values[i], values[i])
                table[r[0]] = row_type._make(values)
        for link_id, link in self.links.items():
            self._index("links", link_id, link)
        for device_id, device in self.devices.items():
            self._index("devices", device_id, device)
            self._sync_root_edge(device_id)
        for link_id in self.links:
            self._sync_link(link_id)
        return self

    def upsert(self, table: str, row_id: int, values: Mapping[str, Any]) -> None:
        """Apply a row's new column values (a full row, or the changed columns of a known row)."""
        row_type = ROW_TYPES[table]
        old = self.tables[table].get(row_id)
        given = {c: _plain(values[c]) for c in row_type._fields if c in values}
        for c in given.keys() & SHARED[table]:
            given[c] = self._shared.setdefault(given[c], given[c])
        if old is None:
            if len(given) < len(row_type._fields):
                raise IncompleteChange(f"{table} {row_id}: new row without all its columns")
            changed = set(given)
            new = row_type(**given)
        else:
            changed = {c for c, v in given.items() if getattr(old, c) != v}
            if not changed:
                return
            new = old._replace(**{c: given[c] for c in changed})
        self._unindex(table, row_id, old)
        self.tables[table][row_id] = new
        self._index(table, row_id, new)
        self._react(table, row_id, changed, came_or_went=old is None)

    def remove(self, table: str, row_id: int) -> None:
        old = self.tables[table].pop(row_id, None)
        if old is not None:
            self._unindex(table, row_id, old)
            self._react(table, row_id, set(old._fields), came_or_went=True)

    def _index_of(self, table: str, row: Any) -> tuple[dict[int, list[int]], tuple[int, ...]]:
        """The per-device (links) or per-site (devices) lists a row belongs in, and under which keys."""
        if table == "links":
            ends = (row.a_device_id,) if row.a_device_id == row.b_device_id else (row.a_device_id, row.b_device_id)
            return self._links_at, ends
        if table == "devices":
            return self._devices_at, (row.site_id,)
        return {}, ()

    def _unindex(self, table: str, row_id: int, row: Any) -> None:
        """Forget a row in the small per-device and per-site lists (lists: a third of the memory of sets)."""
        if row is None:
            return
        index, keys = self._index_of(table, row)
        for key in keys:
            ids = index[key]
            ids.remove(row_id)
            if not ids:
                del index[key]

    def _index(self, table: str, row_id: int, row: Any) -> None:
        index, keys = self._index_of(table, row)
        for key in keys:
            index.setdefault(key, []).append(row_id)

    def _react(self, table: str, row_id: int, changed: set[str], *, came_or_went: bool) -> None:
        """Bring the adjacency up to date and drop the analyses the change makes stale."""
        if table in KEY_COLUMNS and (came_or_went or KEY_COLUMNS[table] in changed):
            self._keys[table] = None
        if changed & STRUCTURAL.get(table, set()):
            if table == "links":
                self._sync_link(row_id)
            elif table == "devices":
                self._sync_device(row_id)
            else:
                for device_id in self._devices_at.get(row_id, ()):
                    self._sync_device(device_id)
        if came_or_went and table in SERVICE or changed & SERVICE.get(table, set()):
            self._served = None

    def _node(self, device_id: int) -> int:
        node = self.node_of.get(device_id)
        if node is None:
            node = self.node_of[device_id] = len(self.device_of)
            self.device_of.append(device_id)
            self.adj.append([])
        return node

    def _active_device(self, device_id: int) -> bool:
        device = self.devices.get(device_id)
        return device is not None and device.status == ACTIVE

    def _add_edge(self, a: int, b: int, link_id: int) -> int:
        edge = len(self.edge_a)
        self.edge_a.append(a)
        self.edge_b.append(b)
        self.edge_xor.append(a ^ b)
        self.edge_link.append(link_id)
        self.adj[a].append(edge)
        self.adj[b].append(edge)
        self._structure = self._served = None
        return edge

    def _remove_edge(self, edge: int) -> None:
        self.adj[self.edge_a[edge]].remove(edge)
        self.adj[self.edge_b[edge]].remove(edge)
        self._structure = self._served = None

    def _sync_link(self, link_id: int) -> None:
        link = self.links.get(link_id)
        wanted = (link is not None and link.status == ACTIVE and self._active_device(link.a_device_id)
                  and self._active_device(link.b_device_id))
        edge = self.edge_of_link.get(link_id)
        if edge is not None:
            ends = (self.device_of[self.edge_a[edge]], self.device_of[self.edge_b[edge]])
            if wanted and ends == (link.a_device_id, link.b_device_id):
                return
            self._remove_edge(edge)
            del self.edge_of_link[link_id]
        if wanted:
            self.edge_of_link[link_id] = self._add_edge(self._node(link.a_device_id), self._node(link.b_device_id),
                                                        link_id)

    def _sync_root_edge(self, device_id: int) -> None:
        node = self._node(device_id)
        device = self.devices.get(device_id)
        site = self.sites.get(device.site_id) if device is not None else None
        wanted = device is not None and device.status == ACTIVE and site is not None and site.kind in \
            BACKBONE_SITE_KINDS
        edge = self.root_edge_of.get(node)
        if wanted and edge is None:
            self.root_edge_of[node] = self._add_edge(ROOT, node, 0)
        elif not wanted and edge is not None:
            self._remove_edge(edge)
            del self.root_edge_of[node]

    def _sync_device(self, device_id: int) -> None:
        self._sync_root_edge(device_id)
        for link_id in list(self._links_at.get(device_id, ())):
            self._sync_link(link_id)

    # Lookups
    def key_map(self, table: str) -> dict[str, int]:
        """Natural key (device name, link or site slug, agency code) -> id."""
        keys = self._keys[table]
        if keys is None:
            column = KEY_COLUMNS[table]
            keys = self._keys[table] = {getattr(row, column): row_id for row_id, row in self.tables[table].items()}
        return keys

    def devices_at_site(self, site_id: int) -> list[int]:
        return sorted(self._devices_at.get(site_id, ()))

    def agency_devices(self, agency_id: int) -> list[int]:
        """Active devices at the agency's premises."""
        return [d for site_id, site in self.sites.items() if site.agency_id == agency_id
                for d in self.devices_at_site(site_id) if self._active_device(d)]

    # Analyses
    def structure(self) -> Structure:
        if self._structure is None:
            with _bulk():
                self._structure = self._analyse_structure()
        return self._structure

    def _analyse_structure(self) -> Structure:
        self.analyses += 1
        size = len(self.adj)
        dfs = tarjan(self.adj, self.edge_xor, Dfs([], [-1] * size, [-1] * size, [0] * size, [-1] * size,
                                                  [-1] * size))
        tin, low, parent, parent_edge = dfs.tin, dfs.low, dfs.parent, dfs.parent_edge
        is_bridge = bytearray(len(self.edge_a))
        bridges_above, top, attach = [-1] * size, [-1] * size, [-1] * size
        in_r = bytearray(size)
        separated: dict[int, list[int]] = {}
        hanging: dict[int, list[int]] = {}
        bridges_above[ROOT], attach[ROOT], in_r[ROOT] = 0, ROOT, 1
        r_nodes = [ROOT]
        for v in dfs.order[1:]:
            p = parent[v]
            bridge = low[v] > tin[p] and p != ROOT  # the root's edges are virtual: they never fail
            if bridge:
                is_bridge[parent_edge[v]] = 1
            if p != ROOT and low[v] >= tin[p]:
                separated.setdefault(p, []).append(v)
            bridges_above[v] = bridges_above[p] + bridge
            if bridges_above[v] == 0:
                in_r[v], attach[v] = 1, v
                r_nodes.append(v)
            else:
                top[v] = v if bridges_above[p] == 0 else top[p]
                attach[v] = attach[p]
                if top[v] == v:
                    hanging.setdefault(p, []).append(v)
        edge_xor = self.edge_xor
        r_adj = {v: [e for e in self.adj[v] if in_r[edge_xor[e] ^ v]] for v in r_nodes}
        cut_label = self._cut_labels(dfs, r_nodes, r_adj)
        cut_pairs: dict[int, list[int]] = {}
        for e, label in cut_label.items():
            cut_pairs.setdefault(label, []).append(e)
        cut_pairs = {label: edges for label, edges in cut_pairs.items() if len(edges) > 1 and label}
        return Structure(dfs, is_bridge, bridges_above, top, attach, separated, hanging, r_nodes, in_r, r_adj,
                         [tin[v] for v in r_nodes], cut_label, cut_pairs)

    def _cut_labels(self, dfs: Dfs, r_nodes: list[int], r_adj: dict[int, list[int]]) -> dict[int, int]:
        """A random label per non-tree edge of R; a tree edge gets the XOR of those leaving its subtree."""
        draw = random.Random(len(self.edge_a)).getrandbits
        label: dict[int, int] = {}
        below = dict.fromkeys(r_nodes, 0)  # XOR of labels at nodes of the subtree, pairs inside cancelling out
        parent_edge = dfs.parent_edge
        for v in r_nodes:
            for e in r_adj[v]:
                w = self.edge_xor[e] ^ v
                if v < w and e != parent_edge[v] and e != parent_edge[w]:
                    label[e] = draw(64)
                    below[v] ^= label[e]
                    below[w] ^= label[e]
        for v in reversed(r_nodes[1:]):
            label[parent_edge[v]] = below[v]
            below[dfs.parent[v]] ^= below[v]
        return label

    def served(self) -> Served:
        if self._served is None:
            structure = self.structure()
            with _bulk():
                self._served = self._analyse_served(structure)
        return self._served

    def _analyse_served(self, st: Structure) -> Served:
        dfs = st.dfs
        tin = dfs.tin
        site_agency = {site_id: site.agency_id for site_id, site in self.sites.items() if site.agency_id is not None}
        equipment: dict[int, list[int]] = {}
        for device_id, device in self.devices.items():
            agency_id = site_agency.get(device.site_id)
            if agency_id is not None and device.status == ACTIVE:
                equipment.setdefault(agency_id, []).append(self.node_of[device_id])
        active = {a for a, row in self.agencies.items() if row.status == ACTIVE}
        agency_nodes, by_node, by_lca, redundant_by_attach = {}, {}, {}, {}
        unserved, redundant = set(), set()
        weights_a, weights_s = [0] * len(dfs.order), [0] * len(dfs.order)
        subscriptions_of: dict[int, list[int]] = {}
        for sub_id, sub in self.subscriptions.items():
            if sub.status == ACTIVE and sub.agency_id in active:
                subscriptions_of.setdefault(sub.agency_id, []).append(sub_id)
        for agency_id, nodes in equipment.items():
            if agency_id not in active:
                continue
            reached = [n for n in nodes if tin[n] >= 0]
            if not reached:
                unserved.add(agency_id)
                continue
            agency_nodes[agency_id] = reached
            for n in reached:
                by_node.setdefault(n, []).append(agency_id)
            lca = dfs.lca(reached)
            by_lca.setdefault(lca, []).append(agency_id)
            weights_a[tin[lca]] += 1
            weights_s[tin[lca]] += len(subscriptions_of.get(agency_id, ()))
            if st.bridges_above[lca] == 0:
                redundant.add(agency_id)
                for r in {st.attach[n] for n in reached}:
                    redundant_by_attach.setdefault(r, []).append(agency_id)
        by_edge, by_end = {}, {}
        for agency_id in active - equipment.keys():
            for sub_id in subscriptions_of.pop(agency_id, ()):
                edge = self.edge_of_link.get(self.subscriptions[sub_id].access_link_id or 0)
                if edge is None or tin[self.edge_a[edge]] < 0:
                    continue
                by_edge.setdefault(edge, []).append(sub_id)
                for end in (self.edge_a[edge], self.edge_b[edge]):
                    by_end.setdefault(end, []).append(sub_id)
                weights_s[tin[st.deeper(self.edge_a[edge], self.edge_b[edge])]] += 1
        for agency_id in list(subscriptions_of):
            if agency_id not in agency_nodes:
                del subscriptions_of[agency_id]
        agency_nodes, by_node, by_lca, redundant_by_attach, subscriptions_of, by_edge, by_end = map(_frozen, (
            agency_nodes, by_node, by_lca, redundant_by_attach, subscriptions_of, by_edge, by_end))
        return Served(agency_nodes, unserved, redundant, by_node, by_lca, redundant_by_attach, subscriptions_of,
                      by_edge, by_end, list(accumulate(weights_a, initial=0)), list(accumulate(weights_s, initial=0)))

    # Questions
    def impact(self, *, links: Iterable[int] = (), devices: Iterable[int] = ()) -> Impact:
        """What fails with these links and devices: agencies cut off, agencies left without redundancy."""
        st, sv = self.structure(), self.served()
        tin = st.dfs.tin
        result = Impact()
        failed_edges: set[int] = set()
        for link_id in links:
            edge = self.edge_of_link.get(link_id)
            if edge is None:
                result.inactive_links.append(link_id)
            elif tin[self.edge_a[edge]] >= 0:
                failed_edges.add(edge)
        failed_nodes: set[int] = set()
        for device_id in devices:
            node = self.node_of.get(device_id)
            if node is None or not self._active_device(device_id):
                result.inactive_devices.append(device_id)
            elif tin[node] >= 0:
                failed_nodes.add(node)
        lost, core = self._cut_off(st, failed_edges, failed_nodes)
        result.devices_cut_off = len(lost)
        result.devices_lost = sorted(self.device_of[v] for v in lost)
        touched = {a for v in lost for a in sv.by_node.get(v, ())}
        lost_agencies = {a for a in touched if all(n in lost for n in sv.agency_nodes[a])}
        result.agencies_lost = sorted(lost_agencies)
        candidates = touched & sv.redundant
        if core is not None:
            candidates |= {a for v in core.exposed() for a in sv.redundant_by_attach.get(v, ())}
        candidates -= lost_agencies
        result.agencies_redundancy_lost = sorted(a for a in candidates
                                                 if not self._still_redundant(st, core, sv.agency_nodes[a], lost))
        subs = {s for a in lost_agencies for s in sv.subscriptions_of.get(a, ())}
        subs.update(s for e in failed_edges for s in sv.access_subscriptions_by_edge.get(e, ()))
        subs.update(s for v in lost for s in sv.access_subscriptions_by_node.get(v, ()))
        result.subscriptions_lost = sorted(subs)
        return result

    def _cut_off(self, st: Structure, failed_edges: set[int], failed_nodes: set[int]
                 ) -> tuple[set[int], "CutPairs | LocalCore | None"]:
        """Nodes that lose the root: re-analyse R if a failure lies in it, and only the hanging subtrees hit."""
        in_r, top = st.in_r, st.top
        core_edges = {e for e in failed_edges if in_r[self.edge_a[e]] and in_r[self.edge_b[e]]}
        core_nodes = {v for v in failed_nodes if in_r[v]}
        by_top: dict[int, list[tuple[str, int]]] = {}
        for e in failed_edges - core_edges:
            by_top.setdefault(top[st.deeper(self.edge_a[e], self.edge_b[e])], []).append(("link", e))
        for v in failed_nodes - core_nodes:
            by_top.setdefault(top[v], []).append(("device", v))
        lost: set[int] = set()
        core: CutPairs | LocalCore | None = None
        if core_edges and not core_nodes and len(core_edges) == 1:
            core = CutPairs(self, st, next(iter(core_edges)))
        elif core_edges or core_nodes:
            core = LocalCore(self, st, core_edges, core_nodes)
            for v in st.r_nodes:
                if core.dfs.tin[v] < 0:
                    lost.add(v)
                    for hung in st.hanging.get(v, ()):
                        lost.update(st.subtree(hung))
        for hung, failures in by_top.items():
            if st.dfs.parent[hung] not in lost:
                lost.update(self._cut_below(st, hung, failures, failed_edges, failed_nodes))
        return lost, core

    def _cut_below(self, st: Structure, hung: int, failures: list[tuple[str, int]], failed_edges: set[int],
                   failed_nodes: set[int]) -> list[int]:
        """Nodes cut off inside the subtree hanging at `hung` (attached to a node of R that keeps the root)."""
        if len(failures) == 1:
            kind, x = failures[0]
            if kind == "device":
                return st.cut_with(x)
            if st.is_bridge[x]:
                return st.subtree(st.deeper(self.edge_a[x], self.edge_b[x]))
            return []
        nodes = st.subtree(hung)
        if hung in failed_nodes or st.dfs.parent_edge[hung] in failed_edges:
            return nodes
        low_tin, high_tin = st.dfs.tin[hung], st.dfs.tout[hung]
        tin = st.dfs.tin
        seen = {hung}
        queue = deque(seen)
        while queue:
            v = queue.popleft()
            for e in self.adj[v]:
                w = self.edge_xor[e] ^ v
                if w not in seen and e not in failed_edges and w not in failed_nodes and low_tin <= tin[w] <= high_tin:
                    seen.add(w)
                    queue.append(w)
        return [v for v in nodes if v not in seen]

    @staticmethod
    def _still_redundant(st: Structure, core: "CutPairs | LocalCore | None", nodes: list[int], lost: set[int]
                         ) -> bool:
        """True when no single link (old bridge, or new one in R) would cut off all the surviving devices."""
        survivors = [n for n in nodes if n not in lost]
        if st.bridges_above[st.dfs.lca(survivors)] > 0:
            return False
        return core is None or not core.separates({st.attach[n] for n in survivors})

    def loss_of_device(self, device_id: int) -> Loss:
        """Agencies and subscriptions one device takes away, from subtree counts (no traversal)."""
        st, sv = self.structure(), self.served()
        v = self.node_of.get(device_id)
        if v is None or st.dfs.tin[v] < 0:
            return Loss(0, 0)
        dfs = st.dfs
        cut = st.separated.get(v, [])  # in preorder, so their preorder ranges are sorted and disjoint
        starts = [dfs.tin[c] for c in cut]

        def in_cut_subtree(n: int) -> bool:
            i = bisect_right(starts, dfs.tin[n]) - 1
            return i >= 0 and dfs.tin[n] <= dfs.tout[cut[i]]

        agencies = sum(sv.count(sv.agencies_below, dfs, c) for c in cut)
        subscriptions = sum(sv.count(sv.subscriptions_below, dfs, c) for c in cut)
        for agency_id in sv.by_lca.get(v, ()):  # all its devices are below v: lost if none outside the cut
            if all(n == v or in_cut_subtree(n) for n in sv.agency_nodes[agency_id]):
                agencies += 1
                subscriptions += len(sv.subscriptions_of.get(agency_id, ()))
        for e in self.adj[v]:  # access links at v not yet counted in the cut subtrees
            if not in_cut_subtree(st.deeper(self.edge_a[e], self.edge_b[e])):
                subscriptions += len(sv.access_subscriptions_by_edge.get(e, ()))
        return Loss(agencies, subscriptions)

    def single_points_of_failure(self) -> list[tuple[str, int, Loss]]:
        """("link" | "device", id, loss) for every bridge and cut device whose failure takes something away."""
        st, sv = self.structure(), self.served()
        with _bulk():
            return list(self._single_points_of_failure(st, sv))

    def _single_points_of_failure(self, st: Structure, sv: Served) -> Iterator[tuple[str, int, Loss]]:
        tin, tout, parent_edge = st.dfs.tin, st.dfs.tout, st.dfs.parent_edge
        agencies_below, subscriptions_below = sv.agencies_below, sv.subscriptions_below
        for v in st.dfs.order[1:]:
            edge = parent_edge[v]
            if st.is_bridge[edge]:  # a bridge cuts off the subtree below it
                start, end = tin[v], tout[v] + 1
                loss = Loss(agencies_below[end] - agencies_below[start],
                            subscriptions_below[end] - subscriptions_below[start])
                if loss.agencies or loss.subscriptions:
                    yield "link", self.edge_link[edge], loss
        for node in st.separated:
            loss = self.loss_of_device(self.device_of[node])
            if loss.agencies or loss.subscriptions:
                yield "device", self.device_of[node], loss

    def service_state(self, agency_id: int) -> str:
        """redundant | single (one link would cut it off) | unserved | no_equipment."""
        sv = self.served()
        if agency_id in sv.redundant:
            return "redundant"
        if agency_id in sv.agency_nodes:
            return "single"
        return "unserved" if agency_id in sv.unserved else "no_equipment"

    def path(self, sources: list[int], targets: list[int]) -> list[tuple[int, int | None]] | None:
        """Fewest-hop path over real links: [(device id, link id that led to it)], None if there is none.

        A breadth-first search from all the sources at once over the active links (never through the virtual
        root); the first target reached is the nearest. Of parallel links between two hops the lowest id is
        named, so that answers are stable.
        """
        start = [self.node_of[d] for d in sources if d in self.node_of and self._active_device(d)]
        goal = {self.node_of[d] for d in targets if d in self.node_of and self._active_device(d)}
        came_from = dict.fromkeys(start, -1)
        queue = deque(start)
        end = next((v for v in start if v in goal), None)
        while queue and end is None:
            v = queue.popleft()
            for e in self.adj[v]:
                if not self.edge_link[e]:
                    continue
                w = self.edge_xor[e] ^ v
                if w not in came_from:
                    came_from[w] = v
                    if w in goal:
                        end = w
                        break
                    queue.append(w)
        if end is None:
            return None
        nodes = [end]
        while came_from[nodes[-1]] >= 0:
            nodes.append(came_from[nodes[-1]])
        nodes.reverse()
        hops: list[tuple[int, int | None]] = [(self.device_of[nodes[0]], None)]
        for u, v in zip(nodes, nodes[1:]):
            hops.append((self.device_of[v], min(self.edge_link[e] for e in self.adj[v]
                                                 if self.edge_link[e] and self.edge_xor[e] ^ v == u)))
        return hops


class LocalCore:
    """Tarjan on R minus the failures inside it: what R keeps, and where new bridges appear in it."""

    def __init__(self, net: Network, st: Structure, failed_edges: set[int], failed_nodes: set[int]):
        self.dfs = tarjan(st.r_adj, net.edge_xor, Dfs([], _Unvisited(), {}, {}, {}, {}), blocked_edges=failed_edges,
                          blocked_nodes=failed_nodes)
        tin, low, parent = self.dfs.tin, self.dfs.low, self.dfs.parent
        self.new_bridges_above: dict[int, int] = {ROOT: 0}
        for v in self.dfs.order[1:]:
            p = parent[v]
            self.new_bridges_above[v] = self.new_bridges_above[p] + (low[v] > tin[p] and p != ROOT)

    def exposed(self) -> list[int]:
        """Nodes of R that a single link would now cut off."""
        return [v for v, above in self.new_bridges_above.items() if above]

    def separates(self, attachments: set[int]) -> bool:
        """Whether one new bridge cuts off all these nodes of R."""
        return self.new_bridges_above[self.dfs.lca(attachments)] > 0


class CutPairs:
    """One failed link inside R: its cut partners become bridges; each cuts off a preorder range (less one)."""

    def __init__(self, net: Network, st: Structure, failed: int):
        self.st = st
        dfs = st.dfs
        self.sides: list[tuple[int, int, int, int]] = []  # (first, last, and the nested range kept) in preorder

        def child(e: int) -> int | None:  # the lower end when e is a tree edge
            lower = st.deeper(net.edge_a[e], net.edge_b[e])
            return lower if dfs.parent_edge[lower] == e else None

        mine = child(failed)
        for partner in st.cut_pairs.get(st.cut_label[failed], ()):
            if partner == failed or not net.edge_link[partner]:  # the root's virtual edges never fail
                continue
            theirs = child(partner)
            if mine is None or theirs is None:  # a tree edge and the one non-tree edge that covers it
                c = mine if theirs is None else theirs
                self.sides.append((dfs.tin[c], dfs.tout[c], 1, 0))
            else:  # two tree edges on one root path: the part between them is cut off
                upper, lower = (mine, theirs) if dfs.ancestor(mine, theirs) else (theirs, mine)
                self.sides.append((dfs.tin[upper], dfs.tout[upper], dfs.tin[lower], dfs.tout[lower]))

    def _inside(self, side: tuple[int, int, int, int], v: int) -> bool:
        first, last, kept_first, kept_last = side
        t = self.st.dfs.tin[v]
        return first <= t <= last and not kept_first <= t <= kept_last

    def exposed(self) -> list[int]:
        st = self.st
        return [v for side in self.sides
                for v in st.r_nodes[bisect_left(st.r_tins, side[0]):bisect_right(st.r_tins, side[1])]
                if self._inside(side, v)]

    def separates(self, attachments: set[int]) -> bool:
        return any(all(self._inside(side, v) for v in attachments) for side in self.sides)


class TopologyEngine:
    """One database's network, kept current by replaying the audit log; one per process and database.

    Each query first reads the audit head (one indexed query). When records were added, only those about
    devices, links, sites, agencies and subscriptions are applied to the adjacency; the DFS is recomputed lazily
    when the structure changed. If the head moved backwards or its hash changed (a rolled-back transaction),
    or a record cannot be applied, the network is reloaded in full.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.network = Network()
        self.loads = 0
        self.applied = 0
        self._head: tuple[int, str] | None = None

    def refresh(self, session: Session) -> Network:
        head = session.execute(select(AuditRecord.id, AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1)
                               ).first()
        head = (head[0], head[1]) if head else (0, "")
        if self._head is None or head[0] < self._head[0]:
            self._load(session, head)
        elif head != self._head and not self._replay(session, head):
            self._load(session, head)
        return self.network

    def _replay(self, session: Session, head: tuple[int, str]) -> bool:
        last_id, last_hash = self._head
        rows = session.execute(
            select(AuditRecord.id, AuditRecord.hash, AuditRecord.action, AuditRecord.object_type,
                   AuditRecord.object_id, AuditRecord.after)
            .where(or_(AuditRecord.id == last_id,
                       and_(AuditRecord.id > last_id, AuditRecord.id <= head[0],
                            AuditRecord.object_type.in_(ROW_TYPES))))
            .order_by(AuditRecord.id)).all()
        if last_id and (not rows or rows[0].id != last_id or rows[0].hash != last_hash):
            return False
        try:
            for r in rows:
                if r.id == last_id or r.object_id is None:
                    continue
                if r.action == "delete":
                    self.network.remove(r.object_type, r.object_id)
                elif r.after:
                    self.network.upsert(r.object_type, r.object_id, r.after)
                self.applied += 1
        except IncompleteChange:
            return False
        self._head = head
        return True

    def _load(self, session: Session, head: tuple[int, str]) -> None:
        """Read the five tables, only the needed columns, in batches (enums as their stored text).

        The old network is dropped first, so that a reload never holds two networks at once; until the new one
        is complete the head is unknown, so a failed load is retried in full by the next question.
        """
        self.network, self._head = Network(), None

        def rows(table: str) -> Iterator[tuple]:
            model, row_type = MODELS[table], ROW_TYPES[table]
            columns = [getattr(model, c) for c in row_type._fields]
            columns = [type_coerce(c, String) if isinstance(c.type, SAEnum) else c for c in columns]
            result = session.execute(select(model.id, *columns).order_by(model.id)
                                     .execution_options(yield_per=LOAD_BATCH))
            for batch in result.partitions():
                yield from batch

        self.network = Network.from_rows(**{table: rows(table) for table in ROW_TYPES})
        self._head = head
        self.loads += 1


_engines: dict[str, TopologyEngine] = {}
_engines_lock = threading.Lock()


def engine_for(session: Session) -> TopologyEngine:
    """The process's engine for the session's database."""
    key = session.get_bind().engine.url.render_as_string(hide_password=True)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = TopologyEngine()
        return engine


def reset_engines() -> None:
    """Forget every engine (tests, or after writes that bypass the audit log)."""
    with _engines_lock:
        _engines.clear()


@contextmanager
def current_network(session: Session) -> Iterator[Network]:
    """The network as of the session's view of the audit log, held under the engine's lock."""
    engine = engine_for(session)
    with engine.lock:
        yield engine.refresh(session)
