"""The national demo network: real administrative units and a network generated on them, loaded as a user would.

Rows are generated in the registry's import format (natural keys) and fed to `service.import_objects` one object
type at a time in dependency order, so loading the demo exercises, and the import benchmark measures, the path
users take. Everything derives arithmetically from the units' codes and order: two loads are identical, and a
province's rows do not depend on which other provinces are loaded.

Real: the units with their names, codes and centroids (vietnamadminunits); the shape of the network (domain brief,
Decision 33/2025/QĐ-TTg); the Government Office's code 000.00.00.G22. Illustrative: every other agency code (the
official shape, made-up numbers), the backup centres' cities, the two Viettel provinces, device models, ports
and management addresses (registry data only; nothing is ever contacted).
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from ipaddress import IPv4Address
from itertools import count
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tslcd.core.errors import Conflict, DomainValidationError
from tslcd.registry import service
from tslcd.registry.adminunits import CENTRAL_CODE, REFORM, load_admin_units
from tslcd.registry.models import AdminUnit, Site, UnitKind
from tslcd.security.actor import Actor

M, G = 10**6, 10**9
AGREEMENTS_SINCE = date(2016, 1, 1)
VIETTEL_PROVINCES = ("12", "96")  # Lai Châu, Cà Mau: access-II by Viettel, beating VNPT's nationwide agreement
CENTRAL_PREMISES_UNIT = "00004"  # Phường Ba Đình, Hà Nội, where most central bodies sit
DEMO_CREDENTIAL = "demo-v2c"


@dataclass(frozen=True)
class _Region:
    """One of the three regions: its regional centre, backup centre, metro network and provinces."""

    key: str
    name: str  # as in "Trung tâm miền Bắc"
    centre_province: str  # the regional centre and the metro network are in this province
    backup_province: str
    metro: str  # slug part of the metro PoP
    backup_routers: int
    provinces: tuple[str, ...]


REGIONS = (
    _Region("north", "Bắc", "01", "31", "hn", 2,
            ("01", "04", "08", "11", "12", "14", "15", "19", "20", "22", "24", "25", "31", "33", "37")),
    _Region("centre", "Trung", "48", "46", "dn", 1, ("38", "40", "42", "44", "46", "48", "51", "52", "56", "66")),
    _Region("south", "Nam", "79", "92", "hcm", 2, ("68", "75", "79", "80", "82", "86", "91", "92", "96")),
)
PROVINCE_CODES = sorted(code for region in REGIONS for code in region.provinces)  # the 34 from 1 July 2025


# Devices: a model names its vendor and how its ports are named and numbered.
@dataclass(frozen=True)
class _Model:
    vendor: str
    model: str
    ports: dict[int, tuple[str, int, int]]  # port speed -> (name template, ports per slot, first slot)
    if_index_base: int = 1


_IOS_XR = {100 * G: ("HundredGigE0/{slot}/0/{port}", 8, 0), 10 * G: ("TenGigE0/{slot}/0/{port}", 24, 1),
           G: ("GigabitEthernet0/{slot}/0/{port}", 40, 4)}
_JUNOS = {100 * G: ("et-{slot}/0/{port}", 8, 0), 10 * G: ("xe-{slot}/0/{port}", 24, 1),
          G: ("ge-{slot}/0/{port}", 40, 4)}
_HUAWEI_NE = {100 * G: ("100GE{slot}/0/{port}", 8, 1), 10 * G: ("10GE{slot}/0/{port}", 24, 2),
              G: ("GigabitEthernet{slot}/0/{port}", 40, 5)}
CORE = (_Model("Cisco", "ASR 9910", _IOS_XR), _Model("Juniper", "MX960", _JUNOS, 500))
BACKUP = (_Model("Juniper", "MX480", _JUNOS, 500), _Model("Huawei", "NE40E-X8A", _HUAWEI_NE))
METRO = (_Model("Cisco", "ASR 9906", _IOS_XR),)
PE = (_Model("Huawei", "NE40E-X8A", _HUAWEI_NE), _Model("Cisco", "ASR 9010", _IOS_XR))
GATEWAY = (_Model("Juniper", "MX204", _JUNOS, 500), _Model("Huawei", "NE8000 M8", _HUAWEI_NE))
SWITCH = (_Model("Huawei", "S5735-S24T4X", {10 * G: ("XGigabitEthernet0/0/{port}", 4, 0),
                                           G: ("GigabitEthernet0/0/{port}", 24, 0)}),
          _Model("Cisco", "C9300-24T", {10 * G: ("TenGigabitEthernet1/1/{port}", 8, 0),
                                        G: ("GigabitEthernet1/0/{port}", 24, 0)}))
CPE = (_Model("Cisco", "ISR4331", {G: ("GigabitEthernet0/0/{port}", 3, 0)}),
       _Model("Huawei", "AR6120", {G: ("GigabitEthernet0/0/{port}", 8, 0)}),
       _Model("Juniper", "SRX300", {G: ("ge-0/0/{port}", 8, 0)}, 500))
PORT_SPEEDS = (G, 10 * G, 100 * G)


@dataclass
class _Device:
    """A device being laid out, with the ports it has handed out so far."""

    name: str
    model: _Model
    used: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # port speed -> ports taken
    interfaces: int = 0

    def next_port(self, speed: int) -> tuple[str, int]:
        """The next free port of a speed, and its ifIndex."""
        template, per_slot, first_slot = self.model.ports[speed]
        n = self.used[speed]
        self.used[speed] += 1
        self.interfaces += 1
        return (template.format(slot=first_slot + n // per_slot, port=n % per_slot),
                self.model.if_index_base + self.interfaces - 1)


# Agencies: (code, name, kind, parent code). Central ones first, a parent always before its children.
CENTRAL_AGENCIES = [
    ("000.00.00.D01", "Văn phòng Trung ương Đảng", "party", None),
    ("000.00.00.D02", "Ban Tổ chức Trung ương", "party", None),
    ("000.00.00.D03", "Ủy ban Kiểm tra Trung ương", "party", None),
    ("000.00.00.D04", "Ban Tuyên giáo và Dân vận Trung ương", "party", None),
    ("000.00.00.D05", "Ban Chính sách, chiến lược Trung ương", "party", None),
    ("000.00.00.D06", "Ban Nội chính Trung ương", "party", None),
    ("000.00.00.D07", "Đảng ủy các cơ quan Đảng Trung ương", "party", None),
    ("000.00.00.D08", "Đảng ủy Chính phủ", "party", None),
    ("000.00.00.D09", "Đảng ủy Quốc hội", "party", None),
    ("000.00.00.D10", "Đảng ủy Mặt trận Tổ quốc, các đoàn thể Trung ương", "party", None),
    ("000.00.00.D11", "Báo Nhân Dân", "party", None),
    ("000.00.00.D12", "Tạp chí Cộng sản", "party", None),
    ("000.00.00.D13", "Học viện Chính trị quốc gia Hồ Chí Minh", "party", None),
    ("000.00.00.Q01", "Văn phòng Quốc hội", "national_assembly", None),
    ("000.01.00.Q01", "Hội đồng Dân tộc", "national_assembly", "000.00.00.Q01"),
    ("000.02.00.Q01", "Ủy ban Pháp luật và Tư pháp", "national_assembly", "000.00.00.Q01"),
    ("000.03.00.Q01", "Ủy ban Kinh tế và Tài chính", "national_assembly", "000.00.00.Q01"),
    ("000.04.00.Q01", "Ủy ban Quốc phòng, An ninh và Đối ngoại", "national_assembly", "000.00.00.Q01"),
    ("000.05.00.Q01", "Ủy ban Văn hóa và Xã hội", "national_assembly", "000.00.00.Q01"),
    ("000.06.00.Q01", "Ủy ban Khoa học, Công nghệ và Môi trường", "national_assembly", "000.00.00.Q01"),
    ("000.07.00.Q01", "Ủy ban Công tác đại biểu", "national_assembly", "000.00.00.Q01"),
    ("000.08.00.Q01", "Ủy ban Dân nguyện và Giám sát", "national_assembly", "000.00.00.Q01"),
    ("000.00.00.Q02", "Kiểm toán nhà nước", "state", None),
    ("000.00.00.P01", "Văn phòng Chủ tịch nước", "state", None),
    ("000.00.00.G22", "Văn phòng Chính phủ", "state", None),
    ("000.00.00.G01", "Bộ Quốc phòng", "state", None),
    ("000.00.00.G02", "Bộ Công an", "state", None),
    ("000.00.00.G03", "Bộ Ngoại giao", "state", None),
    ("000.00.00.G04", "Bộ Nội vụ", "state", None),
    ("000.00.00.G05", "Bộ Tư pháp", "state", None),
    ("000.00.00.G06", "Bộ Tài chính", "state", None),
    ("000.00.00.G07", "Bộ Công Thương", "state", None),
    ("000.00.00.G08", "Bộ Nông nghiệp và Môi trường", "state", None),
    ("000.00.00.G09", "Bộ Xây dựng", "state", None),
    ("000.00.00.G10", "Bộ Văn hóa, Thể thao và Du lịch", "state", None),
    ("000.00.00.G11", "Bộ Khoa học và Công nghệ", "state", None),
    ("000.00.00.G12", "Bộ Giáo dục và Đào tạo", "state", None),
    ("000.00.00.G13", "Bộ Y tế", "state", None),
    ("000.00.00.G14", "Bộ Dân tộc và Tôn giáo", "state", None),
    ("000.00.00.G15", "Ngân hàng Nhà nước Việt Nam", "state", None),
    ("000.00.00.G16", "Thanh tra Chính phủ", "state", None),
    ("000.00.00.G17", "Đài Truyền hình Việt Nam", "state", None),
    ("000.00.00.G18", "Đài Tiếng nói Việt Nam", "state", None),
    ("000.00.00.G19", "Thông tấn xã Việt Nam", "state", None),
    ("000.00.00.G20", "Viện Hàn lâm Khoa học và Công nghệ Việt Nam", "state", None),
    ("000.00.00.G21", "Viện Hàn lâm Khoa học xã hội Việt Nam", "state", None),
    ("000.01.00.G06", "Bảo hiểm xã hội Việt Nam", "state", "000.00.00.G06"),
    ("000.02.00.G06", "Kho bạc Nhà nước", "state", "000.00.00.G06"),
    ("000.03.00.G06", "Cục Thống kê", "state", "000.00.00.G06"),
    ("000.01.00.G11", "Cục Bưu điện Trung ương", "state", "000.00.00.G11"),
    ("000.00.00.TA1", "Tòa án nhân dân tối cao", "judiciary", None),
    ("000.00.00.VK1", "Viện kiểm sát nhân dân tối cao", "judiciary", None),
    ("000.00.00.M01", "Ủy ban Trung ương Mặt trận Tổ quốc Việt Nam", "front", None),
    ("000.00.00.M02", "Tổng Liên đoàn Lao động Việt Nam", "mass_organisation", "000.00.00.M01"),
    ("000.00.00.M03", "Trung ương Hội Nông dân Việt Nam", "mass_organisation", "000.00.00.M01"),
    ("000.00.00.M04", "Trung ương Hội Liên hiệp Phụ nữ Việt Nam", "mass_organisation", "000.00.00.M01"),
    ("000.00.00.M05", "Trung ương Đoàn Thanh niên Cộng sản Hồ Chí Minh", "mass_organisation", "000.00.00.M01"),
    ("000.00.00.M06", "Trung ương Hội Cựu chiến binh Việt Nam", "mass_organisation", "000.00.00.M01"),
]

# Per province: {pp} province code, {uy} Tỉnh ủy/Thành ủy, {doan} Tỉnh đoàn/Thành đoàn, {tinh} tỉnh/thành phố,
# {ten} short name. The last field marks the main bodies, dual-homed to both PE routers.
_TU, _K, _H, _MT = "000.00.00.T{pp}", "000.00.00.K{pp}", "000.00.00.H{pp}", "000.00.00.U{pp}"
PROVINCIAL_AGENCIES = [
    (_TU, "{uy} {ten}", "party", None, True),
    ("000.01.00.T{pp}", "Văn phòng {uy} {ten}", "party", _TU, False),
    ("000.02.00.T{pp}", "Ban Tổ chức {uy} {ten}", "party", _TU, False),
    ("000.03.00.T{pp}", "Ủy ban Kiểm tra {uy} {ten}", "party", _TU, False),
    ("000.04.00.T{pp}", "Ban Tuyên giáo và Dân vận {uy} {ten}", "party", _TU, False),
    ("000.05.00.T{pp}", "Ban Nội chính {uy} {ten}", "party", _TU, False),
    ("000.06.00.T{pp}", "Đảng ủy các cơ quan Đảng {tinh} {ten}", "party", _TU, False),
    ("000.07.00.T{pp}", "Đảng ủy Ủy ban nhân dân {tinh} {ten}", "party", _TU, False),
    (_K, "Hội đồng nhân dân {tinh} {ten}", "people_council", None, True),
    ("000.01.00.K{pp}", "Văn phòng Đoàn đại biểu Quốc hội và Hội đồng nhân dân {tinh} {ten}", "people_council", _K,
     False),
    (_H, "Ủy ban nhân dân {tinh} {ten}", "people_committee", None, True),
    ("000.01.00.H{pp}", "Văn phòng Ủy ban nhân dân {tinh} {ten}", "state", _H, False),
    ("000.02.00.H{pp}", "Sở Nội vụ {tinh} {ten}", "state", _H, False),
    ("000.03.00.H{pp}", "Sở Tài chính {tinh} {ten}", "state", _H, False),
    ("000.04.00.H{pp}", "Sở Tư pháp {tinh} {ten}", "state", _H, False),
    ("000.05.00.H{pp}", "Sở Công Thương {tinh} {ten}", "state", _H, False),
    ("000.06.00.H{pp}", "Sở Nông nghiệp và Môi trường {tinh} {ten}", "state", _H, False),
    ("000.07.00.H{pp}", "Sở Xây dựng {tinh} {ten}", "state", _H, False),
    ("000.08.00.H{pp}", "Sở Giáo dục và Đào tạo {tinh} {ten}", "state", _H, False),
    ("000.09.00.H{pp}", "Sở Y tế {tinh} {ten}", "state", _H, False),
    ("000.10.00.H{pp}", "Sở Văn hóa, Thể thao và Du lịch {tinh} {ten}", "state", _H, False),
    ("000.11.00.H{pp}", "Sở Khoa học và Công nghệ {tinh} {ten}", "state", _H, False),
    ("000.12.00.H{pp}", "Sở Dân tộc và Tôn giáo {tinh} {ten}", "state", _H, False),
    ("000.13.00.H{pp}", "Thanh tra {tinh} {ten}", "state", _H, False),
    (_MT, "Ủy ban Mặt trận Tổ quốc Việt Nam {tinh} {ten}", "front", "000.00.00.M01", True),
    ("000.01.00.U{pp}", "Liên đoàn Lao động {tinh} {ten}", "mass_organisation", _MT, False),
    ("000.02.00.U{pp}", "Hội Nông dân {tinh} {ten}", "mass_organisation", _MT, False),
    ("000.03.00.U{pp}", "Hội Liên hiệp Phụ nữ {tinh} {ten}", "mass_organisation", _MT, False),
    ("000.04.00.U{pp}", "{doan} {ten}", "mass_organisation", _MT, False),
    ("000.05.00.U{pp}", "Hội Cựu chiến binh {tinh} {ten}", "mass_organisation", _MT, False),
    ("000.{pp}.00.TA1", "Tòa án nhân dân {tinh} {ten}", "judiciary", "000.00.00.TA1", False),
    ("000.{pp}.00.VK1", "Viện kiểm sát nhân dân {tinh} {ten}", "judiciary", "000.00.00.VK1", False),
]
# Per commune ({ccc} its number in the province, in the three-digit level-4 group; {xa} xã/phường/đặc khu); the
# People's Committee comes last.
COMMUNE_AGENCIES = [
    ("{ccc}.00.00.T{pp}", "Đảng ủy {xa} {ten}", "party", _TU),
    ("{ccc}.00.00.K{pp}", "Hội đồng nhân dân {xa} {ten}", "people_council", _K),
    ("{ccc}.00.00.H{pp}", "Ủy ban nhân dân {xa} {ten}", "people_committee", _H),
]

OPERATORS = [
    {"slug": "cbdtw", "name": "Cục Bưu điện Trung ương", "short_name": "CBĐTW"},
    {"slug": "vnpt", "name": "Tập đoàn Bưu chính Viễn thông Việt Nam", "short_name": "VNPT"},
    {"slug": "viettel", "name": "Tập đoàn Công nghiệp - Viễn thông Quân đội", "short_name": "Viettel"},
]
SERVICES = [
    {"code": "vpn", "name": "Truyền số liệu chuyên dùng — VPN",
     "description": "Kênh truyền dữ liệu riêng ảo (IP/MPLS VPN) giữa các cơ quan Đảng, Nhà nước"},
    {"code": "internet", "name": "Internet chuyên dùng", "description": "Chỉ dành cho các cơ quan ở Trung ương"},
    {"code": "video_conf", "name": "Truyền hình hội nghị", "description": "Hội nghị trực tuyến từ Trung ương đến xã"},
    {"code": "tel_080", "name": "Điện thoại 080", "description": "Mạng điện thoại chuyên dùng 080"},
    {"code": "telegraph", "name": "Điện báo hệ đặc biệt", "description": "Vận hành cùng VNPT"},
    {"code": "doc_exchange", "name": "Liên thông văn bản điện tử",
     "description": "Gửi, nhận văn bản điện tử từ Trung ương đến địa phương"},
]


@dataclass(frozen=True)
class _Unit:
    """An administrative unit as the layout needs it."""

    code: str
    name: str
    short_name: str
    unit_type: str
    lat: float
    lon: float


class _Network:
    """Collects import rows per object type while the topology is laid out."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.access_link: dict[str, tuple[str, int]] = {}  # agency code -> (its first access link, capacity)

    def site(self, slug: str, name: str, kind: str, unit: str, lat: float, lon: float,
             agency: str | None = None) -> str:
        self.rows["sites"].append({"slug": slug, "name": name, "kind": kind, "unit": unit, "agency": agency,
                                   "lat": round(lat, 6), "lon": round(lon, 6)})
        return slug

    def device(self, name: str, site: str, role: str, tier: str, model: _Model, mgmt: IPv4Address,
               operator: str | None = None) -> _Device:
        row = {"name": name, "site": site, "role": role, "tier": tier, "vendor": model.vendor, "model": model.model,
               "mgmt_address": str(mgmt), "snmp_credential": DEMO_CREDENTIAL}
        if operator:
            row["operator"] = operator  # overrides the operator the agreements would give
        self.rows["devices"].append(row)
        return _Device(name, model)

    def link(self, a: _Device, b: _Device, capacity: int, tier: str, status: str = "active") -> str:
        """A circuit from upstream `a` to downstream `b` on the smallest ports that carry its capacity."""
        speed = next(s for s in PORT_SPEEDS if s >= capacity and s in a.model.ports and s in b.model.ports)
        (a_port, a_index), (b_port, b_index) = a.next_port(speed), b.next_port(speed)
        self.rows["interfaces"] += [
            {"device": a.name, "name": a_port, "if_index": a_index, "speed": speed, "description": f"to {b.name}"},
            {"device": b.name, "name": b_port, "if_index": b_index, "speed": speed, "description": f"to {a.name}"}]
        slug = f"{a.name}--{b.name}"
        self.rows["links"].append({"slug": slug, "a_device": a.name, "a_interface": a_port, "b_device": b.name,
                                   "b_interface": b_port, "capacity": capacity, "tier": tier, "status": status})
        return slug

    def agency(self, code: str, name: str, kind: str, parent: str | None, unit: str, *, premises: _Unit, k: int,
               cpe_address: IPv4Address, uplinks: list[_Device], capacity: int, tier: str,
               cpe_operator: str | None = None) -> None:
        """An agency, its premises (the k-th spot near `premises`' centroid) and a CPE homed to each uplink."""
        self.rows["agencies"].append({"code": code, "name": name, "kind": kind, "parent": parent, "unit": unit})
        slug = f"ag-{code.lower()}"
        self.site(slug, f"Trụ sở {name}", "agency_premises", premises.code, premises.lat + 0.002 * (k % 7 - 3),
                  premises.lon + 0.002 * (k // 7 % 7 - 3), code)
        cpe = self.device(f"{slug}-cpe1", slug, "cpe", "premises", CPE[k % len(CPE)], cpe_address, cpe_operator)
        links = [self.link(uplink, cpe, capacity, tier) for uplink in uplinks]
        self.access_link[code] = (links[0], capacity)


def _current_units(session: Session) -> tuple[dict[str, _Unit], dict[str, list[_Unit]]]:
    """Provinces by code and their communes in code order, as in force from 1 July 2025."""
    parent = AdminUnit.__table__.alias("province")
    rows = session.execute(
        select(AdminUnit.kind, AdminUnit.code, AdminUnit.name, AdminUnit.short_name, AdminUnit.unit_type,
               AdminUnit.lat, AdminUnit.lon, parent.c.code.label("province"))
        .outerjoin(parent, parent.c.id == AdminUnit.parent_id)
        .where(AdminUnit.valid_from == REFORM, AdminUnit.kind.in_([UnitKind.province, UnitKind.commune]))
        .order_by(AdminUnit.code)).all()
    provinces = {r.code: _Unit(r.code, r.name, r.short_name, r.unit_type, r.lat, r.lon)
                 for r in rows if r.kind == UnitKind.province}
    communes: dict[str, list[_Unit]] = {code: [] for code in provinces}
    for r in rows:
        if r.kind == UnitKind.commune:
            communes[r.province].append(_Unit(r.code, r.name, r.short_name, r.unit_type, r.lat, r.lon))
    return provinces, communes


# Management address plan (10.0.0.0/8, registry data only): backbone 10.0.0.n, province infrastructure
# 10.1.<province number>.n, commune switches 10.2.0.0 + national commune number, central bodies' CPEs 10.3.0.n,
# other CPEs 10.<16 + province number>.0.0 + number in the province.
BACKBONE_MGMT = IPv4Address("10.0.0.0")
SWITCH_MGMT = IPv4Address("10.2.0.0")
CENTRAL_CPE_MGMT = IPv4Address("10.3.0.0")


def _layout(provinces: dict[str, _Unit], communes: dict[str, list[_Unit]], selected: list[str]) -> _Network:
    """The whole topology as import rows: backbone and central bodies always, then each selected province."""
    net = _Network()
    backbone_addresses = (BACKBONE_MGMT + n for n in count(1))
    cores: dict[str, list[_Device]] = {}
    backups: dict[str, list[_Device]] = {}
    metros: dict[str, list[_Device]] = {}
    for region in REGIONS:
        centre, backup = provinces[region.centre_province], provinces[region.backup_province]
        rc = net.site(f"rc-{region.key}", f"Trung tâm miền {region.name} ({centre.short_name})", "regional_centre",
                      centre.code, centre.lat, centre.lon)
        bk = net.site(f"bk-{region.key}", f"Trung tâm dự phòng miền {region.name} ({backup.short_name})",
                      "backup_centre", backup.code, backup.lat, backup.lon)
        pop = net.site(f"metro-{region.metro}", f"PoP mạng đô thị {centre.short_name}", "metro_pop", centre.code,
                       centre.lat + 0.01, centre.lon + 0.01)
        cores[region.key] = [net.device(f"{rc}-cr{i}", rc, "core_router", "backbone", CORE[i - 1],
                                        next(backbone_addresses)) for i in (1, 2)]
        backups[region.key] = [net.device(f"{bk}-r{i}", bk, "core_router", "backbone", BACKUP[i - 1],
                                          next(backbone_addresses)) for i in range(1, region.backup_routers + 1)]
        metros[region.key] = [net.device(f"{pop}-r{i}", pop, "pe_router", "metro", METRO[0],
                                         next(backbone_addresses)) for i in (1, 2)]
    for i, region in enumerate(REGIONS):
        (cr1, cr2), own_backups = cores[region.key], backups[region.key]
        net.link(cr1, cr2, 100 * G, "backbone")
        for other in REGIONS[i + 1:]:  # full mesh between regional centres, one link per plane
            for mine, theirs in zip(cores[region.key], cores[other.key]):
                net.link(mine, theirs, 100 * G, "backbone")
        net.link(cr1, own_backups[0], 100 * G, "backbone")
        net.link(cr2, own_backups[-1], 100 * G, "backbone")
        next_backups = backups[REGIONS[(i + 1) % len(REGIONS)].key]  # the backup centres form a ring
        net.link(own_backups[-1], next_backups[0], 10 * G, "backbone")
        for metro in metros[region.key]:  # each metro router dual-homed to both core routers
            for core in cores[region.key]:
                net.link(core, metro, 10 * G, "metro")

    north = REGIONS[0].key
    ba_dinh = next(c for c in communes["01"] if c.code == CENTRAL_PREMISES_UNIT)
    for k, (code, name, kind, parent) in enumerate(CENTRAL_AGENCIES):
        # Level-I equipment at central bodies is run by CBĐTW itself, not under VNPT's premises agreement.
        net.agency(code, name, kind, parent, CENTRAL_CODE, premises=ba_dinh, k=k, cpe_address=CENTRAL_CPE_MGMT + k + 1,
                   uplinks=[metros[north][k % 2], cores[north][k % 2]], capacity=G, tier="metro",
                   cpe_operator="cbdtw")

    region_of = {code: region for region in REGIONS for code in region.provinces}
    first_commune = 1
    for ordinal, code in enumerate(sorted(provinces), start=1):
        if code in selected:
            region = region_of[code]
            _province(net, provinces[code], communes[code], ordinal, first_commune, cores[region.key],
                      backups[region.key])
        first_commune += len(communes[code])
    return net


def _province(net: _Network, province: _Unit, communes: list[_Unit], ordinal: int, first_commune: int,
              cores: list[_Device], backups: list[_Device]) -> None:
    """A provincial centre with two PEs and two gateways (one to the regional, one to the backup centre), then its
    agencies and communes; `ordinal` (1…34) and `first_commune` (national number of its first commune) fix the
    addresses, so they do not depend on which provinces are loaded.

    In every sixth province the second gateway's uplink is still planned (the 2025 upgrade is under way), so the
    first gateway's uplink is a single point of failure there: what impact and spof reports exist to find."""
    pp, place = province.code, f"{province.unit_type.lower()} {province.short_name}"
    infra_mgmt = IPv4Address(f"10.1.{ordinal}.0")
    centre = net.site(f"p{pp}-centre", f"Trung tâm {place}", "provincial_centre", pp, province.lat, province.lon)
    pes = [net.device(f"p{pp}-pe{i}", centre, "pe_router", "access_1", PE[(ordinal + i) % len(PE)], infra_mgmt + i)
           for i in (1, 2)]
    for i, upstream in ((1, cores[ordinal % len(cores)]), (2, backups[ordinal % len(backups)])):
        gw_site = net.site(f"p{pp}-gw{i}", f"Cổng kết nối {i} {place}", "gateway", pp, province.lat + 0.01 * i,
                           province.lon - 0.01 * i)
        gateway = net.device(f"{gw_site}-r1", gw_site, "gateway_router", "access_1",
                             GATEWAY[(ordinal + i) % len(GATEWAY)], infra_mgmt + 10 + i)
        upgrading = i == 2 and ordinal % 6 == 0
        net.link(upstream, gateway, 10 * G, "access_1", status="planned" if upgrading else "active")
        for pe in pes:
            net.link(gateway, pe, 10 * G, "access_1")

    city = province.unit_type == "Thành phố"
    words = {"pp": pp, "ten": province.short_name, "tinh": province.unit_type.lower(),
             "uy": "Thành ủy" if city else "Tỉnh ủy", "doan": "Thành đoàn" if city else "Tỉnh đoàn"}
    cpe_mgmt = IPv4Address(f"10.{16 + ordinal}.0.0")
    k = 0
    for code, name, kind, parent, main in PROVINCIAL_AGENCIES:
        k += 1
        net.agency(code.format(**words), name.format(**words), kind, parent and parent.format(**words), pp,
                   premises=province, k=k, cpe_address=cpe_mgmt + k, uplinks=pes if main else [pes[k % 2]],
                   capacity=G if main else 100 * M, tier="access_2")

    for number, commune in enumerate(communes, start=1):
        national = first_commune + number - 1
        xa = f"{commune.unit_type.lower()} {commune.short_name}"
        node = net.site(f"c{commune.code}", f"Điểm truy nhập {xa}, {province.short_name}", "commune_node",
                        commune.code, commune.lat, commune.lon)
        switch = net.device(f"{node}-sw1", node, "access_switch", "access_2", SWITCH[national % len(SWITCH)],
                            SWITCH_MGMT + national)
        net.link(pes[0], switch, 200 * M, "access_2")
        if national % 4 == 0:  # a quarter of the communes are dual-homed
            net.link(pes[1], switch, 200 * M, "access_2")
        words_xa = {**words, "ccc": f"{number:03d}", "xa": commune.unit_type.lower(), "ten": commune.short_name}
        for code, name, kind, parent in COMMUNE_AGENCIES:
            k += 1
            net.agency(code.format(**words_xa), name.format(**words_xa), kind, parent.format(**words), commune.code,
                       premises=commune, k=k, cpe_address=cpe_mgmt + k, uplinks=[switch], capacity=100 * M,
                       tier="access_2")


def _agreements() -> list[dict[str, Any]]:
    """CBĐTW runs backbone, access-I and metro; VNPT access-II and premises; Viettel access-II in two provinces."""
    since = AGREEMENTS_SINCE.isoformat()
    return [
        {"operator": "cbdtw", "tier": tier, "valid_from": since, "reference": "Thỏa thuận 2016 (mạng cấp I)"}
        for tier in ("backbone", "access_1", "metro")
    ] + [
        {"operator": "vnpt", "tier": tier, "valid_from": since, "reference": "Thỏa thuận 2016 (mạng cấp II)"}
        for tier in ("access_2", "premises")
    ] + [
        {"operator": "viettel", "tier": "access_2", "province": code, "valid_from": REFORM.isoformat(),
         "reference": "Hợp đồng mạng truy nhập cấp II 2025"} for code in VIETTEL_PROVINCES
    ]


def _subscriptions(net: _Network) -> list[dict[str, Any]]:
    """VPN for every agency on its first access link; Internet for central bodies; video conferences and document
    exchange for People's Committees."""
    central = {code for code, *_ in CENTRAL_AGENCIES}
    rows: list[dict[str, Any]] = []
    for agency in net.rows["agencies"]:
        code = agency["code"]
        link, capacity = net.access_link[code]
        services = [("vpn", capacity)]
        if code in central:
            services.append(("internet", 100 * M))
        if agency["kind"] == "people_committee":
            services += [("video_conf", 20 * M), ("doc_exchange", 10 * M)]
        rows += [{"agency": code, "service": service, "bandwidth": bandwidth, "access_link": link}
                 for service, bandwidth in services]
    return rows


def is_loaded(*, session: Session) -> bool:
    """Whether the demo network is in the registry (its North regional centre is the marker)."""
    return session.scalar(select(Site.id).where(Site.slug == f"rc-{REGIONS[0].key}")) is not None


def _check_provinces(provinces: list[str] | None) -> list[str]:
    """The selected province codes, sorted (None: all 34), or an error naming the unknown ones."""
    unknown = sorted(set(provinces or ()) - set(PROVINCE_CODES))
    if unknown:
        raise DomainValidationError(f"no current province {', '.join(unknown)}; the 34 codes run from "
                                    f"{PROVINCE_CODES[0]} to {PROVINCE_CODES[-1]} (e.g. 01 Hà Nội, 48 Đà Nẵng, "
                                    "79 TP. Hồ Chí Minh)")
    return sorted(set(provinces)) if provinces else PROVINCE_CODES


def generate_rows(*, session: Session, provinces: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The demo's import rows per object type, in load order, on the units in the registry.

    `provinces` (current province codes) limits the provincial and commune levels; the backbone and the central
    bodies are always there. Agencies are listed parents first.
    """
    selected = _check_provinces(provinces)
    current, communes = _current_units(session)
    missing = sorted(set(PROVINCE_CODES) - current.keys())
    if missing:
        raise DomainValidationError(f"the registry lacks the current provinces {', '.join(missing)}; the demo needs "
                                    "the full set of administrative units")
    net = _layout(current, communes, selected)
    return {"operators": [dict(r) for r in OPERATORS], "agreements": _agreements(),
            "services": [dict(r) for r in SERVICES],
            "snmp-credentials": [{"name": DEMO_CREDENTIAL, "version": "v2c", "community": "public"}],
            "agencies": net.rows["agencies"], "sites": net.rows["sites"], "devices": net.rows["devices"],
            "interfaces": net.rows["interfaces"], "links": net.rows["links"], "subscriptions": _subscriptions(net)}


def load_demo(*, session: Session, actor: Actor, provinces: list[str] | None = None,
              progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Load the units (unless present) and the demo network through the import path; objects created per type.

    `provinces` (current province codes, e.g. ["01", "48"]) limits the provincial and commune levels, for fast
    tests; None loads the whole country.
    """
    _check_provinces(provinces)
    if is_loaded(session=session):
        raise Conflict("the demo network is already loaded", title="Demo data already loaded")
    counts: dict[str, int] = {}
    if not session.scalar(select(func.count()).select_from(AdminUnit)):
        units = load_admin_units(session=session, actor=actor)
        counts["admin-units"] = sum(n for kind, n in units.items() if kind != "successions")
        counts["admin-unit-successions"] = units["successions"]
    for step, (name, rows) in enumerate(generate_rows(session=session, provinces=provinces).items(), start=1):
        report = service.import_objects(session=session, actor=actor, res=service.resource(name),
                                        data=orjson.dumps(rows), fmt="json")
        counts[name] = report.created
        if progress:
            progress(step)
    return counts
