"""A report's HTML printed to PDF by Debian's chromium, headless (``--print-to-pdf``), offline.

The browser is the one the project's browser tests use (``apt-get install chromium``; never ``playwright
install``). It loads the report from a ``file://`` URL with networking off, lets the figures draw, and prints.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import XaiError
from .render import PRINT_WIDTH_PX

BROWSERS = ("chromium", "chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
         "--no-pdf-header-footer", f"--window-size={PRINT_WIDTH_PX},1400", "--virtual-time-budget=20000",
         "--run-all-compositor-stages-before-draw", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
TIMEOUT_S = 180


def chromium() -> str | None:
    """The path of Debian's chromium, or None when it is not installed."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_message() -> str:
    """One line for a PDF asked for without chromium."""
    return ("a PDF needs Debian's chromium, which is not installed (apt-get install chromium); the HTML report "
            "holds the same and prints to PDF from any browser")


def write_pdf(html_path: str | Path, pdf_path: str | Path, timeout: float = TIMEOUT_S) -> Path:
    """Print the HTML report at ``html_path`` to ``pdf_path``.

    Parameters
    ----------
    html_path : str or Path
        A report written by ``render_html``.
    pdf_path : str or Path
        Where the PDF goes (overwritten).
    timeout : float
        Seconds before the browser is given up.

    Returns
    -------
    Path
        ``pdf_path``.

    Raises
    ------
    XaiError
        When chromium is missing, fails, or writes no PDF.
    """
    exe = chromium()
    if exe is None:
        raise XaiError(missing_message())
    src, out = Path(html_path).resolve(), Path(pdf_path).resolve()
    with tempfile.TemporaryDirectory(prefix="xai-report-pdf-") as profile:
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={out}", src.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise XaiError(f"chromium did not print {src.name} to PDF within {timeout:.0f} s") from None
    if not out.exists() or out.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise XaiError(f"chromium wrote no PDF (exit {done.returncode}: {tail[0][:200]})")
    return out
