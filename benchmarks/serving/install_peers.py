"""Create /tmp/peers/<peer>/venv for each peer (skipped when .installed marker exists).

Usage: python benchmarks/serving/install_peers.py [peer ...]
Installs run in parallel (network bound); logs in /tmp/peers/<peer>/install.log.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peers import PEERS_ROOT, PYTHON, REQUIREMENTS


def install(peer: str) -> tuple[str, bool, float, str]:
    root = Path(PEERS_ROOT) / peer
    marker = root / ".installed"
    if marker.exists():
        return peer, True, 0.0, "cached"
    root.mkdir(parents=True, exist_ok=True)
    log = open(root / "install.log", "w")
    start = time.time()
    venv = root / "venv"
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True, stdout=log, stderr=log)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off"]
        subprocess.run([*pip, "-U", "pip"], check=True, stdout=log, stderr=log)
        for step in REQUIREMENTS[peer]:
            subprocess.run(pip + step, check=True, stdout=log, stderr=log, timeout=900)
        marker.write_text("ok\n")
        return peer, True, time.time() - start, "installed"
    except Exception as error:
        return peer, False, time.time() - start, f"failed: {error!r} (see {root}/install.log)"


def main(peers: list[str]) -> int:
    peers = peers or list(REQUIREMENTS)
    with ThreadPoolExecutor(len(peers)) as pool:
        results = list(pool.map(install, peers))
    for peer, ok, seconds, note in results:
        print(f"{peer:14s} {'ok' if ok else 'FAIL'} {seconds:6.1f}s {note}")
    return 0 if all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
