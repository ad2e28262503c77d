"""Create one virtual environment per peer detector under benchmarks/langid/.venvs/.

    python3 benchmarks/langid/install_peers.py [peer ...]

Each peer gets its own venv so that none of them can change what another (or
modelyard's .venv) imports. A venv whose `.installed` marker exists is kept.
pycld2 builds from source and needs gcc and the Python headers (python3-dev).
Installs run in parallel (network bound); each logs to .venvs/<peer>/install.log.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"

# Pinned so that a rerun measures the same code; numpy only where a peer needs it.
REQUIREMENTS: dict[str, list[str]] = {
    "langid": ["langid==1.1.6", "numpy<3"],
    "py3langid": ["py3langid==0.4.0"],
    "pycld2": ["pycld2==0.42"],
    "lingua": ["lingua-language-detector==2.1.1"],
}


def venv_python(peer: str) -> Path:
    """The interpreter of a peer's venv (may not exist yet)."""
    return VENVS / peer / "bin" / "python"


def install(peer: str) -> tuple[str, bool, float, str]:
    root = VENVS / peer
    marker = root / ".installed"
    if marker.exists():
        return peer, True, 0.0, "cached"
    root.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(root / "install.log", "w") as log:
        try:
            if not venv_python(peer).exists():
                subprocess.run(
                    [sys.executable, "-m", "venv", str(root)], check=True, stdout=log, stderr=log
                )
            pip = [str(venv_python(peer)), "-m", "pip", "install", "--progress-bar", "off"]
            subprocess.run([*pip, "-U", "pip"], check=True, stdout=log, stderr=log)
            subprocess.run(
                [*pip, *REQUIREMENTS[peer]], check=True, stdout=log, stderr=log, timeout=900
            )
        except (subprocess.SubprocessError, OSError) as error:
            return peer, False, time.time() - start, f"failed: {error} (see {root}/install.log)"
    marker.write_text("ok\n")
    return peer, True, time.time() - start, "installed"


def main(peers: list[str]) -> int:
    unknown = sorted(set(peers) - set(REQUIREMENTS))
    if unknown:
        print(f"unknown peer(s) {unknown}; choose from {sorted(REQUIREMENTS)}", file=sys.stderr)
        return 2
    peers = peers or list(REQUIREMENTS)
    with ThreadPoolExecutor(len(peers)) as pool:
        results = list(pool.map(install, peers))
    for peer, ok, seconds, note in results:
        print(f"{peer:10s} {'ok' if ok else 'FAIL'} {seconds:6.1f}s {note}")
    return 0 if all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
