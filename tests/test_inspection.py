"""``modelyard inspect``: a bundle's identity, metrics and cost, as text and JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from modelyard.cli import app


def test_inspect_prints_metrics_beside_the_cost(trained, use_session_home) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["inspect", str(trained.bundle_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("digits-cnn version local (image, task digits)")
    assert lines[1] == "labels    " + ", ".join(str(i) for i in range(10))
    assert "test_accuracy" in result.output and "per-class figures in --json" in result.output
    assert "multiply-adds per example" in result.output
    assert "ms per example at batch 32 (ONNX Runtime, 1 thread)" in result.output
    assert any(line.startswith("measured  on ") for line in lines)


def test_inspect_json_by_alias_and_without_a_cost_report(
    trained, use_session_home, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["inspect", "digits-cnn@candidate", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["version"] == trained.model_version and data["kind"] == "image"
    assert data["cost"]["macs_per_example"] > 0
    assert data["metrics"]["test_accuracy"] == trained.metrics["test_accuracy"]

    old = tmp_path / "old"
    shutil.copytree(trained.bundle_path, old)
    manifest = json.loads((old / "bundle.json").read_text())
    del manifest["cost"]
    (old / "bundle.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(app, ["inspect", str(old)])
    assert result.exit_code == 0, result.output
    assert "cost      not recorded" in result.output
