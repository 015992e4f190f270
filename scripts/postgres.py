#!/usr/bin/env python3
"""A throwaway PostgreSQL server for tests: installed from Debian's packages if missing,
started on 127.0.0.1 only, in a temporary data directory, stopped by PID.

    from scripts.postgres import start
    server = start(workdir)          # -> server.url  postgresql+psycopg://...
    ...
    server.stop()

From a shell: `python scripts/postgres.py serve --port 55432` (Ctrl-C stops it).
Standard library only.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DB_USER = "cds"
DB_NAME = "acne_scar_cds"


class PostgresError(RuntimeError):
    """The server could not be installed or started; the message says why."""


def binaries() -> Path:
    """The directory of PostgreSQL's server binaries, installing the package if needed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        if os.geteuid() != 0:
            raise PostgresError("PostgreSQL is not installed: run `apt-get install postgresql` as root")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
                       check=True, env=env)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PostgresError("postgresql installed, but no initdb under /usr/lib/postgresql")
    return Path(found[-1]).parent


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` system user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Postgres:
    """A running server; `url` is a SQLAlchemy URL for its database."""

    process: subprocess.Popen[bytes]
    port: int
    datadir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def stop(self) -> None:
        """Fast shutdown (SIGINT) of the process group we started, SIGKILL after 10 s.
        The group: under root, the postmaster is a child of `runuser`."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


_STARTED: list[Postgres] = []


def start(workdir: Path, port: int = 0, timeout: float = 30) -> Postgres:
    """initdb a fresh cluster in `workdir`, start it on 127.0.0.1:`port`, create the database.
    Under root, `workdir` and its parents must be reachable by the postgres user (use a
    directory of its own under /tmp, as `tempfile.mkdtemp()` makes)."""
    bindir = binaries()
    port = port or free_port()
    workdir = Path(workdir).resolve()
    datadir, sockets, log = workdir / "pgdata", workdir / "sockets", workdir / "postgres.log"
    shutil.rmtree(datadir, ignore_errors=True)
    for path in (workdir, sockets):
        path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
        shutil.chown(sockets, "postgres")
    done = subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(datadir), "-U", DB_USER,
                                        "--auth=trust", "-E", "UTF8", "--no-sync"]),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise PostgresError(f"initdb failed (the postgres user needs access to {workdir}): "
                            f"{done.stderr.strip()}")
    with open(log, "wb") as out:
        process = subprocess.Popen(
            _as_postgres([str(bindir / "postgres"), "-D", str(datadir), "-p", str(port),
                          "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sockets}",
                          "-c", "max_connections=100"]),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Postgres(process, port, datadir, log)
    _STARTED.append(server)
    _wait_and_create_db(server, bindir, sockets, timeout)
    return server


def _wait_and_create_db(server: Postgres, bindir: Path, sockets: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    createdb = _as_postgres([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port),
                             "-U", DB_USER, DB_NAME])
    while True:
        if server.process.poll() is not None:
            raise PostgresError(f"postgres exited: {server.log.read_text()[-2000:]}")
        done = subprocess.run(createdb, capture_output=True, text=True)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            server.stop()
            raise PostgresError(f"postgres did not come up: {done.stderr} {server.log.read_text()[-2000:]}")
        time.sleep(0.2)


@atexit.register
def _stop_leftovers() -> None:
    for server in _STARTED:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a server in the foreground until Ctrl-C")
    serve.add_argument("--port", type=int, default=55432)
    serve.add_argument("--workdir", type=Path, default=Path("/tmp/acne-scar-cds-postgres"))
    args = parser.parse_args(argv)
    server = start(args.workdir, args.port)
    print(f"DATABASE_URL={server.url}", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
