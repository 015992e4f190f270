"""Abuse of the HTTP API over a real gunicorn: what depends on the transport (chunked bodies,
lying Content-Length, oversized headers, stalled bodies, gunicorn's own error pages). Every
answer is JSON `{"error": ..., "message": ...}` naming the problem (tests/service/test_abuse.py
has the rest, on the Flask test client).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.fhir import icepick_scar
from tests.support.hooks import SERVICE_URL, hook_request
from tests.support.servers import Gunicorn, serving

JSON = "application/json"

# ---------------------------------------------------------------------------------------------
# Over a real gunicorn: what depends on the transport

LIMIT = 300_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    yield from serving(
        tmp_path_factory.mktemp("abuse"), LOG_LEVEL="WARNING", MAX_BODY_BYTES=str(LIMIT), GUNICORN_TIMEOUT="3"
    )


def body() -> dict[str, Any]:
    """A valid patient-view request for patient p1 with ice-pick scars."""
    return hook_request(icepick_scar())


def raw_http(server: Gunicorn, request: bytes, timeout: float = 20) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, content = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, content


def http_request(head: str, content: bytes = b"") -> bytes:
    return (f"{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").encode("latin-1") + content


def assert_json_error(status: int, headers: dict[str, str], content: bytes, expected: int, *named: str) -> None:
    assert status == expected, (status, content[:500])
    assert headers.get("content-type", "").startswith(JSON), (headers, content[:500])
    answer = json.loads(content)
    assert set(answer) >= {"error", "message"}, answer
    for word in named:
        assert word in json.dumps(answer, ensure_ascii=False), (word, answer)


def chunks(data: bytes, size: int = 16_384) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_gunicorn_answers_a_small_chunked_body(server: Gunicorn) -> None:
    response = requests.post(
        server.base + SERVICE_URL, data=chunks(json.dumps(body()).encode()), headers={"Content-Type": JSON}, timeout=20
    )
    assert response.status_code == 200 and len(response.json()["cards"]) == 1


def test_gunicorn_answers_deep_nesting_with_400(server: Gunicorn) -> None:
    response = requests.post(
        server.base + SERVICE_URL, data="[" * 100_000 + "]" * 100_000, headers={"Content-Type": JSON}, timeout=20
    )
    assert response.status_code == 400 and "depth limit" in response.json()["message"]
    assert requests.get(server.base + "/healthz", timeout=5).json() == {"status": "ok"}


def test_gunicorn_answers_invalid_utf8_with_400(server: Gunicorn) -> None:
    response = requests.post(
        server.base + SERVICE_URL, data=b'{"hook": "\xff"}', headers={"Content-Type": JSON}, timeout=20
    )
    assert response.status_code == 400 and "UTF-8" in response.json()["message"]


def test_gunicorn_answers_a_body_over_the_limit_with_413(server: Gunicorn) -> None:
    response = requests.post(
        server.base + SERVICE_URL, data=b" " * (LIMIT + 1), headers={"Content-Type": JSON}, timeout=20
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": "payload-too-large",
        "message": f"The body is larger than the limit of {LIMIT} bytes.",
    }


def test_a_chunked_body_over_the_limit_is_413(server: Gunicorn) -> None:
    data = json.dumps(body()).encode()[:-1] + b" " * LIMIT + b"}"
    response = requests.post(server.base + SERVICE_URL, data=chunks(data), headers={"Content-Type": JSON}, timeout=20)
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"] == "payload-too-large"


def test_a_chunked_body_over_the_limit_is_never_answered_from_its_first_part(server: Gunicorn) -> None:
    data = json.dumps(body()).encode()
    data += b" " * (LIMIT - len(data)) + b"this is not JSON " * 6000
    response = requests.post(server.base + SERVICE_URL, data=chunks(data), headers={"Content-Type": JSON}, timeout=20)
    assert response.status_code == 413, response.text[:300]


def test_malformed_chunked_encoding_is_400(server: Gunicorn) -> None:
    request = http_request(
        f"POST {SERVICE_URL} HTTP/1.1\r\nContent-Type: {JSON}\r\nTransfer-Encoding: chunked", b"zz\r\n{}\r\n0\r\n\r\n"
    )
    assert_json_error(*raw_http(server, request), 400)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (
            http_request(
                f"POST {SERVICE_URL} HTTP/1.1\r\nContent-Type: {JSON}\r\nContent-Length: 2\r\nX-Padding: {'a' * 9000}",
                b"{}",
            ),
            431,
        ),
        (http_request(f"GET /cds-services?{'a' * 5000} HTTP/1.1"), 414),
        (http_request(f"POST {SERVICE_URL} HTTP/1.1\r\nContent-Type: {JSON}\r\nContent-Length: abc", b"{}"), 400),
        (
            http_request(
                f"POST {SERVICE_URL} HTTP/1.1\r\nContent-Type: {JSON}\r\nContent-Length: 2\r\n"
                "Transfer-Encoding: chunked",
                b"2\r\n{}\r\n0\r\n\r\n",
            ),
            400,
        ),
    ],
    ids=["header-too-large", "request-line-too-long", "content-length-not-a-number", "content-length-and-chunked"],
)
def test_gunicorn_rejects_malformed_http_with_json(server: Gunicorn, request_bytes: bytes, status: int) -> None:
    assert_json_error(*raw_http(server, request_bytes), status)


def test_a_body_shorter_than_its_content_length_is_408_not_a_killed_worker(server: Gunicorn) -> None:
    started = time.monotonic()
    request = http_request(f"POST {SERVICE_URL} HTTP/1.1\r\nContent-Type: {JSON}\r\nContent-Length: 1000", b"{}")
    result = raw_http(server, request)
    assert time.monotonic() - started < 10
    assert_json_error(*result, 408)


def test_a_body_shorter_than_its_content_length_then_closed_is_400(server: Gunicorn) -> None:
    """The client gives up (half-closes): the truncated body is not valid JSON."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(
            http_request(
                f"POST {SERVICE_URL} HTTP/1.1\r\nContent-Type: {JSON}\r\nContent-Length: 1000",
                b'{"hook": "patient-view"',
            )
        )
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.split()[1] == b"400", received[:500]
    assert b'"error":"invalid-request"' in rest


def test_the_server_still_answers_after_the_abuse(server: Gunicorn) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            response = requests.post(server.base + SERVICE_URL, json=body(), timeout=10)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert response.status_code == 200 and len(response.json()["cards"]) == 1
