"""`make bench`: latency and throughput of the service under gunicorn, on loopback.

One gunicorn worker (production settings: signed callers, PostgreSQL, INFO logging) driven by
wrk with 10 connections. Scenarios: discovery; patient-view with a typical record (~30
resources, full prefetch) and a large one (~500); patient-view with no prefetch, fetched from a
real FHIR server; and a baseline service in the same server that parses and validates the same
request and answers no cards. Scenarios run in interleaved rounds (default 3 x 5 s each); the
report gives each figure's median over the rounds, and ratios to the baseline of the same
round, so results survive a noisy shared machine. Every call carries its own signed JWT (the service refuses replays).
Results: bench/results/<time>.json. Needs wrk (Debian's package; installed when run as root).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import dev_token  # noqa: E402
from scripts.fhir_server import start as start_fhir  # noqa: E402
from scripts.postgres import start as start_postgres  # noqa: E402
from tests.support.servers import Gunicorn  # noqa: E402

FIXTURES = ROOT / "fixtures"
RESULTS = ROOT / "bench" / "results"
CONNECTIONS = 10
LUA = """
local tokens, n = {}, 0
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
local f = io.open("%(body)s", "rb"); local body = f:read("*a"); f:close()
if body == "" then body = nil end
request = function()
  n = n + 1
  local headers = {["Authorization"] = "Bearer " .. tokens[(n - 1) %% #tokens + 1]}
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format("%(method)s", "%(path)s", headers, body)
end
"""
TARGETS = {"typical_p99_ms": 50, "typical_rps_vs_baseline": 0.40, "large_p99_ms": 250, "large_vs_typical": 8}


def ensure_wrk() -> str:
    if shutil.which("wrk") is None:
        if os.geteuid() != 0:
            sys.exit("make bench needs wrk: sudo apt-get install wrk")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return str(shutil.which("wrk"))


def _mint(args: tuple[str, str, int]) -> list[str]:
    audience, directory, count = args
    return [dev_token.token(audience, Path(directory)) for _ in range(count)]


def mint_tokens(audience: str, directory: Path, count: int) -> list[str]:
    """`count` distinct signed tokens for one URL, on every core."""
    workers = os.cpu_count() or 1
    chunks = [(audience, str(directory), count // workers + 1) for _ in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        return [t for chunk in pool.map(_mint, chunks) for t in chunk][:count]


def wrk(
    binary: str, base: str, scenario: dict[str, Any], tokens: list[str], seconds: int, work: Path
) -> dict[str, Any]:
    name = scenario["name"]
    (work / f"{name}.tokens").write_text("\n".join(tokens))
    (work / f"{name}.body").write_bytes(json.dumps(scenario["body"]).encode() if scenario["body"] else b"")
    script = work / f"{name}.lua"
    script.write_text(
        LUA
        % {
            "tokens": work / f"{name}.tokens",
            "body": work / f"{name}.body",
            "method": scenario["method"],
            "path": scenario["path"],
        }
    )
    out = subprocess.run(
        [binary, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), base],
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
    """p50, p99, requests/s, requests and errors from wrk's report."""
    p50 = _found(re.search(r"^\s+50%\s+(\S+)", out, re.M), "the 50% latency")
    p99 = _found(re.search(r"^\s+99%\s+(\S+)", out, re.M), "the 99% latency")
    rps = _found(re.search(r"Requests/sec:\s+([\d.]+)", out), "Requests/sec")
    total = _found(re.search(r"(\d+) requests in", out), "the request count")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "p50_ms": round(_ms(p50.group(1)), 2),
        "p99_ms": round(_ms(p99.group(1)), 2),
        "rps": round(float(rps.group(1)), 1),
        "requests": int(total.group(1)),
        "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, socket.groups())) if socket else 0),
    }


def request_body(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "requests" / f"{name}.json").read_text())


def scenarios(fhir_base: str) -> list[dict[str, Any]]:
    typical, large = request_body("typical-record"), request_body("large-record")
    fetched = {k: v for k, v in typical.items() if k != "prefetch"}
    fetched["fhirServer"] = fhir_base
    fetched["fhirAuthorization"] = {
        "access_token": "bench-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "acne-scar-cds",
    }
    patient_view = "/cds-services/acne-scar-treatment"
    return [
        {"name": "baseline", "method": "POST", "path": "/cds-services/bench-baseline", "body": typical},
        {"name": "discovery", "method": "GET", "path": "/cds-services", "body": None},
        {"name": "typical", "method": "POST", "path": patient_view, "body": typical},
        {"name": "large", "method": "POST", "path": patient_view, "body": large},
        {"name": "fallback-fetch", "method": "POST", "path": patient_view, "body": fetched},
    ]


def run(seconds: int, rounds: int) -> dict[str, list[dict[str, Any]]]:
    """`rounds` rounds; in each, every scenario for `seconds` seconds, baseline first."""
    binary = ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="acne-scar-cds-bench-"))
    os.chmod(work, 0o777)
    issuers = dev_token.init(work / "issuer")
    postgres = start_postgres(work / "postgres")
    fhir = start_fhir(0, work / "fhir", "bench-token")
    try:
        fhir.load(json.loads((FIXTURES / "patients" / "typical-record.json").read_text()))
        env = {
            "AUTH_MODE": "required",
            "AUTH_ISSUERS_FILE": str(issuers),
            "DATABASE_URL": postgres.url,
            "WEB_CONCURRENCY": "1",
            "BENCH_BASELINE": "true",
            "CDS_TODAY": "2026-11-26",
            "LOG_LEVEL": "INFO",
        }
        server = Gunicorn(env, work / "gunicorn.log")
        try:
            plan = scenarios(fhir.base_url)
            for scenario in plan:  # warm-up: first calls fill caches and the connection pool
                warm = mint_tokens(server.base + scenario["path"], work / "issuer", 300)
                wrk(binary, server.base, scenario, warm, 2, work)
            results: dict[str, list[dict[str, Any]]] = {s["name"]: [] for s in plan}
            for number in range(1, rounds + 1):
                for scenario in plan:
                    url = server.base + scenario["path"]
                    tokens = mint_tokens(url, work / "issuer", scenario_budget(scenario["name"], seconds))
                    results[scenario["name"]].append(wrk(binary, server.base, scenario, tokens, seconds, work))
                    print(f"  round {number} {scenario['name']:15} {results[scenario['name']][-1]}", flush=True)
        finally:
            server.stop()
    finally:
        fhir.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    return results


def scenario_budget(name: str, seconds: int) -> int:
    """Tokens enough for the scenario's expected rate with room to spare (each is used once)."""
    return {"baseline": 2500, "discovery": 2500, "typical": 1200, "large": 400, "fallback-fetch": 600}[name] * seconds


def summarise(rounds: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure of one scenario as its median over the rounds, and its ratios to the baseline
    of the same round (run seconds before it, on the same machine): a stall hits one round, not
    the median, and a machine slower throughout moves both sides of a ratio alike."""
    summary: dict[str, Any] = {key: statistics.median(r[key] for r in rounds) for key in ("p50_ms", "p99_ms", "rps")}
    summary["requests"] = sum(r["requests"] for r in rounds)
    summary["errors"] = sum(r["errors"] for r in rounds)
    for key, metric in (("p50_vs_baseline", "p50_ms"), ("p99_vs_baseline", "p99_ms"), ("rps_vs_baseline", "rps")):
        summary[key] = round(statistics.median(r[metric] / b[metric] for r, b in zip(rounds, baseline, strict=True)), 2)
    summary["rounds"] = rounds
    return summary


def revision() -> str:
    """The commit measured ("+changes" when the working tree differs from it), so that results
    files can be compared across changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def report(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summaries = {name: summarise(rounds, results["baseline"]) for name, rounds in results.items()}
    typical, large = summaries["typical"], summaries["large"]
    checks = {
        "typical p99 < 50 ms": typical["p99_ms"] < TARGETS["typical_p99_ms"],
        "typical throughput >= 40% of baseline": typical["rps_vs_baseline"] >= TARGETS["typical_rps_vs_baseline"],
        "large p99 < 250 ms": large["p99_ms"] < TARGETS["large_p99_ms"],
        "large <= 8x typical per request": large["p50_ms"] <= TARGETS["large_vs_typical"] * typical["p50_ms"],
        "no errors": all(r["errors"] == 0 for r in summaries.values()),
    }
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": revision(),
        "cpus": os.cpu_count(),
        "workers": 1,
        "connections": CONNECTIONS,
        "rounds": len(results["baseline"]),
        "results": summaries,
        "targets": checks,
    }


def table(summary: dict[str, Any]) -> str:
    heads = ("p50 ms", "p99 ms", "req/s", "p50 x", "p99 x", "rps x", "errors")
    rows = [f"{'scenario':15} " + " ".join(f"{h:>8}" if i < 3 else f"{h:>6}" for i, h in enumerate(heads))]
    for name, r in summary["results"].items():
        rows.append(
            f"{name:15} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['rps']:>8} {r['p50_vs_baseline']:>6} "
            f"{r['p99_vs_baseline']:>6} {r['rps_vs_baseline']:>6} {r['errors']:>6}"
        )
    rows.append("")
    rows += [f"{'PASS' if ok else 'FAIL'}  {name}" for name, ok in summary["targets"].items()]
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="measured seconds per scenario and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every scenario (the median is reported)")
    args = parser.parse_args()
    print(
        f"benchmark: 1 gunicorn worker, {CONNECTIONS} connections, {args.rounds} rounds of "
        f"{args.seconds}s per scenario",
        flush=True,
    )
    summary = report(run(args.seconds, args.rounds))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{summary['when'].replace(':', '')}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(table(summary))
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0 if all(summary["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
