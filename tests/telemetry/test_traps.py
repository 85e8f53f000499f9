"""The trap receiver gets real linkDown/linkUp traps from net-snmp's snmptrap (v2c and v3) on a loopback port."""

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pysnmp.proto import rfc1902
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import build_tiny
from tslcd.core import database
from tslcd.core.database import Base
from tslcd.registry import schemas as rs
from tslcd.registry import service as registry
from tslcd.registry.models import Device, Link
from tslcd.telemetry.models import Alarm, AlarmKind
from tslcd.telemetry.snmp import Credential
from tslcd.telemetry.traps import (IF_INDEX, LINK_DOWN, LINK_UP, SNMP_TRAP_ADDRESS, SNMP_TRAP_OID, LinkTrap,
                                   ServiceTrapStore, TrapReceiver, TrapTarget, link_trap)

V3 = {"version": "v3", "username": "trapper", "auth_protocol": "SHA", "auth_key": "trap-auth-pass",
      "priv_protocol": "AES", "priv_key": "trap-priv-pass"}
V3_ARGS = ["-v3", "-u", "trapper", "-l", "authPriv", "-a", "SHA", "-x", "AES", "-X", "trap-priv-pass"]


class FakeTrapStore:
    def __init__(self) -> None:
        self.events: list[tuple[int, bool]] = []

    def targets(self) -> list[TrapTarget]:
        # Two devices behind one agent address (as `demo point-at-agent` makes them); one elsewhere.
        return [TrapTarget(1, "127.0.0.1:1161", {2: 12, 3: 13}), TrapTarget(2, "127.0.0.1", {2: 22}),
                TrapTarget(3, "10.9.9.9", {2: 32})]

    def credentials(self) -> dict[int, Credential]:
        return {1: Credential("v2c", community="trap-community"), 2: Credential.from_secret(V3)}

    def link_status(self, *, interface_id, up, ts) -> None:
        self.events.append((interface_id, up))


def needs_snmptrap() -> None:
    if not shutil.which("snmptrap"):
        pytest.skip("needs net-snmp's snmptrap (Debian package snmp; scripts/testenv.sh installs it)")


@contextmanager
def receiving(store) -> Iterator[TrapReceiver]:
    """The receiver on a free loopback port, in a thread with its own event loop."""
    needs_snmptrap()
    loop = asyncio.new_event_loop()
    receiver = TrapReceiver(store, host="127.0.0.1", port=0)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(receiver.start)  # binds on the running loop
        loop.call_soon(started.set)
        loop.run_forever()
        receiver.close()
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(5)
    try:
        yield receiver
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@pytest.fixture
def receiver() -> Iterator[tuple[TrapReceiver, FakeTrapStore]]:
    store = FakeTrapStore()
    with receiving(store) as rx:
        yield rx, store


def send(tmp_path, port: int, *args: str, trap: tuple[int, ...], if_index: int = 2) -> None:
    oid = ".".join(map(str, trap))
    env = {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(tmp_path)}  # keep net-snmp out of /var/lib/snmp
    subprocess.run(["snmptrap", *args, f"127.0.0.1:{port}", "", oid, f"1.3.6.1.2.1.2.2.1.1.{if_index}", "i",
                    str(if_index), f"1.3.6.1.2.1.2.2.1.8.{if_index}", "i", "1" if trap == LINK_UP else "2"],
                   env=env, check=True, capture_output=True)


def wait_for(store: FakeTrapStore, count: int) -> list[tuple[int, bool]]:
    deadline = time.monotonic() + 5
    while len(store.events) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # and nothing more arrives
    return store.events


def test_v2c_link_down_reaches_every_interface_behind_the_agent_address(receiver, tmp_path):
    rx, store = receiver
    send(tmp_path, rx.port, "-v2c", "-c", "trap-community", trap=LINK_DOWN)
    assert sorted(wait_for(store, 2)) == [(12, False), (22, False)]


def test_v3_auth_priv_link_up_learns_the_senders_engine_id(receiver, tmp_path):
    rx, store = receiver
    send(tmp_path, rx.port, *V3_ARGS, "-A", "trap-auth-pass", "-e", "0x80001f8880aabbccdd", trap=LINK_UP, if_index=3)
    assert wait_for(store, 1) == [(13, True)]
    send(tmp_path, rx.port, *V3_ARGS, "-A", "trap-auth-pass", "-e", "0x80001f8880aabbccee", trap=LINK_DOWN,
         if_index=3)  # another device's engine behind the same address
    assert wait_for(store, 2) == [(13, True), (13, False)]


def test_wrong_community_or_key_and_unknown_interfaces_are_ignored(receiver, tmp_path):
    rx, store = receiver
    send(tmp_path, rx.port, "-v2c", "-c", "guessed", trap=LINK_DOWN)
    send(tmp_path, rx.port, *V3_ARGS, "-A", "guessed-auth-pass", "-e", "0x80001f8880aabbccff", trap=LINK_DOWN)
    send(tmp_path, rx.port, "-v2c", "-c", "trap-community", trap=LINK_DOWN, if_index=9)
    send(tmp_path, rx.port, "-v2c", "-c", "trap-community", trap=LINK_UP, if_index=3)  # processed after the others
    assert wait_for(store, 1) == [(13, True)]


def test_link_trap_reads_the_relayed_agent_address():
    var_binds = [(SNMP_TRAP_OID, rfc1902.ObjectIdentifier(LINK_DOWN)), (IF_INDEX + (7,), rfc1902.Integer(7)),
                 (SNMP_TRAP_ADDRESS, rfc1902.IpAddress("10.1.2.3"))]
    assert link_trap("192.0.2.1", var_binds) == LinkTrap("10.1.2.3", 7, False)
    assert link_trap("192.0.2.1", var_binds[:2]) == LinkTrap("192.0.2.1", 7, False)
    assert link_trap("192.0.2.1", [(SNMP_TRAP_OID, rfc1902.ObjectIdentifier((1, 3, 6, 1, 4, 1, 9)))]) is None


class SignallingStore(ServiceTrapStore):
    """Storage as in production, telling the test when a write is done (the test's session is not shared meanwhile)."""

    def __init__(self, sessions) -> None:
        super().__init__(sessions)
        self.written = threading.Event()

    def link_status(self, **kwargs) -> None:
        super().link_status(**kwargs)
        self.written.set()


def point_pe1(session, admin) -> None:
    """pe-1 of the tiny network answers from 127.0.0.1 with the trap community."""
    cred = registry.create_object(session=session, actor=admin, res=registry.resource("snmp-credentials"),
                                  obj_in=rs.SnmpCredentialCreate(name="traps", version="v2c",
                                                                 community="trap-community"))
    pe1 = session.scalar(select(Device.id).where(Device.name == "pe-1"))
    registry.update_object(session=session, actor=admin, res=registry.resource("devices"), obj_id=pe1,
                           obj_in=rs.DeviceUpdate(mgmt_address="127.0.0.1", snmp_credential_id=cred.id))


def test_link_down_trap_raises_the_link_alarm_in_storage(session, admin, tmp_path):
    build_tiny(session, admin)
    point_pe1(session, admin)

    @contextmanager
    def sessions():
        yield session
        session.flush()

    store = SignallingStore(sessions)
    with receiving(store) as rx:
        send(tmp_path, rx.port, "-v2c", "-c", "trap-community", trap=LINK_DOWN)  # pe-1 Gi0/0/1: link pe1-sw1
        assert store.written.wait(5)
    uplink = session.scalar(select(Link.id).where(Link.slug == "pe1-sw1"))
    alarm = session.scalar(select(Alarm).where(Alarm.kind == AlarmKind.link_down, Alarm.object_id == uplink))
    assert alarm is not None and alarm.source == "trap" and alarm.cleared_at is None


def test_traps_command_records_a_trap_and_stops_cleanly_on_sigterm(tmp_path, admin):
    """`tslcd traps` as a process on a database of its own."""
    needs_snmptrap()
    url = f"sqlite:///{tmp_path / 'traps.db'}"
    engine = database.make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build_tiny(session, admin)
        point_pe1(session, admin)
        session.commit()
    env = {**os.environ, "TSLCD_DATABASE_URL": url, "TSLCD_VAR_DIR": str(tmp_path)}
    receiver = subprocess.Popen(
        [sys.executable, "-c", "import typer; from tslcd.telemetry.traps import traps_cmd; typer.run(traps_cmd)",
         "--port", "0", "--host", "127.0.0.1"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", receiver.stderr.readline()).group(1))
        send(tmp_path, port, "-v2c", "-c", "trap-community", trap=LINK_DOWN)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not link_down_alarms(engine):
            time.sleep(0.05)
        receiver.send_signal(signal.SIGTERM)
        receiver.communicate(timeout=10)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert receiver.returncode == 0
    assert link_down_alarms(engine) == ["pe1-sw1"]
    engine.dispose()


def link_down_alarms(engine) -> list[str]:
    with Session(engine) as session:
        return session.scalars(select(Link.slug).join(Alarm, Alarm.object_id == Link.id).where(
            Alarm.kind == AlarmKind.link_down, Alarm.object_type == "links")).all()
