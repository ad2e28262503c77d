"""The README's promises: its two commands exist, and its Python example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.helpers import write_image

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make quickstart", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^quickstart:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "torch==2.13.0" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_python_example_runs(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = re.search(r"```python\n(from modelyard.*?)```", README, re.S)
    assert block is not None
    write_image(tmp_path / "seven.png", (28, 28))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)  # the documented example
    probabilities = namespace["probabilities"]
    assert probabilities.shape == (1, 10)  # type: ignore[attr-defined]

    # The MLflow snippet loads the model the first example registered, as documented.
    mlflow_block = re.search(r"```python\n(import mlflow.*?)```", README, re.S)
    assert mlflow_block is not None
    exec(compile(mlflow_block.group(1), "README.md", "exec"), namespace)
    assert namespace["pyfunc"].predict(namespace["images"]).shape == (2, 10)  # type: ignore[attr-defined]
