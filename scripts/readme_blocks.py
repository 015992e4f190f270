#!/usr/bin/env python3
"""Run the README's shell blocks as printed, as a newcomer would paste them.

Every ```sh block of README.md has a marker comment on the line before it that says how it runs:

    <!-- readme-run: server NAME -->      the first terminal: a command that serves until Ctrl-C
                                          (`make run`, with its settings). Started in the
                                          background, waited for until /healthz answers on
                                          $PORT, stopped with Ctrl-C (SIGINT) when a block needs
                                          another server, or at the end.
    <!-- readme-run: client NAME -->      a second terminal, while server NAME runs.
    <!-- readme-run: alone -->            no server needed (the CLI, a setup step).
    <!-- readme-run: skip: REASON -->     not run here; REASON says why (no kubectl, no docker).

A client or alone block may add `; expect: TEXT` (repeatable): TEXT must be in what it prints.
It runs in `bash -e -o pipefail` (a failing command fails the block), in a view of the checkout
with an empty data/ (the files are links to the checkout's), with a fresh HOME (so the default
SQLite store is new) and free ports in PORT and FHIR_PORT: the blocks say
`http://127.0.0.1:${PORT:-8080}`, so they run as printed on a free port. A FHIR server a block
started with `scripts/fhir_server.py start` and did not stop is stopped after it.

    .venv/bin/python scripts/readme_blocks.py            # run every block; exit 1 if one fails
    .venv/bin/python scripts/readme_blocks.py --list     # the blocks and how each runs

tests/system/test_readme_blocks.py runs the same blocks under pytest (make test).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from service.settings import ENV

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKER = re.compile(r"^<!-- readme-run: (?P<body>.*?) -->$")
SHELL_FENCE = re.compile(r"^```(sh|bash|shell|console|zsh)\s*$")
# Copied, not linked: fhir_server.py keeps a started server's files next to itself (data/).
COPIED = ("scripts",)
SERVER_READY_TIMEOUT = 180.0  # a first `make run` on a busy 2-core machine: workers load content
BLOCK_TIMEOUT = 300.0  # a first FHIR server start installs it (about 2 minutes)
# What a newcomer's shell does not have: the service's settings (README, Configuration), and
# what the caller's own make or venv put there.
NOT_INHERITED = {
    "HOST",
    "PORT",
    "FHIR_PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_TIMEOUT",
    "CLIENT_TIMEOUT",
    "PROMETHEUS_MULTIPROC_DIR",
    "VIRTUAL_ENV",
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
    "FHIR_SERVER_TOKEN",
    "POSTGRES_BINDIR",
} | {name for name, _ in ENV.values()}


class MarkerError(ValueError):
    """A shell block without a marker, or a marker the runner does not know."""


@dataclass(frozen=True)
class Block:
    """One ```sh block and how it runs."""

    line: int  # of the fence, 1-based
    heading: str
    kind: str  # server | client | alone | skip
    text: str
    name: str = ""  # the server's name (server, client)
    expects: tuple[str, ...] = ()
    reason: str = ""  # skip

    @property
    def label(self) -> str:
        where = f"README.md:{self.line} ({self.heading})"
        return f"{where} {self.kind} {self.name}".rstrip()


def parse(markdown: str) -> list[Block]:
    """Every shell block with its marker; MarkerError names a block that has none."""
    lines = markdown.splitlines()
    blocks, heading, i = [], "", 0
    while i < len(lines):
        if lines[i].startswith("#"):
            heading = lines[i].lstrip("#").strip()
        if SHELL_FENCE.match(lines[i]):
            if not lines[i].startswith("```sh"):
                raise MarkerError(f"README.md:{i + 1}: write shell blocks as ```sh (with a readme-run marker)")
            end = lines.index("```", i + 1)
            marker = MARKER.match(lines[i - 1]) if i else None
            if marker is None:
                raise MarkerError(
                    f"README.md:{i + 1}: a ```sh block needs a `<!-- readme-run: ... -->` line "
                    f"before it (see scripts/readme_blocks.py)"
                )
            blocks.append(_block(marker["body"], i + 1, heading, "\n".join(lines[i + 1 : end]) + "\n"))
            i = end
        i += 1
    return blocks


def _block(marker: str, line: int, heading: str, text: str) -> Block:
    if marker.startswith("skip:"):
        return Block(line, heading, "skip", text, reason=marker.removeprefix("skip:").strip())
    head, *options = (part.strip() for part in marker.split(";"))
    kind, _, rest = head.partition(" ")
    expects = []
    for option in options:
        key, _, value = option.partition(":")
        if key.strip() != "expect" or not value.strip():
            raise MarkerError(f"README.md:{line}: unknown marker option {option!r} (only `expect: TEXT`)")
        expects.append(value.strip())
    if kind in ("server", "client") and rest.strip():
        return Block(line, heading, kind, text, name=rest.strip(), expects=tuple(expects))
    if kind == "alone" and not rest.strip():
        return Block(line, heading, kind, text, expects=tuple(expects))
    raise MarkerError(f"README.md:{line}: marker {marker!r}: use server NAME, client NAME, alone or skip: REASON")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Outcome:
    block: Block
    ok: bool
    output: str
    why: str = ""


@dataclass
class Session:
    """A newcomer's checkout, terminals and servers, for one run of the README."""

    root: Path = ROOT
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="readme-run-")))
    servers: dict[str, Block] = field(default_factory=dict)
    server: subprocess.Popen[bytes] | None = None
    serving: str = ""

    def __post_init__(self) -> None:
        self.checkout = self.work / "checkout"
        self.checkout.mkdir()
        for entry in self.root.iterdir():
            if entry.name in (".git", "data") or entry.name in COPIED:
                continue
            (self.checkout / entry.name).symlink_to(entry)
        for name in COPIED:
            shutil.copytree(self.root / name, self.checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
        (self.work / "home").mkdir()
        self.env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED and not k.startswith("XDG_")}
        self.env |= {"HOME": str(self.work / "home"), "PORT": str(free_port()), "FHIR_PORT": str(free_port())}

    def run(self, block: Block) -> Outcome:
        if block.kind == "skip":
            return Outcome(block, True, "", f"skipped: {block.reason}")
        if block.kind == "server":
            self.servers[block.name] = block
            return self._serve(block)
        if block.kind == "client":
            if block.name not in self.servers:
                return Outcome(block, False, "", f"no server block named {block.name!r} comes before it")
            if self.serving != block.name:
                started = self._serve(self.servers[block.name])
                if not started.ok:
                    return Outcome(block, False, started.output, started.why)
        return self._terminal(block)

    def _serve(self, block: Block) -> Outcome:
        """Start the server block (after stopping the one running) and wait until it answers."""
        self.stop_server()
        log = self.work / f"server-{block.line}.log"
        with open(log, "wb") as out:
            self.server = subprocess.Popen(
                ["bash", "-e", "-c", block.text],
                cwd=self.checkout,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.serving = block.name
        deadline = time.monotonic() + SERVER_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                self.serving = ""
                return Outcome(block, False, log.read_text(errors="replace"), "the server exited")
            healthz = f"http://127.0.0.1:{self.env['PORT']}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(healthz, timeout=2) as answer:
                if answer.status == 200:
                    return Outcome(block, True, "")
            time.sleep(0.5)
        self.stop_server()
        return Outcome(block, False, log.read_text(errors="replace"), "the server did not answer /healthz")

    def _terminal(self, block: Block) -> Outcome:
        log = self.work / f"block-{block.line}.out"
        with open(log, "wb") as out:
            terminal = subprocess.Popen(
                ["bash", "-e", "-o", "pipefail", "-c", block.text],
                cwd=self.checkout,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with contextlib.suppress(subprocess.TimeoutExpired):
            terminal.wait(BLOCK_TIMEOUT)
        left_running = _group_alive(terminal.pid)
        _end_group(terminal)
        self._stop_fhir_servers()
        output = log.read_text(errors="replace")
        if terminal.returncode is None or terminal.returncode < 0:
            return Outcome(block, False, output, f"still running after {BLOCK_TIMEOUT:g} s")
        if terminal.returncode != 0:
            return Outcome(block, False, output, f"exit status {terminal.returncode}")
        if left_running:
            return Outcome(block, False, output, "left a process running: a pasted block must stop what it starts")
        missing = [text for text in block.expects if text not in output]
        if missing:
            return Outcome(block, False, output, f"not in the output: {missing}")
        return Outcome(block, True, output)

    def _stop_fhir_servers(self) -> None:
        """A block that failed between `fhir_server.py start` and `stop` leaves one running."""
        for pid_file in (self.checkout / "data" / "fhir-server").glob("*/server.pid"):
            subprocess.run(
                [
                    str(self.checkout / ".venv" / "bin" / "python"),
                    "scripts/fhir_server.py",
                    "stop",
                    "--port",
                    pid_file.parent.name,
                ],
                cwd=self.checkout,
                env=self.env,
                capture_output=True,
                timeout=60,
            )

    def stop_server(self) -> None:
        """Ctrl-C, as in the server's terminal: SIGINT to its process group."""
        if self.server is not None and self.server.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.server.pid, signal.SIGINT)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                _end_group(self.server, signal.SIGKILL)
        self.server, self.serving = None, ""

    def close(self) -> None:
        self.stop_server()
        self._stop_fhir_servers()
        shutil.rmtree(self.work, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _end_group(process: subprocess.Popen[str] | subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """End what a block left running in its own process group (it was started as its leader)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="list the blocks and how each runs")
    parser.add_argument("readme", nargs="?", type=Path, default=README)
    args = parser.parse_args(argv)
    blocks = parse(args.readme.read_text(encoding="utf-8"))
    if args.list:
        for block in blocks:
            print(block.label, f"({block.reason})" if block.reason else "")
        return 0
    session, failed = Session(), 0
    try:
        for block in blocks:
            outcome = session.run(block)
            failed += not outcome.ok
            print(f"{'ok  ' if outcome.ok else 'FAIL'} {block.label} {outcome.why}", flush=True)
            if not outcome.ok:
                print("    " + outcome.output[-3000:].replace("\n", "\n    "))
    finally:
        session.close()
    print(f"{len(blocks) - failed} of {len(blocks)} README blocks ran as printed (skipped ones included)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
