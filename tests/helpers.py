"""Test helpers that several test modules import (conftest holds the fixtures)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
from PIL import Image


def write_image(path: Path, size: tuple[int, int], mode: str = "L", value: int = 128) -> Path:
    """A small real image file (PNG or JPEG by suffix) with a bright square in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[1], size[0], 3 if mode == "RGB" else 1), dtype=np.uint8)
    array[size[1] // 4 : 3 * size[1] // 4, size[0] // 4 : 3 * size[0] // 4] = value
    Image.fromarray(array[..., 0] if mode == "L" else array, mode=mode).save(path)
    return path


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``modelyard`` console script as a user would."""
    exe = Path(sys.executable).with_name("modelyard")
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


_HEAVY_IMPORTS_PROBE = (
    "import json, sys\n"
    "from typer.testing import CliRunner\n"
    "from modelyard.cli import app\n"
    "result = CliRunner().invoke(app, sys.argv[1:])\n"
    "heavy = sorted(m for m in ('torch', 'lightning', 'mlflow') if m in sys.modules)\n"
    "print(json.dumps({'error': str(result.exception), 'heavy': heavy}))\n"
)


def cli_in_fresh_interpreter(words: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``modelyard WORDS`` in a new interpreter: its error text and which of torch,
    Lightning and MLflow it imported (a refusal must come before the training stack loads)."""
    done = subprocess.run(
        [sys.executable, "-c", _HEAVY_IMPORTS_PROBE, *words],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``modelyard serve`` in a subprocess, ready when /v2/health/ready answers 200."""

    def __init__(self, model: str, *settings: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("modelyard")
        self.log = Path(os.environ["MODELYARD_HOME"]) / f"server-{self.port}.log"
        self.process = subprocess.Popen(
            [str(exe), "serve", model, "--port", str(self.port), *settings],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server not ready in 60s:\n{self.log.read_text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's output (its shadow processes' too), for a failure."""
        return self.log.read_text(errors="replace")[-chars:]


POSTGRES_ADMIN_URL = os.environ.get(
    "MODELYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextlib.contextmanager
def postgres_database(prefix: str = "modelyard_test") -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for one test run, dropped afterwards.

    The server is shared with other test runs, so nothing here touches any other
    database. Fails (never skips) when PostgreSQL is unreachable: CI starts it.
    """
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise RuntimeError(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({error}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or point MODELYARD_TEST_POSTGRES at one"
        ) from error
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class MlflowServer:
    """A real ``mlflow server`` in its own process group, to start, kill and restart.

    ``store`` is the backend store URI; ``artifacts`` is either an artifact root
    (``--default-artifact-root``) or, with ``proxied``, the destination the server
    serves artifacts from (``--artifacts-destination``, clients see ``mlflow-artifacts:/``).
    """

    def __init__(self, store: str, artifacts: Path, log: Path, proxied: bool = True):
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.store, self.artifacts, self.log, self.proxied = store, artifacts, log, proxied
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> str:
        """Start it and wait for /health (the first start migrates an empty database)."""
        where = "--artifacts-destination" if self.proxied else "--default-artifact-root"
        command = [str(Path(sys.executable).with_name("mlflow")), "server"]
        command += ["--backend-store-uri", self.store, where, str(self.artifacts)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        self.process = subprocess.Popen(
            command,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            cwd=self.log.parent,
            start_new_session=True,  # its uvicorn workers are children: kill the group
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"mlflow server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.uri}/health", timeout=1).status_code == 200:
                    return self.uri
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"mlflow server not up in {timeout:g}s")
            time.sleep(0.3)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@contextlib.contextmanager
def modelyard_home(folder: Path) -> Iterator[Path]:
    """MODELYARD_HOME set to ``folder`` for a module-scoped fixture, then restored."""
    previous = os.environ.get("MODELYARD_HOME")
    os.environ["MODELYARD_HOME"] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop("MODELYARD_HOME", None)
        else:
            os.environ["MODELYARD_HOME"] = previous


def logged_rows(url: str, columns: str) -> list[tuple[Any, ...]]:
    """``columns`` (SQL, comma-separated) of every row of the prediction log at
    ``url``, in the order the rows were written."""
    import sqlalchemy as sa

    from modelyard.monitor.logstore import create_log_engine

    engine = create_log_engine(url)
    try:
        with engine.connect() as connection:
            query = sa.text(f"SELECT {columns} FROM predictions ORDER BY id")
            return [tuple(row) for row in connection.execute(query).all()]
    finally:
        engine.dispose()


WRITE_LANE_PROBE = """
import os, threading
from modelyard.serve.shadow_child import WriteLane, lower_priority
base = os.getpriority(os.PRIO_PROCESS, 0)
lifts = []
def lift():  # an idle thread lifted back: refused without CAP_SYS_NICE
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        lifts.append(True)
    except OSError:
        lifts.append(False)
probe = threading.Thread(target=lift)
probe.start()
probe.join()
could_lift = lifts[0]
lane = WriteLane()
made = lower_priority(19, idle=True, spare={lane.thread_id})
later = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)
later.start()
seen = lambda: (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
during = []
lane(lambda: during.append(seen()))
def fails():
    raise ValueError("refused")
try:
    lane(fails)
except ValueError as error:
    raised = str(error)
later_policy = os.sched_getscheduler(later.native_id)
print(repr((could_lift, base, made, during, seen(), later_policy, raised)))
lane.close()
"""
"""A script that makes the shadow's :class:`WriteLane`, puts every other thread under
``SCHED_IDLE`` at nice 19, runs a write and a failing write on the lane, and prints
``(could_lift, base_nice, made_idle, [(policy, nice) during the write], (policy, nice)
of the caller after, policy of a thread made later, the failing write's message)``.
``could_lift``: whether an idle thread could be lifted back here (the per-write lift
the lane replaced), which needs ``CAP_SYS_NICE``."""


def record_log_rows(log: Any, rows: int, first: int = 0, top: bool = False) -> int:
    """Buffer ``rows`` made-up image-model rows (ids ``req-<first>``...) in a
    :class:`~modelyard.monitor.predlog.PredictionLogger`; with ``top``, with top labels
    (a 13th column). What ``record`` returns: the rows accepted."""
    rng = np.random.default_rng(rows)
    return int(
        log.record(
            "m",
            "1",
            [f"req-{first + i}" for i in range(rows)],
            {"mean_intensity": rng.random(rows)},
            rng.normal(size=(rows, 4)),
            [str(i % 3) for i in range(rows)],
            rng.random(rows),
            0.004,
            top_labels=[None] * rows if top else None,
        )
    )


def finished_study() -> Any:
    """An in-memory Optuna study with one finished trial, the best, of run ``best``."""
    import optuna

    from modelyard.tune.pruning import RUN_ID_ATTR
    from modelyard.tune.registration import MODEL_URI_ATTR

    study = optuna.create_study()
    lr = optuna.distributions.FloatDistribution(0.001, 0.1)
    attrs = {RUN_ID_ATTR: "best", MODEL_URI_ATTR: "runs:/best/model"}
    trial = optuna.trial.create_trial(
        value=0.9, params={"train.lr": 0.01}, distributions={"train.lr": lr}, user_attrs=attrs
    )
    study.add_trial(trial)
    return study


def press_ctrl_c() -> None:
    """SIGINT to this process, handled before this returns (by whatever handler is
    installed: Python runs it at the next bytecode after the signal arrives)."""
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)


def ctrl_c_inside(monkeypatch: Any, owner: object, name: str, *, every_call: bool = False) -> None:
    """``owner.name`` (a class's method, a module's function or one object's method)
    gets a Ctrl-C inside its first call (every call, with ``every_call``), before it
    does its work: a user's press that lands in the middle of a real write."""
    real = getattr(owner, name)
    calls: list[None] = []

    def pressed(*args: object, **kwargs: object) -> object:
        calls.append(None)
        if every_call or len(calls) == 1:
            press_ctrl_c()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, pressed)


class CtrlCInWrite:
    """Stand-ins for tracking writes: the first call of the write named ``at`` (of any
    write, when None) gets a Ctrl-C while it is writing; every write that finishes is
    recorded in ``writes`` as ``(name, *args, *kwargs values)``.

    Without :func:`modelyard.tracking.ctrl_c_after_write` around it the interrupt is
    raised inside that write, which is then never recorded; held, it is raised after."""

    def __init__(self, at: str | None = None) -> None:
        self.at = at
        self.writes: list[tuple[Any, ...]] = []
        self.pressed = False

    def write(self, name: str) -> Any:
        """A write called ``name`` that does nothing but get recorded."""

        def write(*args: Any, **kwargs: Any) -> None:
            if not self.pressed and self.at in (None, name):
                self.pressed = True
                press_ctrl_c()  # handled here, inside the write
            self.writes.append((name, *args, *kwargs.values()))

        return write

    def client(self, *writes: str, **reads: Any) -> Any:
        """An MLflow client whose methods ``writes`` are such writes; ``reads`` are its
        other methods, as given."""
        return SimpleNamespace(**reads, **{name: self.write(name) for name in writes})

    def names(self) -> list[str]:
        return [write[0] for write in self.writes]


@contextlib.contextmanager
def building_the_checkout() -> Iterator[None]:
    """Hold, across pytest-xdist's worker processes, the right to build the checkout.

    ``python -m build`` (tests/test_packaging.py) and ``pip install <checkout>[serve]``
    (tests/serve/test_serving_install.py) both run setuptools in the checkout, which
    writes ``build/`` and ``src/modelyard.egg-info`` there: two at once could give an
    sdist built from a half-written file list."""
    checkout = Path(__file__).resolve().parents[1]
    key = hashlib.sha256(str(checkout).encode()).hexdigest()[:16]
    lock = Path(tempfile.gettempdir()) / f"modelyard-tests-build-{key}.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
