""".github/workflows: actionlint (with shellcheck on every `run:` script) finds nothing,
and the deploy workflows run the commands the README documents."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml
from tests.deploy.tools import venv_tool

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    shellcheck = Path(venv_tool("shellcheck"))
    # actionlint finds shellcheck on PATH; without it `run:` scripts go unchecked.
    env = {**os.environ, "PATH": f"{shellcheck.parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [venv_tool("actionlint"), "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )


def test_actionlint_and_shellcheck_find_nothing() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == [
        "deploy-production.yml",
        "deploy-staging.yml",
        "test.yml",
    ]
    result = _actionlint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    text = (WORKFLOWS / "deploy-staging.yml").read_text()
    # `secret` is not a context: actionlint must say so.
    broken.write_text(text.replace("secrets.MODELYARD_API_KEY", "secret.MODELYARD_API_KEY"))
    result = _actionlint(broken)
    assert result.returncode != 0 and "secret" in result.stdout


def _steps(name: str) -> str:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    (job,) = workflow["jobs"].values()
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_every_push_runs_make_test() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "test.yml").read_text())
    assert "push" in workflow[True]  # PyYAML reads the key `on` as True
    assert "make test" in _steps("test.yml")


def test_a_spec_change_deploys_to_staging_then_smoke_tests() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "deploy-staging.yml").read_text())
    assert workflow[True]["pull_request"]["paths"] == ["deploy/models/**"]
    steps = _steps("deploy-staging.yml")
    assert 'modelyard promote "$model" --to staging' in steps
    assert 'modelyard deploy "$spec" --env staging' in steps
    assert "python deploy/smoke_test.py" in steps


def test_a_merge_to_main_deploys_to_production() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "deploy-production.yml").read_text())
    assert workflow[True]["push"] == {"branches": ["main"], "paths": ["deploy/models/**"]}
    (job,) = workflow["jobs"].values()
    assert job["environment"]["name"] == "production"
    assert job["env"]["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
    assert 'modelyard deploy "$spec" --env production' in _steps("deploy-production.yml")
