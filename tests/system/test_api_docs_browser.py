"""The API docs page (/docs/) in a real browser.

The page is opened in Debian's chromium (headless) with every host name but 127.0.0.1
unresolvable, as on a closed hospital network: it must render every path of the contract, and
every request it makes must go to the service. Skipped where chromium is not installed
(`apt-get install chromium`; .ci/run installs it when run as root).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.paths import ROOT

CONTRACT = yaml.safe_load((ROOT / "service" / "openapi.yaml").read_text(encoding="utf-8"))
CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def open_in_chromium(url: str, profile: Path) -> tuple[str, list[dict[str, Any]]]:
    """The page's DOM once its scripts have run, and the requests the page made (from
    Chromium's net log: those whose initiator is the page, not the browser's own)."""
    net_log = profile / "net-log.json"
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile / 'user-data'}",
            f"--log-net-log={net_log}",
            # a closed network: no name resolves but the loopback address
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            # run the page's scripts until it is idle (virtual time waits for pending requests)
            "--virtual-time-budget=30000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, page_requests(json.loads(net_log.read_text()), urlsplit(url))


def page_requests(log: dict[str, Any], page: Any) -> list[dict[str, Any]]:
    kinds = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    origin = f"{page.scheme}://{page.netloc}"
    started = [e.get("params", {}) for e in log["events"] if kinds.get(e["type"]) == "URL_REQUEST_START_JOB"]
    return [p for p in started if p.get("initiator") == origin or p.get("url", "").startswith(origin)]


@needs_chromium
def test_the_docs_page_shows_every_path_of_the_contract_from_the_service_alone(live_app: str, tmp_path: Path) -> None:
    dom, requests = open_in_chromium(f"{live_app}/docs/", tmp_path)

    assert CONTRACT["info"]["title"] in dom
    shown = {path for path in CONTRACT["paths"] if f'data-path="{path}"' in dom}
    assert shown == set(CONTRACT["paths"]), f"not rendered: {set(CONTRACT['paths']) - shown}"
    urls = {r["url"] for r in requests}
    assert f"{live_app}/openapi.yaml" in urls and f"{live_app}/docs/swagger-ui-bundle.js" in urls
    assert {u for u in urls if not u.startswith(live_app + "/")} == set(), "the page left the service"
