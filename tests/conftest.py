"""Shared fixtures: an isolated modelyard home, and one tiny trained model per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Every test runs against its own embedded MLflow store, never the user's.
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"

FAST = ["task=digits", "train=fast"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MODELYARD_HOME (tracking DB, artifacts, runs) for one test."""
    folder = tmp_path / "home"
    monkeypatch.setenv("MODELYARD_HOME", str(folder))
    return folder


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("session-home")
    previous = os.environ.get("MODELYARD_HOME")
    os.environ["MODELYARD_HOME"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("MODELYARD_HOME", None)
    else:
        os.environ["MODELYARD_HOME"] = previous


@pytest.fixture(scope="session")
def trained(session_home: Path):  # type: ignore[no-untyped-def]
    """One digits model trained, bundled and registered, shared by read-only tests."""
    from modelyard.config import compose_config
    from modelyard.train.run import train

    return train(compose_config(FAST))


@pytest.fixture
def use_session_home(session_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point this test (env and MLflow's global URI) at the session's shared store."""
    from modelyard import tracking

    monkeypatch.setenv("MODELYARD_HOME", str(session_home))
    tracking.configure()
    return session_home


UD_DIR_ENV = "MODELYARD_UD_DIR"
"""Set by .ci/run (after checking the folder exists) to ../shared/datasets/ud."""


@pytest.fixture(scope="session")
def ud_dir() -> Path:
    """The real UD CoNLL-U files. CI sets MODELYARD_UD_DIR, so these tests run there;
    a checkout without the files skips them with this reason (see `pytest -ra`)."""
    value = os.environ.get(UD_DIR_ENV)
    if not value:
        pytest.skip(f"{UD_DIR_ENV} is not set (real UD files; .ci/run sets it)")
    folder = Path(value)
    if not folder.is_dir():  # set but wrong: a broken setup, not a reason to skip
        pytest.fail(f"{UD_DIR_ENV}={value} is not a folder")
    return folder


TEXT_FAST = [
    "task=langid_nordic",
    "train.max_epochs=8",
    "train.batch_size=16",
    "train.lr=0.05",
    "train.min_epochs=0",
    "train.progress_bar=false",
    "text.buckets=4096",
    "model.embedding_dim=8",
    "export.parity_samples=64",
    # Tests re-score bundles on their test split and compare with the recorded metrics,
    # which only a held-out fit keeps equal (tests/train/test_refit.py covers refit).
    "train.refit=false",
    # 4,500 word-list pseudo-sentences would triple the tiny training set's time.
    "data.word_list_sentences=0",
]
"""A text model trained in seconds on the generated fixture (tests/text_fixtures.py)."""


@pytest.fixture(scope="session")
def trained_text(session_home: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One tiny langid model trained, bundled and registered, shared by read-only tests."""
    from tests.text_fixtures import write_ud_fixture

    from modelyard.config import compose_config
    from modelyard.train.run import train

    folder = write_ud_fixture(tmp_path_factory.mktemp("ud-fixture"), copies=4)
    return train(compose_config([*TEXT_FAST, f"data.path={folder}"]))
