from datetime import timedelta

from sqlalchemy import select

from tests.telemetry.conftest import G, M, feed, link, sample
from tslcd.registry.models import Device, Tier
from tslcd.telemetry import service
from tslcd.telemetry.models import Alarm, AlarmKind, Severity
from tslcd.telemetry.schemas import ThresholdIn
from tslcd.telemetry.storage import as_utc


def _alarms(session, kind=None):
    stmt = select(Alarm).order_by(Alarm.id)
    if kind is not None:
        stmt = stmt.where(Alarm.kind == kind)
    return session.scalars(stmt).all()


def _state(alarm):
    return alarm.kind, alarm.severity, alarm.occurrences, alarm.cleared_at is None


def test_thresholds_raise_repeat_escalate_and_clear(session, tiny, day):
    pe1_sw1 = link(session, "pe1-sw1")  # 200 Mb/s, operated by VNPT in Hà Nội
    iid, t = pe1_sw1.a_interface_id, day + timedelta(hours=9)
    steps = [50 * M, 130 * M, 140 * M, 170 * M, 100 * M]  # 25 %, 65 %, 70 %, 85 %, 50 %
    results = [feed(session, sample(iid, t + timedelta(minutes=5 * i), 1 * M, out)) for i, out in enumerate(steps)]
    assert [r.alarms_raised for r in results] == [0, 1, 0, 1, 0]
    assert [r.alarms_cleared for r in results] == [0, 0, 0, 1, 1]
    warning, critical = _alarms(session)
    assert _state(warning) == (AlarmKind.utilization_warning, Severity.warning, 2, False)
    assert _state(critical) == (AlarmKind.utilization_critical, Severity.critical, 1, False)
    assert warning.dedup_key == f"utilization_warning:links:{pe1_sw1.id}"
    assert (warning.value, as_utc(warning.first_seen), as_utc(warning.last_seen)) == \
        (70.0, t + timedelta(minutes=5), t + timedelta(minutes=10))
    assert as_utc(warning.cleared_at) == t + timedelta(minutes=15)  # replaced by the critical alarm
    assert (critical.value, as_utc(critical.cleared_at)) == (85.0, t + timedelta(minutes=20))
    assert (critical.link_id, critical.operator_id, critical.province_id) == (pe1_sw1.id, tiny.vnpt, tiny.province_id)
    assert critical.message == ("Tuyến pe1-sw1: lưu lượng pe-1 → sw-1 170 Mb/s, bằng 85,0 % dung lượng 200 Mb/s, "
                                "vượt ngưỡng 80 %")
    feed(session, sample(iid, t + timedelta(minutes=25), 1 * M, 130 * M))
    assert _state(_alarms(session)[-1]) == (AlarmKind.utilization_warning, Severity.warning, 1, True)  # a new one


def test_the_most_specific_threshold_wins(session, tiny, admin, day):
    pe1_sw1, pe1_cpeb = link(session, "pe1-sw1"), link(session, "pe1-cpeb-1")  # both access_2
    service.set_threshold(session=session, actor=admin, threshold_in=ThresholdIn(
        tier=Tier.access_2, warning_pct=40, critical_pct=50))
    service.set_threshold(session=session, actor=admin, threshold_in=ThresholdIn(
        link_id=pe1_sw1.id, warning_pct=90, critical_pct=95))
    t = day + timedelta(hours=9)
    feed(session, sample(pe1_sw1.a_interface_id, t, 0, 120 * M), sample(pe1_cpeb.a_interface_id, t, 0, 450 * M))
    assert [(a.link_id, a.kind) for a in _alarms(session)] == [(pe1_cpeb.id, AlarmKind.utilization_warning)]


def test_link_down_from_oper_status_and_from_traps(session, tiny, day):
    rc1_pe1 = link(session, "rc1-pe1")
    t = day + timedelta(hours=9)
    result = feed(session, sample(rc1_pe1.b_interface_id, t, 0, 0, up=False))
    assert result.alarms_raised == 1
    alarm = _alarms(session, AlarmKind.link_down)[0]
    assert (alarm.severity, alarm.object_type, alarm.object_id) == (Severity.critical, "links", rc1_pe1.id)
    assert alarm.message == "Tuyến rc1-pe1 mất kết nối: cổng Te0/0/0 trên pe-1 báo trạng thái down"
    feed(session, sample(rc1_pe1.a_interface_id, t, 0, 0, up=True))  # the other end cannot clear it
    session.refresh(alarm)
    assert alarm.cleared_at is None
    feed(session, sample(rc1_pe1.b_interface_id, t + timedelta(minutes=5), 0, 0, up=True))
    session.refresh(alarm)
    assert as_utc(alarm.cleared_at) == t + timedelta(minutes=5)

    service.link_status_event(session=session, interface_id=rc1_pe1.a_interface_id, up=False, ts=t + timedelta(hours=1))
    trapped = _alarms(session, AlarmKind.link_down)[-1]
    assert (trapped.source, trapped.cleared_at, trapped.device_id) == ("trap", None, rc1_pe1.a_device_id)
    service.link_status_event(session=session, interface_id=rc1_pe1.a_interface_id, up=True,
                              ts=t + timedelta(hours=1, seconds=20))
    session.refresh(trapped)
    assert as_utc(trapped.cleared_at) == t + timedelta(hours=1, seconds=20)


def test_speed_mismatch(session, tiny, day):
    pe1_sw1 = link(session, "pe1-sw1")  # 200 Mb/s over gigabit ports
    t = day + timedelta(hours=9)
    feed(session, sample(pe1_sw1.a_interface_id, t, speed=200 * M), sample(pe1_sw1.b_interface_id, t, speed=1 * G))
    (alarm,) = _alarms(session)
    assert (alarm.kind, alarm.object_type, alarm.object_id, alarm.value) == \
        (AlarmKind.speed_mismatch, "interfaces", pe1_sw1.b_interface_id, 1e9)
    assert alarm.message == "Cổng Gi0/1 trên sw-1 báo tốc độ 1 Gb/s, khác dung lượng 200 Mb/s của tuyến pe1-sw1"
    feed(session, sample(pe1_sw1.b_interface_id, t + timedelta(minutes=5), speed=200 * M))
    session.refresh(alarm)
    assert alarm.cleared_at is not None


def test_device_unreachable_is_raised_repeated_and_cleared(session, tiny, day):
    pe1 = session.scalar(select(Device).where(Device.name == "pe-1"))
    for minutes in (0, 5):
        service.device_unreachable(session=session, device_id=pe1.id, ts=day + timedelta(minutes=minutes),
                                   reason="timeout")
    (alarm,) = _alarms(session)
    assert _state(alarm) == (AlarmKind.device_unreachable, Severity.major, 2, True)
    assert (alarm.operator_id, alarm.province_id) == (pe1.operator_id, pe1.province_id)
    assert alarm.message == "Thiết bị pe-1 không phản hồi SNMP: timeout"
    service.device_reachable(session=session, device_id=pe1.id, ts=day + timedelta(minutes=10))
    session.refresh(alarm)
    assert as_utc(alarm.cleared_at) == day + timedelta(minutes=10)
