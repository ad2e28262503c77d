"""``modelyard promote`` against a real registry: champion vs challenger on the same
data through ONNX Runtime, tags written, aliases moved only when the gate passes."""

from __future__ import annotations

import json

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from tests.helpers import run_cli
from tests.promote.conftest import TwoModels

from modelyard.errors import ModelyardError
from modelyard.promote import gate_tag, promote

pytestmark = pytest.mark.slow
NAME = "digits-cnn"


def alias(name: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(NAME, name).version)
    except MlflowException:
        return None


def tags(version: str) -> dict[str, str]:
    return dict(MlflowClient().get_model_version(NAME, version).tags)


def test_champion_challenger_sequence(models: TwoModels) -> None:
    good, poor = models.good, models.poor
    # No champion: absolute thresholds only; a floor the poor model misses refuses it.
    refused = run_cli("promote", NAME, "--to", "staging", "--version", poor, "--json",
                      "promote.min_score=0.99")  # fmt: skip
    assert refused.returncode == 1, refused.stderr
    data = json.loads(refused.stdout)
    assert data["outcome"] == "refused" and data["champion"] is None and not data["moved"]
    assert "(floor 0.9900)" in data["reason"] and alias("staging") is None
    assert tags(poor)[gate_tag("staging")] == "refused"

    first = promote(NAME, "staging", version=poor, overrides=["promote.min_score=0"])
    assert first.decision.outcome == "passed" and first.moved and alias("staging") == poor

    # The good model beats the champion on the same test split. (The poor model
    # calls most digits one class, so that class's recall drops: allow it here.)
    second = promote(NAME, "staging", version=good, overrides=["promote.max_recall_drop=1"])
    decision = second.decision
    assert decision.outcome == "passed", decision.reason
    assert second.previous == poor and alias("staging") == good
    assert decision.challenger.accuracy == pytest.approx(models.good_test_accuracy)
    assert decision.challenger.score > decision.champion.score
    recorded = tags(good)
    assert recorded[gate_tag("staging")] == "passed"
    assert recorded[gate_tag("staging", "champion")] == poor
    numbers = json.loads(recorded[gate_tag("staging", "numbers")])
    assert numbers["champion"]["macro_f1"] == pytest.approx(decision.champion.macro_f1)
    assert len(numbers["challenger"]["recalls"]) == 10

    # Going back to the poor model is refused and leaves the alias where it was.
    back = run_cli("promote", NAME, "--to", "staging", "--version", poor)
    assert back.returncode == 1, back.stderr
    assert "FAIL" in back.stdout and f"vs champion v{good}" in back.stdout
    assert f"left at version {good}" in back.stdout and alias("staging") == good
    assert tags(poor)[gate_tag("staging")] == "refused"

    # --force moves it anyway and says so.
    forced = promote(NAME, "staging", version=poor, force=True)
    assert forced.decision.outcome == "forced" and alias("staging") == poor
    assert tags(poor)[gate_tag("staging", "forced")] == "true"
    assert tags(poor)[gate_tag("staging")] == "forced"


def test_dry_run_and_budgets(models: TwoModels) -> None:
    good = models.good
    dry = promote(NAME, "production", version=good, dry_run=True)
    assert dry.decision.outcome == "passed" and not dry.moved and alias("production") is None
    assert tags(good)[gate_tag("production")] == "passed"
    slow = promote(NAME, "production", version=good, overrides=["promote.max_latency_ms=1e-6"])
    assert slow.decision.outcome == "refused" and "latency" in slow.decision.reason
    big = promote(NAME, "production", version=good, overrides=["promote.max_size_mb=0.001"])
    assert [c.name for c in big.decision.checks if not c.passed] == ["size"]
    # The multiply-add budget reads the bundle's cost report (digits CNN: 91,776).
    heavy = promote(NAME, "production", version=good, overrides=["promote.max_macs=1000"])
    assert [c.name for c in heavy.decision.checks if not c.passed] == ["macs"]
    assert "multiply-adds 91,776 per example (budget 1,000)" in heavy.decision.reason
    assert alias("production") is None
    assert promote(NAME, "production", version=good).moved and alias("production") == good
    again = promote(NAME, "production", version=good)
    assert again.decision is None and not again.moved


def test_user_errors(models: TwoModels) -> None:
    with pytest.raises(ModelyardError, match="has no version 99"):
        promote(NAME, "staging", version="99")
    with pytest.raises(ModelyardError, match="registered model 'nope' not found"):
        promote("nope", "staging")
    with pytest.raises(ModelyardError, match="use one of staging, production"):
        promote(NAME, "prod")
    wrong = run_cli("promote", NAME, "--to", "prod")  # refused by the option's choices
    assert wrong.returncode == 2
    assert "'prod' is not one of 'staging', 'production'" in wrong.stderr
