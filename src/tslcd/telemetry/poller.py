"""Poll IF-MIB counters of many devices and turn them into rates that never spike falsely.

Requests: one GET per device carries sysUpTime.0 and four objects for each registered interface (in and out
octets, ifOperStatus, speed) — 193 varbinds for a 48-port device. gufo_snmp has no GETBULK with
non-repeaters, and a GET of known instances needs no continuation: the agent answers exactly what the registry
lists. Bigger devices are split into several GETs (`interfaces_per_request`); a request the agent or the codec
refuses as too big is halved, and the smaller size is kept for that device.

Rates: the interval comes from sysUpTime when it agrees with our monotonic clock; sysUpTime going back or
losing time means the agent restarted, which gives a gap (None), never a rate. A counter that went back is a
wrap only when the wrapped delta fits within speed × interval; otherwise it is a gap. After a failure, a
restart of the poller, or a reading older than `stale_after_s`, the next answer is a new baseline (a gap).

32-bit counters (SNMPv1, or agents without ifXTable) wrap every 2^32 octets: 3.4 s at 10 Gbit/s. When the
fastest speed known for the port (the agent's ifSpeed, the registry's interface speed or link capacity) times
the interval can reach 2^32 octets, a drop of the counter could be one wrap or several, and no rate can be
told: such a sample is a gap, flagged "blind" with that speed and interval so that ingest raises one alarm on
the interface (cleared once the counter can measure again). ifSpeed is a Gauge32: 4,294,967,295 means "at
least 4.29 Gbit/s", a lower bound, which is how it is used here.
"""

import asyncio
import math
import socket
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tslcd.telemetry.snmp import (Credential, DeviceSession, RequestTooLarge, SnmpFailure, is_ip)

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_SPEED = "1.3.6.1.2.1.2.2.1.5"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10"
IF_OUT_OCTETS = "1.3.6.1.2.1.2.2.1.16"
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"
IF_HIGH_SPEED = "1.3.6.1.2.1.31.1.1.1.15"

TICKS_PER_S = 100  # sysUpTime is in TimeTicks
UPTIME_WRAP = 1 << 32  # ... which wrap after 497 days
# How far the agent's clock may differ from ours before we stop believing it: response delays and the
# agent's own caching make a second or two of difference normal.
CLOCK_TOLERANCE_S = 2.0
CLOCK_TOLERANCE = 0.10
WRAP_SLACK = 1.05  # octet counters include framing, so a busy link may count slightly above its speed
OPER_UP = 1


@dataclass(frozen=True, slots=True)
class Columns:
    """The objects read for one interface: 64-bit counters with ifHighSpeed, or the 32-bit ones with ifSpeed."""

    in_octets: str
    out_octets: str
    speed: str
    speed_unit: int  # bit/s per unit of the speed object
    width: int  # counter width in bits

    def oids(self, if_index: int) -> tuple[str, str, str, str]:
        return (f"{self.in_octets}.{if_index}", f"{self.out_octets}.{if_index}", f"{IF_OPER_STATUS}.{if_index}",
                f"{self.speed}.{if_index}")


WIDE = Columns(IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS, IF_HIGH_SPEED, 1_000_000, 64)
NARROW = Columns(IF_IN_OCTETS, IF_OUT_OCTETS, IF_SPEED, 1, 32)


def agent_interval(prev_ticks: int, ticks: int, elapsed_s: float) -> float | None:
    """Seconds between two readings by the agent's clock, or None when the agent restarted in between.

    `elapsed_s` is our monotonic time between the two answers. The agent's clock is preferred (it dates the
    counters, not the network), unless it runs ahead of ours; losing time or going back means a restart.
    """
    tolerance = max(CLOCK_TOLERANCE_S, CLOCK_TOLERANCE * elapsed_s)
    if ticks >= prev_ticks:
        agent_s = (ticks - prev_ticks) / TICKS_PER_S
    else:
        agent_s = (ticks + UPTIME_WRAP - prev_ticks) / TICKS_PER_S
        if abs(agent_s - elapsed_s) > tolerance:
            return None  # went back, and not by a 497-day wrap
    if agent_s < elapsed_s - tolerance:
        return None  # restarted since the last reading and counted up again
    if agent_s > elapsed_s + tolerance or agent_s <= 0:
        return elapsed_s if elapsed_s > 0 else None
    return agent_s


def blind_speed(width: int, speed_bps: int, interval_s: float | None) -> int:
    """The speed a counter of `width` bits cannot measure at this interval, 0 when it can, -1 when unknown.

    Several wraps fit between two readings once speed × interval (with the framing slack) reaches 2^width octets.
    """
    if speed_bps <= 0 or not interval_s:
        return -1
    return speed_bps if speed_bps * interval_s / 8 * WRAP_SLACK >= 1 << width else 0


def octet_delta(prev: int, cur: int, width: int, max_octets: float | None) -> int | None:
    """Octets counted between two readings: a wrap when it fits within `max_octets`, else None (a gap)."""
    if cur >= prev:
        return cur - prev
    wrapped = cur + (1 << width) - prev
    if max_octets is not None and wrapped <= max_octets:
        return wrapped
    return None


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """What a worker needs to poll one device; built from a PollTarget and its credential."""

    device_id: int
    host: str
    port: int
    credential: Credential
    interfaces: tuple[tuple[int, int], ...]  # (ifIndex, interface_id)
    # The registry's speed of each interface above (the faster of its own speed and its link's capacity), bit/s;
    # 0 or missing: unknown. The agent's speed may be lower than the truth (ifSpeed tops out at 4.29 Gbit/s).
    speeds: tuple[int, ...] = ()
    name: str = ""  # for the cycle's log line


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A device stopped answering (with the reason) or answers again."""

    device_id: int
    reachable: bool
    ts: float  # epoch seconds
    reason: str = ""


class RateBatch:
    """Samples as parallel arrays, cheap to fill in a worker and to send through a pipe.

    NaN is a gap in a rate; -1 an unknown oper status or speed; the interval is 0.0 when there is no rate.
    `blind_bps` > 0: the 32-bit counter in use cannot measure this speed at `blind_s` seconds (the rates are gaps);
    0: the counters can measure the port; -1: not known yet (no interval to judge by).
    """

    __slots__ = ("interface_id", "ts", "interval_s", "in_bps", "out_bps", "oper", "speed", "blind_bps", "blind_s")

    def __init__(self) -> None:
        self.interface_id = array("q")
        self.ts = array("d")
        self.interval_s = array("d")
        self.in_bps = array("d")
        self.out_bps = array("d")
        self.oper = array("b")
        self.speed = array("q")
        self.blind_bps = array("q")
        self.blind_s = array("d")

    def __len__(self) -> int:
        return len(self.interface_id)

    def rows(self) -> Iterator[tuple[int, float, float, float | None, float | None, bool | None, int | None]]:
        """(interface_id, ts, interval_s, in_bps, out_bps, oper_up, speed_bps) with None for the unknowns."""
        for iid, ts, interval, rin, rout, oper, speed in zip(self.interface_id, self.ts, self.interval_s,
                                                               self.in_bps, self.out_bps, self.oper, self.speed,
                                                               strict=True):
            yield (iid, ts, interval, None if math.isnan(rin) else rin, None if math.isnan(rout) else rout,
                   None if oper < 0 else oper == 1, None if speed < 0 else speed)

    def blind(self) -> Iterator[tuple[int | None, float]]:
        """(blind_bps, blind_s) per row, beside rows(): None when not judged, 0 when the counters measure."""
        for bps, seconds in zip(self.blind_bps, self.blind_s, strict=True):
            yield (None if bps < 0 else bps, seconds)


@dataclass(slots=True)
class CycleReport:
    """What one poll cycle did; the daemon logs it and records it as the pollers' health."""

    devices: int = 0  # polled this cycle
    interfaces: int = 0
    failures: int = 0
    backed_off: int = 0  # not polled: failing devices wait for growing intervals
    cpu_s: float = 0.0  # CPU time of the worker processes
    events: list[DeviceEvent] = field(default_factory=list)
    # Filled by the daemon: devices that could not be polled at all (name, why), and where the time went.
    unusable: list[tuple[str, str]] = field(default_factory=list)
    polling_s: float = 0.0  # targets, polling and writing the samples
    alarms_s: float = 0.0  # writing the devices' alarms and the cycle's record

    def merge(self, other: "CycleReport") -> None:
        self.devices += other.devices
        self.interfaces += other.interfaces
        self.failures += other.failures
        self.backed_off += other.backed_off
        self.cpu_s += other.cpu_s
        self.events += other.events


@dataclass(frozen=True, slots=True)
class PollOptions:
    timeout_s: float = 2.0
    retries: int = 1
    concurrency: int = 256  # devices in flight per worker process, one outstanding request each
    interfaces_per_request: int = 48  # 48 → one 193-varbind GET per 48-port device; 12 keeps answers under 1500 B
    max_backoff_cycles: int = 32  # a dead device is retried after 1, 2, 4 … up to this many cycles
    stale_after_s: float = 150.0  # no rate between readings further apart than this
    # Seconds between cycles, to judge 32-bit counters before the first interval is measured (None: wait for it).
    interval_s: float | None = None
    batch_size: int = 4096  # samples per batch handed to the writer


class _Device:
    """One device's polling state: session, request plan, last readings, back-off."""

    __slots__ = ("spec", "session", "address", "narrow", "chunk", "plan", "keys", "failures", "skip", "reachable",
                 "at", "ticks", "in_octets", "out_octets", "width")

    def __init__(self, spec: DeviceSpec, chunk: int) -> None:
        count = len(spec.interfaces)
        self.spec = spec
        self.session: DeviceSession | None = None
        self.address: str | None = spec.host if is_ip(spec.host) else None
        # Positions read with the 32-bit columns: every one for SNMPv1, else those the agent lacks HC for.
        self.narrow: set[int] = set() if spec.credential.wide_counters else set(range(count))
        self.chunk = chunk
        self.plan: list[list[int]] = []
        self.keys: list[tuple[str, str, str, str]] = []  # per position: in, out, oper, speed OIDs
        self.failures = 0
        self.skip = 0
        self.reachable: bool | None = None  # unknown until the first answer
        self.at: float | None = None  # monotonic time of the last reading
        self.ticks = 0
        self.in_octets: list[int | None] = [None] * count
        self.out_octets: list[int | None] = [None] * count
        self.width: list[int] = [0] * count
        self.replan()

    def replan(self) -> None:
        """Recompute the OIDs and the GETs after a change of columns or request size."""
        self.keys = [(NARROW if pos in self.narrow else WIDE).oids(if_index)
                     for pos, (if_index, _) in enumerate(self.spec.interfaces)]
        positions = list(range(len(self.keys)))
        self.plan = [positions[i:i + self.chunk] for i in range(0, len(positions), self.chunk)] or [[]]

    def oids(self, positions: list[int]) -> list[str]:
        oids = [SYS_UPTIME]  # in every GET: an answer without it is an error, never "nothing there"
        for pos in positions:
            oids += self.keys[pos]
        return oids


class Poller:
    """Polls its share of the devices, one cycle at a time, on the running event loop; keeps per-device state."""

    def __init__(self, options: PollOptions = PollOptions(), *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.options = options
        self._clock, self._wall = clock, wall
        self._devices: dict[int, _Device] = {}

    def set_targets(self, specs: Iterable[DeviceSpec]) -> None:
        """Replace the device list; a device whose spec changed starts afresh, one that left is forgotten."""
        devices = {}
        for spec in specs:
            dev = self._devices.get(spec.device_id)
            if dev is None or dev.spec != spec:
                dev = _Device(spec, self.options.interfaces_per_request)
            devices[spec.device_id] = dev
        self._devices = devices

    async def poll_cycle(self, emit: Callable[[RateBatch], None]) -> CycleReport:
        """Poll every device not backed off; hand samples to `emit` in batches as they come."""
        report = CycleReport()
        due = []
        for dev in self._devices.values():
            if dev.skip:
                dev.skip -= 1
                report.backed_off += 1
            else:
                due.append(dev)
        report.devices = len(due)
        slots = asyncio.Semaphore(self.options.concurrency)
        batch = RateBatch()

        async def poll(dev: _Device) -> None:
            nonlocal batch
            async with slots:
                try:
                    reading = await self._read(dev)
                except SnmpFailure as exc:
                    self._failed(dev, str(exc), report)
                    return
            self._record(dev, *reading, batch, report)
            if len(batch) >= self.options.batch_size:
                full, batch = batch, RateBatch()
                emit(full)

        await asyncio.gather(*(poll(dev) for dev in due))
        if len(batch):
            emit(batch)
        return report

    async def _read(self, dev: _Device) -> tuple[dict[str, Any], int, float, float]:
        """Everything the device has for its interfaces, with sysUpTime and our clocks at the first answer."""
        session = dev.session or await self._open(dev)
        values: dict[str, Any] = {}
        ticks = at = wall = None
        for positions in dev.plan:
            values.update(await self._get(dev, session, positions))
            if at is None:
                at, wall = self._clock(), self._wall()
                ticks = values.get(SYS_UPTIME)
                if not isinstance(ticks, int):
                    raise SnmpFailure("the answer lacks sysUpTime.0")
        # Agents without ifXTable (or without it for some ports) answer 32-bit counters only: ask for those
        # once, and from now on directly.
        lacking = [pos for pos, (in_oid, _, oper_oid, _) in enumerate(dev.keys)
                   if pos not in dev.narrow and in_oid not in values and oper_oid in values]
        if lacking:
            dev.narrow.update(lacking)
            dev.replan()
            for i in range(0, len(lacking), dev.chunk):
                values.update(await self._get(dev, session, lacking[i:i + dev.chunk]))
        return values, ticks, at, wall

    async def _open(self, dev: _Device) -> DeviceSession:
        spec = dev.spec
        if dev.address is None:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(spec.host, spec.port, type=socket.SOCK_DGRAM)
            except OSError:
                raise SnmpFailure(f"cannot resolve {spec.host}") from None
            dev.address = infos[0][4][0]
        try:
            dev.session = DeviceSession(dev.address, spec.port, spec.credential, timeout=self.options.timeout_s,
                                        retries=self.options.retries)
        except OSError as exc:
            raise SnmpFailure(f"cannot open a socket: {exc.strerror or type(exc).__name__}") from None
        return dev.session

    async def _get(self, dev: _Device, session: DeviceSession, positions: list[int]) -> dict[str, Any]:
        """One GET; an empty or oversized answer is retried in halves (tooBig, or SNMPv1's noSuchName)."""
        try:
            answer = await session.get(dev.oids(positions))
        except RequestTooLarge:
            answer = None
        if answer or (answer is not None and len(positions) <= 1):
            return answer
        if len(positions) <= 1:
            raise SnmpFailure("the answer for a single interface is too large")
        half = len(positions) // 2
        if half < dev.chunk:
            dev.chunk = half
            dev.replan()
        first = await self._get(dev, session, positions[:half])
        return first | await self._get(dev, session, positions[half:])

    def _failed(self, dev: _Device, reason: str, report: CycleReport) -> None:
        dev.failures += 1
        dev.skip = min(2 ** (dev.failures - 1), self.options.max_backoff_cycles) - 1
        dev.session = None  # a new socket (and v3 discovery) next time
        dev.address = dev.spec.host if is_ip(dev.spec.host) else None  # and a new DNS answer
        dev.at = None  # the next answer is a baseline: a gap stays a gap
        dev.reachable = False
        report.failures += 1
        report.events.append(DeviceEvent(dev.spec.device_id, False, self._wall(), reason))

    def _record(self, dev: _Device, values: dict[str, Any], ticks: int, at: float, wall: float, batch: RateBatch,
                report: CycleReport) -> None:
        """Turn one reading into samples against the previous one."""
        if dev.reachable is not True:
            # Also on the first answer after a restart of the poller: an alarm may be left from before.
            report.events.append(DeviceEvent(dev.spec.device_id, True, wall))
        dev.reachable, dev.failures = True, 0
        interval = None
        elapsed = at - dev.at if dev.at is not None else 0.0
        if dev.at is not None and elapsed <= self.options.stale_after_s:
            interval = agent_interval(dev.ticks, ticks, elapsed)
        dev.at, dev.ticks = at, ticks
        interval_s = interval if interval is not None else 0.0
        nan = math.nan
        get = values.get
        narrow, prev_in, prev_out, widths = dev.narrow, dev.in_octets, dev.out_octets, dev.width
        registered = dev.spec.speeds
        judged_s = interval if interval is not None else self.options.interval_s
        add_id, add_ts, add_iv = batch.interface_id.append, batch.ts.append, batch.interval_s.append
        add_in, add_out, add_oper, add_speed = (batch.in_bps.append, batch.out_bps.append, batch.oper.append,
                                                batch.speed.append)
        add_blind, add_blind_s = batch.blind_bps.append, batch.blind_s.append
        for pos, ((_, interface_id), (in_oid, out_oid, oper_oid, speed_oid)) in enumerate(
                zip(dev.spec.interfaces, dev.keys, strict=True)):
            cols = NARROW if pos in narrow else WIDE
            c_in, c_out, oper, speed = get(in_oid), get(out_oid), get(oper_oid), get(speed_oid)
            speed_bps = speed * cols.speed_unit if isinstance(speed, int) else -1
            in_bps = out_bps = nan
            fastest = max(speed_bps, registered[pos] if pos < len(registered) else 0)
            if cols.width == 64:
                blind = 0  # 2^64 octets last 47 years at 100 Gbit/s
            else:
                blind = blind_speed(32, fastest, judged_s)
            add_blind(blind)
            add_blind_s(judged_s if blind > 0 else 0.0)
            # A blind counter may have wrapped any number of times between the readings: no number is right.
            if blind <= 0 and interval is not None and widths[pos] == cols.width:
                max_octets = fastest * interval / 8 * WRAP_SLACK if fastest > 0 else None
                if isinstance(c_in, int) and prev_in[pos] is not None:
                    delta = octet_delta(prev_in[pos], c_in, cols.width, max_octets)
                    if delta is not None:
                        in_bps = delta * 8 / interval
                if isinstance(c_out, int) and prev_out[pos] is not None:
                    delta = octet_delta(prev_out[pos], c_out, cols.width, max_octets)
                    if delta is not None:
                        out_bps = delta * 8 / interval
            prev_in[pos] = c_in if isinstance(c_in, int) else None
            prev_out[pos] = c_out if isinstance(c_out, int) else None
            widths[pos] = cols.width
            add_id(interface_id)
            add_ts(wall)
            add_iv(interval_s)
            add_in(in_bps)
            add_out(out_bps)
            add_oper((1 if oper == OPER_UP else 0) if isinstance(oper, int) else -1)
            add_speed(speed_bps)
        report.interfaces += len(dev.spec.interfaces)
