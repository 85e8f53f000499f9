"""A tiny fixed network built through the registry's import path (the path users take)."""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tslcd.registry import schemas, service
from tslcd.registry.models import AdminUnit, Agency, Device, Link, Operator, Site, UnitKind
from tslcd.security.actor import Actor


@dataclass
class Tiny:
    province_id: int
    other_province_id: int
    commune_id: int
    cbdtw: int
    vnpt: int
    viettel: int

    def id_of(self, session: Session, model, key: str) -> int:
        col = {Device: Device.name, Link: Link.slug, Site: Site.slug, Agency: Agency.code}[model]
        return session.scalar(select(model.id).where(col == key))


def csv(text: str) -> bytes:
    return "\n".join(line.strip() for line in text.strip().splitlines()).encode()


def build_tiny(session: Session, actor: Actor) -> Tiny:
    """Centre rc-1 — province PE pe-1 — commune switch sw-1 — agency CPE cpe-a; agency B dual-homed on pe-1."""
    units = service.resource("admin-units")
    central = service.create_object(session=session, actor=actor, res=units, obj_in=schemas.AdminUnitCreate(
        code="VN", kind=UnitKind.central, name="Trung ương"))
    province = service.create_object(session=session, actor=actor, res=units, obj_in=schemas.AdminUnitCreate(
        code="01", kind=UnitKind.province, name="Thành phố Hà Nội", parent_id=central.id,
        valid_from=date(2025, 7, 1)))
    other = service.create_object(session=session, actor=actor, res=units, obj_in=schemas.AdminUnitCreate(
        code="48", kind=UnitKind.province, name="Thành phố Đà Nẵng", parent_id=central.id,
        valid_from=date(2025, 7, 1)))
    commune = service.create_object(session=session, actor=actor, res=units, obj_in=schemas.AdminUnitCreate(
        code="00004", kind=UnitKind.commune, name="Phường Ba Đình", parent_id=province.id,
        valid_from=date(2025, 7, 1)))

    def load(name: str, text: str) -> None:
        service.import_objects(session=session, actor=actor, res=service.resource(name), data=csv(text), fmt="csv")

    load("operators", """slug,name,short_name
        cbdtw,Cục Bưu điện Trung ương,CBĐTW
        vnpt,Tập đoàn Bưu chính Viễn thông Việt Nam,VNPT
        viettel,Tập đoàn Công nghiệp - Viễn thông Quân đội,Viettel""")
    load("agreements", """operator,tier,province,valid_from,reference
        cbdtw,backbone,,2016-01-01,Quyết định 8/2023
        cbdtw,access_1,,2016-01-01,Quyết định 8/2023
        vnpt,access_2,,2016-01-01,Thỏa thuận 2016
        vnpt,premises,,2016-01-01,Thỏa thuận 2016
        viettel,access_2,48,2025-07-01,Hợp đồng thử nghiệm""")
    load("agencies", """code,name,kind,unit
        000.00.00.H01,Ủy ban nhân dân Thành phố Hà Nội,people_committee,01
        001.01.00.H01,Ủy ban nhân dân Phường Ba Đình,people_committee,00004
        000.00.00.G22,Văn phòng Chính phủ,state,01""")
    load("sites", """slug,name,kind,unit,agency
        rc-north,Trung tâm miền Bắc,regional_centre,01,
        pc-01,Trung tâm tỉnh Hà Nội,provincial_centre,01,
        pc-48,Trung tâm tỉnh Đà Nẵng,provincial_centre,48,
        cn-00004,Điểm truy nhập Phường Ba Đình,commune_node,00004,
        ap-a,Trụ sở UBND Phường Ba Đình,agency_premises,00004,001.01.00.H01
        ap-b,Trụ sở UBND Thành phố Hà Nội,agency_premises,01,000.00.00.H01""")
    load("devices", """name,site,role,tier,vendor,model,mgmt_address
        rc-1,rc-north,core_router,backbone,Juniper,MX960,10.0.0.1
        pe-1,pc-01,pe_router,access_1,Cisco,ASR 9006,10.1.0.1
        pe-48,pc-48,pe_router,access_2,Cisco,ASR 9006,10.48.0.1
        sw-1,cn-00004,access_switch,access_2,Huawei,S5735,10.1.4.1
        cpe-a,ap-a,cpe,premises,Cisco,ISR 4331,10.1.4.10
        cpe-b,ap-b,cpe,premises,Cisco,ISR 4331,10.1.0.10""")
    load("interfaces", """device,name,if_index,speed
        rc-1,xe-0/0/0,1,10G
        rc-1,xe-0/0/1,2,10G
        pe-1,Te0/0/0,1,10G
        pe-1,Gi0/0/1,2,1G
        pe-1,Gi0/0/2,3,1G
        pe-1,Gi0/0/3,4,1G
        pe-1,Gi0/0/4,5,1G
        pe-48,Te0/0/0,1,10G
        sw-1,Gi0/1,1,1G
        sw-1,Gi0/2,2,1G
        cpe-a,Gi0/0,1,1G
        cpe-b,Gi0/0,1,1G
        cpe-b,Gi0/1,2,1G""")
    load("links", """slug,a_device,a_interface,b_device,b_interface,capacity,medium,tier
        rc1-pe1,rc-1,xe-0/0/0,pe-1,Te0/0/0,10G,fibre,access_1
        rc1-pe48,rc-1,xe-0/0/1,pe-48,Te0/0/0,10G,fibre,access_2
        pe1-sw1,pe-1,Gi0/0/1,sw-1,Gi0/1,200M,fibre,access_2
        sw1-cpea,sw-1,Gi0/2,cpe-a,Gi0/0,100M,fibre,access_2
        pe1-cpeb-1,pe-1,Gi0/0/2,cpe-b,Gi0/0,1G,fibre,access_2
        pe1-cpeb-2,pe-1,Gi0/0/3,cpe-b,Gi0/1,1G,fibre,access_2""")
    load("services", """code,name
        vpn,Truyền số liệu chuyên dùng (VPN)
        internet,Internet chuyên dùng""")
    load("subscriptions", """agency,service,bandwidth,access_link
        001.01.00.H01,vpn,100M,sw1-cpea
        000.00.00.H01,vpn,1G,pe1-cpeb-1""")
    ops = dict(session.execute(select(Operator.slug, Operator.id)).all())
    return Tiny(province_id=province.id, other_province_id=other.id, commune_id=commune.id, cbdtw=ops["cbdtw"],
                vnpt=ops["vnpt"], viettel=ops["viettel"])


def unit_by_code(session: Session, code: str) -> AdminUnit:
    return session.scalar(select(AdminUnit).where(AdminUnit.code == code))
