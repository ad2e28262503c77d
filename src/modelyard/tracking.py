"""MLflow defaults: an embedded SQLite store under ``.modelyard/`` unless told otherwise."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

# default_tracking_uri lives in paths (the serving path needs it without mlflow);
# re-exported here, where users of this module look for it.
from modelyard.paths import default_tracking_uri as default_tracking_uri
from modelyard.paths import home_dir

CONCURRENT_WRITE_PAUSES_S = (0.05, 0.2, 0.5)
"""Pauses before each retry of a write that another process made at the same moment."""

_DUPLICATE_KEY = ("UniqueViolation", "UNIQUE constraint failed", "duplicate key value")
"""How the SQL stores say that a row someone else just inserted is already there."""


def write_retrying(
    write: Callable[[], object], refusals: tuple[str, ...], pauses_s: tuple[float, ...]
) -> None:
    """Run a tracking write, and again after each of ``pauses_s`` while the store
    refuses it with an error whose text holds one of ``refusals`` (a refusal that
    passes: a lock, another process's insert). Any other error is raised at once.

    Ctrl-C is not held here: a caller holds its group of writes once
    (:func:`ctrl_c_after_write`, pauses included)."""
    for pause_s in (*pauses_s, None):
        try:
            write()
            return
        except MlflowException as error:
            if pause_s is None or not any(text in str(error) for text in refusals):
                raise
            logging.getLogger("modelyard.tracking").info(
                "tracking store refused a write (%s), trying again in %.1f s",
                next(text for text in refusals if text in str(error)),
                pause_s,
            )
            time.sleep(pause_s)


_HOLDING = "_modelyard_holds_ctrl_c"
"""Marks the SIGINT handler :func:`ctrl_c_after_write` installs, so a nested block
leaves it in place."""


@contextmanager
def ctrl_c_after_write() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives during the block until the block ends.

    A ``KeyboardInterrupt`` raised inside an SQLite store's write leaves that write's
    transaction holding the database lock: the next write, the one that ends the run
    ``KILLED``, then waits out SQLite's busy timeout (20 s) and fails "database is
    locked", with MLflow's traceback on stderr: 11 of 90 interrupts of a loop of
    metric writes (benchmarks/reliability/RESULTS.md), none of 90 with the writes held.
    Held here, the interrupt comes a few milliseconds later, between writes. A second
    Ctrl-C during the same write is not held (a write that hangs, on a store that is
    down or locked by another process, must not make Ctrl-C deaf). Outside the main
    thread, or while SIGINT is not Python's to handle (ignored, default), the block
    runs as it is, and so does a block inside another's hold: the outer hold keeps
    the promise that a second press interrupts at once."""
    previous = signal.getsignal(signal.SIGINT)
    if (
        threading.current_thread() is not threading.main_thread()
        or not callable(previous)
        or getattr(previous, _HOLDING, False)
    ):
        yield
        return
    held: list[Any] = []

    def hold(signum: int, frame: Any) -> None:
        held.append((signum, frame))
        if len(held) > 1:  # pressed again: now
            signal.signal(signal.SIGINT, previous)
            previous(signum, frame)

    setattr(hold, _HOLDING, True)
    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if len(held) == 1:
            previous(*held[0])


def write_racing(write: Callable[[], object]) -> None:
    """Run a tracking write that another process may be making at the same moment, and
    run it again after a pause when the store refuses it as a duplicate key.

    MLflow sets a tag (and a run's latest metric) by reading the row, then inserting or
    updating it; two tune workers closing one parent run both read "no row" and both
    insert, and the second fails with a unique violation (seen on PostgreSQL). The
    retry reads the row the other wrote and updates it."""
    write_retrying(write, _DUPLICATE_KEY, CONCURRENT_WRITE_PAUSES_S)


def artifact_root() -> Path:
    return home_dir() / "mlartifacts"


def configure(uri: str | None = None) -> str:
    """Point MLflow (tracking and registry) at ``uri`` or the default; return it."""
    # MLflow's per-file download bars would drown the CLI's own output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # With a tracking server MLflow prints "View run ... at: <url>" to stdout when a
    # run ends, which breaks `--json` output; the CLI prints the run itself.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    resolved = uri or default_tracking_uri()
    user_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    # MLflow exports the URI to the environment; undo that so the next call still
    # tells a user's MLFLOW_TRACKING_URI apart from our own default.
    if user_env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = user_env
    return resolved


def ensure_experiment(name: str) -> str:
    """Experiment id for ``name``, created with a local artifact folder when embedded."""
    client = MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:"):
        location = (artifact_root() / name).as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def git_info(cwd: Path | None = None) -> dict[str, str]:
    """Commit and dirty flag of the working tree, or ``no git`` outside a repository."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"modelyard.git_commit": "no git", "modelyard.git_dirty": "no git"}
    return {
        "modelyard.git_commit": commit,
        "modelyard.git_dirty": str(dirty).lower(),
        "mlflow.source.git.commit": commit,
    }


def mlflow_executable() -> str:
    """``mlflow`` if the one on PATH is this environment's, else the full path of the
    one installed beside this Python (a venv that is not activated is not on PATH)."""
    beside = Path(sys.executable).with_name("mlflow")
    on_path = shutil.which("mlflow")
    if on_path is not None and (not beside.exists() or Path(on_path).samefile(beside)):
        return "mlflow"
    return str(beside) if beside.exists() else "mlflow"


def ui_command(uri: str) -> str:
    """The command a user runs to look at the runs and registered models."""
    if uri.startswith("sqlite:"):
        return (
            f"{shlex.quote(mlflow_executable())} ui --backend-store-uri {shlex.quote(uri)} "
            f"--default-artifact-root {shlex.quote(str(artifact_root()))}"
        )
    return f"open {uri}"
