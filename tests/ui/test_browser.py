"""Once in a real headless Chromium: `modelyard ui` in its own process, a digit
drawn on the canvas with the mouse, and a screenshot of the prediction."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from tests.docs.screenshots import keep_for_docs
from tests.helpers import Server, free_port
from tests.ui.conftest import write_report

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
]


@pytest.fixture(scope="module")
def ui_url(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("ui-home")
    write_report(home, "digits-cnn", drift=True)
    port = free_port()
    exe = Path(sys.executable).with_name("modelyard")
    log = home / "ui.log"
    process = subprocess.Popen(
        [
            str(exe),
            "ui",
            "--server",
            server.url,
            "--staging-server",
            server.url,
            "--port",
            str(port),
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "MODELYARD_HOME": str(home)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        pytest.fail(f"the UI did not start in 60s:\n{log.read_text()}")
    yield url
    process.terminate()  # `modelyard ui` passes SIGTERM on to Streamlit
    assert process.wait(timeout=30) == 0, log.read_text()
    assert (
        f"--server.port={port}"
        not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    ), "Streamlit outlived `modelyard ui`"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):  # CI installs both (.ci/run); a skip would hide a gap
        pytest.fail(
            "chromium and chromedriver are needed: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()


def _wait(browser, css: str, count: int = 1, seconds: float = 60):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds).until(
        lambda b: (found := b.find_elements(By.CSS_SELECTOR, css)) and len(found) >= count and found
    )


def _wait_text(browser, text: str, seconds: float = 60) -> str:  # type: ignore[no-untyped-def]
    """The page's text once it contains ``text`` (Streamlit fills the page as the script runs)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    body = lambda b: b.find_element(By.TAG_NAME, "body").text  # noqa: E731
    return WebDriverWait(browser, seconds).until(lambda b: text in body(b) and body(b))  # type: ignore[no-any-return]


def _screenshot(browser, path: Path) -> Image.Image:  # type: ignore[no-untyped-def]
    time.sleep(1)  # let the chart finish its entry transition
    assert browser.save_screenshot(str(path))
    return Image.open(path).convert("L")


def test_a_drawn_digit_gets_a_prediction_in_chromium(
    ui_url: str,
    browser,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(ui_url)
    (host,) = _wait(browser, '[data-testid="stBidiComponentIsolated"]')
    _wait(host.shadow_root, "canvas.upper-canvas")  # the canvas component has loaded
    canvas = host.shadow_root.find_element(By.CSS_SELECTOR, "canvas.upper-canvas")
    stroke = ActionChains(browser).move_to_element_with_offset(canvas, -50, -80).click_and_hold()
    for x, y in [(0, -80), (50, -80), (30, -20), (10, 30), (-10, 85)]:  # a 7
        stroke = stroke.move_to_element_with_offset(canvas, x, y)
    stroke.release().perform()

    page = _wait_text(browser, "Production and staging agree")
    labels = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')
    assert len(labels) == 2 and {label.text for label in labels} <= {str(d) for d in range(10)}
    assert len({label.text for label in labels}) == 1  # the same model on both sides
    assert page.count("Model digits-cnn version local") == 2 and "confidence" in page
    assert len(_wait(browser, '[data-testid="stVegaLiteChart"]', count=2)) == 2
    shot = _screenshot(browser, tmp_path / "predict.png")
    assert shot.size[0] >= 1000 and shot.getextrema() == (0, 255)  # rendered, not blank
    keep_for_docs(tmp_path / "predict.png", "ui-predict.png")  # docs/index.md, monitoring.md
    # The drawing reached the server: the sent preview is mostly black with white ink.
    (preview,) = [
        i for i in browser.find_elements(By.CSS_SELECTOR, "img") if i.size["width"] == 112
    ]
    assert preview.is_displayed()


def test_the_drift_page_shows_the_latest_verdict_in_chromium(
    ui_url: str,
    browser,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    browser.get(f"{ui_url}/drift")
    page = _wait_text(browser, "500 predictions")
    assert "Drift detected on digits-cnn version 3" in page
    _wait(browser, '[data-testid="stDataFrame"]')
    _screenshot(browser, tmp_path / "drift.png")
    keep_for_docs(tmp_path / "drift.png", "ui-drift.png")  # docs/monitoring.md
