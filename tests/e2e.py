"""Drive the running dashboard in a real browser (Playwright + Debian chromium): used by the end-to-end tests,
by ``scripts/screenshots.py``, ``scripts/sweep_pages.py`` and ``benchmarks/dashboard_latency.py``
(``from tests import e2e``). A test driver, so it lives with the tests, not in the product's packages.

Never ``playwright install``: it downloads a browser and fails offline. Debian's ``chromium`` is used through
``executable_path`` with the flags below (no sandbox, GPU, QUIC, first-run, background networking, component
updates or sync; /dev/shm not used), which make it start headless and offline on these machines.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from dashboard.pages import PAGES

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1280, "height": 800}
HEADINGS = {p.title: p.heading for p in PAGES if p.heading}  # a page's h1 where it differs from its sidebar title


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(store: str | Path, port: int | None = None, env: dict | None = None, app: Path | None = None):
    """``streamlit run app.py`` (or ``app``) headless on 127.0.0.1 with its own results store; yields the URL."""
    port = port or free_port()
    e = {**os.environ, "XAI_CORE_STORE": str(store), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **(env or {})}
    app = app or ROOT / "app.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--server.fileWatcherType", "none"]
    log = tempfile.NamedTemporaryFile("w+", prefix="streamlit-", suffix=".log", delete=False)
    # to a file, not a pipe: an undrained pipe fills up and blocks the server mid-run
    proc = subprocess.Popen(cmd, cwd=app.parent, env=e, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start: {Path(log.name).read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        os.unlink(log.name)


@contextmanager
def browser():
    """A Playwright page in headless Debian chromium at 1280x800."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError("Debian chromium not found: apt-get install chromium (never `playwright install`)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            page = b.new_page(viewport=VIEWPORT)
            page.set_default_timeout(120_000)
            yield page
        finally:
            b.close()


def wait_idle(page, timeout: float = 120_000) -> None:
    """Wait until the script run finished: stApp's ``data-test-script-state`` back to ``notRunning``."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout,
                           state="attached")


def wait_page(page, title: str, timeout: float = 120_000) -> None:
    """Wait until page ``title``'s heading is drawn and its run is over (one check per animation frame)."""
    page.wait_for_function(
        """h => { const app = document.querySelector('[data-testid="stApp"]');
                  return app && app.getAttribute('data-test-script-state') === 'notRunning'
                      && [...document.querySelectorAll('h1')].some(e => e.innerText.includes(h)); }""",
        arg=HEADINGS.get(title, title), timeout=timeout)


def goto_page(page, title: str, timeout: float = 120_000) -> None:
    """Click the sidebar link ``title`` and wait until that page is drawn and its run is over."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    wait_page(page, title, timeout)


def click_key(page, key: str) -> None:
    """Click the button whose Streamlit key is ``key``."""
    page.locator(f".st-key-{key} button").first.click()


def exceptions(page) -> list[str]:
    return [e.inner_text() for e in page.locator('[data-testid="stException"]').all()]


def plot_drawn(page, key: str, what: str, timeout: float = 120_000) -> None:
    """Wait until the plotly chart with Streamlit key ``fig_<key>`` shows ``what`` (a CSS selector inside it)."""
    page.wait_for_selector(f".st-key-fig_{key} .js-plotly-plot {what}", timeout=timeout, state="attached")


def run_if_needed(page, run_key: str, shown: str, timeout: float = 600_000) -> bool:
    """Wait until the page offers its Run button (``run_key``) or already shows ``shown`` (a CSS selector);
    click Run in the first case and wait for the run to end. Elements mount a little after the script ends,
    so counting buttons right away would race. Returns whether it clicked."""
    button = f".st-key-{run_key} button"
    page.wait_for_selector(f"{button}, {shown}", timeout=120_000, state="attached")
    if page.locator(shown).count():
        return False
    page.locator(button).first.click()
    page.wait_for_selector(shown, timeout=timeout, state="attached")
    wait_idle(page, timeout)
    return True
