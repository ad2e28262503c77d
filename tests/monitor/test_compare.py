"""``monitor compare`` over a real log (SQLite and PostgreSQL): pairs by request id,
agreement with its Wilson interval, the disagreement matrix, latency, accuracy on
feedback labels, and the JSON and HTML report."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from tests.helpers import run_cli

from modelyard.errors import ModelyardError
from modelyard.monitor.compare import compare, wilson
from modelyard.monitor.feedback import Label, record_feedback
from modelyard.monitor.logstore import (
    create_log_engine,
    ensure_schema,
    latest_version,
    write_rows,
)


def test_wilson_interval_matches_the_textbook() -> None:
    # Wilson (1927) / Newcombe (1998), 95%: 8 of 10 -> 0.490 .. 0.943; 0 of 10 -> 0 .. 0.278
    assert wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert all(math.isnan(v) for v in wilson(0, 0))


def _row(
    t: float, version: str, request_id: str, label: str, latency: float, role: str | None = None
) -> tuple[object, ...]:
    """A log row; ``role`` None: as rows written before the role column existed."""
    summary = '{"x": 1.0}'
    return (
        t,
        "m",
        version,
        request_id,
        "image",
        label,
        0.9,
        latency,
        summary,
        "[]",
        None,
        role,
        None,
    )


def _fill(url: str) -> None:
    now = time.time()
    rows = []
    # 40 requests on main (v1, 10 ms); 30 of them also on the shadow (v2, 4 ms):
    # 24 agree, 6 disagree (4 x cat->dog, 2 x dog->eel)
    for i in range(40):
        label = "cat" if i % 2 else "dog"
        rows.append(_row(now - 100 + i, "1", f"r{i}", label, 0.010))
        if i < 30:
            other = label
            if i in (1, 3, 5, 7):
                other = "dog"
            elif i in (0, 2):
                other = "eel"
            rows.append(_row(now - 100 + i, "2", f"r{i}", other, 0.004))
    engine = create_log_engine(url)
    ensure_schema(engine)
    write_rows(engine, rows)
    # labels: all "cat" for r1, r3, r5, r7 -> v1 right on all 4, v2 wrong on all 4
    record_feedback(
        engine, "m", [Label(f"r{i}", "cat") for i in (1, 3, 5, 7)], ["cat", "dog", "eel"]
    )
    engine.dispose()


def test_compare_pairs_requests_by_id(log_url: str) -> None:
    _fill(log_url)
    result = compare("m", since="1h", db_url=log_url)
    assert (result.baseline, result.challenger, result.paired) == ("1", "2", 30)
    assert result.agreement == pytest.approx(24 / 30)
    assert result.agreement_ci == pytest.approx(wilson(24, 30))
    assert result.labels == ["cat", "dog", "eel"]
    assert result.matrix == [[11, 4, 0], [0, 13, 2], [0, 0, 0]]
    assert result.disagreements() == [("cat", "dog", 4), ("dog", "eel", 2)]
    assert result.latency["1"].p50_ms == pytest.approx(10.0)
    assert result.p50_difference_ms == pytest.approx(-6.0)
    assert {v: (s.n, s.accuracy) for v, s in result.accuracy.items()} == {
        "1": (4, 1.0),
        "2": (4, 0.0),
    }
    with pytest.raises(ModelyardError, match="no records of version 9"):
        compare("m", since="1h", db_url=log_url, versions=("1", "9"))


def test_compare_needs_two_versions(log_url: str) -> None:
    with pytest.raises(ModelyardError, match="compare needs two versions"):
        compare("m", since="1h", db_url=log_url)


@pytest.mark.slow  # the CLI in a subprocess
def test_the_cli_writes_json_and_an_html_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    _fill(url)
    out = tmp_path / "report"
    done = run_cli(
        "monitor", "compare", "m", "--since", "1h", "--db", url, "--json", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["paired"] == 30 and data["agreement"] == pytest.approx(0.8)
    assert data["disagreements"][0] == {"baseline": "cat", "challenger": "dog", "count": 4}
    page = (out / "report.html").read_text()
    assert "0.800" in page and 'class="diff">4<' in page
    assert json.loads((out / "compare.json").read_text())["paired"] == 30
    bad = run_cli("monitor", "compare", "m", "--db", url, "--versions", "1")
    assert bad.returncode == 2 and "--versions takes BASELINE,CHALLENGER" in bad.stderr


def test_shadow_rows_do_not_make_the_latest_version(log_url: str) -> None:
    """Rows without a role (an older server's): a request's second row is a shadow's."""
    _fill(log_url)  # v2 shadows v1: its rows come after v1's of the same request id
    engine = create_log_engine(log_url)
    try:
        write_rows(engine, [_row(time.time(), "1", "late", "cat", 0.01)])
        write_rows(engine, [_row(time.time() + 1, "2", "late", "cat", 0.004)])
        assert latest_version(engine, "m") == "1"
        write_rows(engine, [_row(time.time() + 2, "2", "new", "cat", 0.004)])
        assert latest_version(engine, "m") == "2"  # v2 answered a request itself
    finally:
        engine.dispose()


def test_a_reused_request_id_does_not_hide_the_served_version(log_url: str) -> None:
    """Rows that say their role: a client reusing a request id answered by v2 later
    does not make v2's answer look like a shadow's, and a shadow's row never counts."""
    engine = create_log_engine(log_url)
    ensure_schema(engine)
    now = time.time()
    try:
        write_rows(engine, [_row(now, "1", "same", "cat", 0.01, "main")])
        write_rows(engine, [_row(now + 1, "2", "same", "cat", 0.01, "main")])
        assert latest_version(engine, "m") == "2"
        write_rows(engine, [_row(now + 2, "3", "same", "cat", 0.01, "shadow")])
        assert latest_version(engine, "m") == "2"
        write_rows(engine, [_row(now + 3, "4", "fresh", "cat", 0.01, "canary")])
        assert latest_version(engine, "m") == "4"
    finally:
        engine.dispose()
