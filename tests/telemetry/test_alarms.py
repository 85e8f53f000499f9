from datetime import timedelta

from sqlalchemy import select

from tests.telemetry.conftest import G, M, feed, link, sample
from tslcd.registry.models import Device, Tier
from tslcd.telemetry import service
from tslcd.telemetry.models import Alarm, AlarmKind, Severity
from tslcd.telemetry.schemas import ThresholdIn
from tslcd.telemetry.storage import as_utc


def _alarms(session, kind=None):
    session.expire_all()  # alarms are written with bulk statements: read them afresh
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
    assert warning.dedup_key == f"utilization_warning:links:{pe1_sw1.id}:a_to_b"
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


def test_utilization_is_alarmed_per_direction(session, tiny, day):
    """70 % one way next to 90 % the other: a warning for one direction and a critical for the other."""
    pe1_sw1 = link(session, "pe1-sw1")  # 200 Mb/s from pe-1 (a) to sw-1 (b)
    t = day + timedelta(hours=9)
    result = feed(session, sample(pe1_sw1.a_interface_id, t, in_bps=140 * M, out_bps=180 * M))
    assert result.alarms_raised == 2
    by_key = {a.dedup_key: a for a in _alarms(session)}
    assert {k: (a.kind, a.value) for k, a in by_key.items()} == {
        f"utilization_critical:links:{pe1_sw1.id}:a_to_b": (AlarmKind.utilization_critical, 90.0),
        f"utilization_warning:links:{pe1_sw1.id}:b_to_a": (AlarmKind.utilization_warning, 70.0)}
    assert by_key[f"utilization_warning:links:{pe1_sw1.id}:b_to_a"].message == (
        "Tuyến pe1-sw1: lưu lượng sw-1 → pe-1 140 Mb/s, bằng 70,0 % dung lượng 200 Mb/s, vượt ngưỡng 60 %")
    feed(session, sample(pe1_sw1.a_interface_id, t + timedelta(minutes=5), in_bps=140 * M, out_bps=180 * M))
    # a->b falls back to 50 %, b->a rises to 85 %: one clear, one escalation; a gap leaves a direction alone.
    feed(session, sample(pe1_sw1.a_interface_id, t + timedelta(minutes=10), in_bps=170 * M, out_bps=100 * M))
    feed(session, sample(pe1_sw1.a_interface_id, t + timedelta(minutes=15), in_bps=None, out_bps=100 * M))
    active = {a.dedup_key: a.occurrences for a in _alarms(session) if a.cleared_at is None}
    assert active == {f"utilization_critical:links:{pe1_sw1.id}:b_to_a": 1}
    assert [a.occurrences for a in _alarms(session)][:2] == [2, 2]


def test_saturated_if_speed_is_a_lower_bound_not_a_mismatch(session, tiny, day):
    """ifSpeed 4,294,967,295 (a Gauge32 at its top) means "4.29 Gbit/s or more": no mismatch against 10 Gbit/s,
    a mismatch against 1 Gbit/s."""
    rc1_pe1, pe1_cpeb = link(session, "rc1-pe1"), link(session, "pe1-cpeb-1")  # 10G, 1G
    t = day + timedelta(hours=9)
    feed(session, sample(rc1_pe1.b_interface_id, t, speed=2**32 - 1), sample(pe1_cpeb.a_interface_id, t,
                                                                             speed=2**32 - 1))
    (alarm,) = _alarms(session)
    assert (alarm.kind, alarm.object_id) == (AlarmKind.speed_mismatch, pe1_cpeb.a_interface_id)
    assert alarm.message == ("Cổng Gi0/0/2 trên pe-1 báo tốc độ từ 4,29 Gb/s trở lên, khác dung lượng 1 Gb/s của "
                             "tuyến pe1-cpeb-1")


def test_narrow_counter_alarm_is_raised_once_and_cleared(session, tiny, day):
    rc1_pe1 = link(session, "rc1-pe1")
    iid, t = rc1_pe1.b_interface_id, day + timedelta(hours=9)
    for minutes in (0, 1, 2):
        blind = sample(iid, t + timedelta(minutes=minutes), None, None, speed=2**32 - 1, interval=0.0)
        blind.blind_bps, blind.blind_s = 10 * G, 15.0
        feed(session, blind)
    (alarm,) = _alarms(session)
    assert (alarm.kind, alarm.severity, alarm.object_type, alarm.object_id, alarm.occurrences, alarm.link_id) == \
        (AlarmKind.counter_too_narrow, Severity.warning, "interfaces", iid, 3, rc1_pe1.id)
    assert alarm.message.endswith("32-bit counters cannot measure 10 Gbit/s at a 15 s interval")
    assert alarm.message.startswith("Cổng Te0/0/0 trên pe-1: bộ đếm 32 bit không đo được 10 Gb/s với chu kỳ 15 s")
    pushed = sample(iid, t + timedelta(minutes=3), 1 * G, 1 * G)  # not judged: changes nothing
    feed(session, pushed)
    assert _alarms(session)[0].cleared_at is None
    measured = sample(iid, t + timedelta(minutes=4), 1 * G, 1 * G)
    measured.blind_bps = 0
    assert feed(session, measured).alarms_cleared == 1


def test_a_cycle_of_device_statuses_is_one_batch(session, tiny, day):
    from tslcd.telemetry.schemas import DeviceStatus

    devices = dict(session.execute(select(Device.name, Device.id)).all())
    statuses = [DeviceStatus(devices[name], False, day, "no answer after 2 tries of 2 s") for name in devices]
    assert service.device_statuses(session=session, statuses=statuses) == (len(devices), 0)
    assert service.device_statuses(session=session, statuses=statuses) == (0, 0)  # repeated
    back = [DeviceStatus(devices["pe-1"], True, day + timedelta(minutes=1)),
            DeviceStatus(devices["sw-1"], True, day + timedelta(minutes=1)),
            DeviceStatus(999_999, False, day, "deleted meanwhile")]
    assert service.device_statuses(session=session, statuses=back) == (0, 2)
    states = {a.object_id: (a.occurrences, a.cleared_at is None) for a in _alarms(session)}
    assert states == {i: (2, name not in ("pe-1", "sw-1")) for name, i in devices.items()}


def test_unchanged_repeats_are_written_once_a_minute_with_their_count(session, tiny, day, monkeypatch):
    """A port down for days is seen at every poll; its alarm is rewritten at most every REPEAT_WRITE_S, and the
    occurrences seen meanwhile arrive with the next write."""
    from tslcd.telemetry import alarms
    from tslcd.telemetry.models import Alarm

    monkeypatch.setattr(alarms, "REPEAT_WRITE_S", 60.0)
    clock = [1000.0]
    monkeypatch.setattr(alarms.time, "monotonic", lambda: clock[0])
    a_end = link(session, "pe1-sw1").a_interface_id
    for minute in range(3):
        feed(session, sample(a_end, day + timedelta(minutes=minute), up=False))
        clock[0] += 20  # three polls in 40 s: one write
    stored = session.scalar(select(Alarm).where(Alarm.kind == "link_down"))
    assert stored.occurrences == 1
    clock[0] += 30  # past the minute: the next repeat is written with the two that waited
    feed(session, sample(a_end, day + timedelta(minutes=3), up=False))
    session.refresh(stored)
    assert stored.occurrences == 4
