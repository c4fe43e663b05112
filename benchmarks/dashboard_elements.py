"""What each kind of element costs the browser when a page opens: why the Explanations page's reopen is 2.5-4x the
bare app's page switch (issue 16's target is 2x), measured side by side in one run.

A probe app with two pages (the bare app of ``dashboard_latency.py``: a title and the same sidebar) is started once
per variant; the variant adds to the second page what the Explanations page shows, one kind at a time:

- ``title``: nothing more (the floor);
- ``figure``: one plotly figure, the gene bars of 4 samples x 1 method (the page's figure on simu-small);
- ``widgets``: the page's controls (two multiselects, two selectboxes, a toggle, a slider);
- ``samples_3000``: one multiselect with 3,000 options (the Samples box of a large dataset) against 30;
- ``table``: a one-row data grid in a collapsed expander (the cost table);
- ``downloads``: the figure's PNG/SVG buttons and the maps' zip button; ``downloads_popover``: the same three
  inside one closed ``st.popover("Download")``;
- ``page_before``: widgets, table, figure and downloads (the Explanations page with everything stored, before
  2026-11-30);
- ``page_now``: the same without the table (now one caption line when everything is stored); ``page_popover``:
  ``page_now`` with its downloads in the popover.

For each: the median wall-clock of a switch to the page (click to the page drawn, its run over; to the figure drawn
where there is one), and the browser main thread's busy time during it (Chrome DevTools Protocol
``Performance.getMetrics``: ``TaskDuration``), over ``--repeats`` switches after one warm-up. Busy time is less
noisy than wall-clock on a shared machine; both are medians.

    .venv/bin/python benchmarks/dashboard_elements.py [--repeats 9] [--variants title,figure,...]
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
from tests import e2e

VARIANTS = ("title", "figure", "widgets", "samples_30", "samples_3000", "table", "downloads", "downloads_popover",
            "page_before", "page_now", "page_popover")
PARTS = {"page_before": ("widgets", "table", "figure", "downloads"), "page_now": ("widgets", "figure", "downloads"),
         "page_popover": ("widgets", "figure", "downloads_popover")}

PROBE_APP = """import os, sys
sys.path.insert(0, {root!r})
import numpy as np, pandas as pd, streamlit as st
st.set_page_config(page_title="probe", layout="wide")
PARTS = set(os.environ["PROBE_PARTS"].split(","))

@st.cache_resource
def figure():
    from xai_core.figures.explanations import gene_bars
    rng = np.random.default_rng(0)
    return gene_bars({{"Saliency": rng.normal(size=(4, 500))}}, [f"GENE{{i}}" for i in range(500)],
                     [f"s{{i}}<br>true: A<br>model: A (0.9)" for i in range(4)], k=15)

def home():
    st.title("Explain and audit")

def probe():
    st.title("Explanations")
    if "widgets" in PARTS:
        left, right = st.columns(2)
        left.multiselect("Samples", [f"s{{i}}" for i in range(300)], default=["s1", "s2", "s3", "s4"], key="w1")
        right.multiselect("Methods", ["saliency", "ig", "deeplift"], default=["saliency"], key="w2")
        c1, c2, c3, c4 = st.columns(4)
        c1.selectbox("Channel pooling", ["sum", "abs"], key="w3")
        c2.selectbox("Normalisation", ["per map", "dataset"], key="w4")
        c3.toggle("Aggregated explanation", key="w5")
        c4.slider("Genes per map", 5, 40, 15, key="w6")
    for n in (30, 3000):
        if f"samples_{{n}}" in PARTS:
            opts = [f"sample-{{i}} · class A (model: A, 0.93)" for i in range(n)]
            st.multiselect("Samples", opts, default=opts[:1], key=f"s{{n}}")
    if "table" in PARTS:
        with st.expander("Cost: everything shown is already stored"):
            st.dataframe(pd.DataFrame({{"method": ["Saliency"], "status": ["stored"], "forward passes": [0],
                                        "backward passes": [0]}}), hide_index=True)
    if "figure" in PARTS:
        st.plotly_chart(figure(), key="fig_x_fig_0", config={{"displaylogo": False}})
    if "downloads" in PARTS:
        with st.container(horizontal=True):
            st.download_button("PNG", data=b"x", file_name="a.png", on_click="ignore")
            st.download_button("SVG", data=b"x", file_name="a.svg", on_click="ignore")
        st.download_button("Download these maps (zip)", data=b"x", file_name="a.zip", on_click="ignore")
    if "downloads_popover" in PARTS:
        with st.popover("Download"):
            st.download_button("PNG", data=b"x", file_name="a.png", on_click="ignore")
            st.download_button("SVG", data=b"x", file_name="a.svg", on_click="ignore")
            st.download_button("Download these maps (zip)", data=b"x", file_name="a.zip", on_click="ignore")

nav = st.navigation([st.Page(home, title="Home", default=True),
                     st.Page(probe, title="Explanations", url_path="explanations")])
st.sidebar.selectbox("Dataset", [str(i) for i in range(11)], key="d")
st.sidebar.selectbox("Model", ["a", "b"], key="m")
st.sidebar.number_input("Seed", 0, 100, key="s")
nav.run()
"""
BUSY = "TaskDuration"


def measure(app: Path, parts: tuple[str, ...], repeats: int) -> tuple[float, float]:
    """(median seconds of a switch to the probe page, median ms of the browser main thread's busy time)."""
    walls, busy = [], []
    with tempfile.TemporaryDirectory() as d, \
            e2e.server(Path(d) / "s.sqlite", app=app, env={"PROBE_PARTS": ",".join(parts)}) as url, \
            e2e.browser() as page:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")

        def task_ms() -> float:
            return 1000 * next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == BUSY)
        page.goto(f"{url}/explanations")
        e2e.wait_idle(page)
        for r in range(repeats + 1):
            e2e.goto_page(page, "Home")
            time.sleep(0.3)
            m0 = task_ms()
            t = time.perf_counter()
            page.locator('[data-testid="stSidebarNav"] a', has_text="Explanations").first.click()
            page.wait_for_selector('h1:has-text("Explanations")')
            if "figure" in parts:
                e2e.plot_drawn(page, "x_fig_0", ".barlayer .point")
            else:
                e2e.wait_idle(page)
            wall = time.perf_counter() - t
            e2e.wait_idle(page)
            time.sleep(0.2)  # the page's last frames
            if r:  # the first switch warms the browser's caches
                walls.append(wall)
                busy.append(task_ms() - m0)
    return statistics.median(walls), statistics.median(busy)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    bad = sorted(set(variants) - set(VARIANTS))
    if bad or not variants:
        print(f"--variants: unknown {', '.join(bad) or '(none given)'}; choose from {', '.join(VARIANTS)}",
              file=sys.stderr)
        return 2
    if args.repeats < 1:
        print(f"--repeats must be at least 1, got {args.repeats}", file=sys.stderr)
        return 2
    if e2e.chromium_path() is None:
        print("Debian chromium is needed: apt-get install chromium", file=sys.stderr)
        return 2
    print(f"# browser cost of page elements, headless chromium at 1280x800, R = {args.repeats}, "
          f"{datetime.date.today()}; {platform.platform()}, nproc={os.cpu_count()}, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        app = Path(d) / "app.py"
        app.write_text(PROBE_APP.format(root=str(e2e.ROOT)))
        shutil.copytree(e2e.ROOT / ".streamlit", Path(d) / ".streamlit")
        for v in variants:
            rows[v] = measure(app, PARTS.get(v, (v,)), args.repeats)
            print(f"#   {v}: {rows[v][0]:.3f} s, {rows[v][1]:.0f} ms busy", flush=True)
    floor = rows.get("title")
    print("| page holds | switch to it, s | × the title-only page | browser main thread busy, ms "
          "| more than title-only, ms |")
    print("|---|---|---|---|---|")
    for v, (wall, busy) in rows.items():
        ratio = f"{wall / floor[0]:.2f}" if floor else "—"
        extra = f"{busy - floor[1]:+.0f}" if floor else "—"
        print(f"| {v} | {wall:.3f} | {ratio} | {busy:.0f} | {extra} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
