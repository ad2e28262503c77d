"""The documentation's examples run: every block marked runnable on every page is
executed on tiny data (the digits task, a few-row table), so a renamed command, flag
or setting fails here rather than in a reader's terminal. See tests/docs/examples.py
for the marker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.docs.examples import PORT, Example, examples, marked_but_unparsed, pages
from tests.helpers import free_port

pytestmark = pytest.mark.slow

# The page that trains the model the others use runs first (and once).
FIRST = "getting-started.md"
# Each guide shows at least one example that runs.
GUIDES = [
    "getting-started.md",
    "concepts.md",
    "data.md",
    "training.md",
    "tracking.md",
    "serving.md",
    "monitoring.md",
    "tuning.md",
    "deployment.md",
    "text-models.md",
]
RUNNABLE = [FIRST, *sorted(p for p in pages() if examples(p) and p != FIRST)]
TIMEOUT_S = 300


def test_every_guide_has_runnable_examples_and_every_marker_is_read() -> None:
    assert [p for p in GUIDES if not examples(p)] == []
    assert {p: marked_but_unparsed(p) for p in pages() if marked_but_unparsed(p)} == {}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs-examples")


def _env(workspace: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELYARD_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        MODELYARD_HOME=str(workspace / "home"),
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
    )
    if "MODELYARD_UD_DIR" in os.environ:
        env["MODELYARD_UD_DIR"] = os.environ["MODELYARD_UD_DIR"]
    return env


def _command(example: Example, port: int) -> list[str]:
    code = re.sub(rf"\b{PORT}\b", str(port), example.code)
    if example.lang == "python":
        return [sys.executable, "-c", code]
    return ["bash", "-e", "-o", "pipefail", "-c", code]


def run_page(page: str, workspace: Path) -> None:
    folder = workspace / page.replace("/", "_").removesuffix(".md")
    folder.mkdir(exist_ok=True)
    env, port = _env(workspace), free_port()
    background: list[tuple[Example, subprocess.Popen[bytes], Path]] = []
    try:
        for example in examples(page):
            if example.background:
                log = folder / f"background-{example.line}.log"
                process = subprocess.Popen(
                    _command(example, port),
                    cwd=folder,
                    env=env,
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                background.append((example, process, log))
                continue
            done = subprocess.run(
                _command(example, port),
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
            if done.returncode != example.exit_code:
                logs = "".join(
                    f"\n--- {log}:\n{log.read_text()[-3000:]}" for _, _, log in background
                )
                pytest.fail(
                    f"{example.where}: exit {done.returncode}, expected {example.exit_code}\n"
                    f"{example.code}\n--- stdout:\n{done.stdout[-3000:]}\n"
                    f"--- stderr:\n{done.stderr[-3000:]}{logs}"
                )
        for example, process, log in background:
            if process.poll() is not None:
                pytest.fail(
                    f"{example.where}: stopped on its own (exit {process.returncode}):\n"
                    f"{log.read_text()[-3000:]}"
                )
    finally:
        for _, process, _ in background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


@pytest.fixture(scope="module")
def trained_by_the_docs(workspace: Path) -> Iterator[None]:
    """The getting-started page, run once: it trains digits-cnn@candidate for the rest."""
    run_page(FIRST, workspace)
    yield


@pytest.mark.e2e  # trains four models (minutes): make e2e, after make test
@pytest.mark.parametrize("page", RUNNABLE)
def test_page_examples_run(page: str, workspace: Path, trained_by_the_docs: None) -> None:
    if page != FIRST:  # the fixture ran it
        run_page(page, workspace)


def test_a_renamed_flag_or_a_dead_server_fails_its_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness itself: a block whose command no longer parses, a refusal that
    exits 0, or a background server that died each fail the page, naming the line."""
    import tests.docs.examples as found

    docs = tmp_path / "docs"
    docs.mkdir()
    monkeypatch.setattr(found, "DOCS", docs)
    pages = {
        "renamed.md": "<!-- run -->\n```bash\nmodelyard config show --no-such-flag\n```\n",
        "exit.md": "Text.\n\n<!-- run exit=1 -->\n```python\nprint('fine')\n```\n",
        "dead.md": "<!-- run background -->\n```bash\nexit 3\n```\n\n"
        "<!-- run -->\n```bash\nsleep 1\n```\n",
    }
    for name, text in pages.items():
        (docs / name).write_text(text)
    for name, where in [("renamed.md", ":2"), ("exit.md", ":4"), ("dead.md", ":2")]:
        with pytest.raises(pytest.fail.Exception, match=rf"docs/{name}{where}"):
            run_page(name, tmp_path)
    (docs / "typo.md").write_text("<!-- runn -->\n```bash\ntrue\n```\n")
    with pytest.raises(ValueError, match="unknown run option 'n'"):
        found.examples("typo.md")
    (docs / "loose.md").write_text("<!-- run -->\n\n```bash\ntrue\n```\n")
    assert found.marked_but_unparsed("loose.md") == [1]
