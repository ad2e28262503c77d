"""Where modelyard keeps its state. Derived once, here, from the environment."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "MODELYARD_HOME"
DATA_DIR_ENV = "MODELYARD_DATA_DIR"


def home_dir() -> Path:
    """The project-local state folder: tracking DB, artifacts, checkpoints.

    Defaults to ``./.modelyard`` so that each project keeps its own runs, the way
    ``mlruns/`` works; ``MODELYARD_HOME`` moves it.
    """
    return Path(os.environ.get(HOME_ENV, ".modelyard")).resolve()


def data_dir() -> Path:
    """Where downloaded datasets are cached (``MODELYARD_DATA_DIR`` overrides)."""
    default = Path.home() / ".cache" / "modelyard" / "data"
    return Path(os.environ.get(DATA_DIR_ENV, default)).resolve()


def run_dir(run_id: str) -> Path:
    """Local files of one training run: ``config.yaml``, ``checkpoints/``, ``bundle/``."""
    return home_dir() / "runs" / run_id


def checkpoint_dir(run_id: str) -> Path:
    """Lightning checkpoints of one training run (``last.ckpt`` enables ``--resume``)."""
    return run_dir(run_id) / "checkpoints"


def bundle_dir(run_id: str) -> Path:
    """The bundle a training run wrote, kept locally beside its MLflow copy.

    The folder is named ``bundle`` because MLflow copies it into the logged model
    under its own name (``artifacts/bundle``), where :func:`modelyard.bundle.load`
    looks for it.
    """
    return run_dir(run_id) / "bundle"


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite file in the modelyard home."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    home = home_dir()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}"
