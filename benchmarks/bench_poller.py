"""The poller end to end against Debian's snmpd serving a 48-port device, beside net-snmp and snmp_exporter.

    sudo .venv/bin/python benchmarks/bench_poller.py [--devices 1000] [--cycles 5] [--repeats 3] [--sink sqlite]

Set up as in /work/shared/peers/snmp/: its netns-setup.sh creates the namespace `snmpbench` (lo, 23 veth pairs
and a bridge: 48 interfaces), its snmpd.conf serves them on udp:127.0.0.1:11161; the agent and every poller run
inside the namespace (`ip netns exec snmpbench`), which is deleted afterwards with every process started here.
Many devices are simulated by polling that one agent as different targets, as the peers did.

Measured in the same run, medians of --repeats:
- ours: `PollerPool` with --workers processes (one GET of 193 varbinds per device), rates computed, every sample
  written through the storage service into a fresh SQLite file (--sink sqlite) or dropped (--sink null);
  `ours_mtu` asks 12 interfaces per GET (answers under 1500 bytes); `ours_null_sink` polls and computes rates
  but drops them (what the write path costs). Poller CPU = worker processes + the writer process.
- snmpbulkget: net-snmp's CLI, one GETBULK (non-repeaters 1, max-repetitions 48) per device, 4 in parallel.
- snmp_exporter: Debian's prometheus-snmp-exporter with gen_snmp_yml.py's snmp.yml, scraped by wrk with
  --scrapes concurrent connections (the binary is unpacked from the .deb with apt-get download, so no service is
  installed or started; wrk is apt-get installed when missing).
- gufo_get_many / gufo_get_and_getbulk: the request strategies gufo_snmp allows, bare, in one process (no rates,
  no writes): one GET of 193 varbinds against a GET plus four GETBULK column walks per device.
One interface-poll = in and out octets, ifOperStatus and speed of one interface. Prints one JSON line.
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
from contextlib import contextmanager
from pathlib import Path

PEERS = Path("/work/shared/peers/snmp")
NETNS = "snmpbench"
AGENT = "127.0.0.1:11161"
INTERFACES = 48
EXPORTER_ADDRESS = "127.0.0.1:9116"
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


def inside(args) -> None:
    """Run in the namespace: a warm-up cycle (sessions, baselines), then the measured cycles back to back."""
    from tslcd.telemetry.daemon import PollerPool
    from tslcd.telemetry.poller import DeviceSpec, PollOptions
    from tslcd.telemetry.snmp import Credential

    cred = Credential("v2c", community="public")
    specs = [DeviceSpec(d, "127.0.0.1", 11161, cred, tuple((i, d * 100 + i) for i in range(1, INTERFACES + 1)))
             for d in range(1, args.devices + 1)]
    pool = PollerPool(PollOptions(timeout_s=5, concurrency=args.concurrency,
                                  interfaces_per_request=args.interfaces_per_request), workers=args.workers)
    directory = tempfile.TemporaryDirectory(prefix="tslcd-bench-")
    write = sink(args.sink, Path(directory.name))
    try:
        pool.cycle(specs, write)
        cpu, start = time.process_time(), time.perf_counter()
        ifpolls = worker_cpu = failures = 0
        counted = []

        def count(batch) -> None:
            counted.append(sum(1 for v in batch.in_bps if v == v))  # NaN is a gap
            write(batch)

        for _ in range(args.cycles):
            report = pool.cycle(specs, count)
            ifpolls += report.interfaces
            worker_cpu += report.cpu_s
            failures += report.failures
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu + worker_cpu
        rates = sum(counted)
    finally:
        pool.close()
        directory.cleanup()
    print(json.dumps({"ifpolls_per_s": ifpolls / elapsed, "cpu_us_per_ifpoll": cpu / ifpolls * 1e6,
                      "failures": failures, "rates": rates, "ifpolls": ifpolls}))


def sink(kind: str, directory: Path):
    """Where the measured samples go: the storage service into a fresh SQLite file, or nowhere."""
    if kind == "null":
        return lambda batch: None
    from sqlalchemy.orm import Session

    from tslcd.core import database
    from tslcd.core.database import Base
    from tslcd.telemetry.daemon import ServiceStore
    import tslcd.registry.models  # noqa: F401  (tables)
    import tslcd.security.models  # noqa: F401
    import tslcd.telemetry.models  # noqa: F401

    engine = database.make_engine(f"sqlite:///{directory / 'bench.db'}")
    Base.metadata.create_all(engine)

    @contextmanager
    def sessions():
        with Session(engine) as session, session.begin():
            yield session

    return ServiceStore(sessions).write_samples


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
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--inside-strategies", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args)
        return
    if args.inside_strategies:
        inside_strategies(args)
        return
    with tempfile.TemporaryDirectory(prefix="tslcd-bench-poller-") as tmp, Lab(Path(tmp)) as lab:
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
        agent_cpu = process_cpu_s(lab.agent.pid)
    result = {name: {key: round(statistics.median(r[key] for r in rs), 1) for key in ("ifpolls_per_s",
                                                                                     "cpu_us_per_ifpoll")}
              for name, rs in runs.items()}
    baseline = result["snmpbulkget"]["ifpolls_per_s"]
    for figures in result.values():
        figures["ratio"] = round(figures["ifpolls_per_s"] / baseline, 2)
    for name in ("ours", "ours_mtu", "ours_null_sink"):
        result[name]["failures"] = max(r["failures"] for r in runs[name])
        result[name]["rates_per_ifpoll"] = round(min(r["rates"] / r["ifpolls"] for r in runs[name]), 3)
    print(json.dumps({"bench": "poller", "cores": os.cpu_count(), "devices": args.devices,
                      "interfaces_per_device": INTERFACES, "workers": args.workers,
                      "concurrency_per_worker": args.concurrency, "sink": args.sink, "repeats": args.repeats,
                      "agent_cpu_s": round(agent_cpu, 1), **result}))


if __name__ == "__main__":
    main()
