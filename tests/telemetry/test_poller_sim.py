"""The poller against a simulated agent of many devices whose counters wrap, reset and stall: exact rates."""

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.telemetry.snmpsim.agent import SimAgent, SimDevice, SimInterface
from tslcd.telemetry.poller import CycleReport, DeviceSpec, PollOptions, Poller
from tslcd.telemetry.snmp import Credential

EPOCH = 1_750_000_000.0


class Clock:
    """Our side of time; tests move it together with the simulated devices' sysUpTime."""

    def __init__(self) -> None:
        self.t = 1_000.0

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> float:
        return EPOCH + self.t


class Lab:
    def __init__(self, agent: SimAgent, runner: asyncio.Runner, options: PollOptions) -> None:
        self.agent, self.runner, self.clock = agent, runner, Clock()
        self.use(options)

    def use(self, options: PollOptions) -> None:
        """A new poller with these options over the same devices."""
        self.poller = Poller(options, clock=self.clock.monotonic, wall=self.clock.wall)
        self.poller.set_targets([spec(n, device, self.agent.port)
                                 for n, device in enumerate(self.agent.devices, start=1)])

    def poll(self) -> tuple[CycleReport, dict[int, tuple]]:
        """One cycle; samples by interface id as (ts, interval_s, in_bps, out_bps, oper_up, speed_bps)."""
        self.batches: list = []
        report = self.runner.run(self.poller.poll_cycle(self.batches.append))
        return report, {row[0]: row[1:] for batch in self.batches for row in batch.rows()}

    def blind(self) -> list[tuple[int | None, float]]:
        """The last poll's (blind_bps, blind_s) per sample."""
        return [b for batch in self.batches for b in batch.blind()]

    def advance(self, seconds: float, in_bps: float = 0.0, out_bps: float = 0.0) -> None:
        self.clock.t += seconds
        for device in self.agent.devices:
            device.advance(seconds, in_bps, out_bps)


def spec(n: int, device: SimDevice, port: int) -> DeviceSpec:
    """Device n's interface ids are n*100 + ifIndex."""
    return DeviceSpec(n, "127.0.0.1", port, Credential("v2c", community=device.community),
                      tuple((if_index, n * 100 + if_index) for if_index in sorted(device.interfaces)))


def ports(count: int, **kwargs) -> dict[int, SimInterface]:
    return {i: SimInterface(**kwargs) for i in range(1, count + 1)}


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


@pytest.fixture
def lab(request, runner) -> Iterator[Lab]:
    """Devices from `with_devices` (default: one 4-port device), polled with short timeouts."""
    factory = getattr(request, "param", lambda: [SimDevice("dev001", interfaces=ports(4))])
    with SimAgent(factory()) as agent:
        yield Lab(agent, runner, PollOptions(timeout_s=0.3, retries=0, concurrency=32))


def with_devices(factory):
    return pytest.mark.parametrize("lab", [factory], indirect=True, ids=["sim"])


def many_devices() -> list[SimDevice]:
    return [SimDevice(f"dev{n:03d}", interfaces=ports(4)) for n in range(1, 201)]


# 200 devices on one pure-Python agent: on a busy machine some answers take longer than 0.3 s.
PATIENT = PollOptions(timeout_s=2.0, retries=1, concurrency=32)


@with_devices(many_devices)
def test_first_poll_has_no_rate_then_rates_are_exact_on_200_devices(lab):
    lab.use(PATIENT)
    report, first = lab.poll()
    assert (report.devices, report.interfaces, report.failures) == (200, 800, 0)
    assert all(s[1:4] == (0.0, None, None) for s in first.values())
    assert len(report.events) == 200 and all(e.reachable for e in report.events)  # clears alarms left over

    lab.advance(60, in_bps=8_000_000, out_bps=16_000_000)
    report, second = lab.poll()
    assert len(second) == 800 and report.events == []
    assert set(second.values()) == {(EPOCH + 1_060, 60.0, 8_000_000.0, 16_000_000.0, True, 1_000_000_000)}
    assert {d.requests for d in lab.agent.devices} == {2}  # one GET per device and cycle


def mixed_devices() -> list[SimDevice]:
    """50 steady, 50 old agents about to wrap their 32-bit counters, 50 about to restart, 50 idle."""
    steady = [SimDevice(f"steady{n}", interfaces=ports(2)) for n in range(50)]
    # 100 Mbit/s ports: 32-bit counters can measure them at 60 s (a gigabit port would be blind, see below)
    wrapping = [SimDevice(f"wrap{n}", wide_counters=False,
                          interfaces=ports(2, in_octets=2**32 - 1_000_000, speed_mbps=100)) for n in range(50)]
    restarting = [SimDevice(f"restart{n}", uptime_ticks=50_000_000, interfaces=ports(2, in_octets=10**12))
                  for n in range(50)]
    idle = [SimDevice(f"idle{n}", interfaces=ports(2, in_octets=777)) for n in range(50)]
    return steady + wrapping + restarting + idle


@with_devices(mixed_devices)
def test_wraps_restarts_and_stalls_among_200_devices_in_one_cycle(lab):
    lab.use(PATIENT)
    lab.poll()
    for device in lab.agent.devices:
        if device.community.startswith("idle"):
            device.uptime_ticks += 6_000
        elif device.community.startswith("restart"):
            device.uptime_ticks = 1_000
            for iface in device.interfaces.values():
                iface.in_octets = 5_000
        else:
            device.advance(60, in_bps=4_000_000)
    lab.clock.t += 60
    report, samples = lab.poll()
    assert (report.devices, report.failures) == (200, 0)
    by_group: dict[str, set] = {}
    for n, device in enumerate(lab.agent.devices, start=1):
        group = device.community.rstrip("0123456789")
        by_group.setdefault(group, set()).update(samples[n * 100 + i][2] for i in (1, 2))
    assert by_group == {"steady": {4_000_000.0}, "wrap": {4_000_000.0}, "restart": {None}, "idle": {0.0}}


@with_devices(lambda: [SimDevice("old", wide_counters=False,
                                        interfaces={1: SimInterface(in_octets=2**32 - 1_000, speed_mbps=100)})])
def test_agent_without_hc_counters_is_read_with_32_bit_counters_and_wraps(lab):
    lab.poll()
    assert lab.agent.devices[0].requests == 2  # the HC GET, then the 32-bit one
    lab.advance(60, in_bps=1_000_000)  # 7,500,000 octets, across the 2^32 wrap
    _, samples = lab.poll()
    assert samples[101][1:] == (60.0, 1_000_000.0, 0.0, True, 100_000_000)  # speed from ifSpeed
    assert lab.agent.devices[0].requests == 3  # remembered: one GET


@with_devices(lambda: [SimDevice("wrap64", interfaces={1: SimInterface(in_octets=2**64 - 5_000)})])
def test_64_bit_wrap_gives_the_wrapped_rate(lab):
    lab.poll()
    lab.advance(60, in_bps=1_000_000)
    _, samples = lab.poll()
    assert samples[101][2] == 1_000_000.0


@with_devices(lambda: [SimDevice("narrow-port", wide_counters=False,
                                        interfaces={1: SimInterface(in_octets=4_000_000_000, speed_mbps=10)})])
def test_32_bit_drop_too_large_for_the_port_speed_is_a_gap(lab):
    lab.poll()
    lab.advance(60)
    lab.agent.devices[0].interfaces[1].in_octets = 2**32 + 1_000  # reads 1,000: a wrap would mean 4.3 GB in 60 s
    _, samples = lab.poll()
    assert samples[101][2] is None and samples[101][3] == 0.0


def test_agent_restart_gives_a_gap_then_exact_rates(lab):
    device = lab.agent.devices[0]
    device.uptime_ticks = 10_000_000
    lab.poll()
    lab.advance(60, in_bps=1_000_000)
    lab.poll()
    lab.advance(60)
    device.uptime_ticks = 3_000  # rebooted 30 s ago ...
    for iface in device.interfaces.values():  # ... with small counters: no false spike, no negative rate
        iface.in_octets = iface.out_octets = 1_000
    _, restarted = lab.poll()
    assert all(s[1:4] == (0.0, None, None) for s in restarted.values())
    lab.advance(60, in_bps=2_000_000)
    _, after = lab.poll()
    assert all(s[1:4] == (60.0, 2_000_000.0, 0.0) for s in after.values())


def test_counter_going_back_on_one_port_is_a_gap_on_that_port_only(lab):
    device = lab.agent.devices[0]
    for iface in device.interfaces.values():
        iface.in_octets = 10**12
    lab.poll()
    lab.advance(60, in_bps=1_000_000)
    device.interfaces[2].in_octets = 5_000  # cleared counters on port 2, the agent did not restart
    _, samples = lab.poll()
    assert samples[102][2] is None
    assert [samples[i][2] for i in (101, 103, 104)] == [1_000_000.0] * 3
    lab.advance(60, in_bps=1_000_000)
    _, samples = lab.poll()
    assert samples[102][2] == 1_000_000.0


def test_stalled_counters_are_zero_traffic(lab):
    lab.poll()
    lab.advance(60)
    _, samples = lab.poll()
    assert all(s[2:4] == (0.0, 0.0) for s in samples.values())


def test_stalled_sysuptime_is_a_gap(lab):
    lab.poll()
    lab.clock.t += 60  # our clock moves, the agent's does not
    _, samples = lab.poll()
    assert all(s[2] is None for s in samples.values())


@with_devices(lambda: [SimDevice("small-pdu", interfaces=ports(8), max_varbinds=9)])
def test_answers_too_big_are_split_and_the_size_is_remembered(lab):
    device = lab.agent.devices[0]
    lab.poll()  # one GET of 33 varbinds refused, two of 17 refused, four of 9 answered
    assert device.requests == 7
    lab.advance(60, in_bps=1_000_000)
    _, samples = lab.poll()
    assert len(samples) == 8 and {s[2] for s in samples.values()} == {1_000_000.0}
    assert device.requests == 7 + 4


@with_devices(lambda: [SimDevice("dev001", interfaces=ports(2))])
def test_interface_the_agent_lacks_is_a_gap(lab, runner):
    lab.poller.set_targets([DeviceSpec(1, "127.0.0.1", lab.agent.port, Credential("v2c", community="dev001"),
                                       ((1, 101), (7, 107)))])
    lab.poll()
    lab.advance(60, in_bps=1_000_000)
    report, samples = lab.poll()
    assert report.failures == 0
    assert samples[107] == (EPOCH + 1_060, 60.0, None, None, None, None)
    assert samples[101][2] == 1_000_000.0


def test_silent_device_backs_off_and_its_return_is_a_new_baseline(lab):
    device = lab.agent.devices[0]
    lab.poll()
    device.mute = True
    polled = []
    for _ in range(8):
        lab.advance(60)
        report, _ = lab.poll()
        polled.append(report.devices)
        assert all(not e.reachable and e.reason == "no answer after 1 tries of 0.3 s" for e in report.events)
        assert report.failures == report.devices
    assert polled == [1, 1, 0, 1, 0, 0, 0, 1]  # after 1, 2, 3, 4 failures: wait 0, 1, 3, 7 cycles
    device.mute = False
    for _ in range(8):  # the next try comes within 15 cycles
        lab.advance(60, in_bps=1_000_000)
        report, samples = lab.poll()
        if report.devices:
            break
    assert [e.reachable for e in report.events] == [True]
    assert all(s[2] is None for s in samples.values())  # the gap stays a gap: no rate across the outage
    lab.advance(60, in_bps=1_000_000)
    _, samples = lab.poll()
    assert all(s[2] == 1_000_000.0 for s in samples.values())


def test_reading_older_than_stale_after_is_a_new_baseline(lab):
    lab.poll()
    lab.advance(151, in_bps=1_000_000)
    _, samples = lab.poll()
    assert all(s[2] is None for s in samples.values())


def ten_gig_port_without_hc_counters() -> list[SimDevice]:
    """An agent without ifXTable on a 10 Gbit/s port: ifSpeed tops out at 4,294,967,295."""
    return [SimDevice("old-10g", wide_counters=False, interfaces={1: SimInterface(speed_mbps=10_000)})]


@with_devices(ten_gig_port_without_hc_counters)
@pytest.mark.parametrize("registered", [(), (10 * 10**9,)], ids=["ifspeed-only", "registry-speed"])
def test_32_bit_counters_of_a_10_gbit_port_give_gaps_not_wrong_rates(lab, registered):
    """5 Gbit/s wraps a 32-bit counter every 6.9 s: at a 15 s interval the drop of the counter is 2 wraps plus
    0.78 GB, which read as 0.42 Gbit/s. Now a gap, flagged blind for the alarm; at 3 s the rate is exact."""
    if registered:
        lab.poller.set_targets([replace(spec(1, lab.agent.devices[0], lab.agent.port), speeds=registered)])
    fastest = registered[0] if registered else 2**32 - 1  # ifSpeed saturated: "at least 4.29 Gbit/s"
    lab.poll()
    for _ in range(3):
        lab.advance(15, in_bps=5 * 10**9, out_bps=5 * 10**9)
        _, samples = lab.poll()
        assert samples[101][1:] == (15.0, None, None, True, 2**32 - 1)  # never 0.42 Gbit/s
        assert lab.blind() == [(fastest, 15.0)]
    lab.advance(3, in_bps=5 * 10**9, out_bps=2 * 10**9)  # 1.9 GB in 3 s: one wrap at most
    _, samples = lab.poll()
    assert samples[101][1:4] == (3.0, 5 * 10**9, 2 * 10**9)
    assert lab.blind() == [(0, 0.0)]


@with_devices(ten_gig_port_without_hc_counters)
def test_the_expected_interval_judges_the_first_reading(lab):
    lab.poller = Poller(PollOptions(timeout_s=0.3, retries=0, interval_s=15), clock=lab.clock.monotonic,
                        wall=lab.clock.wall)
    lab.poller.set_targets([spec(1, lab.agent.devices[0], lab.agent.port)])
    lab.poll()
    assert lab.blind() == [(2**32 - 1, 15.0)]


@with_devices(lambda: [SimDevice("new-10g", interfaces={1: SimInterface(speed_mbps=10_000)})])
def test_64_bit_counters_measure_a_10_gbit_port(lab):
    lab.poll()
    lab.advance(15, in_bps=5 * 10**9)
    _, samples = lab.poll()
    assert samples[101][2] == 5 * 10**9 and lab.blind() == [(0, 0.0)]


@with_devices(lambda: [SimDevice("v1-10g", interfaces={1: SimInterface(speed_mbps=10_000)})])
def test_snmpv1_reads_32_bit_counters_and_is_blind_on_a_10_gbit_port(lab):
    """SNMPv1 cannot carry Counter64: even an agent with ifXTable is read with ifInOctets, and at 15 s a 10 Gbit/s
    port cannot be measured (registered speed 10 Gbit/s)."""
    device = lab.agent.devices[0]
    lab.poller.set_targets([DeviceSpec(1, "127.0.0.1", lab.agent.port, Credential("v1", community=device.community),
                                       ((1, 101),), (10 * 10**9,))])
    lab.poll()
    lab.advance(15, in_bps=5 * 10**9)
    _, samples = lab.poll()
    assert samples[101][1:3] == (15.0, None) and lab.blind() == [(10 * 10**9, 15.0)]
    assert device.requests == 2  # straight to the 32-bit columns, no HC GET first
