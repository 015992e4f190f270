#!/usr/bin/env python3
"""Write every generated fixture, or check that each is what it would write (`--check`).

    fixtures/patients/large-record.json  the benchmark's large patient (scripts/fixtures/large_record.py)
    fixtures/requests/<patient>.json     a patient-view request per patient (scripts/fixtures/hook_requests.py)
    fixtures/orders/<case>.json          the order-hook cases (scripts/fixtures/order_requests.py)

The requests are built from the patients as this run writes them (the large record included), so
one run brings everything up to date. fixtures/requests/ and fixtures/orders/ hold nothing else:
a file there that no patient or case writes is left over, and removed. Deterministic (fixed
seeds, dates and hookInstance uuids): the output is reproducible byte for byte.

Usage:  python scripts/make_fixtures.py [--check]      (make fixtures; the tests run --check)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python scripts/make_fixtures.py`
    sys.path.insert(0, str(ROOT))

from scripts.fixtures import hook_requests, large_record, order_requests  # noqa: E402

PATIENTS = ROOT / "fixtures" / "patients"
REQUESTS = ROOT / "fixtures" / "requests"
ORDERS = ROOT / "fixtures" / "orders"
LARGE_RECORD = PATIENTS / f"{large_record.PID}.json"


def wanted() -> dict[Path, str]:
    """Path -> text of every generated fixture."""
    large = large_record.render()
    bundles = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(PATIENTS.glob("*.json"))}
    bundles[large_record.PID] = json.loads(large)
    return {
        LARGE_RECORD: large,
        **{REQUESTS / name: text for name, text in hook_requests.build_all(bundles).items()},
        **{ORDERS / name: text for name, text in order_requests.build_all(bundles).items()},
    }


def stale(files: Mapping[Path, str]) -> list[Path]:
    """Generated fixtures that differ from `files`, are missing, or are left over."""
    changed = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    left_over = [p for folder in (REQUESTS, ORDERS) for p in sorted(folder.glob("*.json")) if p not in files]
    return changed + left_over


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1, naming each, if a generated fixture differs from what this writes"
    )
    args = parser.parse_args(argv)
    files = wanted()
    if args.check:
        problems = stale(files)
        for path in problems:
            print(f"{path.relative_to(ROOT)} is out of date or left over: run make fixtures")
        return 1 if problems else 0
    for path in stale(files):
        if path in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[path], encoding="utf-8")
        else:
            path.unlink()
    print(
        f"{len(files)} generated fixtures are up to date: {LARGE_RECORD.relative_to(ROOT)}, "
        f"{REQUESTS.relative_to(ROOT)}/, {ORDERS.relative_to(ROOT)}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
