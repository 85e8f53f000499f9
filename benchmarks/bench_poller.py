"""The poller end to end against Debian's snmpd serving a 48-port device, beside net-snmp and snmp_exporter;
then a national-size cycle with half the devices dead.

    sudo .venv/bin/python benchmarks/bench_poller.py [--devices 1000] [--cycles 5] [--repeats 3] [--sink sqlite]
        [--national-cycles 6] [--interval 10] [--dead refused|silent] [--only throughput|national]

Set up as in ../shared/peers/snmp/ (found from the project root): its netns-setup.sh creates the namespace
`snmpbench` (lo, 23 veth pairs and a bridge: 48 interfaces), its snmpd.conf serves them on udp:127.0.0.1:11161;
the agent and every poller run inside the namespace (`ip netns exec snmpbench`, which needs root), which is
deleted afterwards with every process started here. Many devices are simulated by polling that one agent as
different targets, as the peers did.

Throughput, measured in the same run, medians of --repeats:
- ours: as in production, the devices registered in a fresh SQLite registry (--devices of 48 interfaces with
  their ifIndex and speed, a 10 Gbit/s link per pair of ports, a v2c credential): `tslcd poll`'s own cycle
  (`daemon.run_cycle`: targets from the registry, `PollerPool` with --workers processes, one GET of 193 varbinds
  per device, rates computed, every sample written and its alarms evaluated through the storage service, the
  devices' alarms and the cycle's record written at its end). `ours_mtu` asks 12 interfaces per GET (answers
  under 1500 bytes); `ours_null_sink` polls the same registered devices and computes rates but drops them (what
  the write path costs). Poller CPU = worker processes + the writer process.
- snmpbulkget: net-snmp's CLI, one GETBULK (non-repeaters 1, max-repetitions 48) per device, 4 in parallel.
- snmp_exporter: Debian's prometheus-snmp-exporter with the peers' gen_snmp_yml.py's snmp.yml, scraped by wrk
  with --scrapes concurrent connections (the binary is unpacked from the .deb with apt-get download, so no
  service is installed or started; wrk is apt-get installed when missing).
- gufo_get_many / gufo_get_and_getbulk: the request strategies gufo_snmp allows, bare, in one process (no rates,
  no writes): one GET of 193 varbinds against a GET plus four GETBULK column walks per device.
One interface-poll = in and out octets, ifOperStatus and speed of one interface. Figures under
`peers_readme` are read from ../shared/peers/snmp/README.md (measured by the peers elsewhere), not in this run.

National cycle: the national demo (`tslcd demo load`: 14,583 devices, 31,376 interfaces, 15,688 links) loaded
through the import path into a fresh SQLite registry; odd device ids point at the agent, even ones are dead
(--dead refused: nothing listens on their port, the agent's host answers "port unreachable"; silent: a socket
that never answers, so each try waits for the timeout). `tslcd poll`'s loop (`run_poller`, --interval, the
daemon's defaults otherwise) runs --national-cycles cycles; each cycle's whole duration (polling, rates, the
devices' alarms, its record) is reported beside the interval, with the first cycle's unreachable alarms also
written one statement per device (the old way) and in one batch, on the same database, rolled back.
Prints one JSON line.
"""

import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = (ROOT / ".." / "shared" / "peers" / "snmp").resolve()
NETNS = "snmpbench"
AGENT = "127.0.0.1:11161"
INTERFACES = 48
EXPORTER_ADDRESS = "127.0.0.1:9116"
DEAD_PORT = 11162  # nothing listens here (refused), or a socket that never answers (silent)
NATIONAL_DEVICES = 14_583
BULK_OIDS = ["1.3.6.1.2.1.1.3", "1.3.6.1.2.1.2.2.1.8", "1.3.6.1.2.1.31.1.1.1.6", "1.3.6.1.2.1.31.1.1.1.10",
             "1.3.6.1.2.1.31.1.1.1.15"]


def in_netns(*cmd: str) -> list[str]:
    return ["ip", "netns", "exec", NETNS, *cmd]


def process_cpu_s(pid: int) -> float:
    """utime + stime of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Lab:
    """The namespace, the agent and anything else started for the run; torn down by PID, whatever happens."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[subprocess.Popen] = []
        self.netns_created = False

    def __enter__(self) -> "Lab":
        if NETNS in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split():
            sys.exit(f"network namespace {NETNS} exists already: delete it first (ip netns delete {NETNS})")
        subprocess.run(["bash", str(PEERS / "netns-setup.sh")], check=True, capture_output=True)
        self.netns_created = True
        self.agent = self.start(in_netns("snmpd", "-f", "-C", "-c", str(PEERS / "snmpd.conf"), "-I", "-ucd_snmp",
                                         "-Lf", str(self.workdir / "snmpd.log")), env={**os.environ, "MIBS": ":"})
        for _ in range(100):
            probe = subprocess.run(in_netns("snmpget", "-v2c", "-c", "public", "-t", "1", "-r", "0", AGENT,
                                            "1.3.6.1.2.1.1.3.0"), capture_output=True, env={**os.environ, "MIBS": ":"})
            if probe.returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("snmpd did not answer in the namespace")

    def start(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __exit__(self, *exc) -> None:
        for process in reversed(self.processes):
            self.stop(process)
        if self.netns_created:
            subprocess.run(["ip", "netns", "delete", NETNS], check=False)


def measure_ours(args, interfaces_per_request: int, sink_kind: str) -> dict:
    """A child process inside the namespace runs the pool (the pool's workers inherit the namespace)."""
    cmd = in_netns(sys.executable, __file__, "--inside", "--devices", str(args.devices), "--cycles", str(args.cycles),
                   "--workers", str(args.workers), "--concurrency", str(args.concurrency), "--sink", sink_kind,
                   "--interfaces-per-request", str(interfaces_per_request))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure_strategies(args) -> dict:
    cmd = in_netns(sys.executable, __file__, "--inside-strategies", "--devices", str(args.devices))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def inside_strategies(args) -> None:
    """gufo_snmp has no GETBULK with non-repeaters: its alternatives, bare (one process, 16 devices in flight).

    get_many: one GET of sysUpTime.0 and the 4 objects of each of the 48 ifIndexes (what the poller does);
    get_and_getbulk: GET sysUpTime.0, then a GETBULK walk of each column (max-repetitions 49: one PDU each).
    """
    import asyncio

    from gufo.snmp.aio import SnmpSession

    from tslcd.telemetry.poller import SYS_UPTIME, WIDE

    host, port = AGENT.split(":")
    oids = [SYS_UPTIME] + [oid for i in range(1, INTERFACES + 1) for oid in WIDE.oids(i)]
    columns = [WIDE.in_octets, WIDE.out_octets, "1.3.6.1.2.1.2.2.1.8", WIDE.speed]

    async def get_many(session) -> int:
        return len(await session.get_many(oids))

    async def get_and_getbulk(session) -> int:
        found = 1 if await session.get(SYS_UPTIME) is not None else 0
        for column in columns:
            found += len([v async for v in session.getbulk(column, max_repetitions=INTERFACES + 1)])
        return found

    async def run(poll) -> dict:
        sessions = [SnmpSession(host, int(port), community="public", timeout=5) for _ in range(16)]
        assert await poll(sessions[0]) == 1 + 4 * INTERFACES
        todo = iter(range(args.devices))

        async def worker(session) -> None:
            for _ in todo:
                await poll(session)

        cpu, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(s) for s in sessions))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        ifpolls = args.devices * INTERFACES
        return {"ifpolls_per_s": ifpolls / elapsed, "cpu_us_per_ifpoll": cpu / ifpolls * 1e6}

    print(json.dumps({"get_many": asyncio.run(run(get_many)),
                      "get_and_getbulk": asyncio.run(run(get_and_getbulk))}))


def measure_snmpbulkget(args) -> dict:
    per_process = args.bulk_invocations // 4
    loop = (f'i=0; while [ $i -lt {per_process} ]; do snmpbulkget -v2c -c public -Cn1 -Cr{INTERFACES} '
            f'-t 5 -r 1 {AGENT} {" ".join(BULK_OIDS)} >/dev/null || exit 1; i=$((i+1)); done')
    before = os.times()
    start = time.perf_counter()
    procs = [subprocess.Popen(in_netns("sh", "-c", loop), env={**os.environ, "MIBS": ":"}) for _ in range(4)]
    if any(p.wait() for p in procs):
        raise RuntimeError("snmpbulkget failed")
    elapsed = time.perf_counter() - start
    after = os.times()
    ifpolls = 4 * per_process * INTERFACES
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {"ifpolls_per_s": ifpolls / elapsed, "cpu_us_per_ifpoll": cpu / ifpolls * 1e6}


def ensure_wrk() -> None:
    if not shutil.which("wrk"):  # a plain tool, no service: installed as the peers' set-up says
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def exporter_binary(workdir: Path) -> str:
    found = shutil.which("prometheus-snmp-exporter")
    if found:
        return found
    subprocess.run(["apt-get", "download", "-q", "prometheus-snmp-exporter"], cwd=workdir, check=True,
                   capture_output=True)
    deb = glob.glob(str(workdir / "prometheus-snmp-exporter_*.deb"))[0]
    subprocess.run(["dpkg-deb", "-x", deb, str(workdir / "exporter")], check=True)
    return str(workdir / "exporter/usr/bin/prometheus-snmp-exporter")


def measure_exporter(lab: Lab, args, binary: str, max_repetitions: int) -> dict:
    config = lab.workdir / f"snmp-{max_repetitions}.yml"
    subprocess.run([sys.executable, str(PEERS / "gen_snmp_yml.py"), "1", str(max_repetitions), str(config)],
                   check=True)
    exporter = lab.start(in_netns(binary, f"--config.file={config}", f"--web.listen-address={EXPORTER_ADDRESS}"))
    url = f"http://{EXPORTER_ADDRESS}/snmp?target={AGENT}&module=if_mib"
    try:
        for _ in range(100):
            if subprocess.run(in_netns("wrk", "-t1", "-c1", "-d1s", url), capture_output=True,
                              text=True).returncode == 0:
                break
            time.sleep(0.1)
        cpu = process_cpu_s(exporter.pid)
        out = subprocess.run(in_netns("wrk", "-t2", f"-c{args.scrapes}", f"-d{args.exporter_seconds}s", url),
                             check=True, capture_output=True, text=True).stdout
        cpu = process_cpu_s(exporter.pid) - cpu
    finally:
        lab.stop(exporter)
    if "Non-2xx" in out:
        raise RuntimeError(f"snmp_exporter answered errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    ifpolls = rps * INTERFACES
    return {"ifpolls_per_s": ifpolls, "cpu_us_per_ifpoll": cpu / (ifpolls * args.exporter_seconds) * 1e6}


def fresh_registry(directory: Path) -> str:
    """A fresh SQLite database with every table, the process's default from now on."""
    os.environ["TSLCD_VAR_DIR"] = str(directory)  # keys and checkpoints of this throwaway registry
    from tslcd.core import database
    from tslcd.core.database import Base
    import tslcd.registry.models  # noqa: F401  (tables)
    import tslcd.security.models  # noqa: F401
    import tslcd.telemetry.models  # noqa: F401

    url = f"sqlite:///{directory / 'bench.db'}"
    Base.metadata.create_all(database.configure(url))
    return url


def register_devices(devices: int) -> None:
    """`devices` devices of 48 ports at the lab's agent, registered as the poller finds them in production:
    interfaces with their ifIndex and speed, a 10 Gbit/s link joining port i of device 2k-1 to port i of device
    2k, a v2c credential (sealed as the registry seals it)."""
    from sqlalchemy import insert

    import tslcd.registry.models as rm
    from tslcd.core.database import session_scope
    from tslcd.security.secrets import seal

    with session_scope() as session:
        session.execute(insert(rm.AdminUnit), [{"id": 1, "code": "01", "kind": rm.UnitKind.province,
                                                "name": "Hà Nội"}])
        session.execute(insert(rm.Operator), [{"id": 1, "slug": "cbdtw", "name": "CBĐTW"}])
        session.execute(insert(rm.Site), [{"id": 1, "slug": "pc-01", "name": "Trung tâm tỉnh", "unit_id": 1,
                                           "province_id": 1, "kind": rm.SiteKind.provincial_centre}])
        session.execute(insert(rm.SnmpCredential), [{"id": 1, "name": "bench-v2c", "version": rm.SnmpVersion.v2c,
                                                     "secret": seal({"community": "public"})}])
        session.execute(insert(rm.Device), [
            {"id": d, "name": f"sw-{d}", "site_id": 1, "role": rm.DeviceRole.access_switch, "tier": rm.Tier.access_2,
             "province_id": 1, "operator_id": 1, "mgmt_address": AGENT, "snmp_credential_id": 1}
            for d in range(1, devices + 1)])
        session.execute(insert(rm.Interface), [
            {"id": (d - 1) * INTERFACES + i, "device_id": d, "name": f"xe-0/0/{i}", "if_index": i, "speed": 10**10}
            for d in range(1, devices + 1) for i in range(1, INTERFACES + 1)])
        session.execute(insert(rm.Link), [
            {"id": (d // 2) * INTERFACES + i, "slug": f"link-{d}-{i}", "a_interface_id": (d - 1) * INTERFACES + i,
             "b_interface_id": d * INTERFACES + i, "a_device_id": d, "b_device_id": d + 1, "capacity": 10**10,
             "tier": rm.Tier.access_2, "province_id": 1, "operator_id": 1}
            for d in range(1, devices, 2) for i in range(1, INTERFACES + 1)])


class NullStore:
    """The registered targets, with samples and the cycle's end dropped: what polling costs without writes."""

    def __init__(self, store) -> None:
        self.store = store

    def targets(self, shard):
        return self.store.targets(shard)

    def write_samples(self, batch) -> None:
        pass

    def finish_cycle(self, **kwargs) -> None:
        pass


def inside(args) -> None:
    """Run in the namespace: a warm-up cycle (sessions, baselines), then the measured cycles back to back, each as
    `tslcd poll` runs it (targets read from the registry, samples and alarms written)."""
    from tslcd.core.database import session_scope
    from tslcd.telemetry.daemon import PollerPool, ServiceStore, Shard, run_cycle
    from tslcd.telemetry.poller import PollOptions

    directory = tempfile.TemporaryDirectory(prefix="tslcd-bench-")
    fresh_registry(Path(directory.name))
    register_devices(args.devices)
    store = ServiceStore(session_scope)
    if args.sink == "null":
        store = NullStore(store)
    counted = []
    write = store.write_samples

    def count(batch) -> None:
        counted.append(sum(1 for v in batch.in_bps if v == v))  # NaN is a gap
        write(batch)

    store.write_samples = count
    pool = PollerPool(PollOptions(timeout_s=5, concurrency=args.concurrency,
                                  interfaces_per_request=args.interfaces_per_request), workers=args.workers)
    try:
        run_cycle(store, pool, Shard())
        counted.clear()
        cpu, start = time.process_time(), time.perf_counter()
        ifpolls = worker_cpu = failures = 0
        for _ in range(args.cycles):
            report = run_cycle(store, pool, Shard())
            ifpolls += report.interfaces
            worker_cpu += report.cpu_s
            failures += report.failures
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu + worker_cpu
        rates = sum(counted)
        with session_scope(write=False) as session:
            from sqlalchemy import func, select

            from tslcd.telemetry.models import Alarm
            alarms = dict(session.execute(select(Alarm.kind, func.count()).group_by(Alarm.kind)).all())
    finally:
        pool.close()
        directory.cleanup()
    print(json.dumps({"ifpolls_per_s": ifpolls / elapsed, "cpu_us_per_ifpoll": cpu / ifpolls * 1e6,
                      "failures": failures, "rates": rates, "ifpolls": ifpolls,
                      "alarms": {k.value: n for k, n in alarms.items()}}))


# National cycle
def measure_national(args) -> dict:
    cmd = in_netns(sys.executable, __file__, "--inside-national", "--national-cycles", str(args.national_cycles),
                   "--interval", str(args.interval), "--workers", str(args.workers), "--dead", args.dead,
                   *(["--national-concurrency", str(args.national_concurrency)] if args.national_concurrency else []))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def inside_national(args) -> None:
    """The national demo, half of it dead, polled by `tslcd poll`'s loop for a few cycles."""
    import logging
    import threading

    from sqlalchemy import func, select, text

    import tslcd.registry.models as rm
    from tslcd.core.database import session_scope
    from tslcd.registry import demo
    from tslcd.security.actor import SYSTEM
    from tslcd.telemetry import alarms, service
    from tslcd.telemetry.daemon import ServiceStore, Shard, run_poller
    from tslcd.telemetry.inventory import current_inventory
    from tslcd.telemetry.models import AlarmKind, PollerCycle
    from tslcd.telemetry.poller import PollOptions
    from tslcd.telemetry.schemas import DeviceStatus

    directory = tempfile.TemporaryDirectory(prefix="tslcd-bench-national-")
    fresh_registry(Path(directory.name))
    began = time.perf_counter()
    with session_scope() as session:
        demo.load_demo(session=session, actor=SYSTEM)
    load_s = time.perf_counter() - began
    with session_scope() as session:
        # Odd ids at the agent, even ids dead; straight SQL (the import path would audit 14,583 edits).
        session.execute(text("UPDATE devices SET mgmt_address = CASE WHEN id % 2 = 1 THEN :live ELSE :dead END "
                             "WHERE snmp_credential_id IS NOT NULL"),
                        {"live": AGENT, "dead": f"127.0.0.1:{DEAD_PORT}"})
        polled = session.scalar(select(func.count()).select_from(rm.Device).where(
            rm.Device.snmp_credential_id.is_not(None)))
        interfaces = session.scalar(select(func.count()).select_from(rm.Interface).where(
            rm.Interface.if_index.is_not(None)))
        links = session.scalar(select(func.count()).select_from(rm.Link))

    stop, cycles, first_events = threading.Event(), [], []

    class Measured(ServiceStore):
        targets_s = 0.0

        def targets(self, shard):
            began = time.monotonic()
            try:
                return super().targets(shard)
            finally:
                self.targets_s = time.monotonic() - began

        def finish_cycle(self, *, shard, started_at, started, report) -> None:
            super().finish_cycle(shard=shard, started_at=started_at, started=started, report=report)
            cycles.append({"devices": report.devices, "interfaces": report.interfaces, "failures": report.failures,
                           "backed_off": report.backed_off, "targets_s": round(self.targets_s, 2),
                           "polling_s": round(report.polling_s, 2), "worker_cpu_s": round(report.cpu_s, 2),
                           "alarms_s": round(report.alarms_s, 2),
                           "whole_s": round(time.monotonic() - started, 2)})
            if not first_events:
                first_events.extend(e for e in report.events if not e.reachable)
            if len(cycles) == args.national_cycles:
                stop.set()

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = PollOptions(interval_s=args.interval, stale_after_s=2.5 * args.interval,
                          **({"concurrency": args.national_concurrency} if args.national_concurrency else {}))
    run_poller(Measured(session_scope), shard=Shard(), interval_s=args.interval, options=options,
               workers=args.workers, stop=stop)
    with session_scope(write=False) as session:
        recorded = [round(d, 2) for d in session.scalars(select(PollerCycle.duration_s).order_by(PollerCycle.id))]
        unreachable = session.scalar(select(func.count()).select_from(alarms.Alarm).where(
            alarms.Alarm.kind == AlarmKind.device_unreachable, alarms.Alarm.cleared_at.is_(None)))
    # The first cycle's unreachable alarms again, on the same database (rolled back): one statement per device
    # as finish_cycle did before, then the batch it does now.
    statuses = [DeviceStatus(e.device_id, False, datetime_of(e.ts), e.reason) for e in first_events]
    with session_scope(write=False) as session:
        began = time.perf_counter()
        inventory = current_inventory(session)
        for status in statuses:
            alarms.apply(session, alarms.device_changes(inventory, [status], set()), "poll")
        per_statement = time.perf_counter() - began
        session.rollback()
    with session_scope(write=False) as session:
        began = time.perf_counter()
        service.device_statuses(session=session, statuses=statuses)
        batched = time.perf_counter() - began
        session.rollback()
    directory.cleanup()
    whole = [c["whole_s"] for c in cycles]
    print(json.dumps({
        "registry": {"devices_polled": polled, "interfaces_with_ifindex": interfaces, "links": links,
                     "load_through_import_s": round(load_s, 1)},
        "interval_s": args.interval, "dead": args.dead, "dead_devices": polled // 2,
        "cycles": cycles, "poller_cycles_duration_s": recorded, "active_unreachable_alarms": unreachable,
        "max_cycle_s": max(whole), "inside_interval": max(whole) <= args.interval,
        "first_cycle_unreachable_writes": {"alarms": len(statuses), "one_statement_each_s": round(per_statement, 2),
                                           "one_batch_s": round(batched, 2)}}))


def datetime_of(epoch: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc)


def peers_readme() -> dict:
    """The peers' table (../shared/peers/snmp/README.md): measured by them, elsewhere, not in this run."""
    rows = {}
    for line in (PEERS / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].replace(",", "").isdigit():
            rows[cells[0]] = {"ifpolls_per_s": int(cells[1].replace(",", "")), "ratio": cells[2],
                              "cpu_per_ifpoll": cells[3]}
    return rows


BLACKHOLE = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
             f"s.bind(('127.0.0.1', {DEAD_PORT}))\nwhile True: s.recv(65536)")


def throughput(lab: Lab, args) -> dict:
    binary = exporter_binary(lab.workdir)
    ensure_wrk()
    runs: dict[str, list[dict]] = {k: [] for k in ("ours", "ours_mtu", "ours_null_sink", "snmpbulkget",
                                                    "snmp_exporter", "snmp_exporter_mtu", "gufo_get_many",
                                                    "gufo_get_and_getbulk")}
    for _ in range(args.repeats):
        strategies = measure_strategies(args)
        runs["gufo_get_many"].append(strategies["get_many"])
        runs["gufo_get_and_getbulk"].append(strategies["get_and_getbulk"])
        runs["ours"].append(measure_ours(args, 48, args.sink))
        runs["ours_mtu"].append(measure_ours(args, 12, args.sink))
        runs["ours_null_sink"].append(measure_ours(args, 48, "null"))
        runs["snmpbulkget"].append(measure_snmpbulkget(args))
        runs["snmp_exporter"].append(measure_exporter(lab, args, binary, 50))
        runs["snmp_exporter_mtu"].append(measure_exporter(lab, args, binary, 12))
    result = {name: {key: round(statistics.median(r[key] for r in rs), 1) for key in ("ifpolls_per_s",
                                                                                     "cpu_us_per_ifpoll")}
              for name, rs in runs.items()}
    baseline = result["snmpbulkget"]["ifpolls_per_s"]
    for figures in result.values():
        figures["ratio"] = round(figures["ifpolls_per_s"] / baseline, 2)
    for name in ("ours", "ours_mtu", "ours_null_sink"):
        result[name]["failures"] = max(r["failures"] for r in runs[name])
        result[name]["rates_per_ifpoll"] = round(min(r["rates"] / r["ifpolls"] for r in runs[name]), 3)
    result["ours"]["alarms_in_registry"] = runs["ours"][-1]["alarms"]
    return {"devices": args.devices, "interfaces_per_device": INTERFACES, "workers": args.workers,
            "concurrency_per_worker": args.concurrency, "sink": args.sink, "repeats": args.repeats,
            "measured_here": result,
            "peers_readme": {"source": "../shared/peers/snmp/README.md (peers' figures, not measured in this run)",
                             "rows": peers_readme()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=1000, help="simulated devices of 48 interfaces")
    parser.add_argument("--cycles", type=int, default=5, help="measured cycles after one warm-up cycle")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="devices in flight per worker")
    parser.add_argument("--sink", choices=["sqlite", "null"], default="sqlite")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scrapes", type=int, default=16, help="concurrent snmp_exporter scrapes")
    parser.add_argument("--exporter-seconds", type=int, default=8)
    parser.add_argument("--bulk-invocations", type=int, default=1200)
    parser.add_argument("--interfaces-per-request", type=int, default=48)
    parser.add_argument("--national-cycles", type=int, default=6, help="national cycles polled")
    parser.add_argument("--interval", type=float, default=10.0, help="the national cycles' interval (s)")
    parser.add_argument("--dead", choices=["refused", "silent"], default="refused",
                        help="how the dead half fails: port unreachable at once, or no answer until the timeout")
    parser.add_argument("--national-concurrency", type=int, default=0,
                        help="devices in flight per worker in the national cycles (0: the daemon's default)")
    parser.add_argument("--only", choices=["throughput", "national"])
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--inside-strategies", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--inside-national", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args)
        return
    if args.inside_strategies:
        inside_strategies(args)
        return
    if args.inside_national:
        inside_national(args)
        return
    # Other work on the machine shares its cores with the agent and the pollers: say how busy it was.
    out: dict = {"bench": "poller", "cores": os.cpu_count(), "load_average_1m_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="tslcd-bench-poller-") as tmp, Lab(Path(tmp)) as lab:
        if args.only != "national":
            out["throughput"] = throughput(lab, args)
        if args.only != "throughput":
            if args.dead == "silent":
                lab.start(in_netns(sys.executable, "-c", BLACKHOLE))
            out["national"] = measure_national(args)
        out["agent_cpu_s"] = round(process_cpu_s(lab.agent.pid), 1)
    out["load_average_1m_at_end"] = os.getloadavg()[0]
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
