"""Memory of the API server over the national demo, and of a 50,000-row CLI import, beside bare processes.

    python benchmarks/bench_memory.py [--postgres URL] [--rows 50000] [--rounds 2]

Everything runs as the user runs it, in subprocesses of `python -m tslcd` on a scratch database (a new SQLite file
in a temporary directory, or with --postgres a new database created on that server and dropped afterwards):

1. `tslcd db upgrade`, `tslcd demo load` (the national demo), `tslcd user ensure-admin` for a token;
2. `tslcd serve` on a loopback port, then `--rounds` rounds of representative requests over HTTP: registry lists,
   searches and exports, topology path/impact/spof/redundancy, capacity report, utilization, alarms, audit list
   and verify, and an import of 1,000 agencies. The server's RSS (VmRSS of /proc/<pid>/status) is read after
   start-up and after each group of requests; "steady" is its RSS a few seconds after the last round, "peak"
   its VmHWM;
3. `tslcd import agencies` of a generated CSV of --rows new agencies, whose peak RSS is the child's ru_maxrss
   (os.wait4);
4. the bare limits in the same run: the peak RSS of `python -c "import tslcd.registry.service"` (the code an
   import needs), of `tslcd --help` (what every command costs before it does anything: the whole CLI is
   mounted) and of a process that only builds the API app (`tslcd.api.create_app()`), and the server's own RSS
   before its first request.

Peaks are the children's ru_maxrss, taken by a bare launcher interpreter (a child's ru_maxrss would otherwise
include this process's memory at the fork).

Targets (issue 11, item 25): import peak <= 200 MB at 50,000 rows; server steady RSS <= 400 MB. Prints one JSON
line.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

MB = 1024 * 1024
IMPORT_TARGET_MB, SERVER_TARGET_MB = 200, 400
TSLCD = [sys.executable, "-m", "tslcd"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A child's ru_maxrss counts the memory of its parent at the fork (Linux keeps the larger of the two hiwater
# marks across exec), so commands are started by a bare interpreter of a few MB that reports their peak.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
os._exit(os.waitstatus_to_exitcode(status))
"""


def run(args: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Run a command to its end: exit code, output, seconds and its own peak RSS (ru_maxrss)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".maxrss") as peak:
        start = time.perf_counter()
        rc = subprocess.run([sys.executable, "-I", "-S", "-c", LAUNCHER, peak.name, *args], env=env, cwd=cwd,
                            stdout=out, stderr=err).returncode
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        result = {"rc": rc, "out": out.read().decode(errors="replace"), "err": err.read().decode(errors="replace"),
                  "s": round(seconds, 2), "peak_mb": round(int(peak.read() or 0) * 1024 / MB, 1)}
    if result["rc"] != 0:
        tail = (result["err"] or result["out"]).strip().splitlines()[-5:]
        raise SystemExit(f"{' '.join(args[2:])} failed ({result['rc']}): " + " | ".join(tail))
    return result


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a live process, in MB, and its number of threads."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) * 1024 / MB, 1)
        elif key == "Threads":
            fields[key] = int(value)
    return fields


class Scratch:
    """A new SQLite file, or a new PostgreSQL database on the given server (dropped on close)."""

    def __init__(self, postgres: str | None, directory: Path):
        self.admin_url = None
        if postgres is None:
            self.url = f"sqlite:///{directory / 'memory.db'}"
            return
        self.admin_url = make_url(postgres)
        self.name = f"tslcd_memory_{uuid.uuid4().hex[:8]}"
        with create_engine(self.admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = self.admin_url.set(database=self.name).render_as_string(hide_password=False)

    def close(self) -> None:
        if self.admin_url is not None:
            with create_engine(self.admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


def agencies_csv(path: Path, rows: int, units: list[str], tag: int) -> Path:
    """New agencies in the import format, with codes of the official shape that the demo never uses (Q..)."""
    kinds = ("people_committee", "state", "party", "front")
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("code,name,kind,unit\n")
        for i in range(rows):
            f.write(f"{i % 1000:03d}.{i // 1000 % 100:02d}.{tag:02d}.Q{i // 100_000 % 100:02d},"
                    f"Cơ quan thử nghiệm bộ nhớ {tag}-{i},{kinds[i % len(kinds)]},{units[i % len(units)]}\n")
    return path


class Server:
    """`tslcd serve` in its own session; RSS read from /proc; stopped by its process group."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.port = free_port()
        self.log = (cwd / "serve.log").open("wb")
        self.proc = subprocess.Popen([*TSLCD, "serve", "--host", "127.0.0.1", "--port", str(self.port)], env=env,
                                     cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"tslcd serve exited ({self.proc.returncode}); see {cwd / 'serve.log'}")
            try:
                httpx.get(f"{self.base}/api/v1/auth/me", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("tslcd serve did not answer within 60 s") from None
                time.sleep(0.2)

    def status(self) -> dict[str, float]:
        return proc_status(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def workload(client: httpx.Client, server: Server, keys: dict[str, list], units: list[str], tag: int,
             rng: random.Random, work: Path) -> tuple[dict[str, float], dict[str, int]]:
    """One round of requests, group by group; the server's RSS after each group and the status codes seen."""
    after: dict[str, float] = {}
    statuses: dict[str, int] = {}

    def count(what: str) -> None:
        statuses[what] = statuses.get(what, 0) + 1

    def call(method: str, url: str, **kw) -> None:
        try:
            r = client.request(method, url, **kw)
        except httpx.TransportError as exc:  # e.g. an export that fails after its first bytes
            count(f"{method} {url} {type(exc).__name__}")
            return
        count(str(r.status_code))
        if r.status_code >= 400:
            count(f"{method} {url} {r.status_code}")

    objects = ("admin-units", "agencies", "sites", "devices", "interfaces", "links", "subscriptions")
    for name in objects:
        for offset in (0, 5_000):
            call("GET", f"/api/v1/{name}", params={"limit": 1000, "offset": offset})
    for q in ("Quảng Ninh", "quang ninh", "Ủy ban", "Sở Y tế"):
        call("GET", "/api/v1/agencies", params={"q": q, "limit": 100})
    after["lists"] = server.status()["VmRSS"]
    for name in objects:
        for fmt in ("csv", "json"):
            call("GET", f"/api/v1/{name}/export", params={"format": fmt})
    after["exports"] = server.status()["VmRSS"]
    for _ in range(20):
        a, b = rng.sample(keys["agencies"], 2)
        call("GET", "/api/v1/topology/path", params={"from_agency": a, "to_agency": b})
    for _ in range(50):
        call("GET", "/api/v1/topology/impact", params={"link": rng.choice(keys["links"])})
    for _ in range(10):
        call("POST", "/api/v1/topology/impact", json={"sites": [rng.choice(keys["sites"])]})
    call("GET", "/api/v1/topology/spof")
    call("GET", "/api/v1/topology/spof", params={"limit": 100_000})
    call("GET", "/api/v1/topology/spof", params={"province": "01"})
    call("GET", "/api/v1/topology/redundancy")
    after["topology"] = server.status()["VmRSS"]
    call("GET", "/api/v1/telemetry/reports/capacity")
    call("GET", "/api/v1/telemetry/reports/capacity", params={"format": "csv", "table": "links"})
    call("GET", "/api/v1/telemetry/utilization/provinces")
    call("GET", "/api/v1/telemetry/alarms", params={"limit": 1000})
    after["telemetry"] = server.status()["VmRSS"]
    for offset in (0, 10_000, 100_000):
        call("GET", "/api/v1/audit", params={"limit": 1000, "offset": offset})
    call("GET", "/api/v1/audit", params={"object_type": "users"})
    call("GET", "/api/v1/audit/verify")
    after["audit"] = server.status()["VmRSS"]
    body = agencies_csv(work / f"import-{tag}.csv", 1_000, units, tag)
    call("POST", "/api/v1/agencies/import", content=body.read_bytes(),
         headers={"content-type": "text/csv"})
    body.unlink()
    after["import_1000"] = server.status()["VmRSS"]
    return after, statuses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", help="PostgreSQL server URL: a scratch database is created on it (and dropped)")
    ap.add_argument("--rows", type=int, default=50_000, help="rows of the CLI import")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the request workload")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (server log, CSV, SQLite file)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="tslcd-memory-"))
    scratch = Scratch(args.postgres, work)
    env = {**os.environ, "TSLCD_DATABASE_URL": scratch.url, "TSLCD_VAR_DIR": str(work / "var")}
    out: dict = {"benchmark": "memory", "backend": "postgresql" if args.postgres else "sqlite",
                 "targets_mb": {"import_peak": IMPORT_TARGET_MB, "server_steady": SERVER_TARGET_MB}}
    server = None
    try:
        run([*TSLCD, "db", "upgrade"], env, work)
        load = run([*TSLCD, "demo", "load"], env, work)
        out["demo_load"] = {"s": load["s"], "peak_mb": load["peak_mb"], "summary": load["out"].strip()[-160:]}
        token = run([*TSLCD, "user", "ensure-admin", "--username", "bench"], env, work)["out"]
        token = next(w for line in token.splitlines() if "token" in line.lower() for w in line.split()
                     if w.startswith("tslcd_"))
        engine = create_engine(scratch.url)
        with engine.connect() as conn:
            keys = {"agencies": [r[0] for r in conn.execute(text(
                        "SELECT a.code FROM agencies a WHERE EXISTS (SELECT 1 FROM sites s JOIN devices d "
                        "ON d.site_id = s.id WHERE s.agency_id = a.id) ORDER BY a.id"))],
                    "links": [r[0] for r in conn.execute(text("SELECT slug FROM links ORDER BY id"))],
                    "sites": [r[0] for r in conn.execute(text(
                        "SELECT slug FROM sites WHERE kind IN ('commune_node', 'agency_premises') ORDER BY id"))]}
            units = [r[0] for r in conn.execute(text(
                "SELECT code FROM admin_units WHERE kind = 'commune' AND valid_to IS NULL ORDER BY id"))]
            out["audit_records"] = conn.scalar(text("SELECT count(*) FROM audit_log"))
        engine.dispose()

        server = Server(env, work)
        started = server.status()["VmRSS"]
        rounds = []
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=600) as client:
            for i in range(args.rounds):
                after, statuses = workload(client, server, keys, units, 50 + i, rng, work)
                rounds.append({"rss_after_mb": after, "statuses": statuses})
        time.sleep(3)
        final = server.status()
        out["server"] = {"rss_started_mb": started, "rounds": rounds, "steady_rss_mb": final["VmRSS"],
                         "peak_rss_mb": final["VmHWM"], "threads": final["Threads"],
                         "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"),
                         "steady_within_target": final["VmRSS"] <= SERVER_TARGET_MB}
        server.stop()
        server = None

        csv_path = agencies_csv(work / "agencies.csv", args.rows, units, 90)
        imported = run([*TSLCD, "import", "agencies", str(csv_path)], env, work)
        out["cli_import"] = {"rows": args.rows, "file_mb": round(csv_path.stat().st_size / MB, 1),
                             "s": imported["s"], "peak_mb": imported["peak_mb"],
                             "within_target": imported["peak_mb"] <= IMPORT_TARGET_MB,
                             "summary": (imported["out"].strip() or imported["err"].strip())[-160:]}
        bare = run([sys.executable, "-c", "import tslcd.registry.service"], env, work)
        cli = run([*TSLCD, "--help"], env, work)
        app = run([sys.executable, "-c", "import tslcd.api; tslcd.api.create_app()"], env, work)
        out["bare"] = {"import_registry_service_peak_mb": bare["peak_mb"], "cli_help_peak_mb": cli["peak_mb"],
                       "create_app_peak_mb": app["peak_mb"], "server_started_rss_mb": started}
        out["cli_import"]["above_registry_service_mb"] = round(imported["peak_mb"] - bare["peak_mb"], 1)
        out["cli_import"]["above_cli_help_mb"] = round(imported["peak_mb"] - cli["peak_mb"], 1)
        out["server"]["steady_above_started_mb"] = round(final["VmRSS"] - started, 1)
    finally:
        if server is not None:
            server.stop()
        scratch.close()
        if args.keep:
            out["scratch"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
