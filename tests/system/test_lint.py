"""The code passes the linter, the formatter's check and the type checker configured in
pyproject.toml (what `make lint` runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT


def test_ruff_finds_nothing() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run(
        [str(ruff), "check", "service", "cards", "tests", "scripts", "bench"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout


def test_ruff_format_would_change_nothing() -> None:
    """One layout: `ruff format` was applied once; new code follows it."""
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run(
        [str(ruff), "format", "--check", "service", "cards", "tests", "scripts", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout


def test_mypy_finds_nothing() -> None:
    """Type hints that hold (strict for the clinical core: pyproject.toml [tool.mypy])."""
    mypy = Path(sys.executable).parent / "mypy"
    done = subprocess.run([str(mypy)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
