"""Screenshots of the dashboard for the README, taken in headless Debian chromium at 1280x800.

Runs the real flows on a temporary results store: explanations on grain, DNA and simu-small, a metrics run and
the method ranking on grain, gene rankings on simu-small, a quick model population on simu-small.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests import e2e


def shot(page, out: Path, name: str, anchor: str | None = None, full: bool = False) -> None:
    if anchor:
        page.locator(anchor).first.scroll_into_view_if_needed()
        page.wait_for_timeout(400)
    page.screenshot(path=str(out / f"{name}.png"), full_page=full)
    print("wrote", out / f"{name}.png", flush=True)


FIG = ".st-key-fig_x_fig_0"
PLOT = ".js-plotly-plot"
# (link to open, or None to click the sidebar; page title; run button key or None; screenshot; what to show)
FLOWS = [
    ("explanations?dataset=grain&methods=saliency,integrated_gradients,smoothgrad,gradcam,lrp_epsilon_plus_flat,random",
     "Explanations", "x_run", "explanations_grain", FIG),
    ("explanations?dataset=dna-motifs-small&methods=saliency,integrated_gradients,deeplift",
     "Explanations", "x_run", "explanations_dna", FIG),
    (None, "Data & model", None, "data_dna", ".st-key-fig_dm_logo"),
    ("explanations?dataset=simu-small&methods=saliency,integrated_gradients,deeplift",
     "Explanations", "x_run", "explanations_expression", FIG),
    (None, "Gene rankings", "gr_run", "gene_rankings", PLOT),
    ("metrics?dataset=grain&methods=saliency,integrated_gradients,smoothgrad,gradcam,random",
     "Metrics", "metrics_run", "metrics_grain", PLOT),
    (None, "Method ranking", "ranking_run", "ranking_grain", PLOT),
    ("model_selection?dataset=simu-small", "Model selection", "sel_run", "model_selection", PLOT),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/screenshots")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d, e2e.server(Path(d) / "results.sqlite") as url, e2e.browser() as page:
        page.goto(url)
        e2e.wait_page(page, "Home")
        shot(page, out, "home")
        for path, title, run_key, name, anchor in FLOWS:
            if path:
                page.goto(f"{url}/{path}")
                e2e.wait_page(page, title)
            else:
                e2e.goto_page(page, title)
            if run_key:
                e2e.run_if_needed(page, run_key, anchor)
            shot(page, out, name, anchor)
        print("errors on the last page:", e2e.exceptions(page))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
