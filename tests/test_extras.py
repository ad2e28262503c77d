"""A command whose extra is not installed says which extra to install."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from modelyard import cli
from modelyard.extras import EXTRA_FOR_MODULE, missing_extra

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package (the dev extra installs it there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_mapped_extra_exists_and_declares_its_module() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for module, extra in EXTRA_FOR_MODULE.items():
        assert extra in extras, (module, extra)
        # The extra (or one it includes) names a distribution that provides the module.
        names = " ".join(extras[extra]).lower().replace("-", "_")
        for included in re.findall(r"modelyard\[(\w+)\]", names):
            names += " " + " ".join(extras[included]).lower().replace("-", "_")
        provider = {"sklearn": "scikit_learn", "multipart": "python_multipart"}.get(module, module)
        assert provider in names, (module, extra)


def test_a_missing_module_becomes_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def app(**_: object) -> None:  # main() passes Typer's standalone_mode
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(sys, "argv", ["modelyard", "train"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "error: this command needs torch, which the installed extras leave out; "
        "install it with: pip install 'modelyard[train]'\n"
    )
    assert missing_extra(ModuleNotFoundError("x", name="not_ours")) is None


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_declared_dependency_is_pinned_in_the_constraints() -> None:
    """`make install`, CI and the images install with requirements/constraints.txt:
    a dependency added to pyproject.toml without `make lock` would float."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for requirements in project["optional-dependencies"].values():
        declared += requirements
    names = {
        _normal(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]) for requirement in declared
    } - {"modelyard"}
    pinned = {
        _normal(line.split("==")[0])
        for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert names - pinned == set(), "run `make lock`"
    assert "-c $(CONSTRAINTS)" in (ROOT / "Makefile").read_text()
