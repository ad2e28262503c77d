"""The promotion gate and re-evaluation for text models, end to end: trained on a
CoNLL-U folder and on a user's table, then scored with no data overrides at all
(the bundle records what it was trained on)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tests.conftest import TEXT_FAST
from tests.helpers import modelyard_home, run_cli
from tests.text_fixtures import SENTENCES, write_jsonl, write_ud_fixture

from modelyard import bundle
from modelyard.promote import gate_tag
from modelyard.scoring import config_for

pytestmark = pytest.mark.slow
LANGID = "langid-nordic-fasttext"
TABLE = "text-table-fasttext"


@dataclass(frozen=True)
class TextModels:
    home: Path
    ud_folder: Path
    table: Path


@pytest.fixture(scope="module")
def text_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TextModels]:
    """Two langid versions (the second trained longer) and one table model, in a home
    of their own (aliases move here)."""
    with modelyard_home(tmp_path_factory.mktemp("text-promote-home")) as home:
        yield _train_text_models(home, tmp_path_factory)


def _train_text_models(home: Path, tmp_path_factory: pytest.TempPathFactory) -> TextModels:
    from modelyard.config import compose_config
    from modelyard.train.run import train

    folder = write_ud_fixture(tmp_path_factory.mktemp("ud"), copies=4)
    fast = [*TEXT_FAST, f"data.path={folder}"]
    train(compose_config([*fast, "train.max_epochs=1", "train.lr=0.001"]))
    train(compose_config(fast))
    rows = [
        {"body": f"{sentence} {copy}", "lang": label}
        for label, sentences in SENTENCES.items()
        for sentence in sentences
        for copy in range(3)
    ]
    table = write_jsonl(tmp_path_factory.mktemp("table") / "texts.jsonl", rows)
    table_args = [a for a in TEXT_FAST if not a.startswith("task=")]
    columns = ["data.text_column=body", "data.label_column=lang"]
    train(compose_config(["task=text_table", *table_args, f"data.path={table}", *columns]))
    return TextModels(home, folder, table)


@pytest.fixture
def models(text_models: TextModels, monkeypatch: pytest.MonkeyPatch) -> TextModels:
    from modelyard import tracking

    monkeypatch.setenv("MODELYARD_HOME", str(text_models.home))
    tracking.configure()
    return text_models


def test_bundle_records_its_training_data(models: TextModels) -> None:
    loaded = bundle.load(f"{TABLE}@candidate")
    recorded = loaded.manifest["dataset"]["config"]
    assert recorded["source"] == "table" and recorded["text_column"] == "body"
    assert recorded["path"] == str(models.table.resolve())
    # Explicit overrides still win, key by key.
    cfg = config_for(loaded, ["data.split_seed=3"])
    assert (cfg.data.split_seed, cfg.data.label_column) == (3, "lang")
    # Another task's data: the bundle's data settings no longer apply.
    assert config_for(loaded, ["task=langid_nordic"]).data.source == "conllu"


def test_promote_text_models_through_the_gate(models: TextModels) -> None:
    # No data.path: the challenger's recorded CoNLL-U folder is used.
    first = run_cli("promote", LANGID, "--to", "staging", "--version", "1", "--json",
                    "promote.min_score=0.0")  # fmt: skip
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["outcome"] == "passed" and data["moved"] and data["champion"] is None
    assert data["challenger"]["latency_ms"] > 0 and data["challenger"]["size_mb"] > 0
    # The longer-trained version against that champion, on the same sentences.
    second = run_cli("promote", LANGID, "--to", "staging", "--json")
    assert second.returncode in (0, 1), second.stderr
    decision = json.loads(second.stdout)
    assert decision["version"] == "2" and decision["champion"]["version"] == "1"
    assert set(decision["challenger"]["recalls"]) == {"da", "sv", "nb", "nn", "other"}
    assert decision["champion"]["labels_match"] is True
    tags = MlflowClient().get_model_version(LANGID, "2").tags
    assert tags[gate_tag("staging")] == decision["outcome"]

    table = run_cli("promote", TABLE, "--to", "production", "--json", "promote.min_score=0.0")
    assert table.returncode == 0, table.stderr
    assert json.loads(table.stdout)["outcome"] == "passed"


def test_refused_text_promotion_exits_1_even_as_a_dry_run(models: TextModels) -> None:
    refused = run_cli("promote", TABLE, "--to", "staging", "--dry-run", "promote.min_score=1.01")
    assert refused.returncode == 1, refused.stderr
    assert "decision: REFUSED" in refused.stdout and "dry run: no alias moved" in refused.stdout


def test_evaluate_text_models_without_data_overrides(models: TextModels) -> None:
    for name in (LANGID, TABLE):
        result = run_cli("evaluate", f"{name}@candidate", "--no-log", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["n"] > 0
    # An explicit override still wins: a folder that does not exist is reported.
    missing = run_cli("evaluate", f"{LANGID}@candidate", "--no-log", "data.path=/nonexistent-ud")
    assert missing.returncode == 2 and "/nonexistent-ud" in missing.stderr
