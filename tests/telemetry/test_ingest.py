from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.telemetry.conftest import M, feed, link, sample
from tslcd.core.errors import DomainValidationError
from tslcd.registry.models import Device, Interface
from tslcd.registry.schemas import SnmpCredentialCreate
from tslcd.registry import service as registry
from tslcd.telemetry import service
from tslcd.telemetry.models import PollerCycle, Rate
from tslcd.telemetry.storage import as_utc


def _rates(session, interface_id):
    return [(as_utc(r.ts), r.interval_s, r.in_bps, r.out_bps, r.oper_up)
            for r in session.scalars(select(Rate).where(Rate.interface_id == interface_id).order_by(Rate.ts))]


def test_rates_are_stored_and_gaps_stay_gaps(session, tiny, day):
    iid = link(session, "pe1-sw1").a_interface_id
    t = day + timedelta(hours=10)
    result = feed(session, sample(iid, t, 10 * M, 20 * M), sample(iid, t + timedelta(minutes=5), None, None),
                  sample(iid, t + timedelta(minutes=10), 30 * M, None, up=None))
    assert (result.stored, result.duplicates) == (3, 0)
    assert _rates(session, iid) == [(t, 300.0, 10e6, 20e6, True),
                                    (t + timedelta(minutes=5), 300.0, None, None, True),
                                    (t + timedelta(minutes=10), 300.0, 30e6, None, None)]


def test_a_resent_batch_keeps_the_first_values(session, tiny, day):
    iid = link(session, "pe1-sw1").a_interface_id
    t = day + timedelta(hours=10)
    feed(session, sample(iid, t, 10 * M))
    result = feed(session, sample(iid, t, 99 * M), sample(iid, t + timedelta(minutes=5), 11 * M))
    assert (result.stored, result.duplicates) == (1, 1)
    assert [r[2] for r in _rates(session, iid)] == [10e6, 11e6]


def test_poll_targets_split_devices_among_shards(session, tiny, admin):
    cred = registry.create_object(session=session, actor=admin, res=registry.resource("snmp-credentials"),
                                  obj_in=SnmpCredentialCreate(name="v2", version="v2c", community="public"))
    devices = session.scalars(select(Device).order_by(Device.id)).all()
    for device in devices:
        device.snmp_credential_id = cred.id
    devices[0].mgmt_address = None  # not pollable without an address
    session.flush()
    everything = service.poll_targets(session=session)
    assert [t.name for t in everything] == [d.name for d in devices[1:]]
    pe1 = next(t for t in everything if t.name == "pe-1")
    ports = dict(session.execute(select(Interface.if_index, Interface.id).where(
        Interface.device_id == pe1.device_id)).all())
    assert pe1.interfaces == ports and pe1.mgmt_address == "10.1.0.1" and pe1.credential_id == cred.id
    shards = [service.poll_targets(session=session, shard_index=i, shard_count=3) for i in range(3)]
    assert sorted(t.device_id for shard in shards for t in shard) == [t.device_id for t in everything]
    assert all(t.device_id % 3 == i for i, shard in enumerate(shards) for t in shard)
    with pytest.raises(DomainValidationError):
        service.poll_targets(session=session, shard_index=3, shard_count=3)


def test_record_cycle(session, day):
    service.record_cycle(session=session, shard="1/2", started_at=day, duration_s=41.5, devices=900,
                         interfaces=40_000, failures=3)
    cycle = session.scalar(select(PollerCycle))
    assert (cycle.shard, as_utc(cycle.started_at), cycle.devices, cycle.failures) == ("1/2", day, 900, 3)
