"""The promotion gate as plain arithmetic: figures of two models in, checks out.

No I/O here, so every rule is tested on numbers alone; :mod:`.measure` produces
the figures and :mod:`.run` records the decision and moves the alias.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.config.schema import PromoteConfig

PASSED, REFUSED, FORCED = "passed", "refused", "forced"


@dataclass(frozen=True)
class ModelFigures:
    """What the gate knows about one model version, measured on the same data."""

    version: str
    score: float
    """The configured metric (``promote.metric``)."""
    accuracy: float
    macro_f1: float
    recalls: dict[str, float]
    """Recall of every class, by label."""
    latency_ms: float
    """Median ONNX Runtime time for one batch of ``promote.latency_batch_size`` rows."""
    size_mb: float
    """The ONNX graph on disk, in MB."""
    parity_max_abs_diff: float | None
    """Largest torch vs ONNX Runtime probability difference recorded in bundle.json."""
    labels_match: bool = True
    """False when the model predicts other labels than the challenger."""
    macs: float | None = None
    """Multiply-adds per example from bundle.json's cost report; None when absent."""


@dataclass(frozen=True)
class ShadowEvidence:
    """What the prediction log says of the challenger run in shadow of the champion."""

    paired: int
    """Requests both answered (logged under one request id)."""
    agreement: float
    """Share of them on which the two agreed (NaN when none)."""
    low: float
    high: float
    """The agreement's 95% Wilson interval."""


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Decision:
    model: str
    target: str
    metric: str
    challenger: ModelFigures
    champion: ModelFigures | None
    checks: list[Check] = field(default_factory=list)
    forced: bool = False

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def outcome(self) -> str:
        if self.passed:
            return PASSED
        return FORCED if self.forced else REFUSED

    @property
    def reason(self) -> str:
        failed = [c.detail for c in self.checks if not c.passed]
        if not failed:
            against = f"champion v{self.champion.version}" if self.champion else "no champion"
            return f"all {len(self.checks)} checks passed ({against})"
        prefix = "forced past: " if self.forced else ""
        return prefix + "; ".join(failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "target": self.target,
            "metric": self.metric,
            "outcome": self.outcome,
            "reason": self.reason,
            "forced": self.forced,
            "challenger": asdict(self.challenger),
            "champion": asdict(self.champion) if self.champion else None,
            "checks": [asdict(c) for c in self.checks],
        }


def _absolute(challenger: ModelFigures, metric: str, cfg: PromoteConfig) -> list[Check]:
    parity = challenger.parity_max_abs_diff
    worst_class = min(challenger.recalls, key=challenger.recalls.__getitem__)
    worst = challenger.recalls[worst_class]
    return [
        Check(
            "onnx_parity",
            parity is not None and parity <= cfg.parity_atol,
            "bundle.json records no ONNX parity figures"
            if parity is None
            else f"ONNX parity max |dp| {parity:.2e} (limit {cfg.parity_atol:.0e})",
        ),
        Check(
            "min_score",
            challenger.score >= cfg.min_score,
            f"{metric} {challenger.score:.4f} (floor {cfg.min_score:.4f})",
        ),
        Check(
            "min_class_recall",
            worst >= cfg.min_class_recall,
            f"lowest class recall {worst:.4f} for '{worst_class}' "
            f"(floor {cfg.min_class_recall:.4f})",
        ),
        Check(
            "latency",
            challenger.latency_ms <= cfg.max_latency_ms,
            f"latency {challenger.latency_ms:.2f} ms per batch of {cfg.latency_batch_size} "
            f"(budget {cfg.max_latency_ms:g} ms)",
        ),
        Check(
            "size",
            challenger.size_mb <= cfg.max_size_mb,
            f"size {challenger.size_mb:.2f} MB (budget {cfg.max_size_mb:g} MB)",
        ),
        *_macs(challenger, cfg),
    ]


def _macs(challenger: ModelFigures, cfg: PromoteConfig) -> list[Check]:
    """The multiply-add budget, checked only when one is set (``promote.max_macs``)."""
    if cfg.max_macs <= 0:
        return []
    macs = challenger.macs
    return [
        Check(
            "macs",
            macs is not None and macs <= cfg.max_macs,
            "bundle.json records no cost report (multiply-adds); re-export the model"
            if macs is None
            else f"multiply-adds {macs:,.0f} per example (budget {cfg.max_macs:,.0f})",
        )
    ]


def _relative(
    challenger: ModelFigures, champion: ModelFigures, metric: str, cfg: PromoteConfig
) -> list[Check]:
    if not champion.labels_match:
        return [
            Check(
                "same_labels",
                False,
                f"champion v{champion.version} predicts other labels; the two cannot be compared",
            )
        ]
    delta = challenger.score - champion.score
    drops = {
        label: champion.recalls[label] - recall for label, recall in challenger.recalls.items()
    }
    label = max(drops, key=drops.__getitem__)
    return [
        Check(
            "improvement",
            delta >= cfg.min_improvement,
            f"{metric} {challenger.score:.4f} vs champion v{champion.version} "
            f"{champion.score:.4f}: {delta:+.4f} (needs {cfg.min_improvement:+.4f})",
        ),
        Check(
            "recall_drop",
            drops[label] <= cfg.max_recall_drop,
            f"largest class recall drop {drops[label]:+.4f} for '{label}' "
            f"(limit {cfg.max_recall_drop:.4f})",
        ),
    ]


def _shadow(evidence: ShadowEvidence, cfg: PromoteConfig) -> list[Check]:
    """The agreement must hold at the low end of its 95% interval: 19 agreements in
    20 pairs is a point of 0.95 but could well be 0.76, and a few hundred lucky
    requests should not promote a model."""
    if evidence.paired:
        agreement = (
            f"{evidence.agreement:.4f}, 95% Wilson interval {evidence.low:.4f}-"
            f"{evidence.high:.4f}, lower bound {evidence.low:.4f}"
        )
    else:
        agreement = "none"
    return [
        Check(
            "shadow_requests",
            evidence.paired >= cfg.min_shadow_requests,
            f"shadow requests {evidence.paired} in the last {cfg.shadow_since} "
            f"(need {cfg.min_shadow_requests})",
        ),
        Check(
            "shadow_agreement",
            evidence.paired > 0 and evidence.low >= cfg.min_shadow_agreement,
            f"shadow agreement {agreement} (need a lower bound of at least "
            f"{cfg.min_shadow_agreement:.4f})",
        ),
    ]


def decide(
    model: str,
    target: str,
    challenger: ModelFigures,
    champion: ModelFigures | None,
    cfg: PromoteConfig,
    force: bool = False,
    shadow: ShadowEvidence | None = None,
) -> Decision:
    """Apply every gate rule. Without a champion only the absolute thresholds apply;
    ``shadow`` (the champion's prediction log) adds the shadow-evidence checks."""
    checks = _absolute(challenger, cfg.metric, cfg)
    if champion is not None:
        checks += _relative(challenger, champion, cfg.metric, cfg)
    if shadow is not None:
        checks += _shadow(shadow, cfg)
    return Decision(model, target, cfg.metric, challenger, champion, checks, forced=force)
