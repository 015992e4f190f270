"""Where the repository and its fixtures are, and the date every fixture is written against."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "fixtures"
SCENARIOS = ROOT / "tests" / "scenarios"  # one YAML file per fixture patient (tests/cards/test_scenarios.py)
SANDBOX = ROOT / "tests" / "sandbox"  # the CDS Hooks sandbox's calls, as captured (tests/sandbox/README.md)
# The date every fixture is written against (fixtures/README.md).
FIXTURE_TODAY = date(2026, 11, 26)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
