"""Print the longest functions under a source tree, as a Markdown table.

A function's length is its line span (``end_lineno - lineno + 1``, decorators
excluded), so a long literal counts as much as long logic: both are what a
reader has to hold at once. Nested functions are counted on their own and
inside their parent.

    python scripts/longest_functions.py            # src/, top 10
    python scripts/longest_functions.py src -n 20
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import NamedTuple


class Function(NamedTuple):
    """One function definition and how many lines it spans."""

    lines: int
    qualname: str
    path: Path


def functions_in(path: Path, root: Path) -> list[Function]:
    """Every function and method defined in one file, with dotted qualified names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = ".".join(path.relative_to(root).with_suffix("").parts)
    found: list[Function] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}.{child.name}"
                end = child.end_lineno or child.lineno
                found.append(Function(end - child.lineno + 1, name, path))
                walk(child, name)
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}.{child.name}")

    walk(tree, module)
    return found


def longest(root: Path, count: int) -> list[Function]:
    """The ``count`` longest functions under ``root``, longest first."""
    every = [f for path in sorted(root.rglob("*.py")) for f in functions_in(path, root)]
    return sorted(every, key=lambda f: (-f.lines, f.qualname))[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="src", type=Path)
    parser.add_argument("-n", "--count", type=int, default=10)
    args = parser.parse_args()
    print("| lines | function |")
    print("| ---: | --- |")
    for function in longest(args.root, args.count):
        print(f"| {function.lines} | `{function.qualname}` |")


if __name__ == "__main__":
    main()
