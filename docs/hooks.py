"""MkDocs hooks (mkdocs.yml `hooks:`): the pages generated at build time, so they can
never disagree with the code.

- ``<!-- generated: cli -->`` becomes the CLI reference, rendered from the Typer app
  (``typer.main.get_command``) by Typer's own markdown generator: every command,
  argument, option, default and environment variable, as ``--help`` shows them.
- ``<!-- generated: settings -->`` becomes the settings reference: one table per
  section of the typed config (``modelyard.config.schema``) and one for the server
  (``modelyard.serve.settings.ServeSettings``), with each field's type, default and
  the docstring written under it in the source.
- Each ``benchmarks/**/RESULTS.md`` becomes a page under ``benchmarks/`` with its
  text as committed (figures, machine, commands): nothing is copied by hand.
- ``<!-- generated: benchmark plots -->`` becomes plots drawn from the JSON files the
  benchmark scripts wrote (serving throughput, drift detection rates, training
  accuracy).

The functions are plain (no MkDocs import) so tests/docs can call them too.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPO_URL = "https://github.com/modelyard/modelyard"
CLI_MARK = "<!-- generated: cli -->"
SETTINGS_MARK = "<!-- generated: settings -->"

# Each results file -> the name of its page under benchmarks/ (mkdocs.yml lists them).
BENCHMARKS = {
    "benchmarks/RESULTS.md": "overview",
    "benchmarks/serving/RESULTS.md": "serving",
    "benchmarks/deploy/RESULTS.md": "deploy",
    "benchmarks/reliability/RESULTS.md": "reliability",
    "benchmarks/text/RESULTS.md": "text",
    "benchmarks/langid/RESULTS.md": "langid",
    "benchmarks/prune/RESULTS.md": "prune",
    "benchmarks/distill/RESULTS.md": "distill",
}


# --- CLI reference ---------------------------------------------------------------


def cli_reference() -> str:
    """Markdown for every command of ``modelyard``, from the Typer app itself."""
    import typer
    import typer.cli

    from modelyard.cli import app

    command = typer.main.get_command(app)
    text = typer.cli.get_docs_for_click(
        obj=command, ctx=typer.Context(command), name="modelyard", title=None
    )
    # One level down: the page has its own "#" title, so `modelyard` is "##", each
    # command "###" and each sub-command "####".
    return re.sub(r"^#", "##", text.strip(), flags=re.M) + "\n"


# --- settings reference ----------------------------------------------------------


def _field_docs(source: Path) -> dict[str, dict[str, str]]:
    """class name -> field name -> the docstring written under the field."""
    tree = ast.parse(source.read_text())
    docs: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        fields: dict[str, str] = {}
        body = node.body
        for here, after in zip(body, [*body[1:], None], strict=True):
            if (
                isinstance(here, ast.AnnAssign)
                and isinstance(here.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                fields[here.target.id] = after.value.value
        docs[node.name] = fields
    return docs


_ROLE = re.compile(r":\w+:`~?([^`]+)`")


def _one_line(text: str) -> str:
    """A docstring on one line of Markdown: reST roles and double backticks become code."""
    text = " ".join(line.strip() for line in text.strip().splitlines())
    text = _ROLE.sub(r"`\1`", text).replace("``", "`")
    return text.replace("|", "\\|")


def _type_name(hint: Any) -> str:
    text = getattr(hint, "__name__", None) if not typing.get_args(hint) else None
    text = text or str(hint).replace("typing.", "").replace("NoneType", "None")
    return text.replace(" | ", " or ")


def _default(item: dataclasses.Field[Any]) -> str:
    if item.default is not dataclasses.MISSING:
        value = item.default
    elif item.default_factory is not dataclasses.MISSING:
        value = item.default_factory()
    else:
        return "(required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if value == "":
        return '""'
    return str(value).replace("|", "\\|")


def _table(cls: type, prefix: str, docs: dict[str, str]) -> list[str]:
    hints = typing.get_type_hints(cls)
    rows = ["| key | type | default | what it does |", "| --- | --- | --- | --- |"]
    for item in dataclasses.fields(cls):
        rows.append(
            f"| `{prefix}{item.name}` | {_type_name(hints[item.name])} | "
            f"`{_default(item)}` | {_one_line(docs.get(item.name, ''))} |"
        )
    return rows


def settings_reference() -> str:
    """Markdown tables of every config and server setting, from the typed schemas."""
    from modelyard.config import schema
    from modelyard.serve import settings

    lines: list[str] = []
    schema_docs = _field_docs(Path(schema.__file__))
    hints = typing.get_type_hints(schema.Config)
    for section in dataclasses.fields(schema.Config):
        cls = hints[section.name]
        if not dataclasses.is_dataclass(cls):
            continue
        lines += [f"## `{section.name}`", ""]
        if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
            lines += [_one_line(cls.__doc__), ""]
        lines += [f"Section `{cls.__name__}` of `modelyard.config.schema`.", ""]
        lines += [*_table(cls, f"{section.name}.", schema_docs.get(cls.__name__, {})), ""]
    serve_docs = _field_docs(Path(settings.__file__))
    lines += [
        "## Server (`modelyard serve`)",
        "",
        "`modelyard.serve.settings.ServeSettings`: given as `key=value` after the model "
        "(`modelyard serve <model> max_batch_size=32`), or under `serve:` in a deploy spec.",
        "",
        *_table(settings.ServeSettings, "", serve_docs.get("ServeSettings", {})),
        "",
    ]
    return "\n".join(lines)


# --- functions in namespace packages --------------------------------------------

_FUNCTION_MARK = re.compile(r"<!-- generated: function ([\w.]+) -->")


def function_reference(qualified: str) -> str:
    """Signature and docstring of a function, read from its source (no import).

    For the few public functions in folders without an ``__init__.py`` (namespace
    packages such as ``modelyard.train``), which mkdocstrings' loader does not visit.
    """
    module, _, name = qualified.rpartition(".")
    source = ROOT / "src" / (module.replace(".", "/") + ".py")
    tree = ast.parse(source.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            signature = f"def {name}({ast.unparse(node.args)}){returns}"
            doc = ast.get_docstring(node) or ""
            doc = _ROLE.sub(r"`\1`", doc).replace("``", "`")
            return (
                f"### `{qualified}`\n\n```python\n{signature}\n```\n\n{doc}\n\n"
                f"*Source: `src/{module.replace('.', '/')}.py`.*\n"
            )
    raise LookupError(f"{qualified}: no function {name} in {source}")


# --- benchmark pages -------------------------------------------------------------

_LINK = re.compile(r"\]\((?!https?://|#)([^)#\s]+)(#[^)\s]*)?\)")


def benchmark_page(path: str) -> str:
    """A RESULTS.md file as a page: relative links point at the repository."""
    source = ROOT / path
    folder = Path(path).parent

    def absolute(match: re.Match[str]) -> str:
        target = (folder / match.group(1)).as_posix()
        for other, name in BENCHMARKS.items():
            if Path(target) == Path(other):
                return f"]({name}.md{match.group(2) or ''})"
        return f"]({REPO_URL}/blob/main/{target}{match.group(2) or ''})"

    header = f"<!-- generated from {path} at build time; edit that file, not this page -->\n\n"
    body = _LINK.sub(absolute, source.read_text())
    return header + body + f"\n\n*Source: [`{path}`]({REPO_URL}/blob/main/{path}).*\n"


# --- benchmark plots -------------------------------------------------------------

PLOTS_MARK = "<!-- generated: benchmark plots -->"
SERVING_RUN = "benchmarks/serving/results/2026-11-24-session4"
SERVING_PEERS = {
    "modelyard": "modelyard serve",
    "mlserver": "MLServer",
    "starlette_ort": "Starlette + ORT app",
}


def _png(figure: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def benchmark_plots() -> dict[str, tuple[bytes, str]]:
    """name -> (PNG, Markdown that shows it and names its data), drawn from the JSON
    files the benchmark scripts wrote."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, tuple[bytes, str]] = {}

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, (suffix, title) in zip(axes, [("", "1 worker"), ("_w2", "2 workers")], strict=True):
        for peer, label in SERVING_PEERS.items():
            path = ROOT / SERVING_RUN / f"{peer}_cnn_small{suffix}.json"
            levels = json.loads(path.read_text())["bench"]["levels"]
            ax.plot(
                [lv["concurrency"] for lv in levels],
                [lv["throughput"] for lv in levels],
                marker="o",
                label=label,
            )
        ax.set(title=f"small MNIST CNN, {title}", xlabel="concurrent clients", xscale="log")
        ax.set_xticks([1, 8, 32], ["1", "8", "32"])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("requests per second")
    axes[0].legend()
    plots["serving-throughput.png"] = (
        _png(figure),
        f"Requests per second against concurrent clients, from `{SERVING_RUN}/"
        "<server>_cnn_small[_w2].json` (2 vCPU AMD EPYC; command and conditions on the "
        "[serving page](serving.md)).",
    )
    plt.close(figure)

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, task in zip(axes, ["digits", "mnist5k"], strict=True):
        results = json.loads((ROOT / f"benchmarks/monitor/drift_{task}.json").read_text())
        rows = results["results"]
        scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
        windows = sorted({r["window"] for r in rows})
        width = 0.8 / len(windows)
        for i, window in enumerate(windows):
            rate = {r["scenario"]: r["rate"] for r in rows if r["window"] == window}
            ax.barh(
                [j + i * width for j in range(len(scenarios))],
                [rate.get(name, 0.0) for name in scenarios],
                height=width,
                label=f"window {window}",
            )
        ax.set_yticks([j + 0.4 - width / 2 for j in range(len(scenarios))], scenarios)
        ax.set(title=f"task={task}", xlabel="share of windows flagged", xlim=(0, 1))
        ax.grid(axis="x", alpha=0.3)
    handles, labels = axes[1].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=len(labels), bbox_to_anchor=(0.6, 0.0))
    plots["drift-detection.png"] = (
        _png(figure),
        "How often `modelyard monitor drift` flags a window, per kind of change and "
        "window size (the in-distribution rows are false alarms), from "
        "`benchmarks/monitor/drift_<task>.json`; command on the "
        "[overview page](overview.md#drift-detection-monitor-drift).",
    )
    plt.close(figure)

    quality = json.loads((ROOT / "benchmarks/training/mnist5k_quality.json").read_text())
    figure, ax = plt.subplots(figsize=(5, 3))
    runs = quality["runs"]
    ax.bar([str(r["split_seed"]) for r in runs], [r["test_accuracy"] for r in runs])
    ax.axhline(0.985, color="grey", linestyle="--", label="bar: 98.5%")
    ax.set(xlabel="split seed", ylabel="held-out test accuracy", ylim=(0.97, 1.0))
    ax.legend(loc="lower right")
    plots["mnist5k-quality.png"] = (
        _png(figure),
        "Held-out accuracy of the default CNN on `mnist5k` over five splits, from "
        "`benchmarks/training/mnist5k_quality.json`; command on the "
        "[overview page](overview.md).",
    )
    plt.close(figure)
    return plots


def _plots_markdown(plots: dict[str, tuple[bytes, str]]) -> str:
    return "\n".join(
        f"![{name}](plots/{name})\n\n{caption}\n" for name, (_, caption) in plots.items()
    )


# --- MkDocs events ---------------------------------------------------------------


_PLOTS: dict[str, tuple[bytes, str]] = {}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    _PLOTS.clear()
    _PLOTS.update(benchmark_plots())
    for name, (png, _) in _PLOTS.items():
        files.append(File.generated(config, f"benchmarks/plots/{name}", content=png))

    for path, name in BENCHMARKS.items():
        files.append(File.generated(config, f"benchmarks/{name}.md", content=benchmark_page(path)))
    return files


_HTML_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):(?=<code>)")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """The source's docstrings use reST roles (``:class:`X```); mkdocstrings renders the
    name as code and leaves the role's text in front of it: drop that text."""
    return _HTML_ROLE.sub("", html)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, cli_reference())
    if PLOTS_MARK in markdown:
        markdown = markdown.replace(PLOTS_MARK, _plots_markdown(_PLOTS))
    if SETTINGS_MARK in markdown:
        markdown = markdown.replace(SETTINGS_MARK, settings_reference())
    return _FUNCTION_MARK.sub(lambda match: function_reference(match.group(1)), markdown)
