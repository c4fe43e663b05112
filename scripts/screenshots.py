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
from dashboard import e2e  # noqa: E402


def shot(page, out: Path, name: str, anchor: str | None = None, full: bool = False) -> None:
    if anchor:
        page.locator(anchor).first.scroll_into_view_if_needed()
        page.wait_for_timeout(400)
    page.screenshot(path=str(out / f"{name}.png"), full_page=full)
    print("wrote", out / f"{name}.png", flush=True)


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
        methods = "saliency,integrated_gradients,smoothgrad,gradcam,lrp_epsilon_plus_flat,random"
        page.goto(f"{url}/explanations?dataset=grain&methods={methods}")
        e2e.wait_page(page, "Explanations")
        e2e.run_if_needed(page, "x_run", ".st-key-fig_x_fig_0 .js-plotly-plot")
        shot(page, out, "explanations_grain", ".st-key-fig_x_fig_0")
        page.goto(f"{url}/explanations?dataset=dna-motifs-small&methods=saliency,integrated_gradients,deeplift")
        e2e.wait_page(page, "Explanations")
        e2e.run_if_needed(page, "x_run", ".st-key-fig_x_fig_0 .js-plotly-plot")
        shot(page, out, "explanations_dna", ".st-key-fig_x_fig_0")
        e2e.goto_page(page, "Data & model")
        shot(page, out, "data_dna", ".st-key-fig_dm_logo")
        page.goto(f"{url}/explanations?dataset=simu-small&methods=saliency,integrated_gradients,deeplift")
        e2e.wait_page(page, "Explanations")
        e2e.run_if_needed(page, "x_run", ".st-key-fig_x_fig_0 .js-plotly-plot")
        shot(page, out, "explanations_expression", ".st-key-fig_x_fig_0")
        e2e.goto_page(page, "Gene rankings")
        e2e.run_if_needed(page, "gr_run", ".js-plotly-plot")
        shot(page, out, "gene_rankings", "h3")
        page.goto(f"{url}/metrics?dataset=grain&methods=saliency,integrated_gradients,smoothgrad,gradcam,random")
        e2e.wait_page(page, "Metrics")
        e2e.run_if_needed(page, "metrics_run", ".js-plotly-plot")
        shot(page, out, "metrics_grain", ".js-plotly-plot")
        e2e.goto_page(page, "Method ranking")
        e2e.run_if_needed(page, "ranking_run", ".js-plotly-plot")
        shot(page, out, "ranking_grain", ".js-plotly-plot")
        page.goto(f"{url}/model_selection?dataset=simu-small")
        e2e.wait_page(page, "Model selection")
        e2e.run_if_needed(page, "sel_run", ".js-plotly-plot")
        shot(page, out, "model_selection", ".js-plotly-plot")
        print("errors on the last page:", e2e.exceptions(page))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
