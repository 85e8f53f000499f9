"""The daemon's worker processes and cycle loop, against the simulated agent and a fake store."""

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import build_tiny
from tests.telemetry.snmpsim.agent import SimAgent, SimDevice, SimInterface
from tests.telemetry.test_poller_storage import point
from tslcd.core import database
from tslcd.core.database import Base
from tslcd.telemetry.daemon import PollerPool, Shard, Targets, run_poller
from tslcd.telemetry.models import PollerCycle, Rate
from tslcd.telemetry.poller import CycleReport, DeviceSpec, PollOptions, RateBatch
from tslcd.telemetry.snmp import Credential

OPTIONS = PollOptions(timeout_s=0.3, retries=0, concurrency=8)


def sim_devices(count: int) -> list[SimDevice]:
    return [SimDevice(f"dev{n:03d}", interfaces={i: SimInterface() for i in (1, 2, 3)}) for n in range(1, count + 1)]


def specs_for(agent: SimAgent) -> list[DeviceSpec]:
    return [DeviceSpec(n, "127.0.0.1", agent.port, Credential("v2c", community=d.community),
                       tuple((i, n * 100 + i) for i in (1, 2, 3)), name=d.community)
            for n, d in enumerate(agent.devices, start=1)]


class FakeStore:
    def __init__(self, specs: list[DeviceSpec], stop: threading.Event | None = None,
                 unusable: list[tuple[str, str]] = ()) -> None:
        self.specs, self.stop, self.unusable = specs, stop, list(unusable)
        self.rows: list[tuple] = []
        self.cycles: list[dict] = []

    def targets(self, shard: Shard) -> Targets:
        return Targets([s for s in self.specs if s.device_id % shard.count == shard.index - 1], self.unusable)

    def write_samples(self, batch: RateBatch) -> None:
        self.rows += batch.rows()

    def finish_cycle(self, *, shard: Shard, started_at: datetime, started: float, report: CycleReport) -> None:
        self.cycles.append({"shard": str(shard), "devices": report.devices, "failures": report.failures,
                            "events": len(report.events)})
        if self.stop:
            self.stop.set()  # as SIGTERM does: the loop ends after this cycle


def test_two_workers_share_the_devices_and_keep_counters_across_cycles():
    pool = PollerPool(OPTIONS, workers=2)  # forked before the agent's thread starts
    try:
        with SimAgent(sim_devices(40)) as agent:
            specs = specs_for(agent)
            rows: list[tuple] = []
            report = pool.cycle(specs, lambda batch: rows.extend(batch.rows()))
            assert (report.devices, report.interfaces, report.failures) == (40, 120, 0)
            assert report.cpu_s > 0
            time.sleep(1.0)
            for device in agent.devices:
                device.advance(1.0, in_bps=800_000)
            rows.clear()
            report = pool.cycle(specs, lambda batch: rows.extend(batch.rows()))
            assert len(rows) == 120 and {r[3] for r in rows} == {800_000.0}  # agent interval: exactly 1 s
            assert {d.requests for d in agent.devices} == {2}
    finally:
        pool.close()


def test_a_dead_worker_is_replaced_and_its_devices_count_as_failures_once():
    pool = PollerPool(OPTIONS, workers=2)
    try:
        with SimAgent(sim_devices(10)) as agent:
            specs = specs_for(agent)
            pool.cycle(specs, lambda batch: None)
            victim = pool._workers[0][0]
            victim.kill()  # between cycles: replaced before the next one
            victim.join()
            assert pool.cycle(specs, lambda batch: None).failures == 0
            for device in agent.devices:
                device.mute = True  # the cycle now lasts a timeout, long enough to kill a worker during it
            threading.Timer(0.1, pool._workers[1][0].kill).start()
            report = pool.cycle(specs, lambda batch: None)
            assert report.failures == 10  # 5 timed out in worker 0, 5 lost with worker 1
            for device in agent.devices:
                device.mute = False
            report = pool.cycle(specs, lambda batch: None)
            assert (report.devices, report.failures) == (10, 0)
    finally:
        pool.close()


def test_run_poller_polls_its_shard_and_stops_after_the_cycle_when_told():
    stop = threading.Event()
    with SimAgent(sim_devices(6)) as agent:
        store = FakeStore(specs_for(agent), stop)
        started = time.monotonic()
        report = run_poller(store, shard=Shard(2, 3), interval_s=60, options=OPTIONS, workers=1, stop=stop)
    assert time.monotonic() - started < 10  # did not wait for the next cycle
    assert store.cycles == [{"shard": "2/3", "devices": 2, "failures": 0, "events": 2}]
    assert report.interfaces == 6 and sorted({r[0] // 100 for r in store.rows}) == [1, 4]


def test_a_failed_write_is_logged_and_the_next_cycle_starts_clean(caplog):
    class FlakyStore(FakeStore):
        failed = False

        def write_samples(self, batch: RateBatch) -> None:
            if not self.failed:
                self.failed = True
                raise ConnectionError("database went away")
            super().write_samples(batch)

    stop = threading.Event()
    with SimAgent(sim_devices(30)) as agent:
        store = FlakyStore(specs_for(agent), stop)
        run_poller(store, interval_s=0.2, workers=2, stop=stop,
                   options=PollOptions(timeout_s=0.3, retries=0, concurrency=8, batch_size=10))
    assert "poll 1/1: the cycle failed" in caplog.text and "database went away" in caplog.text
    assert store.cycles == [{"shard": "1/1", "devices": 30, "failures": 0, "events": 0}]
    assert len(store.rows) == 90  # the second cycle whole: nothing of the first one leaked into it


def test_the_cycle_line_names_the_failing_devices_and_why(caplog):
    """'8 failures: dev001 (…), …, dev005 (…) and 3 more'; devices that cannot be polled at all too."""
    stop = threading.Event()
    with SimAgent(sim_devices(10)) as agent:
        for device in agent.devices[:8]:
            device.mute = True
        store = FakeStore(specs_for(agent), stop, unusable=[
            ("pe-9", "management address unusable: '127.0.0.1:abc': the port 'abc' is not a number")])
        with caplog.at_level(logging.INFO, logger="tslcd.telemetry.poll"):
            # The answering devices get a second (the in-test agent shares this process's GIL on a loaded machine).
            run_poller(store, interval_s=60, options=PollOptions(timeout_s=1.0, retries=0, concurrency=8), workers=1,
                       stop=stop)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("poll 1/1: ")]
    reason = "no answer after 1 tries of 1 s"
    named = ", ".join(f"dev{n:03d} ({reason})" for n in range(1, 6))
    assert f"10 devices, 6 interfaces, 8 failures: {named} and 3 more; 1 unusable: pe-9 (management address " \
           "unusable: '127.0.0.1:abc': the port 'abc' is not a number), 0 backed off, " in line, line


def test_the_cycle_duration_covers_the_alarm_writes(session, admin, monkeypatch, caplog):
    """The cycle's line and its poller_cycles row count the alarm writes, not only the polling."""
    from tests.telemetry.test_poller_storage import point
    from tslcd.telemetry import service
    from tslcd.telemetry.daemon import ServiceStore

    build_tiny(session, admin)
    slow = service.device_statuses

    def slow_statuses(**kwargs):
        time.sleep(0.5)
        return slow(**kwargs)

    monkeypatch.setattr(service, "device_statuses", slow_statuses)

    @contextmanager
    def sessions():
        yield session
        session.flush()

    stop = threading.Event()
    with SimAgent([SimDevice("pe-1", interfaces={1: SimInterface()})]) as agent:
        point(session, admin, "pe-1", agent.port, "pe-1")

        class Once(ServiceStore):
            def finish_cycle(self, **kwargs) -> None:
                super().finish_cycle(**kwargs)
                stop.set()

        with caplog.at_level(logging.INFO, logger="tslcd.telemetry.poll"):
            run_poller(Once(sessions), interval_s=60, options=OPTIONS, workers=1, stop=stop)
    (cycle,) = session.scalars(select(PollerCycle)).all()
    assert cycle.duration_s >= 0.5
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("poll 1/1: ")]
    figures = re.search(r", ([\d.]+) s \(polling ([\d.]+) s, alarms ([\d.]+) s", line)
    total, polling, alarms = map(float, figures.groups())
    assert alarms >= 0.5 and total >= polling + alarms - 0.01 and total >= cycle.duration_s - 0.01  # 2 decimals


@pytest.mark.parametrize("text, expected", [("1/1", Shard(1, 1)), ("3/4", Shard(3, 4)), ("1", Shard(1, 1))])
def test_shard_parse(text, expected):
    assert Shard.parse(text) == expected


@pytest.mark.parametrize("text", ["0/2", "3/2", "x/2"])
def test_shard_parse_refuses(text):
    with pytest.raises(ValueError):
        Shard.parse(text)


def test_poll_command_logs_each_cycle_and_stops_cleanly_on_sigterm(tmp_path, admin):
    """`tslcd poll` as a process on a database of its own: a cycle logged, then SIGTERM, exit 0, rows kept."""
    url = f"sqlite:///{tmp_path / 'poll.db'}"
    engine = database.make_engine(url)
    Base.metadata.create_all(engine)
    with SimAgent([SimDevice("secret-community", interfaces={1: SimInterface()})]) as agent:
        with Session(engine) as session:
            build_tiny(session, admin)
            point(session, admin, "pe-1", agent.port, "secret-community")
            session.commit()
        env = {**os.environ, "TSLCD_DATABASE_URL": url, "TSLCD_VAR_DIR": str(tmp_path)}
        poller = subprocess.Popen(
            [sys.executable, "-c", "import typer; from tslcd.telemetry.daemon import poll_cmd; typer.run(poll_cmd)",
             "--interval", "10", "--workers", "1", "--timeout", "2", "--retries", "1"],
            env=env, stderr=subprocess.PIPE, text=True)
        try:
            first = poller.stderr.readline()
            poller.send_signal(signal.SIGTERM)
            rest = poller.communicate(timeout=10)[1]
        finally:
            if poller.poll() is None:
                poller.kill()
                poller.wait()
    assert "poll 1/1: 1 devices, 5 interfaces, 0 failures" in first, first + rest
    assert poller.returncode == 0, rest
    assert "secret-community" not in first + rest
    with Session(engine) as session:
        assert session.query(Rate).count() == 5 and session.query(PollerCycle).count() == 1
    engine.dispose()
