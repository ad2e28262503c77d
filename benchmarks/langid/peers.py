"""Run each peer detector in its own venv (peer_worker.py) and collect its answers."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from install_peers import REQUIREMENTS, venv_python

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PeerRun:
    detector: str
    variant: str
    title: str
    note: str


RUNS: tuple[PeerRun, ...] = (
    PeerRun("langid", "all", "langid.py", "all 97 languages (default)"),
    PeerRun("langid", "restricted", "langid.py, restricted", "set_languages(the data's 11)"),
    PeerRun("py3langid", "all", "py3langid", "all 140 languages (default)"),
    PeerRun("py3langid", "restricted", "py3langid, restricted", "set_languages(the data's 10)"),
    PeerRun("pycld2", "reliable", "pycld2", "default; unknown or unreliable -> other"),
    PeerRun("pycld2", "besteffort", "pycld2, best effort", "bestEffort=True, top guess always"),
    PeerRun("lingua", "all", "lingua", "all 75 languages, high accuracy (default)"),
    PeerRun("lingua", "restricted", "lingua, restricted", "from_iso_codes_639_1(the data's 9)"),
    PeerRun("lingua", "all-low", "lingua, low accuracy", "all 75 languages, low accuracy mode"),
)


def missing_venvs() -> list[str]:
    return [peer for peer in REQUIREMENTS if not venv_python(peer).exists()]


def run_peer(run: PeerRun, timed: list[str], extra: list[str], cpu: int | None) -> dict:
    """One detector variant over ``timed`` (timed, one call per sentence) then ``extra``."""
    with tempfile.TemporaryDirectory(prefix="langid-peer-") as tmp:
        source, target = Path(tmp) / "in.json", Path(tmp) / "out.json"
        source.write_text(json.dumps({"timed": timed, "extra": extra}), encoding="utf-8")
        command = [
            str(venv_python(run.detector)),
            str(HERE / "peer_worker.py"),
            f"--detector={run.detector}",
            f"--variant={run.variant}",
            f"--input={source}",
            f"--output={target}",
        ]
        if cpu is not None:
            command.append(f"--cpu={cpu}")
        # One core: no library may start a thread pool of its own.
        env = {**os.environ, "OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"}
        subprocess.run(command, check=True, env=env)
        return json.loads(target.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
