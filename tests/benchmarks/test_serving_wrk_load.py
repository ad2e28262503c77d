"""Reading wrk's --latency report (benchmarks/serving/wrk_load.py)."""

from __future__ import annotations

import pytest
from benchmarks.serving.wrk_load import parse_report

ANSWERED = """Running 1s test @ http://127.0.0.1:18198/v2/models/digits-cnn/infer
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.18ms    2.57ms  27.92ms   84.24%
    Req/Sec     6.34k     1.54k    7.93k    60.00%
  Latency Distribution
     50%  842.00us
     75%    5.70ms
     90%    8.28ms
     99%    1.03s
  6318 requests in 1.01s, 9.56MB read
Requests/sec:   6261.67
Transfer/sec:      9.48MB
"""

REFUSED = """Running 1s test @ http://127.0.0.1:18198/v2/models/nope/infer
  1 threads and 32 connections
  Latency Distribution
     50%    2.26ms
     75%    3.53ms
     90%    5.58ms
     99%    8.77ms
  11048 requests in 1.00s, 2.19MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 11048
Requests/sec:  11013.67
Transfer/sec:      2.18MB
"""


def test_percentiles_are_read_in_milliseconds_whatever_unit_wrk_chose() -> None:
    found = parse_report(ANSWERED)
    assert found["requests"] == 6318
    assert found["throughput"] == pytest.approx(6261.67)
    assert found["p50_ms"] == pytest.approx(0.842)
    assert found["p99_ms"] == pytest.approx(1030.0)
    assert found["errors"] == 0


def test_refused_answers_and_socket_errors_are_errors() -> None:
    found = parse_report(REFUSED)
    assert found["p99_ms"] == pytest.approx(8.77)
    assert found["errors"] == 11048 + 3 + 2


def test_a_report_without_latencies_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot read"):
        parse_report(ANSWERED.replace("     99%    1.03s\n", ""))
