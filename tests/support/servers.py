"""Servers the tests start: the service under gunicorn, for tests that need real processes
(several workers, SIGKILL), and any HTTP server in a background thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import requests

from scripts.postgres import free_port
from tests.support.paths import FIXTURE_TODAY, ROOT

GUNICORN = Path(sys.executable).parent / "gunicorn"


class Process:
    """A server we started (its own process group, stopped by its PID). `{port}` in the command
    and the environment's values is its free port; ready once `ready_path` answers (with any
    status, or a success when `ready_ok`)."""

    ready_path = "/"
    ready_ok = False

    def __init__(self, command: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log

        def filled(text: str) -> str:
            return text.replace("{port}", str(self.port))

        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [filled(part) for part in command],
                cwd=cwd,
                env={**os.environ, **{k: filled(v) for k, v in env.items()}},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.kill()  # never leave a server behind
            raise

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.log.name}: the server exited: {self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.base + self.ready_path, timeout=5).ok or not self.ready_ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.log.name}: no answer after {timeout} s: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole group: master and workers die mid-request."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM: graceful shutdown; SIGKILL if it takes longer than 15 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Gunicorn(Process):
    """The service under gunicorn, as `make run` starts it, ready once /healthz answers."""

    ready_path = "/healthz"
    ready_ok = True

    def __init__(self, env: dict[str, str], log: Path) -> None:
        # PUBLIC_BASE_URL: the URL tests call, which tokens' aud names (AUTH_MODE=required needs it).
        base = {"HOST": "127.0.0.1", "PORT": "{port}", "PUBLIC_BASE_URL": "http://127.0.0.1:{port}"}
        super().__init__([str(GUNICORN), "-c", "service/gunicorn_conf.py", "service.app:create_app()"], base | env, log)


@contextmanager
def gunicorn(env: dict[str, str], log: Path) -> Iterator[Gunicorn]:
    server = Gunicorn(env, log)
    try:
        yield server
    finally:
        server.stop()


def serving(workdir: Path, **settings: str) -> Iterator[Gunicorn]:
    """A test server for a fixture to yield from: its own SQLite file in `workdir` (unless
    DATABASE_URL is given), two workers, the fixtures' date, and `settings`; its log in
    `workdir`/gunicorn.log."""
    env = {
        "DATABASE_URL": f"sqlite:///{workdir}/cds.sqlite3",
        "WEB_CONCURRENCY": "2",
        "CDS_TODAY": FIXTURE_TODAY.isoformat(),
        **settings,
    }
    with gunicorn(env, workdir / "gunicorn.log") as running:
        yield running


class ThreadServer(Protocol):
    def serve_forever(self) -> None: ...

    def shutdown(self) -> None: ...

    def server_close(self) -> None: ...


@contextmanager
def serving_in_a_thread(server: ThreadServer) -> Iterator[None]:
    """`server` answering from a daemon thread until the block ends."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
