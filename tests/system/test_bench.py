"""`make bench` reports what wrk measured: its parser, and the median-of-rounds summary that
keeps one stalled round from deciding the result."""

from __future__ import annotations

from bench.run import parse, summarise

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


def round_(p50: float, p99: float, rps: float) -> dict[str, float]:
    return {"p50_ms": p50, "p99_ms": p99, "rps": rps, "requests": 100, "errors": 0}


def test_a_stalled_round_does_not_decide_the_result() -> None:
    baseline = [round_(20, 30, 500), round_(20, 30, 500), round_(60, 200, 150)]  # round 3 stalled
    typical = [round_(50, 70, 200), round_(52, 75, 190), round_(150, 400, 60)]
    summary = summarise(typical, baseline)
    assert (summary["p50_ms"], summary["p99_ms"], summary["rps"]) == (52, 75, 190)
    assert summary["requests"] == 300 and summary["errors"] == 0


def test_ratios_compare_each_round_with_its_own_baseline() -> None:
    # The machine is twice as slow in round 2: both sides move, the ratio does not.
    baseline = [round_(20, 30, 500), round_(40, 60, 250), round_(20, 30, 500)]
    typical = [round_(50, 75, 200), round_(100, 150, 100), round_(50, 75, 200)]
    summary = summarise(typical, baseline)
    assert (summary["p50_vs_baseline"], summary["p99_vs_baseline"], summary["rps_vs_baseline"]) == (2.5, 2.5, 0.4)
