"""The daemon end to end into storage: registry targets, credentials in clear, rates, alarms, cycle records."""

import threading
from contextlib import contextmanager

from sqlalchemy import select

from tests.factories import build_tiny
from tests.telemetry.snmpsim.agent import SimAgent, SimDevice, SimInterface
from tslcd.registry import schemas as rs
from tslcd.registry import service as registry
from tslcd.registry.models import Device, Interface, Link
from tslcd.telemetry.daemon import ServiceStore, run_poller
from tslcd.telemetry.models import Alarm, AlarmKind, PollerCycle, Rate
from tslcd.telemetry.poller import PollOptions


def point(session, admin, device_name: str, port: int, community: str) -> None:
    """Give a tiny-network device a v2c credential and the simulated agent's address."""
    cred = registry.create_object(session=session, actor=admin, res=registry.resource("snmp-credentials"),
                                  obj_in=rs.SnmpCredentialCreate(name=f"sim-{device_name}", version="v2c",
                                                                 community=community))
    device_id = session.scalar(select(Device.id).where(Device.name == device_name))
    registry.update_object(session=session, actor=admin, res=registry.resource("devices"), obj_id=device_id,
                           obj_in=rs.DeviceUpdate(mgmt_address=f"127.0.0.1:{port}", snmp_credential_id=cred.id))


class TwoCycles(ServiceStore):
    """Storage as in production; between the cycles the simulated traffic flows for the one-second interval."""

    def __init__(self, sessions, agent: SimAgent, stop: threading.Event) -> None:
        super().__init__(sessions)
        self.agent, self.stop, self.cycles = agent, stop, 0

    def finish_cycle(self, **kwargs) -> None:
        super().finish_cycle(**kwargs)
        self.cycles += 1
        for device in self.agent.devices:
            device.advance(1.0, in_bps=180_000_000, out_bps=20_000_000)
        if self.cycles == 2:
            self.stop.set()


def test_poll_cycles_store_rates_raise_alarms_and_record_themselves(session, admin):
    build_tiny(session, admin)
    pe1 = SimDevice("pe-1", interfaces={1: SimInterface(speed_mbps=10_000),
                                        **{i: SimInterface(speed_mbps=1_000) for i in (2, 3, 4, 5)}})
    sw1 = SimDevice("sw-1", mute=True)

    @contextmanager
    def sessions():
        yield session
        session.flush()

    with SimAgent([pe1, sw1]) as agent:
        point(session, admin, "pe-1", agent.port, "pe-1")
        point(session, admin, "sw-1", agent.port, "sw-1")
        stop = threading.Event()
        report = run_poller(TwoCycles(sessions, agent, stop), interval_s=1.0, workers=1, stop=stop,
                            options=PollOptions(timeout_s=0.3, retries=0))

    assert (report.devices, report.interfaces, report.failures) == (2, 5, 1)
    uplink = session.scalar(select(Link).where(Link.slug == "pe1-sw1"))
    rates = session.execute(select(Rate.in_bps, Rate.out_bps, Rate.oper_up).where(
        Rate.interface_id == uplink.a_interface_id).order_by(Rate.ts)).all()
    assert [tuple(r) for r in rates] == [(None, None, True), (180_000_000.0, 20_000_000.0, True)]
    pe1_ports = session.scalars(select(Interface.id).join(Device).where(Device.name == "pe-1")).all()
    assert session.query(Rate).filter(Rate.interface_id.in_(pe1_ports)).count() == 2 * 5

    alarms = {(a.kind, a.object_type, a.object_id): a for a in session.scalars(select(Alarm))}
    assert (AlarmKind.utilization_critical, "links", uplink.id) in alarms  # 180 of 200 Mbit/s
    sw1_id = session.scalar(select(Device.id).where(Device.name == "sw-1"))
    unreachable = alarms[(AlarmKind.device_unreachable, "devices", sw1_id)]
    assert unreachable.occurrences == 2 and "no answer after 1 tries of 0.3 s" in unreachable.message
    cycles = session.scalars(select(PollerCycle).order_by(PollerCycle.started_at)).all()
    assert [(c.shard, c.devices, c.interfaces, c.failures) for c in cycles] == [("1/1", 2, 5, 1)] * 2
