"""``modelyard init``: write a new, working model project.

The project gets its own config folder (the package's groups for its task, copied
with a header saying so), the DVC pipeline, a deploy spec, the server's Dockerfile
and a compose file, GitHub workflows, pre-commit hooks and a README saying what each
file is for. The templates ship inside the package (``modelyard/templates/project``),
so ``init`` works from an installed wheel; the config groups are copied from the
package's own ``modelyard/config`` at the time of the call, so they match the
installed version. ``modelyard train`` run from the project's root reads its
``config/`` (see :func:`modelyard.config.compose.project_config_dir`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from modelyard import __version__
from modelyard.errors import UsageError

# A model name the registry, the deploy spec's file name and a Hydra group option
# all accept: no dots (Hydra's key syntax) and no '@' (the alias separator).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_PLACEHOLDER = re.compile(r"@@[A-Z_]+@@")


@dataclass(frozen=True)
class ProjectTask:
    """What a project of one input kind starts from."""

    kind: str
    base: str  # the package's task whose groups are copied
    model: str  # config/model/<model>.yaml
    train: str  # config/train/<train>.yaml
    data: str  # data.path, relative to the project's root
    data_hint: str  # the README's first-steps line about the data


TASKS: dict[str, ProjectTask] = {
    "image": ProjectTask(
        kind="image",
        base="image_folder",
        model="cnn",
        train="default",
        data="data/images",
        data_hint="# put images in data/images/<class name>/*.png|jpg (one sub-folder per class)",
    ),
    "text": ProjectTask(
        kind="text",
        base="text_table",
        model="fasttext",
        train="text",
        data="data/texts.csv",
        data_hint="# put labelled texts in data/texts.csv (columns: text, label)",
    ),
}


@dataclass
class InitResult:
    """What :func:`init_project` did, file by file (paths relative to ``folder``)."""

    folder: Path
    name: str
    task: str
    written: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "folder": str(self.folder),
            "name": self.name,
            "task": self.task,
            "written": self.written,
            "overwritten": self.overwritten,
            "unchanged": self.unchanged,
        }


def default_name(folder: Path) -> str:
    """The folder's name made into a model name (``My Project`` -> ``my-project``)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-_")
    return slug or "model"


def _template(name: str) -> str:
    return (resources.files("modelyard") / "templates" / "project" / f"{name}.tmpl").read_text()


def _package_config(group: str, option: str) -> str:
    return (resources.files("modelyard.config") / group / f"{option}.yaml").read_text()


def _copied_group(group: str, option: str, text: str) -> str:
    header = (
        f"# Copied from modelyard {__version__}'s config/{group}/{option}.yaml by `modelyard\n"
        f"# init`. This file replaces the package's; `modelyard config show` prints the\n"
        f"# config in effect.\n"
    )
    return header + text


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    left = _PLACEHOLDER.findall(text)
    if left:  # a template names a value this module does not supply: a packaging bug
        raise RuntimeError(f"unfilled template placeholders: {', '.join(sorted(set(left)))}")
    return text


def project_files(task: str, name: str) -> dict[str, str]:
    """Every file of a new project, relative path -> content."""
    spec = TASKS[task]
    values = {
        "NAME": name,
        "KIND": spec.kind,
        "BASE": spec.base,
        "MODEL": spec.model,
        "TRAIN": spec.train,
        "DATA": spec.data,
        "DATA_HINT": spec.data_hint,
        "VERSION": __version__,
    }
    data = _package_config("data", spec.base)
    if data.count("\npath: null\n") != 1:
        raise RuntimeError(f"config/data/{spec.base}.yaml has no single 'path: null' line")
    data = data.replace("\npath: null\n", f"\npath: {spec.data}\n")
    files = {
        "README.md": _fill(_template("README.md"), values),
        ".gitignore": _fill(_template("gitignore"), values),
        ".pre-commit-config.yaml": _fill(_template("pre-commit-config.yaml"), values),
        "config/config.yaml": _fill(_template("config.yaml"), values),
        f"config/task/{name}.yaml": _fill(_template("task.yaml"), values),
        f"config/data/{name}.yaml": _copied_group("data", spec.base, data),
        f"config/model/{spec.model}.yaml": _copied_group(
            "model", spec.model, _package_config("model", spec.model)
        ),
        f"config/train/{spec.train}.yaml": _copied_group(
            "train", spec.train, _package_config("train", spec.train)
        ),
        "config/tune/default.yaml": _copied_group(
            "tune", "default", _package_config("tune", "default")
        ),
        "params.yaml": _fill(_template(f"params-{task}.yaml"), values),
        "dvc.yaml": _fill(_template(f"dvc-{task}.yaml"), values),
        f"deploy/models/{name}.yaml": _fill(_template("model.yaml"), values),
        "deploy/Dockerfile": _fill(_template("Dockerfile"), values),
        "deploy/compose.yaml": _fill(_template("compose.yaml"), values),
        "deploy/smoke_test.py": _template("smoke_test.py"),
        ".github/workflows/ci.yml": _fill(_template("ci.yml"), values),
        ".github/workflows/deploy-staging.yml": _fill(_template("deploy-staging.yml"), values),
        ".github/workflows/deploy-production.yml": _fill(
            _template("deploy-production.yml"), values
        ),
    }
    return files


def _unwritable(folder: Path, error: OSError) -> UsageError:
    reason = error.strerror or type(error).__name__
    where = f" ({error.filename})" if error.filename and str(error.filename) != str(folder) else ""
    return UsageError(f"cannot write to {folder}: {reason}{where}; pick a folder you can write to")


def init_project(
    folder: Path, *, task: str = "image", name: str | None = None, force: bool = False
) -> InitResult:
    """Write a new project into ``folder`` (created when missing).

    Refuses a folder that already holds anything unless ``force``; with ``force`` a
    file of the same name is replaced only when its content differs, and every
    replaced file is listed in :attr:`InitResult.overwritten` for the caller to say.
    """
    if task not in TASKS:
        raise UsageError(f"unknown --task '{task}'; choose one of: {', '.join(TASKS)}")
    name = name if name is not None else default_name(folder)
    if not NAME.match(name):
        raise UsageError(
            f"--name '{name}' is not a model name; use letters, digits, '-' and '_', "
            "starting with a letter or digit (e.g. --name pets-cnn)"
        )
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file; give a new or empty folder")
    try:
        present = folder.is_dir() and any(folder.iterdir())
    except OSError as error:
        raise _unwritable(folder, error) from None
    if present and not force:
        raise UsageError(
            f"{folder} is not empty; pick a new or empty folder, or pass --force to write "
            "into it (files it replaces are listed)"
        )
    result = InitResult(folder=folder, name=name, task=task)
    try:
        for relative, content in project_files(task, name).items():
            path = folder / relative
            if path.is_file():
                if path.read_text() == content:
                    result.unchanged.append(relative)
                    continue
                result.overwritten.append(relative)
            else:
                result.written.append(relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    except OSError as error:
        raise _unwritable(folder, error) from None
    return result
