import pytest
from sqlalchemy import func, select

from tests.factories import build_tiny, csv
from tslcd.core.bulk import ImportRejected
from tslcd.registry import service
from tslcd.registry.models import Agency, Device, Link, Site
from tslcd.security import audit
from tslcd.security.models import AuditRecord


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_bad_rows_reported_with_line_numbers_and_nothing_written(session, admin):
    build_tiny(session, admin)
    sites_before, audit_before = _count(session, Site), _count(session, AuditRecord)
    data = csv("""slug,name,kind,unit
        gw-01-1,Cổng kết nối 1 Hà Nội,gateway,01
        gw-01-2,Cổng kết nối 2 Hà Nội,gateway,99
        Bad Slug,Tên,gateway,01
        gw-01-3,Cổng kết nối 3,castle,01
        gw-01-1,Trùng,gateway,01
        pc-01,Đã có,provincial_centre,01""")
    with pytest.raises(ImportRejected) as caught:
        service.import_objects(session=session, actor=admin, res=service.resource("sites"), data=data, fmt="csv")
    errors = caught.value.report.errors
    assert [(e.row, e.column) for e in errors] == [(3, "unit"), (4, "slug"), (5, "kind"), (6, "slug"), (7, "slug")]
    assert "no unit '99'" in errors[0].msg
    assert "row 2" in errors[3].msg
    assert "already exists" in errors[4].msg
    assert _count(session, Site) == sites_before
    assert _count(session, AuditRecord) == audit_before


def test_import_updates_rows_with_id_and_audits_them(session, admin):
    build_tiny(session, admin)
    pe = session.scalar(select(Device).where(Device.name == "pe-1"))
    data = f'[{{"id": {pe.id}, "model": "ASR 9010"}}]'
    report = service.import_objects(session=session, actor=admin, res=service.resource("devices"), data=data,
                                    fmt="json")
    assert (report.created, report.updated) == (0, 1)
    session.refresh(pe)
    assert pe.model == "ASR 9010"
    last = session.scalar(select(AuditRecord).order_by(AuditRecord.id.desc()).limit(1))
    assert (last.action, last.object_id, last.before["model"], last.after["model"]) == (
        "update", pe.id, "ASR 9006", "ASR 9010")
    assert audit.verify(session=session, actor=admin).ok


def test_link_import_refuses_a_busy_interface_and_unknown_ports(session, admin):
    build_tiny(session, admin)
    data = csv("""slug,a_device,a_interface,b_device,b_interface,capacity,tier
        dup,pe-1,Gi0/0/1,sw-1,Gi0/2,1G,access_2
        nope,pe-1,Gi9/9,sw-1,Gi0/1,1G,access_2
        selfie,pe-1,Gi0/0/4,pe-1,Te0/0/0,1G,access_2""")
    with pytest.raises(ImportRejected) as caught:
        service.import_objects(session=session, actor=admin, res=service.resource("links"), data=data, fmt="csv")
    msgs = {(e.row, e.msg) for e in caught.value.report.errors}
    assert (2, "interface already ends link 'pe1-sw1'") in msgs
    assert (3, "device 'pe-1' has no interface 'Gi9/9'") in msgs
    assert (4, "both ends are on the same device") in msgs


def test_export_then_import_round_trip(session, admin):
    build_tiny(session, admin)
    res = service.resource("links")
    exported = service.export_objects(session=session, actor=admin, res=res, fmt="csv").decode()
    lines = exported.splitlines()
    assert lines[0].startswith("id,slug,capacity")
    assert "a_device" in lines[0] and len(lines) == 7
    edited = exported.replace("200000000", "1000000000")
    report = service.import_objects(session=session, actor=admin, res=res, data=edited, fmt="csv")
    assert (report.created, report.updated, report.unchanged) == (0, 1, 5)  # only pe1-sw1 was 200M
    assert session.scalar(select(Link.capacity).where(Link.slug == "pe1-sw1")) == 1_000_000_000


def test_json_import_of_a_non_array_is_refused(session, admin):
    with pytest.raises(Exception) as caught:
        service.import_objects(session=session, actor=admin, res=service.resource("operators"), data='{"a": 1}',
                               fmt="json")
    assert "array" in str(caught.value)


def test_parents_may_come_later_in_the_same_file(session, admin):
    build_tiny(session, admin)
    data = csv("""code,name,kind,parent,unit
        001.01.02.H01,Phòng Văn thư,people_committee,001.01.01.h01,00004
        001.01.01.H01,Văn phòng UBND,people_committee,001.01.00.H01,00004
        001.01.03.H01,Bộ phận một cửa,people_committee,001.01.01.H01,00004""")
    report = service.import_objects(session=session, actor=admin, res=service.resource("agencies"), data=data,
                                    fmt="csv")
    assert report.created == 3
    parents = dict(session.execute(select(Agency.code, Agency.parent_id)).all())
    ids = dict(session.execute(select(Agency.code, Agency.id)).all())
    assert parents["001.01.02.H01"] == ids["001.01.01.H01"] == parents["001.01.03.H01"]
    assert parents["001.01.01.H01"] == ids["001.01.00.H01"]


def test_a_parent_cycle_is_refused(session, admin):
    build_tiny(session, admin)
    data = csv("""code,name,kind,parent
        900.00.00.H01,A,state,901.00.00.H01
        901.00.00.H01,B,state,900.00.00.H01
        902.00.00.H01,C,state,""")
    with pytest.raises(ImportRejected) as caught:
        service.import_objects(session=session, actor=admin, res=service.resource("agencies"), data=data, fmt="csv")
    assert [(e.row, e.column) for e in caught.value.report.errors] == [(2, "parent_id"), (3, "parent_id")]
    assert session.scalar(select(Agency.id).where(Agency.code == "902.00.00.H01")) is None
