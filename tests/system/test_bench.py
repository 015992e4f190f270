"""`make bench` measures what it says: wrk's report read right (a canned report and real wrk),
wrk's script sending every body of a chart and a fresh token per call, a mix of charts that no
byte-keyed cache could serve twice, every server answering every chart 200 (ours with cards,
the bare-Flask peer), and medians and ratios that keep one stalled round from deciding.

HealthChain's peer is left to `make bench`: its venv takes about a minute to build."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.charts import charts, distinct_mix, ndjson, prefetched, request_body
from bench.run import (
    Server,
    bare_flask,
    ensure_wrk,
    measuring_window,
    ours_as_make_run,
    parse,
    preflight,
    ratio,
    running,
    summarise,
    wrk,
    wrk_script,
)
from tests.support.servers import serving_in_a_thread

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:40123
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    48.10ms    9.33ms 121.05ms   80.12%
    Req/Sec   208.10     21.44   250.00     72.00%
  Latency Distribution
     50%   46.92ms
     75%   51.30ms
     90%   58.77ms
     99%  101.20ms
  1041 requests in 5.01s, 6.12MB read
  Non-2xx or 3xx responses: 3
Requests/sec:    207.78
Transfer/sec:      1.22MB
"""


def test_wrk_report_is_read_into_milliseconds_rate_and_errors() -> None:
    assert parse(WRK_OUTPUT) == {"p50_ms": 46.92, "p99_ms": 101.2, "rps": 207.8, "requests": 1041, "errors": 3}
    slow = WRK_OUTPUT.replace("99%  101.20ms", "99%    1.20s").replace("50%   46.92ms", "50%  900.00us")
    assert (parse(slow)["p50_ms"], parse(slow)["p99_ms"]) == (0.9, 1200.0)


def test_socket_errors_count_as_errors() -> None:
    out = WRK_OUTPUT.replace(
        "  Non-2xx or 3xx responses: 3\n", "  Socket errors: connect 0, read 2, write 0, timeout 5\n"
    )
    assert parse(out)["errors"] == 7


# --- real wrk against a server that records what it was sent --------------------------------


class Recorder(BaseHTTPRequestHandler):
    """Answers 200 `{"cards": []}`, or 500 to a body holding "fail"; records bodies and tokens."""

    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    bodies: Counter[bytes] = Counter()
    tokens: Counter[str] = Counter()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.bodies[body] += 1
        Recorder.tokens[self.headers.get("Authorization", "")] += 1
        answer = b'{"cards": []}'
        self.send_response(500 if b"fail" in body else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    Recorder.bodies.clear()
    Recorder.tokens.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    with serving_in_a_thread(server):
        yield f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def wrk_binary() -> str:
    if shutil.which("wrk") is None and shutil.which("apt-get") is None:
        pytest.skip("wrk is not installed and cannot be (no apt-get)")
    return ensure_wrk()  # as `make bench` does: Debian's package, installed when run as root


def test_wrk_sends_every_body_of_a_chart_and_each_token_in_turn(recorder: str, wrk_binary: str, tmp_path: Path) -> None:
    bodies = [{"hook": "patient-view", "n": n} for n in range(5)]
    (tmp_path / "bodies.ndjson").write_bytes(ndjson(bodies))
    tokens = [f"token-{n}" for n in range(7)]
    script = wrk_script(tmp_path, "t", "/cds-services/x", tmp_path / "bodies.ndjson", tokens)
    figures = wrk(wrk_binary, recorder, script, 1, 1)
    assert set(Recorder.bodies) == {json.dumps(b, separators=(",", ":")).encode() for b in bodies}
    assert set(Recorder.tokens) == {f"Bearer {t}" for t in tokens}
    assert figures["errors"] == 0 and 0 < figures["requests"] <= sum(Recorder.bodies.values())


def test_a_non_2xx_answer_in_a_real_wrk_run_counts_as_an_error(recorder: str, wrk_binary: str, tmp_path: Path) -> None:
    (tmp_path / "bodies.ndjson").write_bytes(ndjson([{"n": 1}, {"n": "fail"}]))
    script = wrk_script(tmp_path, "t", "/cds-services/x", tmp_path / "bodies.ndjson", [])
    figures = wrk(wrk_binary, recorder, script, 1, 1)
    assert Recorder.tokens.keys() == {""}  # no token: no Authorization header
    assert figures["errors"] == pytest.approx(figures["requests"] / 2, abs=2)


# --- the charts ---------------------------------------------------------------------------


def canonical(resource: dict[str, Any]) -> str:
    return json.dumps(resource, sort_keys=True)


def test_no_resource_of_the_mix_is_byte_for_byte_in_another_body() -> None:
    mix = distinct_mix()
    assert len(mix) >= 200
    everywhere = Counter(canonical(r) for body in mix for r in prefetched(body))
    assert everywhere and max(everywhere.values()) == 1
    originals = {canonical(r) for name in ("typical-record", "boxcar-scars") for r in prefetched(request_body(name))}
    assert not originals & everywhere.keys()
    assert len({body["hookInstance"] for body in mix}) == len(mix)


def test_each_copy_in_the_mix_refers_to_its_own_patient() -> None:
    for body in distinct_mix(copies=2):
        patient = f"Patient/{body['context']['patientId']}"
        assert body["prefetch"]["patient"]["id"] == body["context"]["patientId"]
        subjects = {r["subject"]["reference"] for r in prefetched(body) if "subject" in r}
        assert subjects <= {patient}, (patient, subjects)


# --- the servers answer every chart -----------------------------------------------------------


@pytest.fixture(scope="module")
def bench_charts() -> dict[str, list[dict[str, Any]]]:
    return charts()


def test_the_bare_flask_peer_answers_every_chart_200_with_no_cards(
    tmp_path: Path, bench_charts: dict[str, list[dict[str, Any]]]
) -> None:
    with running(lambda: bare_flask(tmp_path)) as peer:
        server = Server("bare-flask", "bare Flask", peer.base, "/cds-services/bench")
        preflight(server, bench_charts)
        assert requests.post(server.url, json=bench_charts["typical"][0], timeout=10).json() == {"cards": []}
        assert requests.post(server.url, data="{not json", timeout=10).status_code == 400


def test_ours_as_make_run_answers_every_chart_and_a_copy_as_its_original(
    tmp_path: Path, bench_charts: dict[str, list[dict[str, Any]]]
) -> None:
    with running(lambda: ours_as_make_run(tmp_path)) as ours:
        server = Server("ours", "ours (make run)", ours.base, "/cds-services/acne-scar-treatment")
        preflight(server, bench_charts, cards_on="typical")  # RuntimeError on any non-200 or no card

        def summaries(body: dict[str, Any]) -> list[str]:
            return [card["summary"] for card in requests.post(server.url, json=body, timeout=30).json()["cards"]]

        original, copy = request_body("typical-record"), distinct_mix(copies=1)
        copied = next(body for body in copy if body["context"]["patientId"].startswith("typical-record-"))
        assert summaries(copied) == summaries(original) != []


# --- medians and ratios -----------------------------------------------------------------------


def round_(p50: float, p99: float, rps: float) -> dict[str, float]:
    return {"p50_ms": p50, "p99_ms": p99, "rps": rps, "requests": 100, "errors": 0}


def test_a_stalled_round_does_not_decide_the_result() -> None:
    latency = [round_(10, 14, 100), round_(11, 15, 95), round_(40, 200, 25)]  # round 3 stalled
    throughput = [round_(90, 120, 110), round_(95, 130, 105), round_(300, 900, 30)]
    summary = summarise({1: latency, 10: throughput})
    assert (summary["c1_p50_ms"], summary["c1_p99_ms"], summary["c10_rps"]) == (11, 15, 105)
    assert summary["requests"] == 600 and summary["errors"] == 0


def test_ratios_compare_each_round_with_the_same_round_of_the_other_server() -> None:
    # The machine is twice as slow in round 2: both sides move, the ratio does not.
    bare = [round_(1, 2, 1000), round_(2, 4, 500), round_(1, 2, 1000)]
    ours = [round_(10, 20, 250), round_(20, 40, 125), round_(10, 20, 250)]
    assert ratio(ours, bare, "rps") == 0.25
    assert ratio(ours, bare, "p50_ms") == 10


def test_a_slow_server_is_measured_long_enough_to_answer_forty_calls() -> None:
    assert measuring_window(3, 300.0) == 3  # fast: the default window
    assert measuring_window(3, 5.5) == 8  # HealthChain on the large chart: 40 calls take 8 s
    assert measuring_window(3, 0.0) == 12  # nothing answered in the warm-up: the longest window
