"""A deterministic SNMP agent for tests: many devices on one UDP port, told apart by community.

Built on pysnmp's command responder instead of snmpsim: snmpsim must drop root privileges and then cannot read
this venv (its Python lives under /root), and its counters follow the wall clock. Here a test sets each
device's sysUpTime and counters before a poll, so every rate is known exactly. GET only — that is all the
poller asks.
"""

import asyncio
import socket
import threading
from dataclasses import dataclass, field

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.error import PySnmpError
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.smi import error as smi_error
from pysnmp.smi.instrum import AbstractMibInstrumController

SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
IF_TABLE = (1, 3, 6, 1, 2, 1, 2, 2, 1)  # .5 ifSpeed .8 ifOperStatus .10 ifInOctets .16 ifOutOctets
IF_X_TABLE = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)  # .6 ifHCInOctets .10 ifHCOutOctets .15 ifHighSpeed


@dataclass
class SimInterface:
    in_octets: int = 0  # the true count; the agent reports it modulo the counter width
    out_octets: int = 0
    up: bool = True
    speed_mbps: int = 1000


@dataclass
class SimDevice:
    """One simulated device; change its fields between polls."""

    community: str
    uptime_ticks: int = 100
    interfaces: dict[int, SimInterface] = field(default_factory=dict)
    wide_counters: bool = True  # False: an old agent without ifXTable
    max_varbinds: int | None = None  # answer tooBig to larger GETs
    mute: bool = False  # answer nothing, like a device that went away
    requests: int = 0  # GETs received (and not muted)

    def advance(self, seconds: float, in_bps: float = 0.0, out_bps: float = 0.0) -> None:
        """Let time pass with every interface carrying this traffic."""
        self.uptime_ticks += round(seconds * 100)
        for iface in self.interfaces.values():
            iface.in_octets += round(in_bps * seconds / 8)
            iface.out_octets += round(out_bps * seconds / 8)

    def value(self, oid: tuple[int, ...]):
        if oid == SYS_UPTIME:
            return rfc1902.TimeTicks(self.uptime_ticks % (1 << 32))
        table, column, index = oid[:-2], oid[-2], oid[-1]
        iface = self.interfaces.get(index)
        if iface is None:
            return rfc1905.noSuchInstance
        if table == IF_TABLE and column == 5:
            return rfc1902.Gauge32(min(iface.speed_mbps * 1_000_000, (1 << 32) - 1))
        if table == IF_TABLE and column == 8:
            return rfc1902.Integer(1 if iface.up else 2)
        if table == IF_TABLE and column in (10, 16):
            return rfc1902.Counter32((iface.in_octets if column == 10 else iface.out_octets) % (1 << 32))
        if table == IF_X_TABLE and self.wide_counters and column in (6, 10):
            return rfc1902.Counter64((iface.in_octets if column == 6 else iface.out_octets) % (1 << 64))
        if table == IF_X_TABLE and self.wide_counters and column == 15:
            return rfc1902.Gauge32(iface.speed_mbps)
        return rfc1905.noSuchObject


class _DeviceInstrumentation(AbstractMibInstrumController):
    def __init__(self, device: SimDevice) -> None:
        self.device = device

    def read_variables(self, *var_binds, **context):
        if self.device.mute:
            raise PySnmpError("muted")  # the responder drops the request without an answer
        self.device.requests += 1
        if self.device.max_varbinds is not None and len(var_binds) > self.device.max_varbinds:
            raise smi_error.TooBigError()
        return [(name, self.device.value(tuple(name))) for name, _ in var_binds]


class SimAgent:
    """The agent in a thread with its own event loop, on a free loopback port; use as a context manager."""

    def __init__(self, devices: list[SimDevice]) -> None:
        self.devices = devices
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-snmp-agent", daemon=True)

    def __enter__(self) -> "SimAgent":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the simulated agent did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        engine = SnmpEngine()
        transport = udp.UdpAsyncioTransport(loop=self._loop).open_server_mode(sock=self._sock)
        config.add_transport(engine, udp.DOMAIN_NAME, transport)
        snmp_context = context.SnmpContext(engine)
        for device in self.devices:
            name = device.community.encode()
            config.add_v1_system(engine, device.community, device.community, contextName=name)
            snmp_context.register_context_name(name, _DeviceInstrumentation(device))
        cmdrsp.GetCommandResponder(engine, snmp_context)
        self._loop.call_soon(self._ready.set)
        try:
            self._loop.run_forever()
        finally:
            engine.close_dispatcher()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()
