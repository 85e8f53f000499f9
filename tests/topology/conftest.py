"""A small hand-made network, built through the registry service so that every row is audited.

    core-1 (regional centre, province 79)      core-2 (backup centre, province 79)
       | bb-1                                     | bb-2
     gw-1 ----------------- gw-x ------------- gw-2          (gateway site, province 01)
       | up-1                                     || up-2a, up-2b (parallel)
     com-1                                      com-2
      | acc-a1   | acc-a2                        || acc-a3a, acc-a3b      | acc-a4
     cpe-a1     cpe-a2                          cpe-a3                   cpe-a4

A1..A4 are agencies with premises at cpe-a*; A5 has no equipment; A6 has a CPE linked to nothing.
VNPT runs the access links, CBĐTW the backbone and the gateways.
"""

from dataclasses import dataclass, field

import pytest
from sqlalchemy.orm import Session

from tslcd.registry import schemas as rs
from tslcd.registry import service as registry
from tslcd.security.actor import Actor
from tslcd.topology.graph import reset_engines


@pytest.fixture(autouse=True)
def fresh_engines():
    """Each test's rows are rolled back, so no engine may outlive it."""
    reset_engines()
    yield
    reset_engines()


@dataclass
class Net:
    session: Session
    actor: Actor
    ids: dict[str, int] = field(default_factory=dict)
    _ports: int = 0

    def create(self, resource: str, schema, key: str, **values) -> int:
        obj = registry.create_object(session=self.session, actor=self.actor, res=registry.resource(resource),
                                     obj_in=schema(**values))
        self.ids[key] = obj.id
        return obj.id

    def site(self, slug: str, kind: str, unit: str, agency: str | None = None) -> int:
        return self.create("sites", rs.SiteCreate, slug, slug=slug, name=f"Trạm {slug}", kind=kind,
                           unit_id=self.ids[unit], agency_id=self.ids[agency] if agency else None)

    def device(self, name: str, site: str, role: str, tier: str, operator: str) -> int:
        return self.create("devices", rs.DeviceCreate, name, name=name, site_id=self.ids[site], role=role, tier=tier,
                           operator_id=self.ids[operator])

    def _port(self, device: str) -> int:
        self._ports += 1
        return self.create("interfaces", rs.InterfaceCreate, f"if-{self._ports}", device_id=self.ids[device],
                           name=f"ge-0/0/{self._ports}")

    def link(self, slug: str, a: str, b: str, tier: str = "access_2", operator: str = "vnpt",
             capacity: str = "1G") -> int:
        return self.create("links", rs.LinkCreate, slug, slug=slug, a_interface_id=self._port(a),
                           b_interface_id=self._port(b), capacity=capacity, tier=tier,
                           operator_id=self.ids[operator])


@pytest.fixture
def net(session: Session, admin: Actor) -> Net:
    n = Net(session, admin)
    n.create("admin-units", rs.AdminUnitCreate, "01", code="01", kind="province", name="Thành phố Hà Nội")
    n.create("admin-units", rs.AdminUnitCreate, "79", code="79", kind="province", name="Thành phố Hồ Chí Minh")
    n.create("admin-units", rs.AdminUnitCreate, "00004", code="00004", kind="commune", name="Phường Ba Đình",
             parent_id=n.ids["01"])
    n.create("operators", rs.OperatorCreate, "cbdtw", slug="cbdtw", name="Cục Bưu điện Trung ương")
    n.create("operators", rs.OperatorCreate, "vnpt", slug="vnpt", name="VNPT")
    for i in range(1, 7):
        n.create("agencies", rs.AgencyCreate, f"A{i}", code=f"000.00.0{i}.H01", name=f"Cơ quan {i}",
                 kind="people_committee", unit_id=n.ids["00004"])
    n.site("rc", "regional_centre", "79")
    n.site("bc", "backup_centre", "79")
    n.site("gw", "gateway", "01")
    n.site("commune-1", "commune_node", "00004")
    n.site("commune-2", "commune_node", "00004")
    for i in (1, 2, 3, 4, 6):
        n.site(f"premises-a{i}", "agency_premises", "00004", agency=f"A{i}")
    n.device("core-1", "rc", "core_router", "backbone", "cbdtw")
    n.device("core-2", "bc", "core_router", "backbone", "cbdtw")
    n.device("gw-1", "gw", "gateway_router", "access_1", "cbdtw")
    n.device("gw-2", "gw", "gateway_router", "access_1", "cbdtw")
    n.device("com-1", "commune-1", "access_switch", "access_2", "vnpt")
    n.device("com-2", "commune-2", "access_switch", "access_2", "vnpt")
    for i in (1, 2, 3, 4, 6):
        n.device(f"cpe-a{i}", f"premises-a{i}", "cpe", "premises", "vnpt")
    n.link("bb-1", "core-1", "gw-1", tier="access_1", operator="cbdtw", capacity="10G")
    n.link("bb-2", "core-2", "gw-2", tier="access_1", operator="cbdtw", capacity="10G")
    n.link("gw-x", "gw-1", "gw-2", tier="access_1", operator="cbdtw", capacity="10G")
    n.link("up-1", "gw-1", "com-1")
    n.link("up-2a", "gw-2", "com-2")
    n.link("up-2b", "gw-2", "com-2")
    n.link("acc-a1", "com-1", "cpe-a1", capacity="100M")
    n.link("acc-a2", "com-1", "cpe-a2", capacity="100M")
    n.link("acc-a3a", "com-2", "cpe-a3", capacity="100M")
    n.link("acc-a3b", "com-2", "cpe-a3", capacity="100M")
    n.link("acc-a4", "com-2", "cpe-a4", capacity="100M")
    n.create("services", rs.ServiceCreate, "vpn", code="vpn", name="Truyền số liệu (VPN)")
    for agency, link in (("A1", "acc-a1"), ("A2", "acc-a2"), ("A3", "acc-a3a")):
        n.create("subscriptions", rs.SubscriptionCreate, f"sub-{agency}", agency_id=n.ids[agency],
                 service_id=n.ids["vpn"], bandwidth="100M", access_link_id=n.ids[link])
    return n
