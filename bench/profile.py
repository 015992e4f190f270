"""`make profile`: where a hook call spends its time, with pyinstrument.

Runs the bench's requests in-process (Flask's test client: no socket, no gunicorn) with the
production settings of `make bench` (signed callers, PostgreSQL), measures the median service
time per request, and prints the top of pyinstrument's call tree for each scenario. The
numbers are service time on one core, without queueing: `make bench` shows what a client sees.

    python bench/profile.py [--requests 300] [--scenario typical] [--depth 14]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyinstrument import Profiler  # noqa: E402

from bench.charts import request_body  # noqa: E402
from bench.run import mint_tokens  # noqa: E402
from scripts import dev_token  # noqa: E402
from scripts.postgres import start as start_postgres  # noqa: E402

BASE = "http://localhost"
SCENARIOS = {
    "baseline": "/cds-services/bench-baseline",
    "typical": "/cds-services/acne-scar-treatment",
    "large": "/cds-services/acne-scar-treatment",
}
BODIES = {"baseline": "typical-record", "typical": "typical-record", "large": "large-record"}


def drive(client: Any, path: str, body: bytes, tokens: list[str]) -> float:
    """Median milliseconds per call over the tokens (one call each; the median, because a
    shared machine stalls now and then); every call must answer 200."""
    times = []
    for token in tokens:
        start = time.perf_counter()
        response = client.post(
            path, data=body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
        )
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
    return statistics.median(times) * 1000


def profile(names: list[str], requests: int, depth: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="acne-scar-cds-profile-"))
    os.chmod(work, 0o777)
    issuers = dev_token.init(work / "issuer")
    postgres = start_postgres(work / "postgres")
    try:
        os.environ.update(
            {
                "AUTH_MODE": "required",
                "AUTH_ISSUERS_FILE": str(issuers),
                "PUBLIC_BASE_URL": BASE,
                "DATABASE_URL": postgres.url,
                "BENCH_BASELINE": "true",
                "CDS_TODAY": "2026-11-26",
                "LOG_LEVEL": "WARNING",
            }
        )
        from service.app import create_app, settle_after_start

        client = create_app().test_client()
        settle_after_start()  # as gunicorn's post_worker_init does
        means = {}
        for name in names:
            path, body = SCENARIOS[name], json.dumps(request_body(BODIES[name])).encode()
            drive(client, path, body, mint_tokens(BASE + path, work / "issuer", 50))  # warm up
            tokens = mint_tokens(BASE + path, work / "issuer", requests)
            means[name] = drive(client, path, body, tokens)  # unprofiled: the profiler slows calls
            profiler = Profiler(interval=0.0002)
            with profiler:
                drive(client, path, body, mint_tokens(BASE + path, work / "issuer", requests))
            print(f"\n=== {name}: {means[name]:.2f} ms per call (median of {requests}, in-process) ===")
            print(
                profiler.output_text(
                    unicode=False,
                    color=False,
                    show_all=False,
                    short_mode=False,
                    time="percent_of_total",
                    flat=False,
                    processor_options={"filter_threshold": 0.02, "max_depth": depth},
                )
            )
        return means
    finally:
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--depth", type=int, default=40)
    args = parser.parse_args(argv)
    means = profile(args.scenario or list(SCENARIOS), args.requests, args.depth)
    print("\nmedian ms per call: " + ", ".join(f"{k} {v:.2f}" for k, v in means.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
