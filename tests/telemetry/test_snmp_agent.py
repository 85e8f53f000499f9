"""The poller against the real net-snmp snmpd that `make test` starts (v2c, and v3 with SHA + AES128 authPriv)."""

import asyncio
import os
import socket
from collections.abc import Iterator

import pytest

from tests.conftest import started_server

from tslcd.telemetry.poller import DeviceSpec, PollOptions, Poller
from tslcd.telemetry.snmp import Credential, parse_address

LOOPBACK_IF_INDEX = 1  # lo is ifIndex 1 on Linux


@pytest.fixture(scope="module")
def agent() -> tuple[str, int]:
    address = started_server("TSLCD_TEST_SNMP_AGENT", "snmpd")
    return parse_address(address)


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


def v2c(community: str | None = None) -> Credential:
    return Credential("v2c", community=community or os.environ["TSLCD_TEST_SNMP_COMMUNITY"])


def v3(auth_key: str | None = None) -> Credential:
    return Credential.from_secret({
        "version": "v3", "username": os.environ["TSLCD_TEST_SNMP_V3_USER"], "auth_protocol": "SHA",
        "auth_key": auth_key or os.environ["TSLCD_TEST_SNMP_V3_AUTH"], "priv_protocol": "AES",
        "priv_key": os.environ["TSLCD_TEST_SNMP_V3_PRIV"]})


def closed_port() -> int:
    """A loopback UDP port nobody listens on: bound, noted, released."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(runner, poller):
    batches = []
    report = runner.run(poller.poll_cycle(batches.append))
    return report, {row[0]: row[1:] for batch in batches for row in batch.rows()}


@pytest.mark.parametrize("credential", [v2c, v3], ids=["v2c", "v3-authPriv"])
def test_two_polls_give_counters_and_a_rate_for_loopback(agent, runner, credential):
    host, port = agent
    poller = Poller(PollOptions(timeout_s=1.0, retries=1))
    poller.set_targets([DeviceSpec(1, host, port, credential(), ((LOOPBACK_IF_INDEX, 11),))])
    report, first = poll(runner, poller)
    assert report.failures == 0 and [e.reachable for e in report.events] == [True]
    assert first[11][1:4] == (0.0, None, None) and first[11][4] is True  # lo is up
    runner.run(asyncio.sleep(1.2))
    report, second = poll(runner, poller)
    _, interval, in_bps, out_bps, oper_up, speed = second[11]
    assert report.failures == 0 and report.events == []
    assert 1.0 <= interval <= 2.5
    assert in_bps is not None and in_bps >= 0 and out_bps is not None and out_bps >= 0
    assert speed is not None and oper_up is True


def test_failures_are_reported_not_raised(agent, runner):
    host, port = agent
    poller = Poller(PollOptions(timeout_s=0.3, retries=0))
    interfaces = ((LOOPBACK_IF_INDEX, 11),)
    poller.set_targets([DeviceSpec(1, host, port, v2c("not-the-community"), interfaces),
                        DeviceSpec(2, host, port, v3(auth_key="not-the-auth-key"), interfaces),
                        DeviceSpec(3, "127.0.0.1", closed_port(), v2c(), interfaces),
                        DeviceSpec(4, host, port, v2c(), interfaces)])
    report, samples = poll(runner, poller)
    assert (report.devices, report.failures) == (4, 3)
    reasons = {e.device_id: e.reason for e in report.events if not e.reachable}
    assert reasons == {1: "no answer after 1 tries of 0.3 s",
                       2: "SNMPv3 authentication refused (unknown user or wrong key)",
                       3: "port unreachable (nothing listens there)"}
    assert list(samples) == [11]  # only the working device's interface
    assert "not-the" not in repr(report)  # secrets never reach a report or a log line


def test_unreachable_agent_is_backed_off(agent, runner):
    poller = Poller(PollOptions(timeout_s=0.3, retries=0))
    poller.set_targets([DeviceSpec(1, "127.0.0.1", closed_port(), v2c(), ((1, 11),))])
    polled = [poll(runner, poller)[0].devices for _ in range(8)]
    assert polled == [1, 1, 0, 1, 0, 0, 0, 1]
