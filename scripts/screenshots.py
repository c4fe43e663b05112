"""Screenshots of the dashboard for the README, taken in headless Debian chromium at 1280x800.

Runs the real flows on a temporary results store, one ``Shot`` per state (``SHOTS``): explanations on grain
(also pooled by magnitude on one scale), DNA, pbmc68k (labelled rows) and simu-small, pbmc68k's Data & model
page (its per-class quality warning and figures), a metrics run and the method ranking on grain, an undecided
ranking on simu-small, gene rankings on simu-small, a quick model population on simu-small, and the presentation
view of grain maps (stored first, so it shows maps even when taken alone). Then the one-click report of grain,
pbmc68k and DNA as written by ``python -m xai_core report`` from what the shots stored, opened offline.
``--only NAME ...`` takes some of them (``report`` for the reports).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np

from dashboard.explain_view import default_samples
from tests import e2e
from xai_core.cli import main as main_cli
from xai_core.models import predict_proba
from xai_core.runner import EvalConfig, Evaluation
from xai_core.store import ResultStore


def shot(page, out: Path, name: str, anchor: str | None = None, full: bool = False) -> None:
    if anchor:
        page.locator(anchor).first.scroll_into_view_if_needed()
        page.wait_for_timeout(400)
    page.screenshot(path=str(out / f"{name}.png"), full_page=full)
    print("wrote", out / f"{name}.png", flush=True)


FIG = ".st-key-fig_x_fig_0"
PLOT = ".js-plotly-plot"
GRAIN6 = "saliency,integrated_gradients,smoothgrad,gradcam,lrp_epsilon_plus_flat,random"


def choose(page, key: str, option: str) -> None:
    """Pick ``option`` (its shown text) in the selectbox with widget key ``key``, then wait for the rerun."""
    page.locator(f".st-key-{key} [role='combobox']").first.click()
    page.locator("[role='option']", has_text=option).first.click()
    page.wait_for_timeout(300)
    e2e.wait_idle(page)


def wait_text(page, selector: str, text: str, timeout: float = 120_000) -> None:
    """Wait until the element ``selector`` shows ``text`` (a rerun has drawn it), then until the run is over."""
    page.wait_for_function("([s, t]) => { const e = document.querySelector(s); return e && e.innerText.includes(t); }",
                           arg=[selector, text], timeout=timeout)
    e2e.wait_idle(page)


def pooled_abs(page) -> None:
    """The pooled/abs state: channel pooling = magnitude, normalisation = one scale over all maps; waits until the
    scale caption names both (the rerun may start after the click returns)."""
    choose(page, "x_pooling", "largest |channel| (magnitude)")
    choose(page, "x_norm", "all maps: ÷ their largest")
    wait_text(page, ".st-key-figcap_x_scale", "largest |channel|")
    wait_text(page, ".st-key-figcap_x_scale", "all maps: ÷ their largest")


def store_maps(store: Path, dataset: str, methods: str) -> str:
    """Store the maps the Explanations page shows by default (its first correctly classified test sample per class)
    for ``methods`` of ``dataset`` in ``store``, computed here and cheaply (a few samples); returns the link's
    ``&samples=...`` naming them, so the page opens on exactly those."""
    with ResultStore(store) as rs:
        ev = Evaluation(EvalConfig(dataset=dataset), rs)
        ds = ev.ds
        pred = np.full(len(ds), -1)
        pred[ds.test_idx] = predict_proba(ev.model, ds.X[ds.test_idx]).argmax(1)
        ids = default_samples(ev, {"pred": pred})
        pos = {sid: i for i, sid in enumerate(ds.sample_ids)}
        idx = np.array([pos[s] for s in ids])
        for m in methods.split(","):
            ev.attributions(m, idx)
    print(f"stored {methods} maps of {dataset} for {', '.join(ids)}", flush=True)
    return f"&samples={','.join(ids)}"


@dataclass
class Shot:
    """One state to photograph: ``prepare`` (given the store, returns more of the link) then open ``path`` (or click
    the sidebar's ``title``), press ``run`` if the page offers it, apply ``setup``, scroll to ``anchor``. Add a state
    by adding one entry to ``SHOTS``."""
    name: str
    title: str
    path: str | None = None
    run: str | None = None
    anchor: str | None = None
    setup: Callable | None = None
    full: bool = False
    prepare: Callable[[Path], str] | None = None


SHOTS = [
    Shot("explanations_grain", "Explanations", f"explanations?dataset=grain&methods={GRAIN6}", "x_run", FIG),
    Shot("explanations_grain_abs", "Explanations", f"explanations?dataset=grain&methods={GRAIN6}", "x_run", FIG,
         pooled_abs),
    Shot("explanations_dna", "Explanations", "explanations?dataset=dna-motifs-small&methods=saliency,"
         "integrated_gradients,deeplift", "x_run", FIG),
    Shot("data_dna", "Data & model", anchor=".st-key-fig_dm_logo"),
    Shot("quality_pbmc68k", "Data & model", "data_model?dataset=pbmc68k"),  # the per-class warning, at the top
    Shot("data_pbmc68k", "Data & model", "data_model?dataset=pbmc68k", anchor=".st-key-fig_dm_cm"),
    Shot("data_pbmc68k_counts", "Data & model", "data_model?dataset=pbmc68k", anchor=".st-key-fig_dm_counts"),
    Shot("data_pbmc68k_heatmap", "Data & model", "data_model?dataset=pbmc68k", anchor=".st-key-fig_dm_heatmap"),
    Shot("explanations_pbmc68k", "Explanations", "explanations?dataset=pbmc68k&methods=saliency,"
         "integrated_gradients,random", "x_run", FIG),
    Shot("explanations_expression", "Explanations", "explanations?dataset=simu-small&methods=saliency,"
         "integrated_gradients,deeplift", "x_run", FIG),
    Shot("gene_rankings", "Gene rankings", run="gr_run", anchor=PLOT),
    Shot("metrics_grain", "Metrics", "metrics?dataset=grain&methods=saliency,integrated_gradients,smoothgrad,gradcam,"
         "random", "metrics_run", PLOT),
    Shot("ranking_grain", "Method ranking", run="ranking_run", anchor=PLOT),
    Shot("ranking_undecided", "Method ranking", "method_ranking?dataset=simu-small&methods=input_x_gradient,"
         "integrated_gradients,deeplift,random", "ranking_run", PLOT),
    Shot("model_selection", "Model selection", "model_selection?dataset=simu-small", "sel_run", PLOT),
    Shot("presentation_grain", "Explanations", f"explanations?dataset=grain&methods={GRAIN6}&present=1",
         anchor=FIG, prepare=lambda store: store_maps(store, "grain", GRAIN6)),
]
# The reports: (dataset, shots as (name, anchor or None for the top)); each written from what the shots stored
REPORTS = [("grain", [("report_grain", None), ("report_grain_ranking", "#ranking")]),
           ("pbmc68k", [("report_pbmc68k", None), ("report_pbmc68k_quality", "#data h3"),
                        ("report_pbmc68k_maps", "#explanations")]),
           ("dna-motifs-small", [("report_dna", "#explanations")])]


def report_shots(page, out: Path, store: Path) -> None:
    """The one-click reports of what the shots above stored (grain: scores and maps; pbmc68k and DNA: maps), written
    by ``python -m xai_core report`` and opened from a file:// URL with every other request refused."""
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    for dataset, views in REPORTS:
        html = out / f"report_{dataset}.html"
        if main_cli(["report", "--dataset", dataset, "--store", str(store), "--out", str(html)]) != 0:
            print(f"no {dataset} report: nothing stored for it (take its shots first)")
            continue
        page.goto(html.resolve().as_uri())
        page.wait_for_timeout(2500)
        for name, anchor in views:
            if anchor:
                page.evaluate("a => document.querySelector(a).scrollIntoView()", anchor)
                page.wait_for_timeout(400)
            shot(page, out, name)
        print(f"report {dataset}: {html.stat().st_size / 1e6:.2f} MB (not kept)")
        html.unlink()
    page.unroute("**/*")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/screenshots")
    ap.add_argument("--only", nargs="*", help="names of the shots to take (default: all)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d, e2e.server(Path(d) / "results.sqlite") as url, e2e.browser() as page:
        page.goto(url)
        e2e.wait_page(page, "Home")
        shot(page, out, "home")
        only = set(args.only or [])
        for sh in SHOTS:
            if only and sh.name not in only:
                continue
            more = sh.prepare(Path(d) / "results.sqlite") if sh.prepare else ""
            if sh.path:
                page.goto(f"{url}/{sh.path}{more}")
                e2e.wait_page(page, sh.title)
            else:
                e2e.goto_page(page, sh.title)
            if sh.run:
                e2e.run_if_needed(page, sh.run, sh.anchor or PLOT)
            if sh.setup:
                sh.setup(page)
            shot(page, out, sh.name, sh.anchor, sh.full)
        print("errors on the last page:", e2e.exceptions(page))
        if not only or "report" in only:
            report_shots(page, out, Path(d) / "results.sqlite")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
