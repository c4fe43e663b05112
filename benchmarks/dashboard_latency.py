"""Dashboard latency measured in a real browser (Debian chromium + Playwright), medians over repeats.

1. cold start to first heatmap: a freshly started server and an empty results store; open the Explanations
   page for a fast method (saliency), click Explain, stop the clock when the chart is drawn;
2. page switch: click a sidebar link, stop when the new page's run is over (warm server);
3. reopening a stored run: restart the server on the same store (empty caches), warm it on Home, then switch
   to Explanations; stop when the stored maps are drawn (no click, nothing computed).

    .venv/bin/python benchmarks/dashboard_latency.py [--repeats 5] [--datasets simu-small,grain,dna-motifs-small]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dashboard import pages
from tests import e2e

DRAWN = {"expression": ".barlayer .point", "image": ".heatmaplayer image", "sequence": "path.js-fill"}
TARGETS = {"cold start → first heatmap (after the click)": 3.0, "page switch": 0.5, "reopen a stored run": 0.3}
# the pages switched to between two visits of Explanations (the page whose reopening is measured)
SWITCHED = tuple(p.title for p in pages.of_kind(pages.HOME, pages.DATASET) if p.slug != "explanations")


def _modality(dataset: str) -> str:
    from xai_core.data import DATASETS

    return DATASETS.get(dataset).modality


def cold_start(dataset: str, method: str, store: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    with e2e.server(store) as url, e2e.browser() as page:
        t_server = time.perf_counter() - t0
        page.goto(f"{url}/explanations?dataset={dataset}&methods={method}")
        page.wait_for_selector(".st-key-x_run button")
        e2e.wait_idle(page)
        t_ready = time.perf_counter() - t0
        t1 = time.perf_counter()
        e2e.click_key(page, "x_run")
        e2e.plot_drawn(page, "x_fig_0", DRAWN[_modality(dataset)])
        t_click = time.perf_counter() - t1
    return {"server up": t_server, "page ready (model loaded)": t_ready, "click → drawn": t_click}


def switches_and_reopen(dataset: str, method: str, store: Path, repeats: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"page switch": [], "reopen a stored run": [], "first visit after restart": []}
    per_page: dict[str, list[float]] = {}
    with e2e.server(store) as url, e2e.browser() as page:
        t0 = time.perf_counter()
        page.goto(f"{url}/explanations?dataset={dataset}&methods={method}")
        e2e.plot_drawn(page, "x_fig_0", DRAWN[_modality(dataset)])
        out["first visit after restart"].append(time.perf_counter() - t0)
        for _ in range(repeats):
            for title in SWITCHED:
                t = time.perf_counter()
                e2e.goto_page(page, title)
                out["page switch"].append(time.perf_counter() - t)
                per_page.setdefault(title, []).append(out["page switch"][-1])
            page.locator('[data-testid="stSidebarNav"] a', has_text="Explanations").first.click()
            t = time.perf_counter()
            page.wait_for_selector('h1:has-text("Explanations")')
            e2e.plot_drawn(page, "x_fig_0", DRAWN[_modality(dataset)])
            out["reopen a stored run"].append(time.perf_counter() - t)
            e2e.wait_idle(page)
    print("#   " + dataset + " per page: " + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in per_page.items()),
          flush=True)
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


def bare_switch(repeats: int) -> float:
    """Median page switch of a bare two-page Streamlit app with the same sidebar widgets and config: the floor."""
    import shutil

    times = []
    with tempfile.TemporaryDirectory() as d:
        app = Path(d) / "app.py"
        app.write_text(BARE_APP)
        shutil.copytree(e2e.ROOT / ".streamlit", Path(d) / ".streamlit")
        with e2e.server(Path(d) / "s.sqlite", app=app) as url, e2e.browser() as page:
            page.goto(url)
            e2e.wait_page(page, "Home")
            for _ in range(repeats):
                for title in ("Metrics", "Home"):
                    t = time.perf_counter()
                    e2e.goto_page(page, title)
                    times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="simu-small,grain,dna-motifs-small")
    ap.add_argument("--method", default="saliency")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    if e2e.chromium_path() is None:
        print("Debian chromium is needed: apt-get install chromium", file=sys.stderr)
        return 2
    print(f"# dashboard latency in headless chromium at 1280x800, R = {args.repeats}, {datetime.date.today()}")
    print(f"# {platform.platform()}, nproc={os.cpu_count()}; seconds, medians over repeats")
    print("| dataset | cold: server up | cold: page ready | cold: click → drawn | page switch | "
          "reopen stored run (switch) | first visit after restart |")
    print("|---|---|---|---|---|---|---|")
    for ds in args.datasets.split(","):
        colds = []
        for _ in range(max(1, args.repeats // 2)):
            with tempfile.TemporaryDirectory() as d:
                colds.append(cold_start(ds, args.method, Path(d) / "results.sqlite"))
        with tempfile.TemporaryDirectory() as d:
            store = Path(d) / "results.sqlite"
            cold_start(ds, args.method, store)  # fill the store
            warm = switches_and_reopen(ds, args.method, store, args.repeats)
        med = {k: statistics.median(c[k] for c in colds) for k in colds[0]}
        print(f"| {ds} | {med['server up']:.2f} | {med['page ready (model loaded)']:.2f} | "
              f"{med['click → drawn']:.2f} | {statistics.median(warm['page switch']):.2f} | "
              f"{statistics.median(warm['reopen a stored run']):.2f} | "
              f"{statistics.median(warm['first visit after restart']):.2f} |", flush=True)
    floor = bare_switch(args.repeats)
    print(f"# floor: a bare two-page Streamlit app with the same sidebar switches pages in {floor:.2f} s here")
    print("# targets: " + "; ".join(f"{k} ≤ {v} s" for k, v in TARGETS.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
