"""The generated fixtures are what their generators write: the hook requests, the order requests
and the large record (run `make fixtures` after changing a patient or a case)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from scripts import make_order_requests
from tests.support.paths import ROOT
from tests.support.scenarios import PATIENTS, REQUESTS

FIXTURE_NAMES = sorted(p.stem for p in make_order_requests.ORDERS.glob("*.json"))


def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_requests_are_up_to_date() -> None:
    """fixtures/requests is what scripts/make_requests.py writes (run `make fixtures`)."""
    wanted = _load_script("make_requests").build_all()
    assert {f"{p.stem}.json" for p in PATIENTS.glob("*.json")} | {"no-prefetch.json"} == set(wanted)
    stale = [name for name, text in wanted.items()
             if not (REQUESTS / name).exists()
             or (REQUESTS / name).read_text(encoding="utf-8") != text]
    assert not stale, f"out of date, run `make fixtures`: {stale}"


def test_large_fixture_is_up_to_date() -> None:
    """fixtures/patients/large-record.json is what scripts/make_large_fixture.py writes."""
    text = _load_script("make_large_fixture").render()
    assert (PATIENTS / "large-record.json").read_text(encoding="utf-8") == text


def test_fixtures_are_up_to_date() -> None:
    """fixtures/orders is what scripts/make_order_requests.py writes (its --check, in-process)."""
    script = make_order_requests
    wanted = script.build_all()
    assert set(wanted) == {f"{n}.json" for n in FIXTURE_NAMES}
    assert script.stale(wanted) == [], "run .venv/bin/python scripts/make_order_requests.py"
    assert script.main(["--check"]) == 0
