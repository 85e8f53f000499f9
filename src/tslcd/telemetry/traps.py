"""The trap receiver: linkDown/linkUp from devices (SNMPv1, v2c, v3) become link status events.

Traps are few, so pysnmp's pure-Python codec is fine here. A trap is matched to an interface by the agent's
address (snmpTrapAddress.0 when a relay set it, else the UDP source) and its ifIndex varbind, against the
registry's poll targets. Communities and v3 users come from the registry's SNMP credentials. A v3 trap is
authenticated with keys localized to the *sender's* engine id, which nobody configures by hand: the first v3
message from a known device address teaches the receiver that engine id for the named user (the message must
still carry a valid digest, so this grants nothing without the key).
"""

import asyncio
import logging
import signal
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

import typer
from pyasn1.codec.ber import decoder
from pyasn1.error import PyAsn1Error
from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters
from sqlalchemy import select
from sqlalchemy.orm import Session

from tslcd.registry.models import SnmpCredential
from tslcd.registry.service import snmp_secret
from tslcd.telemetry import service
from tslcd.telemetry.snmp import Credential, parse_address

log = logging.getLogger("tslcd.telemetry.traps")

SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
SNMP_TRAP_ADDRESS = (1, 3, 6, 1, 6, 3, 18, 1, 3, 0)
LINK_DOWN = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3)
LINK_UP = (1, 3, 6, 1, 6, 3, 1, 1, 5, 4)
IF_INDEX = (1, 3, 6, 1, 2, 1, 2, 2, 1, 1)
MAX_LEARNED_ENGINES = 100_000  # bounds what unauthenticated datagrams can make us store
RELOAD_ON_MISS_S = 5.0  # a trap for an unknown interface reloads the registry, at most this often

_AUTH = {"MD5": config.USM_AUTH_HMAC96_MD5, "SHA": config.USM_AUTH_HMAC96_SHA, "SHA1": config.USM_AUTH_HMAC96_SHA,
         "SHA224": config.USM_AUTH_HMAC128_SHA224, "SHA256": config.USM_AUTH_HMAC192_SHA256,
         "SHA384": config.USM_AUTH_HMAC256_SHA384, "SHA512": config.USM_AUTH_HMAC384_SHA512}
# AES-192/256 with Blumenthal key extension, as the poller's gufo_snmp does by default.
_PRIV = {"DES": config.USM_PRIV_CBC56_DES, "AES": config.USM_PRIV_CFB128_AES, "AES128": config.USM_PRIV_CFB128_AES,
         "AES192": config.USM_PRIV_CFB192_AES_BLUMENTHAL, "AES256": config.USM_PRIV_CFB256_AES_BLUMENTHAL}


@dataclass(frozen=True, slots=True)
class LinkTrap:
    host: str  # the agent's address
    if_index: int
    up: bool


def link_trap(source_host: str, var_binds: Iterable[tuple[tuple[int, ...], object]]) -> LinkTrap | None:
    """The link change a notification reports, or None when it is not a linkDown/linkUp with an ifIndex."""
    values = {tuple(oid): value for oid, value in var_binds}
    trap_oid = tuple(values.get(SNMP_TRAP_OID) or ())
    if trap_oid not in (LINK_DOWN, LINK_UP):
        return None
    if_index = next((int(value) for oid, value in values.items() if oid[:-1] == IF_INDEX), None)
    if if_index is None:
        return None
    relayed = values.get(SNMP_TRAP_ADDRESS)
    host = relayed.prettyPrint() if relayed is not None and hasattr(relayed, "prettyPrint") else source_host
    return LinkTrap(host, if_index, trap_oid == LINK_UP)


@dataclass(frozen=True, slots=True)
class TrapTarget:
    """A device as the receiver needs it: where it lives and its interfaces by ifIndex."""

    device_id: int
    mgmt_address: str
    interfaces: dict[int, int]  # ifIndex → interface_id


class TrapStore(Protocol):
    def targets(self) -> list[TrapTarget]: ...

    def credentials(self) -> dict[int, Credential]: ...

    def link_status(self, *, interface_id: int, up: bool, ts: datetime) -> None: ...


class ServiceTrapStore:
    """The registry and the storage service, one short transaction per trap."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]]) -> None:
        self.sessions = sessions

    def targets(self) -> list[TrapTarget]:
        with self.sessions() as session:
            return [TrapTarget(t.device_id, t.mgmt_address, dict(t.interfaces))
                    for t in service.poll_targets(session=session)]

    def credentials(self) -> dict[int, Credential]:
        found = {}
        with self.sessions() as session:
            for cred_id in session.scalars(select(SnmpCredential.id)):
                try:
                    found[cred_id] = Credential.from_secret(snmp_secret(session=session, credential_id=cred_id))
                except (ValueError, KeyError) as exc:
                    log.warning("SNMP credential %s unusable for traps: %s", cred_id, exc)
        return found

    def link_status(self, *, interface_id: int, up: bool, ts: datetime) -> None:
        with self.sessions() as session:
            service.link_status_event(session=session, interface_id=interface_id, up=up, ts=ts, source="trap")


class _InspectingTransport(udp.UdpAsyncioTransport):
    """UDP transport that shows each datagram to the receiver before pysnmp processes it."""

    def __init__(self, inspect: Callable[[bytes, tuple], None], **kwargs) -> None:
        super().__init__(**kwargs)
        self._inspect = inspect

    def datagram_received(self, datagram, transportAddress) -> None:
        self._inspect(datagram, transportAddress)
        super().datagram_received(datagram, transportAddress)


class TrapReceiver:
    """Listens on a UDP port of the running event loop; reloads devices and credentials every `refresh_s`."""

    def __init__(self, store: TrapStore, *, host: str = "0.0.0.0", port: int = 162, refresh_s: float = 60.0) -> None:
        self.store, self.host, self.port, self.refresh_s = store, host, port, refresh_s
        self.engine = SnmpEngine()
        self._by_host: dict[str, list[TrapTarget]] = {}
        self._users: dict[bytes, Credential] = {}
        self._communities: dict[str, str] = {}  # communityIndex → community
        self._learned: set[tuple[bytes, bytes]] = set()
        self._loaded_at = -float("inf")

    def start(self) -> int:
        """Bind and receive on the running event loop; returns the port bound (useful with port 0)."""
        self._reload()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        transport = _InspectingTransport(self._inspect, loop=asyncio.get_running_loop())
        config.add_transport(self.engine, udp.DOMAIN_NAME, transport.open_server_mode(sock=sock))
        ntfrcv.NotificationReceiver(self.engine, self._on_notification)
        return self.port

    def close(self) -> None:
        self.engine.close_dispatcher()

    def _reload(self) -> None:
        by_host: dict[str, list[TrapTarget]] = defaultdict(list)
        for target in self.store.targets():
            try:
                host, _ = parse_address(target.mgmt_address)
            except ValueError:
                continue
            by_host[host].append(target)
        self._by_host = by_host
        credentials = self.store.credentials()
        communities = {f"cred-{cid}": c.community for cid, c in credentials.items() if c.version != "v3"}
        for index in self._communities.keys() - communities.keys():
            config.delete_v1_system(self.engine, index)
        for index, community in communities.items():
            if self._communities.get(index) != community:
                config.add_v1_system(self.engine, index, community)
        self._communities = communities
        users = {c.username.encode(): c for c in credentials.values() if c.version == "v3" and c.username}
        changed = {user for user, cred in users.items() if self._users.get(user) != cred}
        self._learned = {(engine_id, user) for engine_id, user in self._learned if user not in changed}
        self._users = users  # a user whose keys changed is registered again at its next message
        self._loaded_at = time.monotonic()

    def _reload_if_older(self, seconds: float) -> None:
        if time.monotonic() - self._loaded_at > seconds:
            try:
                self._reload()
            except Exception:
                log.exception("trap receiver: reloading devices and credentials failed")

    def _inspect(self, datagram: bytes, address: tuple) -> None:
        """Reload when stale; for a v3 message from a known device, register its user for its engine id."""
        self._reload_if_older(self.refresh_s)
        if not datagram.startswith(b"\x30") or address[0] not in self._by_host:
            return
        try:
            message, _ = decoder.decode(datagram, asn1Spec=SNMPv3Message())
            params, _ = decoder.decode(message["msgSecurityParameters"], asn1Spec=UsmSecurityParameters())
        except PyAsn1Error:
            return  # v1/v2c, or garbage: pysnmp decides
        engine_id, user = bytes(params["msgAuthoritativeEngineId"]), bytes(params["msgUserName"])
        cred = self._users.get(user)
        if not engine_id or cred is None or (engine_id, user) in self._learned:
            return
        if len(self._learned) >= MAX_LEARNED_ENGINES:
            return
        self._learned.add((engine_id, user))
        config.add_v3_user(self.engine, cred.username,
                           _AUTH.get(cred.auth_protocol, config.USM_AUTH_NONE), cred.auth_key or None,
                           _PRIV.get(cred.priv_protocol, config.USM_PRIV_NONE), cred.priv_key or None,
                           securityEngineId=engine_id)

    def _interfaces(self, trap: LinkTrap) -> list[int]:
        """Every registered interface at that address with that ifIndex (devices may share an agent)."""
        return [t.interfaces[trap.if_index] for t in self._by_host.get(trap.host, ()) if trap.if_index in t.interfaces]

    def _on_notification(self, engine, state_reference, context_engine_id, context_name, var_binds, cb_ctx) -> None:
        _, address = engine.message_dispatcher.get_transport_info(state_reference)
        trap = link_trap(address[0], var_binds)
        if trap is None:
            return
        interfaces = self._interfaces(trap)
        if not interfaces:
            self._reload_if_older(RELOAD_ON_MISS_S)  # a device or interface added since the last reload
            interfaces = self._interfaces(trap)
        if not interfaces:
            log.info("link %s trap from %s for ifIndex %d: no such interface in the registry",
                     "up" if trap.up else "down", trap.host, trap.if_index)
            return
        ts = datetime.now(timezone.utc)
        for interface_id in interfaces:
            try:
                self.store.link_status(interface_id=interface_id, up=trap.up, ts=ts)
            except Exception:
                log.exception("trap receiver: recording link %s of interface %d failed",
                              "up" if trap.up else "down", interface_id)


async def serve_traps(store: TrapStore, *, host: str, port: int, stop: asyncio.Event) -> None:
    receiver = TrapReceiver(store, host=host, port=port)
    bound = receiver.start()
    log.info("trap receiver listening on %s:%d (linkDown/linkUp, SNMPv1/v2c/v3)", host, bound)
    try:
        await stop.wait()
    finally:
        receiver.close()


def traps_cmd(port: int = typer.Option(162, min=0, max=65535, help="UDP port (162 needs privileges)"),
              host: str = typer.Option("0.0.0.0", help="address to listen on")) -> None:
    """Receive linkDown/linkUp traps and record link status; SIGTERM stops it."""
    from tslcd.core.database import session_scope

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_traps(ServiceTrapStore(session_scope), host=host, port=port, stop=stop)

    asyncio.run(main())
