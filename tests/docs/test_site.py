"""The documentation site builds with --strict (no broken link, anchor or API
reference), and its generated references cover the code they are generated from."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType

import typer

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "modelyard_docs_hooks", ROOT / "docs" / "hooks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(mkdocs.parent), "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    site = tmp_path / "site"
    cli = (site / "reference" / "cli" / "index.html").read_text()
    assert "modelyard train" in cli and "--resume" in cli
    settings = (site / "reference" / "settings" / "index.html").read_text()
    assert "max_delay_ms" in settings and "train.max_epochs" in settings
    api = (site / "reference" / "api" / "index.html").read_text()
    assert "compose_config" in api and "modelyard.train.run.train" in api and "Predictor" in api
    assert ":class:" not in api and ":func:" not in api  # reST roles read as plain code
    assert "Serving benchmark" in (site / "benchmarks" / "serving" / "index.html").read_text()
    for page in ("getting-started", "concepts", "monitoring", "DESIGN"):
        assert (site / page / "index.html").exists(), page
    plots = site / "benchmarks" / "plots"
    for plot in ("serving-throughput.png", "drift-detection.png", "mnist5k-quality.png"):
        assert (plots / plot).read_bytes()[:4] == b"\x89PNG", plot
        assert f"plots/{plot}" in (site / "benchmarks" / "index.html").read_text()
    for screenshot in ("ui-predict.png", "ui-drift.png", "drift-report.png"):
        assert (site / "assets" / "screenshots" / screenshot).stat().st_size > 10_000


def _commands(command: typer.core.TyperGroup, prefix: str) -> list[tuple[str, list[str]]]:
    ctx = typer.Context(command)
    found = []
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        assert sub is not None
        path = f"{prefix} {name}"
        options = [o for p in sub.params for o in getattr(p, "opts", []) if o.startswith("--")]
        found.append((path, options))
        if hasattr(sub, "list_commands"):
            found += _commands(sub, path)  # type: ignore[arg-type]
    return found


def test_the_cli_reference_lists_every_command_and_option() -> None:
    from modelyard.cli import app

    text = _hooks().cli_reference()
    commands = _commands(typer.main.get_command(app), "modelyard")  # type: ignore[arg-type]
    assert len(commands) >= 15  # train, serve, ..., export onnx, monitor drift
    for path, options in commands:
        heading = re.search(rf"^#+ `{path}`$", text, re.M)
        assert heading, f"{path} has no section in the CLI reference"
        body = re.split(r"^#", text[heading.end() :], maxsplit=1, flags=re.M)[0]
        for option in options:
            assert option in body, f"{path} {option} is missing from the CLI reference"


def test_the_settings_reference_documents_every_field() -> None:
    from modelyard.config import schema
    from modelyard.serve.settings import ServeSettings

    text = _hooks().settings_reference()
    hints = typing.get_type_hints(schema.Config)
    for section in dataclasses.fields(schema.Config):
        for item in dataclasses.fields(hints[section.name]):
            assert f"| `{section.name}.{item.name}` |" in text
    for item in dataclasses.fields(ServeSettings):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{item.name}` |"))
        assert not row.endswith("|  |") or item.name in ("host", "port"), row  # documented
    # The docstrings come through: one from each schema.
    assert "Upper bound on epochs; early stopping may end sooner." in text
    assert "Rows queued beyond this are refused with 429" in text


def test_benchmark_pages_are_the_results_files() -> None:
    hooks = _hooks()
    for path in hooks.BENCHMARKS:
        page = hooks.benchmark_page(path)
        first_heading = (ROOT / path).read_text().splitlines()[0]
        assert first_heading in page
        assert "](../" not in page  # relative links were pointed at the repository
