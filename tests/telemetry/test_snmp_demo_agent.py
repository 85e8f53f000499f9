"""`demo point-at-agent` against the real snmpd that `make test` starts: the pointed devices then poll cleanly."""

import asyncio
import os

import pytest
from sqlalchemy import select

from tests.conftest import started_server
from tests.factories import build_tiny
from tslcd.core.errors import DomainValidationError
from tslcd.registry import schemas as rs
from tslcd.registry import service as registry
from tslcd.registry.models import Device, Interface, SnmpCredential
from tslcd.telemetry import service
from tslcd.telemetry.daemon import device_specs
from tslcd.telemetry.demo_agent import CREDENTIAL, point_demo_at_agent
from tslcd.telemetry.poller import Poller, PollOptions


@pytest.fixture
def agent_address() -> str:
    address = started_server("TSLCD_TEST_SNMP_AGENT", "snmpd")
    return address


def test_pointed_demo_cpes_poll_the_local_agent_and_nothing_else_is_polled(session, admin, agent_address):
    build_tiny(session, admin)  # passes for the demo: it has the demo's marker, the North regional centre
    old = registry.create_object(session=session, actor=admin, res=registry.resource("snmp-credentials"),
                                 obj_in=rs.SnmpCredentialCreate(name="demo-v2c", version="v2c", community="public"))
    rc1 = session.scalar(select(Device.id).where(Device.name == "rc-1"))
    registry.update_object(session=session, actor=admin, res=registry.resource("devices"), obj_id=rc1,
                           obj_in=rs.DeviceUpdate(snmp_credential_id=old.id))  # a made-up 10.x address

    pointed = point_demo_at_agent(session=session, actor=admin, address=agent_address,
                                  community=os.environ["TSLCD_TEST_SNMP_COMMUNITY"], devices=2, only=True)

    assert [(p.device, p.interface) for p in pointed] == [("cpe-a", "Gi0/0"), ("cpe-b", "Gi0/0"), ("cpe-b", "Gi0/1")]
    polled = [p for p in pointed if p.if_index]  # cpe-b's second port only if the agent has two ports up
    assert pointed[0].if_index and pointed[1].if_index and pointed[1].if_index != pointed[2].if_index
    targets = service.poll_targets(session=session)
    assert sorted(t.name for t in targets) == ["cpe-a", "cpe-b"]  # rc-1 no longer polled
    assert {t.mgmt_address for t in targets} == {agent_address}
    specs = device_specs(session, targets).specs
    assert {s.credential.community for s in specs} == {"public"}

    poller = Poller(PollOptions(timeout_s=1.0))
    poller.set_targets(specs)
    with asyncio.Runner() as runner:
        report = runner.run(poller.poll_cycle(lambda batch: None))
    assert (report.devices, report.interfaces, report.failures) == (2, len(polled), 0)
    ifindexes = session.scalars(select(Interface.if_index).join(Device).where(Device.name == "cpe-b")).all()
    assert sorted(ifindexes, key=str) == sorted((p.if_index for p in pointed[1:]), key=str)


def test_again_updates_the_credential_instead_of_adding_one(session, admin, agent_address):
    build_tiny(session, admin)  # passes for the demo: it has the demo's marker, the North regional centre
    for _ in range(2):
        point_demo_at_agent(session=session, actor=admin, address=agent_address,
                            community=os.environ["TSLCD_TEST_SNMP_COMMUNITY"], devices=1)
    names = [t.name for t in service.poll_targets(session=session)]
    assert names == ["cpe-a"]
    assert session.scalar(select(Device.snmp_credential_id).where(Device.name == "cpe-a")) is not None
    assert session.scalars(select(SnmpCredential.name)).all() == [CREDENTIAL]


def test_refuses_without_the_demo_or_without_an_agent(session, admin, agent_address):
    with pytest.raises(DomainValidationError, match="demo network is not loaded"):
        point_demo_at_agent(session=session, actor=admin, address=agent_address, community="public")
    build_tiny(session, admin)
    with pytest.raises(DomainValidationError, match="no SNMP agent answered"):
        point_demo_at_agent(session=session, actor=admin, address=agent_address, community="not-the-community",
                            timeout=0.3)
