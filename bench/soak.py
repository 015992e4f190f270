"""`make soak`: load and soak the service under gunicorn, on loopback; watch its memory.

Production-like: 2 gunicorn workers, PostgreSQL (scripts/postgres.py), AUTH_MODE=required with
signed callers (every call carries its own ES384 JWT, as bench/run.py does; `--auth off` to
drop that), INFO logging. wrk drives it with 32 connections for 60 s on a mix of discovery
(1 in 5 calls), patient-view with fixtures/requests/typical-record.json (3 in 5) and with
large-record.json (1 in 5), after a 10 s warm-up on the same mix.

Every second the RSS of the gunicorn master and of each worker is read from /proc. Reported:
requests, errors (non-2xx answers by status, and socket errors: connect, read, write, timeout),
p50 / p99 latency, requests/s, and memory right after the warm-up against the end of the run,
with its growth in %. Exit status 1 when there is any error, when memory grew by 10% or more,
or when a worker was replaced during the run. Results: bench/results/soak-<time>.json.

Bounded: one warm-up and one run of fixed length, on 127.0.0.1 only; everything it started
(PostgreSQL, gunicorn) is stopped by PID. Needs wrk (Debian's package; installed when run as root).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import ensure_wrk, mint_tokens, parse  # noqa: E402
from scripts import dev_token  # noqa: E402
from scripts.postgres import start as start_postgres  # noqa: E402
from tests.support.servers import Gunicorn  # noqa: E402

FIXTURES = ROOT / "fixtures" / "requests"
RESULTS = ROOT / "bench" / "results"
PATIENT_VIEW = "/cds-services/acne-scar-treatment"
# name, method, path, body fixture (None: no body), weight in the mix
MIX = [
    ("discovery", "GET", "/cds-services", None, 1),
    ("typical", "POST", PATIENT_VIEW, "typical-record", 3),
    ("large", "POST", PATIENT_VIEW, "large-record", 1),
]
MAX_GROWTH_PCT = 10.0
PAGE = os.sysconf("SC_PAGE_SIZE")

# One request function for the whole mix: call n goes to the scenario at slot n of the weighted
# schedule, with the next unused token of that scenario (one wrk thread, so no token is sent
# twice). `response` counts answers by status.
LUA = """
local scenarios = {%(scenarios)s}
local schedule = {%(schedule)s}
for _, s in ipairs(scenarios) do
  s.tokens, s.next = {}, 0
  if s.tokenfile ~= "" then for line in io.lines(s.tokenfile) do s.tokens[#s.tokens + 1] = line end end
  if s.bodyfile ~= "" then local f = io.open(s.bodyfile, "rb"); s.body = f:read("*a"); f:close() end
end
local threads, n = {}, 0
statuses = {}  -- a global: done() reads it from each thread
function setup(thread) threads[#threads + 1] = thread end
function request()
  n = n + 1
  local s = scenarios[schedule[(n - 1) %% #schedule + 1]]
  local headers = {}
  if #s.tokens > 0 then
    s.next = s.next + 1
    headers["Authorization"] = "Bearer " .. s.tokens[(s.next - 1) %% #s.tokens + 1]
  end
  if s.body then headers["Content-Type"] = "application/json" end
  return wrk.format(s.method, s.path, headers, s.body)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("statuses")) do total[status] = (total[status] or 0) + count end
  end
  local parts = {}
  for status, count in pairs(total) do parts[#parts + 1] = string.format('"%%d": %%d', status, count) end
  io.write("STATUSES {" .. table.concat(parts, ", ") .. "}\\n")
end
"""


# ----- memory -----------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int | None:
    """Resident set size of one process, from /proc (None when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def children(pid: int) -> list[int]:
    """The direct children of `pid` (the gunicorn workers of a master), from /proc/*/stat."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:  # state, ppid, ...
            found.append(int(stat.parent.name))
    return sorted(found)


class Sampler(threading.Thread):
    """Every `interval` s: the RSS of the master and of each of its workers."""

    def __init__(self, master: int, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.master, self.interval = master, interval
        self.samples: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self.started_at = time.monotonic()

    def sample(self) -> dict[str, Any]:
        workers = {pid: rss for pid in children(self.master) if (rss := rss_bytes(pid)) is not None}
        master = rss_bytes(self.master) or 0
        return {
            "t": round(time.monotonic() - self.started_at, 1),
            "master": master,
            "workers": workers,
            "total": master + sum(workers.values()),
        }

    def run(self) -> None:
        while not self.stopping.is_set():
            self.samples.append(self.sample())
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)


def mib(n: float) -> float:
    return round(n / 2**20, 1)


# ----- load --------------------------------------------------------------------------------------


def write_script(work: Path, tokens: dict[str, list[str]], tag: str) -> Path:
    scenarios, schedule = [], []
    for i, (name, method, path, fixture, weight) in enumerate(MIX, start=1):
        token_file = ""
        if tokens.get(name):
            token_file = str(work / f"{tag}-{name}.tokens")
            Path(token_file).write_text("\n".join(tokens[name]) + "\n")
        body_file = ""
        if fixture:
            body_file = str(work / f"{name}.json")
            shutil.copyfile(FIXTURES / f"{fixture}.json", body_file)
        scenarios.append(
            f'{{method = "{method}", path = "{path}", tokenfile = "{token_file}", bodyfile = "{body_file}"}}'
        )
        schedule += [str(i)] * weight
    script = work / f"{tag}.lua"
    script.write_text(LUA % {"scenarios": ", ".join(scenarios), "schedule": ", ".join(schedule)})
    return script


def run_wrk(binary: str, base: str, script: Path, seconds: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    result = parse(out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, socket.groups()), strict=True)) if socket else {}
    )
    statuses = re.search(r"^STATUSES (\{.*\})$", out, re.M)
    result["statuses"] = json.loads(statuses.group(1)) if statuses else {}
    result["non_2xx"] = sum(count for status, count in result["statuses"].items() if not status.startswith("2"))
    return result


def tokens_for(base: str, issuer: Path, total: int) -> dict[str, list[str]]:
    """`total` tokens shared by the mix's weights, each minted for its scenario's URL."""
    weights = sum(w for *_, w in MIX)
    return {name: mint_tokens(base + path, issuer, total * weight // weights + 100) for name, _, path, _, weight in MIX}


# ----- the soak ------------------------------------------------------------------------------------


def soak(seconds: int, warmup: int, connections: int, auth: bool) -> dict[str, Any]:
    binary = ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="acne-scar-cds-soak-"))
    os.chmod(work, 0o777)
    postgres = start_postgres(work / "postgres")
    try:
        env = {
            "DATABASE_URL": postgres.url,
            "WEB_CONCURRENCY": "2",
            "CDS_TODAY": "2026-11-26",
            "LOG_LEVEL": "INFO",
            "AUTH_MODE": "off",
        }
        if auth:
            env |= {"AUTH_MODE": "required", "AUTH_ISSUERS_FILE": str(dev_token.init(work / "issuer"))}
        server = Gunicorn(env, work / "gunicorn.log")
        sampler = Sampler(server.process.pid)
        try:
            sampler.start()
            print(f"  warm-up: {warmup}s", flush=True)
            warm_tokens = tokens_for(server.base, work / "issuer", 1000 * warmup) if auth else {}
            warm = run_wrk(binary, server.base, write_script(work, warm_tokens, "warmup"), warmup, connections)
            print(f"  warm-up: {warm['requests']} requests, {warm['rps']}/s", flush=True)
            # Enough tokens for twice the warm-up's rate (each is used once: the service refuses replays).
            run_tokens = tokens_for(server.base, work / "issuer", int(warm["rps"] * seconds * 2) + 2000) if auth else {}
            script = write_script(work, run_tokens, "run")
            start = sampler.sample()
            print(
                f"  soak: {seconds}s, {connections} connections; memory at start {mib(start['total'])} MiB", flush=True
            )
            result = run_wrk(binary, server.base, script, seconds, connections)
            end = sampler.sample()
        finally:
            sampler.stop()
            server.stop()
        log_errors = sum(
            1
            for line in (work / "gunicorn.log").read_text(errors="replace").splitlines()
            if '"level": "ERROR"' in line or "Traceback" in line or "WORKER TIMEOUT" in line
        )
    finally:
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    return summarise(result, warm, start, end, sampler.samples, log_errors, seconds, connections, auth)


def summarise(
    result: dict[str, Any],
    warm: dict[str, Any],
    start: dict[str, Any],
    end: dict[str, Any],
    samples: list[dict[str, Any]],
    log_errors: int,
    seconds: int,
    connections: int,
    auth: bool,
) -> dict[str, Any]:
    growth = round((end["total"] - start["total"]) / start["total"] * 100, 2)
    replaced = sorted(set(start["workers"]) ^ set(end["workers"]))
    errors = result["non_2xx"] + sum(result["socket_errors"].values())
    checks = {
        "no errors (non-2xx or socket)": errors == 0,
        f"memory growth < {MAX_GROWTH_PCT:g}%": growth < MAX_GROWTH_PCT,
        "no worker replaced": not replaced,
        "no error in the service log": log_errors == 0,
    }
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "workers": 2,
        "connections": connections,
        "seconds": seconds,
        "auth": "signed ES384 JWT per call" if auth else "off",
        "database": "postgresql",
        "mix": {name: weight for name, *_, weight in MIX},
        "warmup": {k: warm[k] for k in ("requests", "rps", "p50_ms", "p99_ms")},
        "requests": result["requests"],
        "rps": result["rps"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "errors": errors,
        "statuses": result["statuses"],
        "socket_errors": result["socket_errors"],
        "log_errors": log_errors,
        "memory": {
            "start_mib": mib(start["total"]),
            "end_mib": mib(end["total"]),
            "growth_pct": growth,
            "max_mib": mib(max(s["total"] for s in samples)),
            "start": {"master": mib(start["master"]), **{f"worker {p}": mib(r) for p, r in start["workers"].items()}},
            "end": {"master": mib(end["master"]), **{f"worker {p}": mib(r) for p, r in end["workers"].items()}},
            "workers_replaced": replaced,
            "samples": [{"t": s["t"], "total_mib": mib(s["total"])} for s in samples],
        },
        "checks": checks,
    }


def report(summary: dict[str, Any]) -> str:
    m = summary["memory"]
    lines = [
        f"requests {summary['requests']} ({summary['rps']}/s), errors {summary['errors']} "
        f"(statuses {summary['statuses']}, socket {summary['socket_errors']}), log errors {summary['log_errors']}",
        f"latency p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms",
        f"memory (master + workers) {m['start_mib']} MiB after warm-up -> {m['end_mib']} MiB at the end: "
        f"{m['growth_pct']:+}% (max {m['max_mib']} MiB)",
        f"  start {m['start']}",
        f"  end   {m['end']}",
        "",
    ]
    lines += [f"{'PASS' if ok else 'FAIL'}  {name}" for name, ok in summary["checks"].items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the measured run")
    parser.add_argument("--warmup", type=int, default=10, help="length of the warm-up before it")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--auth",
        choices=("signed", "off"),
        default="signed",
        help="signed: AUTH_MODE=required, a fresh JWT per call; off: AUTH_MODE=off",
    )
    args = parser.parse_args()
    if not (1 <= args.seconds <= 3600 and 1 <= args.warmup <= 600 and 1 <= args.connections <= 1024):
        parser.error("keep it bounded: --seconds 1..3600, --warmup 1..600, --connections 1..1024")
    print(
        f"soak: 2 gunicorn workers, PostgreSQL, auth {args.auth}, {args.connections} connections, "
        f"{args.warmup}s warm-up + {args.seconds}s",
        flush=True,
    )
    summary = soak(args.seconds, args.warmup, args.connections, args.auth == "signed")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"soak-{summary['when'].replace(':', '')}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(report(summary))
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0 if all(summary["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
