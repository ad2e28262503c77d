"""Each package's ``__init__`` docstring says what it may import; these tests hold the
code to it, and keep torch, Lightning and MLflow off the serving path's module level.

The docstrings are the one home of the rules: a paragraph ``May import: ``a``,
``b.c``; ...`` names the modelyard modules or packages a package's modules may import
(besides its own and the foundations that ``modelyard/__init__.py`` lists the same
way). A dotted name allows that module or subpackage only (``serve.codecs``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import modelyard

SRC = Path(modelyard.__file__).parent
PACKAGES = sorted(p.parent.name for p in SRC.glob("*/__init__.py"))
HEAVY = ("torch", "lightning", "mlflow")
SERVING_PATH = ("serve", "modality", "features", "bundle", "manifest", "registry_client")
"""What ``modelyard serve`` loads: a serving-only install has no torch, Lightning or MLflow."""


def _allowed(init: Path) -> set[str]:
    """The names in the docstring's ``May import:`` paragraph (before any ';')."""
    docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    paragraph = next((p for p in docstring.split("\n\n") if p.startswith("May import:")), None)
    assert paragraph is not None, f"{init.relative_to(SRC)}'s docstring has no 'May import:'"
    return set(re.findall(r"``([\w.]+)``", paragraph.split(";")[0]))


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module_level_only: bool = False) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for each import in ``path``; with
    ``module_level_only``, not those in functions or under ``if TYPE_CHECKING``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def visit(node: ast.AST) -> Iterator[tuple[int, str]]:
        for child in ast.iter_child_nodes(node):
            if module_level_only and isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            ):
                continue
            if (
                module_level_only
                and isinstance(child, ast.If)
                and "TYPE_CHECKING" in ast.unparse(child.test)
            ):
                yield from (item for stmt in child.orelse for item in visit_one(stmt))
                continue
            yield from visit_one(child)

    def visit_one(node: ast.AST) -> Iterator[tuple[int, str]]:
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # The imported name may be a module (``from modelyard.serve import routes``).
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)
        else:
            yield from visit(node)

    yield from visit(tree)


def _covers(allowed: set[str], target: str) -> bool:
    """Whether ``target`` (dotted, without ``modelyard.``) is an allowed module or
    lies inside one."""
    return any(target == name or target.startswith(f"{name}.") for name in allowed)


def test_every_package_says_what_it_owns_and_may_import() -> None:
    for init in [SRC / "__init__.py", *(SRC / p / "__init__.py" for p in PACKAGES)]:
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring and "Owns:" in docstring, f"{init.relative_to(SRC)} says not what it owns"
        _allowed(init)


def test_packages_import_only_what_their_docstring_allows() -> None:
    foundations = _allowed(SRC / "__init__.py") | {"__version__"}
    offences = []
    unused = []
    for package in PACKAGES:
        allowed = _allowed(SRC / package / "__init__.py")
        used: set[str] = set()
        for path in sorted((SRC / package).rglob("*.py")):
            for line, name in _imports(path):
                if not name.startswith("modelyard."):
                    continue
                target = name.removeprefix("modelyard.")
                if _covers({package}, target) or _covers(foundations, target):
                    continue
                used |= {a for a in allowed if _covers({a}, target)}
                if not _covers(allowed, target):
                    where = path.relative_to(SRC)
                    offences.append(f"{where}:{line} imports {name}, not in {package}'s May import")
        unused += [f"{package} allows {name} but never imports it" for name in allowed - used]
    assert offences == [], "\n".join(offences)
    assert unused == [], "stale May import entries:\n" + "\n".join(unused)


def _module_path(name: str) -> Path | None:
    """The file of module ``name``, or of the module that defines ``name``."""
    parts = name.split(".")[1:]
    while parts:
        relative = Path(*parts)
        for candidate in (SRC / relative / "__init__.py", SRC / f"{relative}.py"):
            if candidate.is_file():
                return candidate
        parts.pop()
    return None


def test_the_serving_path_loads_no_torch_lightning_or_mlflow() -> None:
    """Follow module-level imports from every serving module through modelyard; none
    may reach torch, Lightning or MLflow (imports inside functions are on demand)."""
    starts = [
        path
        for name in SERVING_PATH
        for path in (
            [*(SRC / name).rglob("*.py")] if (SRC / name).is_dir() else [SRC / f"{name}.py"]
        )
    ]
    seen: set[Path] = set()
    chain: dict[Path, Path] = {}
    offences = []
    todo = list(starts)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for line, name in _imports(path, module_level_only=True):
            if name.split(".")[0] in HEAVY:
                route = [path]
                while route[-1] in chain:
                    route.append(chain[route[-1]])
                via = " <- ".join(str(p.relative_to(SRC)) for p in route)
                offences.append(f"{via}:{line} imports {name}")
            elif name.startswith("modelyard.") and (found := _module_path(name)) is not None:
                # a package's __init__ runs before any of its modules
                for step in {found, *_parents(found)}:
                    if step not in seen:
                        chain.setdefault(step, path)
                        todo.append(step)
    assert len(seen) > len(starts) // 2
    assert offences == [], "\n".join(offences)


def _parents(path: Path) -> list[Path]:
    inits = []
    folder = path.parent
    while folder != SRC:
        inits.append(folder / "__init__.py")
        folder = folder.parent
    return [p for p in inits if p.is_file()]
