"""Dashboard latency measured in a real browser (Debian chromium + Playwright), medians over repeats, each figure
also given as a ratio to the floor measured in the same run.

0. the floor: a bare two-page Streamlit app (same sidebar widgets, same config) started by this script; its
   median page switch, measured before the datasets and again after them (the machine may be shared);
1. cold start to first heatmap: a freshly started server and an empty results store; open the Explanations
   page for a fast method (saliency), click Explain, stop the clock when the chart is drawn;
2. page switch: click a sidebar link, stop when the new page's run is over (warm server);
3. reopening a stored run: on a server restarted on the same store, switch from another page to Explanations;
   stop when the stored maps are drawn (no click, nothing computed);
4. a rerun of the Explanations page with nothing changed (the "r" key): what it costs and what it sends;
5. what goes over the websocket: kB received by the browser for a reopen and for a rerun (Streamlit sends a
   chart once and afterwards only a reference to it, as long as the figure's JSON is identical and the browser
   still holds it).

    .venv/bin/python benchmarks/dashboard_latency.py [--repeats 5] [--datasets simu-small,grain,dna-motifs-small]
        [--baseline DIR]   # also an older checkout, in turn with this one: `git archive REV | tar -x -C DIR`
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from dashboard import pages
from tests import e2e

# what a drawn chart holds: gene bars, heatmap images, the letters of a logo (paths of a layout shape; filled
# scatter traces in checkouts before 2026-11-30, so that a --baseline of those can be measured too)
DRAWN = {"expression": ".barlayer .point", "image": ".heatmaplayer image",
         "sequence": ":is(.shapelayer path, path.js-fill)"}
APP = e2e.ROOT / "app.py"
# targets: seconds for the cold click, multiples of the bare app's page switch (the floor) for the rest
CLICK_TARGET_S = 3.0
RATIO_TARGET = 2.0
# the pages switched to between two visits of Explanations (the page whose reopening is measured)
SWITCHED = tuple(p.title for p in pages.of_kind(pages.HOME, pages.DATASET) if p.slug != "explanations")


def _modality(dataset: str) -> str:
    from xai_core.data import DATASETS

    return DATASETS.get(dataset).modality


class Received:
    """Bytes the browser receives over Streamlit's websocket (attach before the first ``goto``)."""

    def __init__(self, page) -> None:
        self.bytes = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload) -> None:
        self.bytes += len(payload)

    def take(self) -> float:
        """kB received since the last call."""
        kb, self.bytes = self.bytes / 1000, 0
        return kb


def cold_start(dataset: str, method: str, store: Path, app: Path = APP) -> dict[str, float]:
    t0 = time.perf_counter()
    with e2e.server(store, app=app) as url, e2e.browser() as page:
        t_server = time.perf_counter() - t0
        page.goto(f"{url}/explanations?dataset={dataset}&methods={method}")
        page.wait_for_selector(".st-key-x_run button")
        e2e.wait_idle(page)
        t_ready = time.perf_counter() - t0
        t1 = time.perf_counter()
        e2e.click_key(page, "x_run")
        e2e.plot_drawn(page, "x_fig_0", DRAWN[_modality(dataset)])
        t_click = time.perf_counter() - t1
    return {"server up": t_server, "page ready": t_ready, "click → drawn": t_click}


def rerun(page) -> float:
    """Rerun the page with nothing changed (Streamlit's "r" shortcut, pressed with no widget focused), wait
    until the run is over; the seconds from the key press that started it."""
    page.wait_for_function("""() => { window.__reran = false;
        const app = document.querySelector('[data-testid="stApp"]');
        new MutationObserver(() => { if (app.getAttribute('data-test-script-state') === 'running')
            window.__reran = true; }).observe(app, {attributes: true}); return true; }""")
    for _ in range(5):
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        t = time.perf_counter()
        page.keyboard.press("r")
        try:
            page.wait_for_function("() => window.__reran", timeout=5_000)
            break
        except PlaywrightTimeout:
            continue
    else:
        raise RuntimeError("the page did not rerun on the 'r' key")
    e2e.wait_idle(page)
    return time.perf_counter() - t


def switches_and_reopen(dataset: str, method: str, store: Path, repeats: int, app: Path = APP
                        ) -> dict[str, list[float]]:
    keys = ("page switch", "reopen a stored run", "first visit after restart", "rerun", "reopen kB", "rerun kB")
    out: dict[str, list[float]] = {k: [] for k in keys}
    per_page: dict[str, list[float]] = {}
    drawn = DRAWN[_modality(dataset)]
    with e2e.server(store, app=app) as url, e2e.browser() as page:
        got = Received(page)
        t0 = time.perf_counter()
        page.goto(f"{url}/explanations?dataset={dataset}&methods={method}")
        e2e.plot_drawn(page, "x_fig_0", drawn)
        out["first visit after restart"].append(time.perf_counter() - t0)
        e2e.wait_idle(page)
        for _ in range(repeats):
            for title in SWITCHED:
                t = time.perf_counter()
                e2e.goto_page(page, title)
                out["page switch"].append(time.perf_counter() - t)
                per_page.setdefault(title, []).append(out["page switch"][-1])
            got.take()
            page.locator('[data-testid="stSidebarNav"] a', has_text="Explanations").first.click()
            t = time.perf_counter()
            page.wait_for_selector('h1:has-text("Explanations")')
            e2e.plot_drawn(page, "x_fig_0", drawn)
            out["reopen a stored run"].append(time.perf_counter() - t)
            e2e.wait_idle(page)
            out["reopen kB"].append(got.take())
            out["rerun"].append(rerun(page))
            out["rerun kB"].append(got.take())
    print(f"#   {dataset} ({app.parent}) per page (s): "
          + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in per_page.items()), flush=True)
    return out


BARE_APP = """import streamlit as st
st.set_page_config(page_title="bare", layout="wide")
def home(): st.title("Explain and audit")
def other(): st.title("Metrics")
nav = st.navigation([st.Page(home, title="Home", default=True), st.Page(other, title="Metrics")])
st.sidebar.selectbox("Dataset", [str(i) for i in range(11)], key="d")
st.sidebar.selectbox("Model", ["a", "b"], key="m")
st.sidebar.number_input("Seed", 0, 100, key="s")
nav.run()
"""


def bare_switches(repeats: int) -> list[float]:
    """Page switches of a bare two-page Streamlit app with the same sidebar widgets and config: the floor."""
    times = []
    with tempfile.TemporaryDirectory() as d:
        app = Path(d) / "app.py"
        app.write_text(BARE_APP)
        shutil.copytree(e2e.ROOT / ".streamlit", Path(d) / ".streamlit")
        with e2e.server(Path(d) / "s.sqlite", app=app) as url, e2e.browser() as page:
            page.goto(url)
            e2e.wait_page(page, "Home")
            for _ in range(max(3, repeats)):
                for title in ("Metrics", "Home"):
                    t = time.perf_counter()
                    e2e.goto_page(page, title)
                    times.append(time.perf_counter() - t)
    return times


def _cell(seconds: float, floor: float) -> str:
    return f"{seconds:.2f} ({seconds / floor:.1f}×)"


def _measure(ds: str, method: str, repeats: int, app: Path) -> dict[str, float]:
    colds = []
    for _ in range(max(1, repeats // 2)):
        with tempfile.TemporaryDirectory() as d:
            colds.append(cold_start(ds, method, Path(d) / "results.sqlite", app))
    with tempfile.TemporaryDirectory() as d:
        store = Path(d) / "results.sqlite"
        cold_start(ds, method, store, app)  # fill the store
        warm = switches_and_reopen(ds, method, store, repeats, app)
    med = {k: statistics.median(c[k] for c in colds) for k in colds[0]}
    med.update({k: statistics.median(v) for k, v in warm.items()})
    return med


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="simu-small,grain,dna-motifs-small")
    ap.add_argument("--method", default="saliency")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="also measure the dashboard in this folder (e.g. `git archive OLD | tar -x -C DIR`), "
                         "dataset by dataset in turn with this checkout, against the same floor")
    args = ap.parse_args(argv)
    if e2e.chromium_path() is None:
        print("Debian chromium is needed: apt-get install chromium", file=sys.stderr)
        return 2
    if args.repeats < 1:
        print(f"--repeats must be at least 1, got {args.repeats}", file=sys.stderr)
        return 2
    apps = {"": APP}
    if args.baseline is not None:
        base = args.baseline.resolve() / "app.py"
        if not base.is_file():
            print(f"--baseline {args.baseline}: no app.py there; give the folder of another checkout", file=sys.stderr)
            return 2
        apps = {" (baseline)": base, "": APP}
    print(f"# dashboard latency in headless chromium at 1280x800, R = {args.repeats}, {datetime.date.today()}")
    print(f"# {platform.platform()}, nproc={os.cpu_count()}; load average at start "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; seconds (medians over repeats) and, in brackets, "
          "the multiple of the bare app's page switch measured in this run", flush=True)
    floor_times = bare_switches(args.repeats)
    print(f"# floor before: {statistics.median(floor_times):.2f} s", flush=True)
    rows = []
    for ds in args.datasets.split(","):
        for label, app in apps.items():
            med = _measure(ds, args.method, args.repeats, app)
            rows.append((ds + label, med))
            print(f"#   {ds}{label}: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()), flush=True)
    after = bare_switches(args.repeats)
    print(f"# floor after: {statistics.median(after):.2f} s", flush=True)
    floor = statistics.median(floor_times + after)
    print(f"# floor: a bare two-page Streamlit app with the same sidebar and config switches pages in {floor:.2f} s "
          f"(median of {len(floor_times + after)}, before and after); load average at the end "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| dataset | cold: server up | cold: page ready | cold: click → drawn | page switch | reopen a stored run | "
          "rerun, nothing changed | first visit after restart | kB sent: reopen | kB sent: rerun |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for ds, m in rows:
        print(f"| {ds} | {m['server up']:.2f} | {m['page ready']:.2f} | {_cell(m['click → drawn'], floor)} | "
              f"{_cell(m['page switch'], floor)} | {_cell(m['reopen a stored run'], floor)} | "
              f"{_cell(m['rerun'], floor)} | {_cell(m['first visit after restart'], floor)} | "
              f"{m['reopen kB']:.0f} | {m['rerun kB']:.0f} |")
    print(f"# targets: click → drawn ≤ {CLICK_TARGET_S} s on a quiet machine; page switch and reopen ≤ "
          f"{RATIO_TARGET}× the floor ({RATIO_TARGET * floor:.2f} s in this run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
