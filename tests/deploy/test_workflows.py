""".github/workflows: actionlint (with shellcheck on every `run:` script) finds nothing,
the deploy workflows run the commands the README documents, and the release workflow
checks and smoke-tests what it publishes."""

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
        "docs.yml",
        "release.yml",
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


def _steps(name: str, job_name: str | None = None) -> str:
    """The `run:` scripts of the workflow's one job, or of ``job_name``."""
    jobs = yaml.safe_load((WORKFLOWS / name).read_text())["jobs"]
    if job_name is None:
        (job,) = jobs.values()
    else:
        job = jobs[job_name]
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_every_push_runs_make_test() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "test.yml").read_text())
    assert "push" in workflow[True]  # PyYAML reads the key `on` as True
    assert "make test" in _steps("test.yml", "test")


def test_the_suite_runs_on_every_python_that_requires_python_admits() -> None:
    """requires-python says >=3.10: 3.11 runs pinned (`test`), 3.10 and 3.12 beside it."""
    jobs = yaml.safe_load((WORKFLOWS / "test.yml").read_text())["jobs"]
    pinned = next(
        s["with"]["python-version"]
        for s in jobs["test"]["steps"]
        if "with" in s and "python-version" in s["with"]
    )
    others = jobs["other-pythons"]["strategy"]["matrix"]["python-version"]
    assert sorted([pinned, *others]) == ["3.10", "3.11", "3.12"]
    assert "python -m pytest" in _steps("test.yml", "other-pythons")


def test_a_version_tag_builds_checks_smoke_tests_then_publishes() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "release.yml").read_text())
    assert workflow[True] == {"push": {"tags": ["v*"]}}
    build = _steps("release.yml", "build")
    for command in (
        "python -m build",
        "twine check --strict dist/*",
        "python -m venv /tmp/smoke",
        "/tmp/smoke/bin/pip install dist/*.whl",
        "/tmp/smoke/bin/modelyard --version",
        "/tmp/smoke/bin/python -m modelyard --help",
        "/tmp/smoke/bin/modelyard init /tmp/smoke-project",
        "CHANGELOG.md",
    ):
        assert command in build, command
    # Checks come before the upload, and only the publish job may mint an OIDC token.
    assert build.index("twine check") < build.index("/tmp/smoke/bin/modelyard --version")
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    assert workflow["permissions"] == {"contents": "read"}
    assert any(
        step.get("uses", "").startswith("pypa/gh-action-pypi-publish@") for step in publish["steps"]
    )


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


def test_the_docs_site_is_built_strictly_and_published_from_main() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "docs.yml").read_text())
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    runs = "\n".join(step.get("run", "") for step in build["steps"])
    assert "-e '.[docs]'" in runs and "mkdocs build --strict" in runs
    assert any(
        s.get("uses", "").startswith("actions/upload-pages-artifact") for s in build["steps"]
    )
    assert publish["needs"] == "build" and "refs/heads/main" in publish["if"]
    assert publish["permissions"] == {"pages": "write", "id-token": "write"}
    assert workflow["permissions"] == {"contents": "read"}  # only publish may write
