"""The gate's rules on numbers alone: each check passes and fails where it should."""

from __future__ import annotations

import dataclasses

import pytest

from modelyard.config.schema import PromoteConfig
from modelyard.promote.gate import ModelFigures, decide


def figures(version: str = "2", score: float = 0.9, **changes: object) -> ModelFigures:
    base = ModelFigures(
        version=version,
        score=score,
        accuracy=score,
        macro_f1=score,
        recalls={"a": 0.9, "b": 0.9},
        latency_ms=5.0,
        size_mb=1.0,
        parity_max_abs_diff=1e-7,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def failed(decision) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.name for c in decision.checks if not c.passed]


def test_without_a_champion_only_absolute_thresholds_apply() -> None:
    decision = decide("m", "staging", figures(), None, PromoteConfig())
    assert [c.name for c in decision.checks] == [
        "onnx_parity",
        "min_score",
        "min_class_recall",
        "latency",
        "size",
    ]
    assert decision.outcome == "passed" and decision.reason.endswith("(no champion)")


@pytest.mark.parametrize(
    ("challenger", "settings", "check", "says"),
    [
        (figures(parity_max_abs_diff=None), {}, "onnx_parity", "records no ONNX parity"),
        (figures(parity_max_abs_diff=1e-3), {}, "onnx_parity", "max |dp| 1.00e-03"),
        (figures(score=0.4), {}, "min_score", "macro_f1 0.4000 (floor 0.5000)"),
        (figures(recalls={"a": 0.9, "b": 0.2}), {"min_class_recall": 0.5}, "min_class", "'b'"),
        (figures(latency_ms=150.0), {}, "latency", "150.00 ms per batch of 32 (budget 100"),
        (figures(size_mb=80.0), {"max_size_mb": 50.0}, "size", "size 80.00 MB (budget 50 MB)"),
    ],
)
def test_absolute_checks_refuse(
    challenger: ModelFigures, settings: dict[str, float], check: str, says: str
) -> None:
    decision = decide("m", "production", challenger, None, PromoteConfig(**settings))
    assert failed(decision) == [next(c.name for c in decision.checks if c.name.startswith(check))]
    assert decision.outcome == "refused" and says in decision.reason


def test_the_challenger_must_beat_the_champion_by_the_margin() -> None:
    champion = figures("1", 0.90)
    cfg = PromoteConfig(min_improvement=0.01)
    assert failed(decide("m", "staging", figures("2", 0.905), champion, cfg)) == ["improvement"]
    assert decide("m", "staging", figures("2", 0.91), champion, cfg).passed
    tie = decide("m", "staging", figures("2", 0.90), champion, PromoteConfig())
    assert tie.passed, "a margin of 0 lets a tie through"


def test_a_collapsed_class_refuses_even_a_better_average() -> None:
    champion = figures("1", 0.80, recalls={"a": 0.80, "b": 0.80})
    challenger = figures("2", 0.85, recalls={"a": 0.99, "b": 0.70})
    decision = decide("m", "staging", challenger, champion, PromoteConfig(max_recall_drop=0.05))
    assert failed(decision) == ["recall_drop"]
    assert "largest class recall drop +0.1000 for 'b' (limit 0.0500)" in decision.reason


def test_a_champion_with_other_labels_cannot_be_compared() -> None:
    champion = dataclasses.replace(figures("1"), labels_match=False)
    assert failed(decide("m", "staging", figures(), champion, PromoteConfig())) == ["same_labels"]


def test_force_is_recorded_and_does_not_hide_the_reason() -> None:
    decision = decide("m", "staging", figures(score=0.1), None, PromoteConfig(), force=True)
    assert decision.outcome == "forced" and decision.forced
    assert decision.reason.startswith("forced past: macro_f1 0.1000")
    assert decision.to_dict()["outcome"] == "forced"


def test_a_multiply_add_budget_is_checked_only_when_set() -> None:
    unset = decide("m", "staging", figures(macs=5e6), None, PromoteConfig())
    assert "macs" not in [c.name for c in unset.checks]
    within = decide("m", "staging", figures(macs=5e6), None, PromoteConfig(max_macs=5e6))
    assert within.passed and any(c.name == "macs" for c in within.checks)


@pytest.mark.parametrize(
    ("macs", "says"),
    [
        (29_000_000.0, "multiply-adds 29,000,000 per example (budget 2,000,000)"),
        (None, "records no cost report"),
    ],
)
def test_a_multiply_add_budget_refuses(macs: float | None, says: str) -> None:
    decision = decide("m", "production", figures(macs=macs), None, PromoteConfig(max_macs=2e6))
    assert failed(decision) == ["macs"]
    assert decision.outcome == "refused" and says in decision.reason
