#!/usr/bin/env python3.11
"""Install and run a real FHIR R4 server (sekmet-fhir) for integration tests.

Standard library only: runs with any python3.11 and can be imported by the test session.

sekmet-fhir is a FastAPI + SQLite FHIR R4 server. Its dependency pins differ from ours, so it
lives in its own virtual environment (default: ``.fhir-server-venv`` at the repo root).

Facts taken from the installed package's source (sekmet-fhir 0.1.1):

* FHIR base is ``http://HOST:PORT/fhir`` (one catch-all route ``/fhir/{path}``).
  ``GET [base]/metadata`` answers without auth; everything else goes through ``server_auth``.
* ``POST [base]`` with a ``transaction`` (atomic, rolled back on any error) or ``batch`` Bundle.
  PUT entries keep their ids; POST entries get new UUIDs (urn:uuid fullUrls are rewritten).
* Inbound resources are validated structurally with fhir.resources R4B models
  (``validation.inbound: strict`` -> 400 OperationOutcome).
* Unknown search parameters are ignored with a warning entry (``search.mode = outcome``) unless the
  request carries ``Prefer: handling=strict`` (then 400).
* Quirks seen in probes: a search Bundle may carry an extra ``OperationOutcome`` entry
  (``search.mode = outcome``), so filter entries on ``search.mode == "match"``; paging links are
  absolute (``_count``/``_offset``) but compartment searches (``Patient/p1/Condition``) emit
  links WITHOUT the patient filter, so do not follow them; no terminology/binding checks
  (``status: "bogus"`` is accepted) and no referential integrity (dangling references are stored).

Usage as a module::

    from scripts.fhir_server import install, start
    server = start(port, workdir, token)     # installs on first use
    server.load(bundle)                      # transaction Bundle
    ... server.base_url ...
    server.stop()

Usage from a shell::

    python scripts/fhir_server.py install
    python scripts/fhir_server.py serve --port 8090 [--token T | --no-token] [--load bundle.json ...]
    python scripts/fhir_server.py start --port 8090 [--token T | --no-token] [--load bundle.json ...]
    python scripts/fhir_server.py stop --port 8090

``serve`` runs in the foreground until Ctrl-C; ``start`` returns once the server answers with
the bundles loaded and leaves it running (its files in data/fhir-server/PORT) until ``stop``.
``--no-token`` accepts calls without a bearer token, as the CDS Hooks sandbox makes them.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PACKAGE = "sekmet-fhir==0.1.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENV = REPO_ROOT / ".fhir-server-venv"
STAMP_NAME = ".sekmet-installed"
RUN_DIR = REPO_ROOT / "data" / "fhir-server"  # where `start` keeps a detached server's files
DEFAULT_TIMEOUT = 60.0
STOP_GRACE = 5.0

# The whole dependency tree of sekmet-fhir 0.1.1 as resolved when this harness was written;
# sekmet itself only gives lower bounds, so this keeps the test server reproducible.
CONSTRAINTS = """
annotated-doc==0.0.7
annotated-types==0.8.0
antlr4-python3-runtime==4.13.2
anyio==4.16.0
certifi==2026.10.19.post1
cffi==2.1.1
click==8.5.1
cryptography==50.0.2
Faker==40.63.0
fastapi==0.165.0
fhir.resources==8.3.0
fhir_core==1.1.12
fhirpathpy==2.2.4
h11==0.16.0
httpcore==1.0.9
httptools==0.9.0
httpx==0.28.1
idna==3.20
Jinja2==3.1.6
jsonpatch==1.48
jsonpointer==3.12
lxml==6.1.3
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
opentelemetry-api==1.45.2
pycparser==3.12
pydantic==2.14.4
pydantic_core==2.50.5
Pygments==2.21.0
PyJWT==2.15.1
python-dateutil==2.9.0.post0
python-dotenv==1.2.4
python-multipart==0.0.34
PyYAML==6.0.4
rich==15.0.0
shellingham==1.5.4
six==1.17.0
starlette==1.10.0
typer==0.29.2
typing-inspection==0.4.5
typing_extensions==4.16.0
uvicorn==0.54.0
uvloop==0.23.0
watchfiles==1.3.0
websockets==17.4
"""

_STARTED: list[FhirServer] = []


class FhirServerError(RuntimeError):
    """The FHIR server could not be installed, started or spoken to."""


# ----------------------------------------------------------------------------- install


def _venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def _stamp_text() -> str:
    digest = hashlib.sha256(CONSTRAINTS.strip().encode()).hexdigest()[:16]
    return f"{PACKAGE} constraints={digest}\n"


def install(venv_dir: Path = DEFAULT_VENV) -> Path:
    """Create ``venv_dir`` if needed, install sekmet-fhir into it; return the ``sekmet`` executable.

    Idempotent: a stamp file records what was installed, so later calls cost one stat().
    Concurrent callers (e.g. pytest-xdist workers) are serialised with a lock file.
    """
    venv_dir = Path(venv_dir).resolve()
    exe = venv_dir / "bin" / "sekmet"
    stamp = venv_dir / STAMP_NAME
    if exe.exists() and stamp.exists() and stamp.read_text() == _stamp_text():
        return exe
    venv_dir.mkdir(parents=True, exist_ok=True)  # `python -m venv` accepts an existing empty dir
    # the lock lives inside the (git-ignored) venv: no stray file at the repo root
    lock_path = venv_dir / ".install.lock"
    import fcntl

    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if exe.exists() and stamp.exists() and stamp.read_text() == _stamp_text():
                return exe
            if not _venv_python(venv_dir).exists():
                _run([sys.executable, "-m", "venv", str(venv_dir)], "create the venv")
            stamp.unlink(missing_ok=True)
            print(
                f"Installing {PACKAGE} into {venv_dir} (first use only; about 1-2 minutes)...",
                file=sys.stderr,
                flush=True,
            )
            cmd = [
                str(_venv_python(venv_dir)),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                PACKAGE,
            ]
            with tempfile.TemporaryDirectory() as td:
                if CONSTRAINTS.strip():
                    cfile = Path(td) / "constraints.txt"
                    cfile.write_text(CONSTRAINTS.strip() + "\n")
                    cmd += ["-c", str(cfile)]
                _run(cmd, f"pip install {PACKAGE}")
            if not exe.exists():
                raise FhirServerError(f"{PACKAGE} installed but {exe} is missing")
            stamp.write_text(_stamp_text())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return exe


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FhirServerError(
            f"Could not {what} (exit {proc.returncode}): {' '.join(cmd)}\n{(proc.stdout + proc.stderr)[-4000:]}"
        )


# ----------------------------------------------------------------------------- server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    """Nothing listens on the port. SO_REUSEADDR, as uvicorn binds: connections of a server
    stopped a moment ago linger in TIME_WAIT and must not count as the port being in use."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class FhirServer:
    """A running sekmet process that this module started."""

    def __init__(
        self,
        process: subprocess.Popen,
        port: int,
        token: str | None,
        workdir: Path,
        log_path: Path,
        settings_path: Path,
        db_path: Path,
    ):
        self.process = process
        self.pid = process.pid
        self.port = port
        self.token = token
        self.workdir = workdir
        self.log_path = log_path
        self.settings_path = settings_path
        self.db_path = db_path
        self.base_url = f"http://127.0.0.1:{port}/fhir"
        self.startup_seconds: float | None = None
        self.last_load_mode: str | None = None  # "transaction" or "put-each"

    def __repr__(self) -> str:
        return f"FhirServer(base_url={self.base_url!r}, pid={self.pid}, running={self.running})"

    def __enter__(self) -> FhirServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    # -- HTTP ---------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = "",
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, dict, Any]:
        """Send one request; return (status, headers, parsed JSON body or None).

        ``path`` is relative to base_url (``"Patient/p1"``) or an absolute URL.
        ``token=""`` uses the server's token (none for a ``--no-token`` server), ``token=None``
        sends no Authorization header.
        """
        url = path
        if not path.startswith(("http://", "https://")):
            url = f"{self.base_url}/{path.lstrip('/')}"
        h = {"Accept": "application/fhir+json"}
        token = self.token if token == "" else token
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/fhir+json"
        h.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, rh, raw = resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            status, rh, raw = e.code, dict(e.headers), e.read()
        parsed = None
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
        return status, rh, parsed

    def load(self, bundle: dict) -> dict:
        """Load fixtures: POST a transaction (or batch) Bundle; return the response Bundle.

        sekmet 0.1.1 supports transactions, so the PUT-each fallback only runs if the server
        answers the Bundle POST with 404/405/501. ``last_load_mode`` says which path was taken.
        """
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise FhirServerError("load() needs a Bundle resource")
        bundle = as_transaction(bundle)
        status, _, body = self.request("POST", "", bundle)
        if status == 200 and isinstance(body, dict) and body.get("type", "").endswith("-response"):
            failed = [
                e["response"]
                for e in body.get("entry", [])
                if not str(e.get("response", {}).get("status", "")).startswith("2")
            ]
            if failed:  # only possible for batch bundles; transactions fail whole
                raise FhirServerError(f"Bundle entries failed: {json.dumps(failed)[:4000]}")
            self.last_load_mode = "transaction"
            return body
        if status in (404, 405, 501):
            self.last_load_mode = "put-each"
            return self._put_each(bundle)
        raise FhirServerError(f"Loading the Bundle failed: HTTP {status}: {json.dumps(body)[:4000]}")

    def _put_each(self, bundle: dict) -> dict:
        entries = []
        for i, e in enumerate(bundle.get("entry", [])):
            res = e.get("resource") or {}
            if not res.get("resourceType") or not res.get("id"):
                raise FhirServerError(f"Entry {i}: PUT fallback needs resourceType and id")
            status, _, body = self.request("PUT", f"{res['resourceType']}/{res['id']}", res)
            if status not in (200, 201):
                raise FhirServerError(
                    f"PUT {res['resourceType']}/{res['id']} -> HTTP {status}: {json.dumps(body)[:2000]}"
                )
            entries.append({"resource": body, "response": {"status": str(status)}})
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}

    # -- lifecycle ----------------------------------------------------------

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"

    def rss_kib(self) -> int | None:
        """Resident memory of the server process (KiB), from /proc."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def stop(self) -> None:
        """SIGTERM the process (group) this object started; SIGKILL after 5 s. Idempotent."""
        if self in _STARTED:
            _STARTED.remove(self)
        if self.process.poll() is not None:
            return
        # start_new_session=True made the child the leader of its own process group (pgid == pid):
        # signalling that group reaches only the server and anything it spawned, never the caller.
        # The child is not reaped before we signal it, so the pid cannot have been reused.
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(STOP_GRACE)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


def as_transaction(bundle: dict) -> dict:
    """A collection (or searchset) Bundle as a transaction of PUTs that keep the ids."""
    if bundle.get("type") in ("transaction", "batch"):
        return bundle
    entries = [
        {
            "resource": e["resource"],
            "request": {"method": "PUT", "url": f"{e['resource']['resourceType']}/{e['resource']['id']}"},
        }
        for e in bundle.get("entry", [])
        if isinstance(e.get("resource"), dict)
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _settings(port: int, workdir: Path, token: str | None, db_path: Path) -> dict:
    return {
        "base_url": f"http://127.0.0.1:{port}/fhir",
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(workdir / "data"),
        "db_path": str(db_path),
        "own_private_key_path": str(workdir / "keys" / "sekmet_private.pem"),
        "simulator": {"enabled": False},  # no synthetic dispenses/results reacting to our writes
        # no token: sekmet's "none" scheme answers every call, as an unlaunched sandbox needs
        "server_auth": {"types": ["bearer"], "tokens": [token]} if token else {"types": ["none"]},
        "validation": {"inbound": "strict"},
        # traffic log, browsable at http://127.0.0.1:PORT/ui/traffic: handy when a test fails
        "log_inbound": True,
    }


def _set_pdeathsig() -> None:
    """In the child: get SIGTERM when the parent dies (Linux only; best effort)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(
    port: int,
    workdir: Path,
    token: str | None,
    *,
    venv_dir: Path = DEFAULT_VENV,
    timeout: float = DEFAULT_TIMEOUT,
    die_with_parent: bool = True,
) -> FhirServer:
    """Start sekmet on 127.0.0.1:``port`` with a fresh SQLite db in ``workdir``; wait for it.

    ``port=0`` picks a free port. ``token=None`` serves without auth. Installs the server first if
    needed. ``die_with_parent`` asks the kernel to SIGTERM the server when the thread that called
    start() exits (call it from the main thread, as pytest fixtures are). Raises FhirServerError,
    with the server log tail, on failure.
    """
    if token == "":
        raise FhirServerError("the bearer token is empty: give one, or None to serve without auth")
    exe = install(venv_dir)
    port = port or free_port()
    if not _port_free(port):
        raise FhirServerError(f"port {port} on 127.0.0.1 is already in use")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "sekmet.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(workdir / "data", ignore_errors=True)
    settings_path = workdir / "settings.yaml"
    # JSON is valid YAML, so the stdlib can write it.
    settings_path.write_text(json.dumps(_settings(port, workdir, token, db_path), indent=2) + "\n")
    log_path = workdir / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env["_TYPER_STANDARD_TRACEBACK"] = "1"  # plain tracebacks in server.log
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(exe), "serve", "-c", str(settings_path)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_set_pdeathsig if die_with_parent else None,
        )
    server = FhirServer(proc, port, token, workdir, log_path, settings_path, db_path)
    _STARTED.append(server)
    try:
        _wait_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    server.startup_seconds = time.monotonic() - t0
    return server


def _wait_ready(server: FhirServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise FhirServerError(
                f"FHIR server exited with code {code} during startup; log {server.log_path}:\n{server.log_tail()}"
            )
        try:
            status, _, body = server.request("GET", "metadata", token=None, timeout=2)
            is_cs = isinstance(body, dict) and body.get("resourceType") == "CapabilityStatement"
            # still alive: it was our process that answered, not a squatter on the port
            if status == 200 and is_cs and server.process.poll() is None:
                return
            last = f"HTTP {status}"
        except (OSError, urllib.error.URLError) as e:
            last = str(e)
        time.sleep(0.2)
    raise FhirServerError(
        f"FHIR server did not answer {server.base_url}/metadata "
        f"within {timeout:g}s "
        f"(last: {last}); log {server.log_path}:\n{server.log_tail()}"
    )


@atexit.register
def _stop_leftovers() -> None:
    for s in list(_STARTED):
        with contextlib.suppress(Exception):
            s.stop()


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("install", help=f"create the venv and pip install {PACKAGE}")
    pi.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    _server_arguments(
        sub.add_parser("serve", help="run the server in the foreground until Ctrl-C"), "default: a temporary directory"
    )
    _server_arguments(
        sub.add_parser(
            "start", help="start the server, wait until it answers with the bundles loaded, and leave it running"
        ),
        f"default: {RUN_DIR.relative_to(REPO_ROOT)}/PORT",
    )
    pstop = sub.add_parser("stop", help="stop a server that `start` left running")
    pstop.add_argument("--port", type=int, default=8090)
    pstop.add_argument("--workdir", type=Path, default=None, help="the one given to start, if any")
    a = p.parse_args(argv)
    commands = {"install": _install, "serve": _serve, "start": _start_detached, "stop": _stop_detached}
    try:
        return commands[a.cmd](a)
    except FhirServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _server_arguments(parser: argparse.ArgumentParser, workdir_help: str) -> None:
    parser.add_argument("--port", type=int, default=8090, help="default 8090")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument(
        "--token",
        default=os.environ.get("FHIR_SERVER_TOKEN", "dev-token"),
        help="the bearer token it accepts (default: $FHIR_SERVER_TOKEN or dev-token)",
    )
    auth.add_argument(
        "--no-token",
        dest="token",
        action="store_const",
        const=None,
        help="accept every call without a token (the CDS Hooks sandbox sends none)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help=workdir_help)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--load", type=Path, action="append", default=[], help="Bundle JSON file to load (repeatable)")


def _install(a: argparse.Namespace) -> int:
    print(install(a.venv))
    return 0


def _load_all(server: FhirServer, files: list[Path]) -> None:
    for f in files:
        server.load(json.loads(f.read_text()))
        print(f"loaded {f} ({server.last_load_mode})")


def _describe(server: FhirServer) -> str:
    auth = f"token {server.token}" if server.token else "no token needed"
    return (
        f"FHIR base {server.base_url}  {auth}  pid {server.pid}  log {server.log_path}  "
        f"(up in {server.startup_seconds:.1f}s)"
    )


def _serve(a: argparse.Namespace) -> int:
    tmp = None
    if a.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fhir-server-")
        a.workdir = Path(tmp.name)
    # Ctrl-C and SIGTERM both end the foreground loop through KeyboardInterrupt (explicitly set:
    # a shell's background job inherits SIGINT as ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server = start(a.port, a.workdir, a.token, venv_dir=a.venv)
    try:
        _load_all(server, a.load)
        print(f"{_describe(server)}; Ctrl-C stops it", flush=True)
        while server.running:
            time.sleep(0.5)
        print(f"server exited with code {server.process.returncode}\n{server.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
        if tmp:
            tmp.cleanup()


PID_FILE = "server.pid"


def _start_detached(a: argparse.Namespace) -> int:
    """Start, load, and return with the server still running: a README block can go on with the
    next command knowing the server answers."""
    if a.port == 0:
        raise FhirServerError("start needs a fixed --port (stop finds the server by it)")
    workdir = a.workdir or RUN_DIR / str(a.port)
    if _running_pid(workdir) is not None:
        raise FhirServerError(f"a server started here is still running: scripts/fhir_server.py stop --port {a.port}")
    server = start(a.port, workdir, a.token, venv_dir=a.venv, die_with_parent=False)
    try:
        _load_all(server, a.load)
    except BaseException:
        server.stop()
        raise
    (workdir / PID_FILE).write_text(f"{server.pid}\n")
    _STARTED.remove(server)  # it outlives this command: `stop` ends it
    print(f"{_describe(server)}; stop it with: scripts/fhir_server.py stop --port {a.port}", flush=True)
    return 0


def _stop_detached(a: argparse.Namespace) -> int:
    workdir = a.workdir or RUN_DIR / str(a.port)
    pid = _running_pid(workdir)
    if pid is None:
        print(f"no server started by `start` is running on port {a.port}")
        (workdir / PID_FILE).unlink(missing_ok=True)
        return 0
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    (workdir / PID_FILE).unlink(missing_ok=True)
    print(f"stopped the FHIR server on port {a.port} (pid {pid})")
    return 0


def _running_pid(workdir: Path) -> int | None:
    """The pid recorded by `start` in `workdir`, if that process still runs with this workdir's
    settings (a pid reused by another program is never signalled)."""
    try:
        pid = int((workdir / PID_FILE).read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    settings = str((workdir / "settings.yaml").resolve()).encode()
    return pid if settings in cmdline.split(b"\0") and _alive(pid) else None


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its new parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


if __name__ == "__main__":
    sys.exit(main())
