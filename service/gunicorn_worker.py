"""The gunicorn worker: gunicorn's sync worker, with two changes a CDS service needs.

1. A client that stops sending mid-request cannot hold a worker: every client socket gets a
   read timeout (CLIENT_TIMEOUT seconds, default 5, and at most half the worker timeout, so
   the socket gives up before gunicorn kills the worker; see Settings); the app answers a
   stalled body 408.
2. Requests gunicorn refuses itself (request line or header too long, a bad Content-Length,
   Content-Length with chunked encoding, a broken chunk) are answered in the service's JSON
   error shape, not gunicorn's HTML page.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

from service.errors import error_body
from service.settings import Settings


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's util.write_error, in the service's error shape (service.errors.error_body)."""
    body = json.dumps(error_body(reason.lower().replace(" ", "-"), mesg or reason)).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    util.write_nonblock(sock, head + body)


class JsonSyncWorker(SyncWorker):
    """gunicorn's sync worker with client read timeouts and JSON error pages."""

    def init_process(self) -> None:
        # gunicorn writes its own error pages through this module function; replace it in this
        # worker process only.
        util.write_error = write_json_error
        self.client_timeout = min(Settings.from_env().client_timeout, self.cfg.timeout / 2)
        super().init_process()

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        client.settimeout(self.client_timeout)
        super().handle(listener, client, addr)
