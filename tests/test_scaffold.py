"""`modelyard init`: a new project that composes, trains, reproduces with DVC and whose
workflows, Dockerfile, compose file and hooks pass their checkers; it refuses a
non-empty folder without --force and says what it overwrites."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from tests.deploy.tools import venv_tool
from tests.helpers import run_cli

from modelyard import __version__
from modelyard.config import compose_config
from modelyard.config.compose import CONFIG_DIR_ENV
from modelyard.deploy.spec import load_spec
from modelyard.errors import UsageError
from modelyard.scaffold import TASKS, default_name, init_project, project_files

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "src" / "modelyard" / "templates" / "project"
BIN = Path(sys.executable).parent


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_init_writes_a_project_whose_config_composes(
    task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "pets"
    result = init_project(folder, task=task)
    spec = TASKS[task]
    assert result.name == "pets" and result.overwritten == [] and result.unchanged == []
    assert (
        _files(folder)
        == set(result.written)
        == {
            "README.md",
            ".gitignore",
            ".pre-commit-config.yaml",
            "config/config.yaml",
            "config/task/pets.yaml",
            "config/data/pets.yaml",
            f"config/model/{spec.model}.yaml",
            f"config/train/{spec.train}.yaml",
            "config/tune/default.yaml",
            "params.yaml",
            "dvc.yaml",
            "deploy/models/pets.yaml",
            "deploy/Dockerfile",
            "deploy/compose.yaml",
            "deploy/smoke_test.py",
            ".github/workflows/ci.yml",
            ".github/workflows/deploy-staging.yml",
            ".github/workflows/deploy-production.yml",
        }
    )
    for copied in ("data/pets", f"model/{spec.model}", f"train/{spec.train}", "tune/default"):
        text = (folder / "config" / f"{copied}.yaml").read_text()
        assert text.startswith(f"# Copied from modelyard {__version__}'s config/"), copied
    readme = (folder / "README.md").read_text()
    for name in result.written:  # the README says what each file is for
        assert f"`{name}`" in readme or name == "README.md", name

    monkeypatch.delenv(CONFIG_DIR_ENV, raising=False)
    monkeypatch.chdir(folder)
    cfg = compose_config(paths=False)
    assert (cfg.task.name, cfg.task.model_name, cfg.task.kind) == ("pets", "pets", task)
    assert cfg.data.path == spec.data and cfg.model.name == spec.model
    # The copies equal the package's files, so the project starts where the package does.
    shipped = compose_config([f"task={spec.base}"], validated=False)
    assert cfg.train == shipped.train and cfg.model == shipped.model
    assert load_spec(folder / "deploy" / "models" / "pets.yaml").model == "pets"
    params = yaml.safe_load((folder / "params.yaml").read_text())
    assert params["task"] == "pets"


def test_templates_that_copy_this_repository_stay_copies() -> None:
    """The project's smoke test, image pipeline and deploy workflows are this
    repository's, with modelyard installed from PyPI instead of from the checkout:
    when one of the originals changes, copy it into src/modelyard/templates/project."""
    assert (TEMPLATES / "smoke_test.py.tmpl").read_text() == (
        ROOT / "deploy" / "smoke_test.py"
    ).read_text()
    assert (TEMPLATES / "dvc-image.yaml.tmpl").read_text() == (ROOT / "dvc.yaml").read_text()
    for env in ("staging", "production"):
        original = (ROOT / ".github" / "workflows" / f"deploy-{env}.yml").read_text()
        assert (TEMPLATES / f"deploy-{env}.yml.tmpl").read_text() == original.replace(
            'python -m pip install ".[train]"',
            'python -m pip install "modelyard[train]==@@VERSION@@"',
        )


def test_every_template_is_used_and_every_placeholder_filled() -> None:
    texts = [text for task in TASKS for text in project_files(task, "pets").values()]
    assert not any("@@" in text for text in texts)
    used = {f"{p.name}" for p in TEMPLATES.glob("*.tmpl")}
    source = (ROOT / "src" / "modelyard" / "scaffold.py").read_text()
    for name in used:
        stem = name.removesuffix(".tmpl")
        for task in TASKS:
            stem = stem.replace(f"-{task}.", "-{task}.")
        assert f'_template("{stem}")' in source or f'_template(f"{stem}")' in source, name


def test_generated_files_pass_their_checkers(tmp_path: Path) -> None:
    folder = tmp_path / "pets"
    init_project(folder, task="image")
    shellcheck = Path(venv_tool("shellcheck"))
    env = {**os.environ, "PATH": f"{shellcheck.parent}{os.pathsep}{os.environ['PATH']}"}
    workflows = sorted((folder / ".github" / "workflows").glob("*.yml"))
    checks = [
        [venv_tool("actionlint"), "-no-color", *map(str, workflows)],
        [venv_tool("hadolint"), "deploy/Dockerfile"],
        [venv_tool("docker-compose"), "-f", "deploy/compose.yaml", "config", "--quiet"],
        [venv_tool("pre-commit"), "validate-config", ".pre-commit-config.yaml"],
    ]
    for command in checks:
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        assert result.returncode == 0, (command[0], result.stdout + result.stderr)
    dockerfile = (folder / "deploy" / "Dockerfile").read_text()
    assert f'"modelyard[serve]=={__version__}"' in dockerfile
    assert 'CMD ["pets@production"' in dockerfile


def test_default_name_is_the_folder_as_a_model_name(tmp_path: Path) -> None:
    assert default_name(tmp_path / "My Pets!") == "my-pets"
    assert default_name(tmp_path / "___") == "model"


def test_a_non_empty_folder_needs_force_and_every_overwrite_is_said(tmp_path: Path) -> None:
    folder = tmp_path / "pets"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    refused = run_cli("init", str(folder))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"error: {folder} is not empty; pick a new or empty folder, or pass --force to write "
        "into it (files it replaces are listed)\n"
    )
    assert _files(folder) == {"notes.txt"}

    first = run_cli("init", str(folder), "--force", "--json")
    assert first.returncode == 0, first.stderr
    assert first.stderr == "" and json.loads(first.stdout)["overwritten"] == []
    (folder / "README.md").write_text("my own readme\n")
    again = run_cli("init", str(folder), "--force")
    assert again.returncode == 0, again.stderr
    assert again.stderr == f"overwrote {folder / 'README.md'}\n"
    assert f"unchanged {folder / 'params.yaml'}" in again.stdout
    assert (folder / "notes.txt").read_text() == "mine\n"  # not ours: never touched
    assert (folder / "README.md").read_text().startswith("# pets\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "audio"], "error: unknown --task 'audio'; choose one of: image, text"),
        (["--name", "my.model"], "error: --name 'my.model' is not a model name;"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli("init", str(tmp_path / "new"), *args)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "new").exists()


def test_an_unwritable_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("init", str(blocker / "project"))
    assert result.returncode == 2
    assert result.stderr == (
        f"error: cannot write to {blocker / 'project'}: Not a directory; "
        "pick a folder you can write to\n"
    )
    if os.geteuid() != 0:  # root writes anywhere: the permission case needs a user
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        denied = run_cli("init", str(locked / "project"))
        assert denied.returncode == 2 and "Permission denied" in denied.stderr


def test_init_raises_usage_errors_for_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(UsageError, match="is a file"):
        init_project(target)


def _project_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (CONFIG_DIR_ENV, "MLFLOW_TRACKING_URI")}
    env.update(
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",  # modelyard, python, dvc
        MODELYARD_HOME=str(tmp_path / "home"),
        DVC_NO_ANALYTICS="1",
    )
    return env


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (command, result.stdout[-3000:], result.stderr[-3000:])
    return result


def _dvc_repro(folder: Path, env: dict[str, str], params: dict[str, object]) -> None:
    text = (folder / "params.yaml").read_text()
    values = yaml.safe_load(text)
    for section, keys in params.items():
        values[section].update(keys)
    (folder / "params.yaml").write_text(yaml.safe_dump(values))
    _run(["git", "init", "-q"], folder, env)
    _run([str(BIN / "dvc"), "init", "-q"], folder, env)
    _run([str(BIN / "dvc"), "repro"], folder, env)
    status = _run([str(BIN / "dvc"), "status"], folder, env)
    assert "up to date" in status.stdout, status.stdout


@pytest.mark.e2e  # init, then two trainings of a tiny CNN (about a minute): make e2e
def test_a_new_image_project_trains_and_reproduces(tmp_path: Path) -> None:
    env = _project_env(tmp_path)
    _run([str(BIN / "modelyard"), "init", "pets", "--task", "image"], tmp_path, env)
    folder = tmp_path / "pets"
    rng = np.random.default_rng(0)
    for label, level in (("cats", 40), ("dogs", 200)):
        images = folder / "data" / "images" / label
        images.mkdir(parents=True)
        for i in range(30):
            pixels = np.clip(level + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(images / f"{i}.png")

    trained = _run(
        [str(BIN / "modelyard"), "train", "train.max_epochs=1", "train.batch_size=16", "--json"],
        folder,
        env,
    )
    summary = json.loads(trained.stdout[trained.stdout.index("{") :])
    assert summary["model_name"] == "pets" and summary["model_version"] == "1"

    _dvc_repro(folder, env, {"train": {"max_epochs": 1, "batch_size": 16}})
    metrics = json.loads((folder / "pipeline" / "metrics" / "test.json").read_text())
    assert metrics["n"] == 6 and 0.0 <= metrics["accuracy"] <= 1.0
    assert (folder / "pipeline" / "triton" / "pets" / "config.pbtxt").exists()


@pytest.mark.e2e  # init, then two trainings of a tiny fastText model: make e2e
def test_a_new_text_project_trains_and_reproduces(tmp_path: Path) -> None:
    env = _project_env(tmp_path)
    _run([str(BIN / "modelyard"), "init", "langs", "--task", "text"], tmp_path, env)
    folder = tmp_path / "langs"
    (folder / "data").mkdir()
    words = {
        "en": ["the", "cat", "sat", "on", "a", "mat", "and", "the", "dog", "ran", "home"],
        "fr": ["le", "chat", "est", "sur", "la", "table", "et", "le", "chien", "court"],
    }
    rng = np.random.default_rng(0)
    with (folder / "data" / "texts.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(120):
            label = "en" if i % 2 else "fr"
            writer.writerow([" ".join(rng.choice(words[label], 6)), label])

    fast = ["train.max_epochs=2", "train.min_epochs=0", "train.progress_bar=false"]
    trained = _run([str(BIN / "modelyard"), "train", *fast, "--json"], folder, env)
    assert json.loads(trained.stdout[trained.stdout.index("{") :])["model_name"] == "langs"

    _dvc_repro(folder, env, {"train": {"max_epochs": 2}})
    summary = json.loads((folder / "pipeline" / "train.json").read_text())
    assert summary["model_name"] == "langs" and summary["model_version"] == "2"
