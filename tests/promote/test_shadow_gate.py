"""The shadow-evidence checks: arithmetic in the gate, and the evidence read from a
real prediction log (SQLite)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from tests.promote.test_gate import failed, figures

from modelyard.config.schema import PromoteConfig
from modelyard.monitor.compare import wilson
from modelyard.monitor.logstore import create_log_engine, ensure_schema, write_rows
from modelyard.promote.gate import ShadowEvidence, decide
from modelyard.promote.shadow import needs_shadow_evidence, shadow_evidence

GATE = PromoteConfig(min_shadow_requests=100, min_shadow_agreement=0.95)


def _decide(evidence: ShadowEvidence | None, cfg: PromoteConfig = GATE):  # type: ignore[no-untyped-def]
    return decide("m", "production", figures("2"), figures("1"), cfg, shadow=evidence)


def test_enough_agreeing_shadow_requests_pass() -> None:
    decision = _decide(ShadowEvidence(500, 0.97, 0.95, 0.98))
    assert decision.passed
    assert any("shadow agreement 0.9700" in c.detail for c in decision.checks)


def test_a_point_above_the_bar_with_a_lower_bound_below_it_is_refused() -> None:
    """19 agreements in 20 pairs: the point (0.95) meets the bar, its interval's low
    end (0.76) does not; the refusal says the point, the interval and the bound."""
    low, high = wilson(19, 20)
    decision = _decide(ShadowEvidence(20, 0.95, low, high), PromoteConfig(min_shadow_agreement=0.9))
    assert not decision.passed and failed(decision) == ["shadow_agreement"]
    detail = next(c.detail for c in decision.checks if c.name == "shadow_agreement")
    assert f"0.9500, 95% Wilson interval {low:.4f}-{high:.4f}, lower bound {low:.4f}" in detail
    assert "need a lower bound of at least 0.9000" in detail
    lots = wilson(1900, 2000)  # the same point, with a hundred times the evidence
    assert _decide(
        ShadowEvidence(2000, 0.95, *lots), PromoteConfig(min_shadow_agreement=0.9)
    ).passed


@pytest.mark.parametrize(
    ("evidence", "refused"),
    [
        (ShadowEvidence(50, 0.99, 0.96, 1.0), ["shadow_requests"]),
        (ShadowEvidence(500, 0.90, 0.87, 0.92), ["shadow_agreement"]),
        (ShadowEvidence(0, math.nan, math.nan, math.nan), ["shadow_requests", "shadow_agreement"]),
    ],
)
def test_too_little_or_disagreeing_evidence_refuses(
    evidence: ShadowEvidence, refused: list[str]
) -> None:
    decision = _decide(evidence)
    assert not decision.passed and failed(decision) == refused
    assert "shadow" in decision.reason


def test_no_evidence_asked_by_default() -> None:
    assert not needs_shadow_evidence(PromoteConfig())
    assert needs_shadow_evidence(PromoteConfig(min_shadow_agreement=0.9))
    assert [c.name for c in _decide(None, PromoteConfig()).checks if "shadow" in c.name] == []


def test_evidence_is_read_from_the_log(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    now = time.time()
    rows = []
    for i in range(20):
        rows.append(
            (now - 60, "m", "1", f"r{i}", "image", "a", 0.9, 0.01, "{}", "[]", None, "main", None)
        )
        label = "a" if i < 18 else "b"
        rows.append(
            (
                now - 60,
                "m",
                "2",
                f"r{i}",
                "image",
                label,
                0.9,
                0.01,
                "{}",
                "[]",
                None,
                "shadow",
                None,
            )
        )
    engine = create_log_engine(url)
    ensure_schema(engine)
    write_rows(engine, rows)
    engine.dispose()
    cfg = PromoteConfig(min_shadow_requests=10, prediction_log=url, shadow_since="1h")
    found = shadow_evidence("m", "1", "2", cfg)
    assert (found.paired, found.agreement) == (20, 0.9)
    assert found.low < 0.9 < found.high
    none = shadow_evidence("m", "1", "7", cfg)  # never shadowed: zero evidence
    assert none.paired == 0
