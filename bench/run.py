"""`make bench`: our service beside the limit of its stack and beside HealthChain, in one run.

Every server has one worker and runs on loopback at the same time (only the one measured gets
traffic); wrk drives each on the same request bodies:
  ours          the service as `make run` serves it: gunicorn, SQLite, AUTH_MODE off, INFO log
  ours-prod     production settings: every call its own signed ES384 JWT, PostgreSQL
  auth-baseline ours-prod's in-service baseline (BENCH_BASELINE=true): authenticates, parses
                and validates the request, answers no cards
  bare-flask    bench/peers/bare_flask.py under the same gunicorn: parses the body, `{"cards": []}`
  healthchain   bench/peers/healthchain_service.py, HealthChain 0.16.1 under uvicorn, in its own
                venv (.bench-venv/healthchain, made on the first run from
                bench/peers/healthchain-constraints.txt)
Charts (bench/charts.py): typical (30 prefetched resources), large (506) and a mix of 228 distinct
charts (1,440 resources).
Latency at concurrency 1 (the service time: p50, p99), throughput at 10 connections. Everything
runs in interleaved rounds (default 3 x 3 s per figure, stretched up to 12 s where 3 s would give
fewer than 40 calls); each figure is the median over the rounds, and each ratio the median of the
ratios within a round, so that a stall hits one round, not the result, and a machine slower
throughout moves both sides of a ratio alike.
Results: bench/results/<time>.json. Needs wrk (Debian's package; installed when run as root).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.charts import charts, ndjson, prefetched  # noqa: E402
from scripts import dev_token  # noqa: E402
from scripts.postgres import start as start_postgres  # noqa: E402
from tests.support.servers import Gunicorn, Process  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PEERS = ROOT / "bench" / "peers"
HEALTHCHAIN = "healthchain==0.16.1"
HEALTHCHAIN_VENV = ROOT / ".bench-venv" / "healthchain"
HEALTHCHAIN_CONSTRAINTS = PEERS / "healthchain-constraints.txt"
SERVICE_ID = "acne-scar-treatment"
TODAY = "2026-11-26"  # the fixtures' date
CONNECTIONS = 10
CONCURRENCIES = (1, CONNECTIONS)  # 1: service time; 10: throughput
LUA = """
local bodies, tokens, n = {}, {}, 0
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
request = function()
  n = n + 1
  local headers = {["Content-Type"] = "application/json"}
  if #tokens > 0 then headers["Authorization"] = "Bearer " .. tokens[(n - 1) %% #tokens + 1] end
  return wrk.format("POST", "%(path)s", headers, bodies[(n - 1) %% #bodies + 1])
end
"""
OURS, BARE, HEALTHCHAIN_ROW = "ours", "bare-flask", "healthchain"
TARGETS = {
    "typical_rps_vs_bare": 0.25,
    "typical_rps_vs_healthchain": 3.0,
    "large_rps_vs_healthchain": 10.0,
    "large_cost_vs_typical": 8.0,
    "typical_p99_ms": 15.0,
}


@dataclass(frozen=True)
class Server:
    """One row of the table: where to POST, and whether each call needs its own signed token."""

    name: str
    label: str
    base: str
    path: str
    signed: bool = False
    issuer: Path | None = None

    @property
    def url(self) -> str:
        return self.base + self.path


# --- wrk ---------------------------------------------------------------------------------


def ensure_wrk() -> str:
    if shutil.which("wrk") is None:
        if os.geteuid() != 0:
            sys.exit("make bench needs wrk: sudo apt-get install wrk")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return str(shutil.which("wrk"))


def wrk_script(work: Path, name: str, path: str, bodies: Path, tokens: list[str]) -> Path:
    """A Lua script that POSTs `bodies` (one per line) in turn to `path`, each call with the next
    of `tokens` when there are any (the service refuses a replayed token)."""
    token_file = work / f"{name}.tokens"
    token_file.write_text("".join(t + "\n" for t in tokens))
    script = work / f"{name}.lua"
    script.write_text(LUA % {"bodies": bodies, "tokens": token_file, "path": path})
    return script


def wrk(binary: str, base: str, script: Path, connections: int, seconds: int) -> dict[str, Any]:
    # --timeout: HealthChain takes about 0.3 s on the large chart, so ten queued calls take
    # longer than wrk's default 2 s; a slow answer is a measure, not a socket error.
    out = subprocess.run(
        [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse(out)


def _ms(value: str) -> float:
    number, unit = _found(re.fullmatch(r"([\d.]+)(us|ms|s)", value), value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _found(match: re.Match[str] | None, what: str) -> re.Match[str]:
    """A match wrk's report must have; ValueError naming what is missing."""
    if match is None:
        raise ValueError(f"wrk's report has no {what}")
    return match


def parse(out: str) -> dict[str, Any]:
    """p50, p99, requests/s, requests and errors (non-2xx answers and socket errors) from wrk's
    report."""
    p50 = _found(re.search(r"^\s+50%\s+(\S+)", out, re.M), "the 50% latency")
    p99 = _found(re.search(r"^\s+99%\s+(\S+)", out, re.M), "the 99% latency")
    rps = _found(re.search(r"Requests/sec:\s+([\d.]+)", out), "Requests/sec")
    total = _found(re.search(r"(\d+) requests in", out), "the request count")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "p50_ms": round(_ms(p50.group(1)), 2),
        "p99_ms": round(_ms(p99.group(1)), 2),
        "rps": round(float(rps.group(1)), 1),
        "requests": int(total.group(1)),
        "errors": (int(non2xx.group(1)) if non2xx else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


# --- tokens --------------------------------------------------------------------------------


def _mint(args: tuple[str, str, int]) -> list[str]:
    audience, directory, count = args
    return [dev_token.token(audience, Path(directory)) for _ in range(count)]


def mint_tokens(audience: str, directory: Path, count: int) -> list[str]:
    """`count` distinct signed tokens for one URL, on every core."""
    workers = os.cpu_count() or 1
    chunks = [(audience, str(directory), count // workers + 1) for _ in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        return [t for chunk in pool.map(_mint, chunks) for t in chunk][:count]


def tokens_for(server: Server, count: int) -> list[str]:
    return mint_tokens(server.url, server.issuer, count) if server.signed and server.issuer else []


# --- the servers ---------------------------------------------------------------------------


@contextmanager
def running(start: Callable[[], Any]) -> Iterator[Any]:
    """A started server (Process or tests' Gunicorn), stopped when the block ends."""
    server = start()
    try:
        yield server
    finally:
        server.stop()


def bare_flask(work: Path) -> Process:
    """The limit of our stack: the project's own gunicorn and Flask, one sync worker."""
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    command = [gunicorn, "-w", "1", "-b", "127.0.0.1:{port}", "--chdir", str(PEERS), "bare_flask:app"]
    return Process(command, {}, work / "bare-flask.log")


def healthchain(work: Path) -> Process:
    """HealthChain's peer as `healthchain serve` runs an app: uvicorn, one worker."""
    python = ensure_healthchain()
    command = [python, "-m", "uvicorn", "healthchain_service:app", "--app-dir", str(PEERS)]
    command += ["--host", "127.0.0.1", "--port", "{port}", "--workers", "1"]
    return Process(command, {}, work / "healthchain.log")


def ensure_healthchain() -> str:
    """The HealthChain venv's python; made (about a minute) when missing or when the pinned
    versions changed."""
    python = HEALTHCHAIN_VENV / "bin" / "python"
    stamp = HEALTHCHAIN_VENV / ".installed"
    wanted = hashlib.sha256(HEALTHCHAIN.encode() + HEALTHCHAIN_CONSTRAINTS.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and python.exists():
        return str(python)
    print(f"bench: installing {HEALTHCHAIN} into {HEALTHCHAIN_VENV.relative_to(ROOT)} (first run only)", flush=True)
    shutil.rmtree(HEALTHCHAIN_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(HEALTHCHAIN_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", HEALTHCHAIN, "-c", str(HEALTHCHAIN_CONSTRAINTS)], check=True
    )
    stamp.write_text(wanted)
    return str(python)


def ours_as_make_run(work: Path) -> Gunicorn:
    """`make run`'s command and its embedded defaults (service/settings.py), one worker, the
    database in `work` instead of the user's data directory. PUBLIC_BASE_URL is emptied (unset,
    to Settings): the tests' launcher sets it, `make run` does not."""
    env = {
        "DATABASE_URL": f"sqlite:///{work}/ours.sqlite3",
        "WEB_CONCURRENCY": "1",
        "CDS_TODAY": TODAY,
        "AUTH_MODE": "off",
        "LOG_LEVEL": "INFO",
        "PUBLIC_BASE_URL": "",
    }
    return Gunicorn(env, work / "ours.log")


def ours_in_production(work: Path, issuer: Path, database_url: str) -> Gunicorn:
    env = {
        "AUTH_MODE": "required",
        "AUTH_ISSUERS_FILE": str(issuer),
        "DATABASE_URL": database_url,
        "WEB_CONCURRENCY": "1",
        "BENCH_BASELINE": "true",
        "CDS_TODAY": TODAY,
        "LOG_LEVEL": "INFO",
    }
    return Gunicorn(env, work / "ours-prod.log")


# --- before measuring: every server answers every chart ------------------------------------


def preflight(server: Server, bodies: dict[str, list[dict[str, Any]]], cards_on: str | None = None) -> None:
    """Each body of each chart once: RuntimeError unless every answer is 200 with a cards list,
    and, for `cards_on`, the first body's answer has cards (a server that answers nothing would
    be measured doing nothing)."""
    total = sum(len(b) for b in bodies.values())
    tokens = iter(tokens_for(server, total))
    with requests.Session() as session:
        for chart, chart_bodies in bodies.items():
            for number, body in enumerate(chart_bodies):
                headers = {"Authorization": f"Bearer {next(tokens)}"} if server.signed else {}
                answer = session.post(server.url, json=body, headers=headers, timeout=60)
                if answer.status_code != 200 or not isinstance(answer.json().get("cards"), list):
                    raise RuntimeError(
                        f"{server.name} answered {chart} body {number} with {answer.status_code}: {answer.text[:300]}"
                    )
                if chart == cards_on and number == 0 and not answer.json()["cards"]:
                    raise RuntimeError(f"{server.name} gave no card on the {chart} chart")


# --- the run -------------------------------------------------------------------------------

# A figure of a slow server (HealthChain on the large chart: about 6 calls a second) rests on at
# least this many calls, not on the 15 of a 3-s window; a window is stretched to 12 s at most.
FEWEST_CALLS = 40
LONGEST_WINDOW = 12


def measuring_window(seconds: int, calls_per_second: float) -> int:
    """Seconds to measure a server on a chart: `seconds`, or longer when that would give fewer
    than FEWEST_CALLS calls at the rate it answers one caller."""
    needed = math.ceil(FEWEST_CALLS / max(calls_per_second, 1.0))
    return max(seconds, min(needed, LONGEST_WINDOW))


Results = dict[str, dict[str, dict[int, list[dict[str, Any]]]]]  # server -> chart -> c -> rounds


def warm_up(binary: str, server: Server, bodies: Path, connections: int, work: Path) -> float:
    """Calls a second over 1 s (which also fills the server's caches and connection pools)."""
    script = wrk_script(work, "warm", server.path, bodies, tokens_for(server, 800))
    rps: float = wrk(binary, server.base, script, connections, 1)["rps"]
    return rps


def measure(
    servers: list[Server], bodies: dict[str, list[dict[str, Any]]], seconds: int, rounds: int, work: Path
) -> Results:
    """`rounds` rounds; in each, per chart and concurrency, every server in turn."""
    binary = ensure_wrk()
    files = {chart: work / f"{chart}.ndjson" for chart in bodies}
    for chart, path in files.items():
        path.write_bytes(ndjson(bodies[chart]))
    rate: dict[tuple[str, str], float] = {}
    window: dict[tuple[str, str], int] = {}
    for server in servers:  # warm-up; it sizes the windows and the token budgets
        for chart in bodies:
            alone, loaded = (warm_up(binary, server, files[chart], c, work) for c in CONCURRENCIES)
            rate[server.name, chart] = max(alone, loaded, 1.0)
            window[server.name, chart] = measuring_window(seconds, alone)
    results: Results = {s.name: {chart: {c: [] for c in CONCURRENCIES} for chart in bodies} for s in servers}
    for number in range(1, rounds + 1):
        for chart in bodies:
            for connections in CONCURRENCIES:
                for server in servers:
                    key = (server.name, chart)
                    budget = int(2 * window[key] * rate[key]) + 200  # each token used once
                    script = wrk_script(work, "run", server.path, files[chart], tokens_for(server, budget))
                    figures = {**wrk(binary, server.base, script, connections, window[key]), "seconds": window[key]}
                    results[server.name][chart][connections].append(figures)
                    print(f"  round {number} {chart:8} c={connections:<3} {server.name:14} {figures}", flush=True)
    return results


def run(seconds: int, rounds: int, copies: int) -> tuple[list[Server], Results, dict[str, list[dict[str, Any]]]]:
    ensure_healthchain()  # before any server starts: the first run installs it
    bodies = charts(copies)
    work = Path(tempfile.mkdtemp(prefix="acne-scar-cds-bench-"))
    os.chmod(work, 0o777)
    try:
        with ExitStack() as stack:
            issuer = dev_token.init(work / "issuer")
            postgres = stack.enter_context(running(lambda: start_postgres(work / "postgres")))
            ours = stack.enter_context(running(lambda: ours_as_make_run(work)))
            prod = stack.enter_context(running(lambda: ours_in_production(work, issuer, postgres.url)))
            bare = stack.enter_context(running(lambda: bare_flask(work)))
            peer = stack.enter_context(running(lambda: healthchain(work)))
            patient_view, baseline = f"/cds-services/{SERVICE_ID}", "/cds-services/bench-baseline"
            servers = [
                Server(OURS, "ours (make run)", ours.base, patient_view),
                Server("ours-prod", "ours, production", prod.base, patient_view, True, work / "issuer"),
                Server("auth-baseline", "auth baseline", prod.base, baseline, True, work / "issuer"),
                Server(BARE, "bare Flask", bare.base, "/cds-services/bench"),
                Server(HEALTHCHAIN_ROW, "HealthChain 0.16.1", peer.base, f"/cds/cds-services/{SERVICE_ID}"),
            ]
            print("  checking that every server answers every chart 200", flush=True)
            for server in servers:
                preflight(server, bodies, cards_on="typical" if server.name in (OURS, "ours-prod") else None)
            return servers, measure(servers, bodies, seconds, rounds, work), bodies
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the report ----------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def summarise(rounds: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """One server on one chart: latency at c=1, throughput at 10 connections, medians over the
    rounds; requests and errors summed over every round of both."""
    every = [r for figures in rounds.values() for r in figures]
    return {
        "c1_p50_ms": median([r["p50_ms"] for r in rounds[1]]),
        "c1_p99_ms": median([r["p99_ms"] for r in rounds[1]]),
        "c10_rps": median([r["rps"] for r in rounds[CONNECTIONS]]),
        "c10_p50_ms": median([r["p50_ms"] for r in rounds[CONNECTIONS]]),
        "requests": sum(r["requests"] for r in every),
        "errors": sum(r["errors"] for r in every),
        "rounds": {f"c{c}": figures for c, figures in rounds.items()},
    }


def ratio(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], metric: str) -> float | None:
    """The median over rounds of ours ÷ theirs within a round (None when a side is missing)."""
    pairs = [(o[metric], t[metric]) for o, t in zip(ours, theirs, strict=True) if t[metric]]
    return median([o / t for o, t in pairs]) if pairs else None


def ratios(results: Results) -> dict[str, Any]:
    ours = results[OURS]
    per_chart: dict[str, dict[str, float | None]] = {}
    for chart, figures in ours.items():
        per_chart[chart] = {
            "rps_vs_bare": ratio(figures[CONNECTIONS], results[BARE][chart][CONNECTIONS], "rps"),
            "rps_vs_healthchain": ratio(figures[CONNECTIONS], results[HEALTHCHAIN_ROW][chart][CONNECTIONS], "rps"),
            "prod_rps_vs_auth_baseline": ratio(
                results["ours-prod"][chart][CONNECTIONS], results["auth-baseline"][chart][CONNECTIONS], "rps"
            ),
        }
    return {
        "charts": per_chart,
        # per request, at c=1: the service time of a large chart in typical ones
        "large_cost_vs_typical": ratio(ours["large"][1], ours["typical"][1], "p50_ms"),
    }


def checks(summaries: dict[str, dict[str, Any]], found: dict[str, Any]) -> dict[str, bool]:
    typical, large = found["charts"]["typical"], found["charts"]["large"]

    def at_least(value: float | None, floor: float) -> bool:
        return value is not None and value >= floor

    return {
        f"typical >= {TARGETS['typical_rps_vs_bare']} x bare Flask throughput": at_least(
            typical["rps_vs_bare"], TARGETS["typical_rps_vs_bare"]
        ),
        f"typical >= {TARGETS['typical_rps_vs_healthchain']:g}x HealthChain throughput": at_least(
            typical["rps_vs_healthchain"], TARGETS["typical_rps_vs_healthchain"]
        ),
        f"large >= {TARGETS['large_rps_vs_healthchain']:g}x HealthChain throughput": at_least(
            large["rps_vs_healthchain"], TARGETS["large_rps_vs_healthchain"]
        ),
        f"large <= {TARGETS['large_cost_vs_typical']:g}x our typical cost (c=1 p50)": (
            found["large_cost_vs_typical"] is not None
            and found["large_cost_vs_typical"] <= TARGETS["large_cost_vs_typical"]
        ),
        f"typical p99 at c=1 < {TARGETS['typical_p99_ms']:g} ms": summaries[OURS]["typical"]["c1_p99_ms"]
        < TARGETS["typical_p99_ms"],
        "no errors": all(s["errors"] == 0 for by_chart in summaries.values() for s in by_chart.values()),
    }


def revision() -> str:
    """The commit measured ("+changes" when the working tree differs from it), so that results
    files can be compared across changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def versions() -> dict[str, str]:
    """What each row ran on: the project's gunicorn and Flask, HealthChain's venv."""
    from importlib.metadata import version

    found = {name: version(name) for name in ("gunicorn", "flask")}
    freeze = subprocess.run(
        [str(HEALTHCHAIN_VENV / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True
    ).stdout
    for line in freeze.splitlines():
        name, _, pinned = line.partition("==")
        if name.lower() in ("healthchain", "uvicorn", "fastapi", "pydantic", "fhir.resources"):
            found[name.lower()] = pinned
    return found


def report(
    servers: list[Server], results: Results, bodies: dict[str, list[dict[str, Any]]], seconds: int
) -> dict[str, Any]:
    summaries = {name: {chart: summarise(r) for chart, r in by_chart.items()} for name, by_chart in results.items()}
    found = ratios(results)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": revision(),
        "cpus": os.cpu_count(),
        "workers": 1,
        "connections": CONNECTIONS,
        "rounds": len(results[OURS]["typical"][1]),
        "seconds": seconds,
        "versions": versions(),
        "servers": {s.name: {"label": s.label, "path": s.path, "signed": s.signed} for s in servers},
        "charts": {
            chart: {"bodies": len(chart_bodies), "resources": sum(len(list(prefetched(b))) for b in chart_bodies)}
            for chart, chart_bodies in bodies.items()
        },
        "results": summaries,
        "ratios": found,
        "targets": checks(summaries, found),
    }


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def table(summary: dict[str, Any]) -> str:
    rows = [
        f"{'server':20} {'chart':8} {'c=1 p50 ms':>10} {'c=1 p99 ms':>10} {'c=10 req/s':>10} {'errors':>6}",
    ]
    for name, by_chart in summary["results"].items():
        for chart, r in by_chart.items():
            label = summary["servers"][name]["label"]
            rows.append(
                f"{label:20} {chart:8} {r['c1_p50_ms']:>10} {r['c1_p99_ms']:>10} {r['c10_rps']:>10} {r['errors']:>6}"
            )
    rows += ["", f"{'chart':8} {'ours ÷ bare':>12} {'ours ÷ HealthChain':>19} {'prod ÷ auth baseline':>21}"]
    for chart, r in summary["ratios"]["charts"].items():
        rows.append(
            f"{chart:8} {_x(r['rps_vs_bare']):>12} {_x(r['rps_vs_healthchain']):>19} "
            f"{_x(r['prod_rps_vs_auth_baseline']):>21}"
        )
    cost = _x(summary["ratios"]["large_cost_vs_typical"])
    rows.append(f"(throughput at 10 connections)   our large ÷ typical cost (c=1 p50): {cost}")
    rows.append("")
    rows += [f"{'PASS' if ok else 'FAIL'}  {name}" for name, ok in summary["targets"].items()]
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="measured seconds per figure and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every figure (the median is reported)")
    parser.add_argument("--copies", type=int, default=6, help="copies of each example patient in the mix")
    parser.add_argument("--quick", action="store_true", help="one round of 1 s: a smoke run, not a measure")
    args = parser.parse_args()
    seconds, rounds = (1, 1) if args.quick else (args.seconds, args.rounds)
    print(
        f"benchmark: one worker per server; c=1 and {CONNECTIONS} connections; {rounds} rounds of {seconds:g} s",
        flush=True,
    )
    servers, results, bodies = run(seconds, rounds, args.copies)
    summary = report(servers, results, bodies, seconds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{summary['when'].replace(':', '')}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(table(summary))
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0 if all(summary["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
