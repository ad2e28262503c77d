"""Screenshots for the documentation, made by the tests that exercise what they show.

The UI's browser test and the drift command's test call these when they run, so the
pictures on the site are of the current UI and report, never a stale capture. Run
those tests and commit the PNGs that changed (docs/development.md says so).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "assets" / "screenshots"


def keep_for_docs(png: Path, name: str) -> Path:
    """Copy a PNG a test made to docs/assets/screenshots/<name>, after checking it is
    a real picture (not blank), and return where it went."""
    with Image.open(png) as image:
        low, high = image.convert("L").getextrema()
    assert high - low > 50, f"{png} looks blank (grey levels {low}..{high})"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / name
    # Whole or not at all: the site's build (tests/docs/test_site.py) may be copying
    # these files from another test process at this moment.
    partial = target.with_name(f".{name}.{os.getpid()}.partial")
    shutil.copyfile(png, partial)
    os.replace(partial, target)
    return target


def screenshot_page(html: Path, png: Path, size: tuple[int, int] = (1500, 1250)) -> Path:
    """A headless-Chromium screenshot of a local HTML file (the drift report)."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is needed: apt-get install chromium (.ci/run installs it)"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                f"--screenshot={png}",
                html.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    assert png.exists(), f"chromium wrote no screenshot of {html}"
    return png
