"""The `tslcd poll` daemon: devices split among worker processes, one write path into storage, one log line a cycle.

Each worker process runs its own event loop and Poller (so both cores work, and a device's counters stay with
the one worker that reads them: device id // shard count % workers). Workers send samples back as compact
arrays; the parent alone writes, in short transactions, so SQLite sees a single writer and PostgreSQL gets
batched inserts from every shard. The devices' alarms of a whole cycle are written in one batch at its end, and
the cycle's duration (in its log line and in poller_cycles) covers everything: polling, rates and alarms.
"""

import asyncio
import contextlib
import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing.connection import Connection, wait
from typing import NamedTuple, Protocol

import typer
from sqlalchemy.orm import Session

from tslcd.registry.service import snmp_secret
from tslcd.telemetry import service
from tslcd.telemetry.inventory import registry_state
from tslcd.telemetry.poller import CycleReport, DeviceSpec, PollOptions, Poller, RateBatch
from tslcd.telemetry.schemas import DeviceStatus, PollTarget, RateSample
from tslcd.telemetry.snmp import Credential, parse_address

log = logging.getLogger("tslcd.telemetry.poll")
NAMED_FAILURES = 5  # failing devices named in a cycle's log line; the rest are counted


@dataclass(frozen=True, slots=True)
class Shard:
    """Poller I of N polls the devices whose id % N == I - 1."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        index, _, count = text.partition("/")
        shard = cls(int(index), int(count or 1))
        if not 1 <= shard.index <= shard.count:
            raise ValueError(f"shard {text!r}: expected I/N with 1 ≤ I ≤ N")
        return shard

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class Targets(NamedTuple):
    """The devices to poll, and those that cannot be polled at all: (name, why)."""

    specs: list[DeviceSpec]
    unusable: Sequence[tuple[str, str]] = ()


class Store(Protocol):
    """Where targets come from and results go; the storage service in production, a fake in tests."""

    def targets(self, shard: Shard) -> Targets: ...

    def write_samples(self, batch: RateBatch) -> None: ...

    def finish_cycle(self, *, shard: Shard, started_at: datetime, started: float, report: CycleReport) -> None:
        """Write the cycle's device alarms and its record; `started` is the cycle's start on time.monotonic(),
        so that the recorded duration covers the alarm writes too."""


class ServiceStore:
    """The storage service of tslcd.telemetry, one short transaction per batch (SQLite's lock is held briefly).

    Poller 1 of N also keeps the store tidy between cycles: roll-ups every 5 minutes, retention every hour, so a
    deployment needs no separate scheduler (the other shards leave it to poller 1, so two never race).
    """

    ROLLUP_EVERY_S, PRUNE_EVERY_S = 300.0, 3600.0

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]]) -> None:
        self.sessions = sessions
        self._last_rollup = self._last_prune = float("-inf")
        self._targets: tuple[object, Targets] | None = None  # (registry state, targets) of the last cycle

    def targets(self, shard: Shard) -> Targets:
        """The shard's devices with their credentials; read again only when the registry changed (every change
        appends to the audit log, whose newest record names the registry's state), which saves a national
        cycle more than a second of queries and decryption."""
        with self.sessions() as session:
            state = (shard, registry_state(session))
            if self._targets is not None and self._targets[0] == state:
                return self._targets[1]
            targets = service.poll_targets(session=session, shard_index=shard.index - 1, shard_count=shard.count)
            found = device_specs(session, targets)
        self._targets = (state, found)
        return found

    def write_samples(self, batch: RateBatch) -> None:
        stamps = {ts: datetime.fromtimestamp(ts, timezone.utc) for ts in set(batch.ts)}
        # Positional: a third of the cost of keywords, at tens of thousands of samples a second.
        samples = [RateSample(interface_id, stamps[ts], interval_s, in_bps, out_bps, oper_up, speed_bps, blind_bps,
                              blind_s)
                   for (interface_id, ts, interval_s, in_bps, out_bps, oper_up, speed_bps), (blind_bps, blind_s)
                   in zip(batch.rows(), batch.blind())]
        with self.sessions() as session:
            service.ingest(session=session, samples=samples, source="poll")

    def finish_cycle(self, *, shard: Shard, started_at: datetime, started: float, report: CycleReport) -> None:
        begun = time.monotonic()
        with self.sessions() as session:
            service.device_statuses(session=session, statuses=[
                DeviceStatus(e.device_id, e.reachable, datetime.fromtimestamp(e.ts, timezone.utc), e.reason)
                for e in report.events])
            service.record_cycle(session=session, shard=str(shard), started_at=started_at,
                                 duration_s=time.monotonic() - started, devices=report.devices,
                                 interfaces=report.interfaces, failures=report.failures)
        report.alarms_s = time.monotonic() - begun
        if shard.index == 1:
            self._housekeep()

    def _housekeep(self) -> None:
        now = time.monotonic()
        if now - self._last_rollup >= self.ROLLUP_EVERY_S:
            with self.sessions() as session:
                service.rollup(session=session)
            self._last_rollup = now
        if now - self._last_prune >= self.PRUNE_EVERY_S:
            with self.sessions() as session:
                service.prune(session=session)
            self._last_prune = now


def device_specs(session: Session, targets: list[PollTarget]) -> Targets:
    """Join poll targets with their credentials in clear; a device with a broken credential or address is not
    polled but named among the unusable, with the reason (never a secret)."""
    credentials: dict[int, Credential | str] = {}
    specs, unusable = [], []
    for target in targets:
        if target.credential_id not in credentials:
            try:
                credentials[target.credential_id] = Credential.from_secret(
                    snmp_secret(session=session, credential_id=target.credential_id))
            except (ValueError, KeyError) as exc:  # the message names the field, never its value
                credentials[target.credential_id] = f"SNMP credential {target.credential_id} unusable: {exc}"
        cred = credentials[target.credential_id]
        try:
            host, port = parse_address(target.mgmt_address)
        except ValueError as exc:
            unusable.append((target.name, f"management address unusable: {exc}"))
            continue
        if isinstance(cred, str):
            unusable.append((target.name, cred))
            continue
        interfaces = tuple(sorted(target.interfaces.items()))
        specs.append(DeviceSpec(target.device_id, host, port, cred, interfaces,
                                tuple(target.speeds.get(if_index, 0) for if_index, _ in interfaces), target.name))
    return Targets(specs, unusable)


def _worker(conn: Connection, options: PollOptions) -> None:
    """A worker process: wait for an order, poll, stream batches back, report; new targets come only on change."""
    # The parent decides when to stop: a signal to the whole process group must not kill a cycle half-sent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per device, kept across cycles
    except (ValueError, OSError):
        log.warning("poll worker: cannot raise the open-file limit; devices beyond it will fail")
    loop = asyncio.new_event_loop()
    poller = Poller(options)
    while True:
        try:
            order, specs = conn.recv()
        except EOFError:
            break
        if order == "stop":
            break
        if specs is not None:
            poller.set_targets(specs)
        cpu = time.process_time()
        report = loop.run_until_complete(poller.poll_cycle(lambda batch: conn.send(batch)))
        report.cpu_s = time.process_time() - cpu
        conn.send(report)
    loop.close()


class PollerPool:
    """Worker processes, each polling its share of the devices with its own state across cycles."""

    def __init__(self, options: PollOptions, *, workers: int, shard_count: int = 1) -> None:
        self.options = options
        self.shard_count = shard_count
        # Workers fork from a clean server process: no database handle or thread of ours is ever inherited.
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["tslcd.telemetry.daemon"])
        self._workers: list[tuple[multiprocessing.Process, Connection]] = []
        self._sent: list[list[DeviceSpec] | None] = []
        for _ in range(workers or os.cpu_count() or 1):
            self._workers.append(self._start())
            self._sent.append(None)

    def _start(self) -> tuple[multiprocessing.Process, Connection]:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker, args=(child, self.options), daemon=True,
                                        name="tslcd-poll-worker")
        process.start()
        child.close()
        return process, parent

    def cycle(self, specs: list[DeviceSpec], on_batch: Callable[[RateBatch], None]) -> CycleReport:
        """Poll every device once across the workers; batches go to `on_batch` as they arrive."""
        shares: list[list[DeviceSpec]] = [[] for _ in self._workers]
        for spec in specs:
            shares[spec.device_id // self.shard_count % len(shares)].append(spec)
        pending: dict[Connection, int] = {}
        for i, share in enumerate(shares):
            pending[self._order(i, share)] = i
        report = CycleReport()
        failed: Exception | None = None
        while pending:
            for conn in wait(list(pending)):
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    i = pending.pop(conn)
                    log.error("poll worker %d died during the cycle; restarting it (its devices start afresh)", i)
                    report.failures += len(shares[i])
                    self._replace(i)
                    continue
                if isinstance(message, RateBatch):
                    try:
                        if failed is None:
                            on_batch(message)
                    except Exception as exc:  # drain the workers all the same, or the next cycle reads this one's
                        failed = exc
                else:
                    report.merge(message)
                    pending.pop(conn)
        if failed is not None:
            raise failed
        return report

    def _order(self, i: int, share: list[DeviceSpec]) -> Connection:
        """Start worker i's cycle, sending its devices only when they changed; a dead worker is replaced first."""
        if not self._workers[i][0].is_alive():
            log.error("poll worker %d died between cycles; restarting it (its devices start afresh)", i)
            self._replace(i)
        conn = self._workers[i][1]
        conn.send(("cycle", None if share == self._sent[i] else share))
        self._sent[i] = share
        return conn

    def _replace(self, i: int) -> None:
        process, conn = self._workers[i]
        conn.close()
        process.join()
        self._workers[i], self._sent[i] = self._start(), None

    def close(self) -> None:
        for _, conn in self._workers:
            with contextlib.suppress(OSError):  # a worker that died has closed its end
                conn.send(("stop", None))
            conn.close()
        for process, _ in self._workers:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
        self._workers = []


def run_poller(store: Store, *, shard: Shard = Shard(), interval_s: float = 60.0, options: PollOptions = PollOptions(),
               workers: int = 0, once: bool = False, stop: threading.Event | None = None) -> CycleReport:
    """Poll in cycles `interval_s` apart until `stop` is set (after the cycle in progress), or once; the last report."""
    stop = stop or threading.Event()
    pool = PollerPool(options, workers=workers, shard_count=shard.count)
    report = CycleReport()
    try:
        while True:
            started = time.monotonic()
            try:
                report = run_cycle(store, pool, shard)
            except Exception:  # the database went away, most likely: the next cycle tries again
                if once:
                    raise
                log.exception("poll %s: the cycle failed", shard)
            if once:
                return report
            duration = time.monotonic() - started
            if duration > interval_s:
                log.warning("poll %s: the cycle took %.1f s, longer than the %.0f s interval", shard, duration,
                            interval_s)
            if stop.wait(max(0.0, started + interval_s - time.monotonic())):
                return report
    finally:
        pool.close()


def run_cycle(store: Store, pool: PollerPool, shard: Shard) -> CycleReport:
    """One cycle: targets, polling (samples written as they come), the devices' alarms and the cycle's record,
    then its log line."""
    started, started_at = time.monotonic(), datetime.now(timezone.utc)
    targets = store.targets(shard)
    report = pool.cycle(targets.specs, store.write_samples)
    report.unusable = list(targets.unusable)
    report.polling_s = time.monotonic() - started
    store.finish_cycle(shard=shard, started_at=started_at, started=started, report=report)
    duration = time.monotonic() - started
    names = {spec.device_id: spec.name or f"device {spec.device_id}" for spec in targets.specs}
    log.info("poll %s: %d devices, %d interfaces, %s, %d backed off, %.2f s (polling %.2f s, alarms %.2f s; "
             "worker cpu %.2f s)", shard, report.devices, report.interfaces, describe_failures(report, names),
             report.backed_off, duration, report.polling_s, report.alarms_s, report.cpu_s)
    return report


def describe_failures(report: CycleReport, names: dict[int, str], named: int = NAMED_FAILURES) -> str:
    """'3 failures: pe-1 (timeout), …' — the first few failing devices with the reason, then how many more;
    devices that cannot be polled at all (unusable address or credential) likewise."""
    def listing(count: int, noun: str, items: list[str]) -> str:
        if not count:
            return f"0 {noun}"
        shown = ", ".join(items[:named])
        more = f" and {count - min(len(items), named)} more" if count > min(len(items), named) else ""
        return f"{count} {noun}: {shown}{more}"

    failed = [f"{names.get(e.device_id, f'device {e.device_id}')} ({e.reason})"
              for e in report.events if not e.reachable]
    text = listing(report.failures, "failures", failed)
    if report.unusable:
        text += "; " + listing(len(report.unusable), "unusable", [f"{n} ({why})" for n, why in report.unusable])
    return text


def poll_cmd(interval: float = typer.Option(60.0, min=10.0, help="seconds from one cycle's start to the next"),
             shard: str = typer.Option("1/1", help="I/N: this poller takes the devices whose id % N == I-1"),
             once: bool = typer.Option(False, "--once", help="run one cycle and exit"),
             workers: int = typer.Option(0, min=0, help="worker processes (0: one per CPU)"),
             timeout: float = typer.Option(2.0, min=0.1, help="seconds to wait for each answer"),
             retries: int = typer.Option(1, min=0, help="resends before a device counts as unreachable"),
             concurrency: int = typer.Option(256, min=1, help="devices in flight per worker"),
             interfaces_per_request: int = typer.Option(48, min=1, help="interfaces per GET (12 fits a 1500 B MTU)"),
             ) -> None:
    """Poll interface counters over SNMP and store rates; SIGTERM ends it after the cycle in progress."""
    from tslcd.core.database import session_scope

    try:
        parsed = Shard.parse(shard)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    options = PollOptions(timeout_s=timeout, retries=retries, concurrency=concurrency,
                          interfaces_per_request=interfaces_per_request, stale_after_s=2.5 * interval,
                          interval_s=interval)
    run_poller(ServiceStore(session_scope), shard=parsed, interval_s=interval, options=options, workers=workers,
               once=once, stop=stop)
