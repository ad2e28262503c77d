"""Release hygiene: the package builds, its metadata passes ``twine check``, the wheel
works on its own, the version is written once, and the entry points a user expects
(``python -m modelyard``, ``--version``, shell completion) answer."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.helpers import building_the_checkout, run_cli

import modelyard

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package (the dev extra installs it there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "modelyard"


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_python_m_modelyard_is_the_cli() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "modelyard", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"modelyard {modelyard.__version__}\n"
    help_ = subprocess.run(
        [sys.executable, "-m", "modelyard", "--help"], capture_output=True, text=True
    )
    assert help_.returncode == 0, help_.stderr
    assert "train" in help_.stdout and "serve" in help_.stdout


def test_version_is_a_release_number_and_the_console_script_prints_it() -> None:
    # PEP 440's public release form, which the release workflow's tag (vX.Y.Z) names.
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?", modelyard.__version__)
    result = run_cli("--version")
    assert (result.returncode, result.stdout) == (0, f"modelyard {modelyard.__version__}\n")


def test_the_version_is_written_once() -> None:
    """pyproject.toml reads it from modelyard.__version__; nothing else spells it."""
    project = _pyproject()
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "modelyard.__version__"}
    assignments = [
        str(path.relative_to(ROOT))
        for path in SRC.rglob("*.py")
        for line in path.read_text().splitlines()
        if re.match(r"\s*__version__\s*=", line)
    ]
    assert assignments == ["src/modelyard/__init__.py"]


def test_shell_completion_is_enabled() -> None:
    completed = run_cli(
        env={
            "_MODELYARD_COMPLETE": "complete_bash",
            "COMP_WORDS": "modelyard tr",
            "COMP_CWORD": "1",
        }
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["train"]
    script = run_cli("--show-completion", "bash")
    assert script.returncode == 0, script.stderr
    assert "_MODELYARD_COMPLETE=complete_bash" in script.stdout


def test_license_is_the_apache_2_text_the_metadata_names() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert _pyproject()["project"]["license"] == "Apache-2.0"
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    for clause in ("1. Definitions.", "9. Accepting Warranty or Additional Liability."):
        assert clause in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_metadata_names_the_project_and_the_pythons_ci_runs() -> None:
    project = _pyproject()["project"]
    assert project["authors"]
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(project["urls"])
    classified = {
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    jobs = yaml.safe_load((ROOT / ".github/workflows/test.yml").read_text())["jobs"]
    tested = set(jobs["other-pythons"]["strategy"]["matrix"]["python-version"])
    tested |= {
        step["with"]["python-version"]
        for step in jobs["test"]["steps"]
        if "python-version" in step.get("with", {})
    }
    assert classified == tested
    assert project["requires-python"] == f">={min(tested, key=lambda v: int(v.split('.')[1]))}"


def test_changelog_keeps_an_unreleased_section() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text
    # The release workflow refuses a tag whose version has no section: a released
    # version must never be newer than the code says.
    released = re.findall(r"^## \[(\d[^\]]*)\]", text, re.MULTILINE)
    assert all(
        tuple(map(int, v.split(".")[:3])) <= _release(modelyard.__version__) for v in released
    )


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _fresh_venv_with_wheel(wheel: Path, folder: Path) -> Path:
    """A new venv with only the wheel installed; dependencies come from this venv.

    A .pth line puts this venv's site-packages *after* the new one's, so ``modelyard``
    is imported from the wheel (its package data, its entry points), not from src/.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    uv = Path(sys.executable).with_name("uv")
    subprocess.run(
        [
            str(uv),
            "pip",
            "install",
            "--quiet",
            "--offline",
            "--no-deps",
            "--python",
            str(python),
            str(wheel),
        ],
        check=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "_modelyard_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return folder / "bin"


@pytest.mark.slow  # builds the sdist and wheel (about 5 s) and a venv
def test_sdist_and_wheel_build_pass_twine_and_the_wheel_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # --no-isolation: build with this venv's setuptools, no download.
    with building_the_checkout():
        built = subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
            capture_output=True,
            text=True,
        )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    version = modelyard.__version__
    wheel = dist / f"modelyard-{version}-py3-none-any.whl"
    sdist = dist / f"modelyard-{version}.tar.gz"
    assert wheel.exists() and sdist.exists(), sorted(p.name for p in dist.iterdir())

    twine = subprocess.run(
        [str(Path(sys.executable).with_name("twine")), "check", "--strict", str(wheel), str(sdist)],
        capture_output=True,
        text=True,
    )
    assert twine.returncode == 0, twine.stdout + twine.stderr

    names = set(zipfile.ZipFile(wheel).namelist())
    shipped_yaml = {f"modelyard/{p.relative_to(SRC)}" for p in (SRC / "config").rglob("*.yaml")}
    assert shipped_yaml and shipped_yaml <= names, shipped_yaml - names
    assert {"modelyard/__main__.py", "modelyard/py.typed"} <= names
    templates = {f"modelyard/{p.relative_to(SRC)}" for p in (SRC / "templates").rglob("*.tmpl")}
    assert templates and templates <= names, templates - names
    assert f"modelyard-{version}.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"modelyard-{version}.dist-info/METADATA").decode()
    assert f"\nVersion: {version}\n" in metadata
    assert "\nLicense-Expression: Apache-2.0\n" in metadata
    assert "\nProject-URL: Source, " in metadata

    bin_ = _fresh_venv_with_wheel(wheel, tmp_path / "venv")
    where = subprocess.run(
        [str(bin_ / "python"), "-c", "import modelyard; print(modelyard.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout + where.stderr
    for command in (
        [str(bin_ / "modelyard"), "--version"],
        [str(bin_ / "python"), "-m", "modelyard", "--help"],
        [str(bin_ / "modelyard"), "init", "project", "--task", "text"],
        [str(bin_ / "modelyard"), "config", "show", "task=digits"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr)
    assert result.stdout.startswith("task:\n  name: digits\n")
    # init's templates shipped in the wheel: the project it wrote composes from there.
    assert (tmp_path / "project" / ".github" / "workflows" / "ci.yml").is_file()
    shown = subprocess.run(
        [str(bin_ / "modelyard"), "config", "show"],
        capture_output=True,
        text=True,
        cwd=tmp_path / "project",
    )
    assert shown.stdout.startswith("task:\n  name: project\n"), shown.stdout + shown.stderr
