"""Outside ``modelyard.modality`` nothing asks "image or text?": a new kind must stay
one module plus its registration line. An AST walk over src/ finds the two shapes the
branching took before (issue 15): a ``kind`` compared with a kind's name, and an
``isinstance`` check on a kind's spec, split or dataset class."""

from __future__ import annotations

import ast
from pathlib import Path

import modelyard
from modelyard.modality import kinds

SRC = Path(modelyard.__file__).parent
KIND_CLASSES = {
    "ImageSpec",
    "TextSpec",
    "TabularSpec",
    "ArraySplit",
    "TextSplit",
    "TabularSplit",
    "Dataset",
    "TextDataset",
    "TabularDataset",
    "LabelledDataset",
}
"""Classes whose type tells the kind: checking an object against one is a kind branch."""


def _names(node: ast.expr) -> set[str]:
    """Every identifier and attribute name in ``node`` (``cfg.task.kind`` -> cfg, task, kind)."""
    found = set()
    for part in ast.walk(node):
        if isinstance(part, ast.Name):
            found.add(part.id)
        elif isinstance(part, ast.Attribute):
            found.add(part.attr)
    return found


def _kind_names(node: ast.expr) -> set[str]:
    """The registered kind names written as string literals in ``node``."""
    return {
        part.value
        for part in ast.walk(node)
        if isinstance(part, ast.Constant) and part.value in kinds()
    }


def branches_in(source: str) -> list[tuple[int, str]]:
    """(line, what) of every kind branch in a module's source."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            literals = set().union(*(_kind_names(o) for o in operands))
            if literals and any(
                "kind" in name or "kinds" in name for o in operands for name in _names(o)
            ):
                found.append((node.lineno, f"compares a kind with {', '.join(sorted(literals))}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
        ):
            classes = _names(node.args[1]) & KIND_CLASSES
            if classes:
                found.append((node.lineno, f"isinstance against {', '.join(sorted(classes))}"))
    return found


def test_the_walk_finds_each_shape_of_kind_branch() -> None:
    source = (
        'if bundle.kind == "text":\n    pass\n'
        'if "image" != cfg.task.kind:\n    pass\n'
        'if kind in ("tabular", "audio"):\n    pass\n'
        'if "text" in kinds:\n    pass\n'
        "if isinstance(spec, ImageSpec):\n    pass\n"
        "if isinstance(split, (np.ndarray, data.TextSplit)):\n    pass\n"
    )
    assert [line for line, _ in branches_in(source)] == [1, 3, 5, 7, 9, 11]
    # Not kind branches: other "kind"s, kinds compared with each other, lookups.
    harmless = (
        'if param.kind == "categorical":\n    pass\n'
        "if cfg.task.kind != model.kind:\n    pass\n"
        'if array.dtype.kind == "f":\n    pass\n'
        "widget = WIDGETS[info.kind]\n"
        'label = "text" if short else "long"\n'
        "if isinstance(value, dict):\n    pass\n"
    )
    assert branches_in(harmless) == []


def test_no_kind_branches_outside_the_modality_package() -> None:
    found = [
        f"{path.relative_to(SRC.parent)}:{line}: {what}"
        for path in sorted(SRC.rglob("*.py"))
        if "modality" not in path.relative_to(SRC).parts
        for line, what in branches_in(path.read_text(encoding="utf-8"))
    ]
    assert not found, (
        "kind branches outside modelyard.modality (give the kind's Modality a method or a "
        "capability attribute instead):\n" + "\n".join(found)
    )
