"""End to end for text: train -> ONNX (parity) -> bundle -> registry, and scoring it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from tests.helpers import run_cli
from tests.text_fixtures import SENTENCES

from modelyard import bundle
from modelyard.features.text import TextSpec
from modelyard.predictor import Predictor

pytestmark = pytest.mark.slow


def test_text_run_is_tracked_and_bundled(trained_text, use_session_home) -> None:  # type: ignore[no-untyped-def]
    run = MlflowClient().get_run(trained_text.run_id)
    metrics = run.data.metrics
    assert run.data.params["task.kind"] == "text" and run.data.params["text.buckets"] == "4096"
    # Per-class F1, macro-F1 and accuracy by sentence length, as for images plus lengths.
    for key in ("test_macro_f1", "test_f1_da", "test_f1_nn", "test_n_words_4_10"):
        assert key in metrics, key
    report = json.loads(
        Path(
            MlflowClient().download_artifacts(trained_text.run_id, "evaluation/test_report.json")
        ).read_text()
    )
    assert sum(b["n"] for b in report["by_length"]) == report["n"]
    loaded = bundle.load("models:/langid-nordic-fasttext@candidate")
    assert loaded.kind == "text" and isinstance(loaded.preprocessing, TextSpec)
    assert loaded.labels == ("da", "sv", "nb", "nn", "other")
    assert loaded.manifest["onnx"]["parity"]["max_abs_diff_probabilities"] <= 1e-4
    profile = loaded.reference_profile
    assert profile["kind"] == "text"
    assert {"chars", "words", "letters", "digits", "punctuation", "non_latin_letters"} <= set(
        profile["features"]
    )
    # Learned something real from 48 sentences per class: better than chance by far.
    assert metrics["test_accuracy"] > 0.5


def test_predict_texts_matches_mlflow_pyfunc(trained_text, use_session_home) -> None:  # type: ignore[no-untyped-def]
    texts = [SENTENCES["nn"][0], SENTENCES["da"][1], "lang " * 200]
    ours = Predictor(bundle.load("langid-nordic-fasttext@candidate")).predict_texts(texts)
    assert ours.truncated is not None and ours.truncated.tolist() == [False, False, True]
    pyfunc = mlflow.pyfunc.load_model("models:/langid-nordic-fasttext@candidate")
    theirs = pyfunc.predict(np.asarray(texts))  # the signature: a 1-d string tensor
    np.testing.assert_allclose(theirs, ours.probabilities, atol=1e-6)


def test_cli_evaluate_and_predict_text(trained_text, use_session_home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data_path = MlflowClient().get_run(trained_text.run_id).data.params["data.path"]
    result = run_cli(
        "evaluate", "langid-nordic-fasttext@candidate", f"data.path={data_path}", "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["macro_f1"] == pytest.approx(trained_text.metrics["test_macro_f1"], abs=1e-9)
    assert [b["name"] for b in report["by_length"]] == ["1-3", "4-10", "11+"]

    lines = tmp_path / "in.txt"
    lines.write_text(f"{SENTENCES['sv'][0]}\n\n{SENTENCES['nb'][3]}\n", encoding="utf-8")
    table = tmp_path / "in.csv"
    table.write_text(f"id,body\n1,{SENTENCES['nn'][2]}\n", encoding="utf-8")
    out = tmp_path / "preds.csv"
    result = run_cli(
        "predict", "langid-nordic-fasttext@candidate", str(lines), str(table),
        "--text-column", "body", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["text"] for r in rows] == [SENTENCES["sv"][0], SENTENCES["nb"][3], SENTENCES["nn"][2]]
    assert {r["label"] for r in rows} <= {"da", "sv", "nb", "nn", "other"}
    bad = run_cli("predict", "langid-nordic-fasttext@candidate", str(table), "--out", str(out))
    assert bad.returncode == 2 and "has no column 'text'; its columns are id, body" in bad.stderr
