"""End to end in a real browser: Debian chromium driven by Playwright against `streamlit run app.py`.

Walks every page, runs an explanation on images (heatmap) and on DNA (sequence logo), and saves screenshots
(to $XAI_SCREENSHOTS when set, e.g. docs/screenshots, otherwise to the test's temporary folder).
CI installs chromium itself (.ci/run); elsewhere the test is skipped when chromium is missing.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from dashboard import pages
from tests import e2e

pytestmark = pytest.mark.skipif(e2e.chromium_path() is None and os.environ.get("CI") != "true",
                                reason="Debian chromium is not installed (apt-get install chromium); CI installs it")

# Home is where the walk starts; the pages for the user's own files need files (test_e2e_user_data.py)
PAGES = [p.title for p in pages.of_kind(pages.DATASET, pages.STUDIES)]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = Path(os.environ.get("XAI_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


FIRST_RUN: dict[str, str] = {}  # what the first page of a freshly started server said while it loaded


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    store = tmp_path_factory.mktemp("e2e") / "results.sqlite"
    with e2e.server(store) as url, e2e.browser() as p:
        p.goto(url)
        # shown from the first run's start until torch, captum and zennit are imported (seconds); the estimate
        # joins it once the cache folder is known
        box = p.get_by_text(re.compile(r"Loading the explanation engine.*(here last time|not measured)")).first
        try:
            box.wait_for(timeout=60_000)
            FIRST_RUN["engine"] = box.inner_text()
        except PlaywrightTimeout:
            pass
        e2e.wait_idle(p)
        yield p


def test_a_fresh_server_says_it_loads_the_engine_and_for_how_long(page):
    said = FIRST_RUN.get("engine", "")
    assert "torch, captum, zennit" in said, FIRST_RUN
    assert "here last time" in said or "not measured on this machine yet" in said
    assert page.get_by_text("Loading the explanation engine").count() == 0  # gone once loaded


def test_plotly_code_is_loaded_before_any_page_draws_a_chart(page):
    """Home draws no chart, yet the browser has Plotly's code (ui.preload_charts), so that the first figure after
    a click does not wait for 4.7 MB of JavaScript."""
    assert page.locator(".js-plotly-plot").count() <= 1  # at most the hidden, empty preload chart
    page.wait_for_function("""() => performance.getEntriesByType('resource')
                                      .some(e => e.name.includes('/static/js/PlotlyChart'))""", timeout=60_000)


def _clean(page) -> None:
    assert e2e.exceptions(page) == []
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0, \
        page.locator('[data-testid="stAlertContentError"]').all_inner_texts()


def _open_dataset(page, name: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text="Home").first.click()
    page.wait_for_selector('h1:has-text("Explain and audit")')
    e2e.wait_idle(page)
    e2e.click_key(page, f"open_{name}")
    page.wait_for_selector('h1:has-text("Data & model")')
    e2e.wait_idle(page)


def test_home_then_every_page_renders_without_errors(page, shots):
    assert "Explain and audit" in page.locator("h1").first.inner_text()
    page.screenshot(path=str(shots / "home.png"))
    for title in PAGES:
        e2e.goto_page(page, title)
        _clean(page)
        page.screenshot(path=str(shots / f"page_{title.lower().replace(' & ', '_').replace(' ', '_')}.png"))


FIG = ".st-key-fig_x_fig_0"


def _explain(page, shots, dataset: str, drawn: str, shot: str) -> None:
    """Open ``dataset`` from Home, go to Explanations, run if needed until ``drawn`` is in the chart; screenshot."""
    _open_dataset(page, dataset)
    _clean(page)
    e2e.goto_page(page, "Explanations")
    e2e.run_if_needed(page, "x_run", f"{FIG} .js-plotly-plot {drawn}")
    _clean(page)
    page.locator(FIG).scroll_into_view_if_needed()
    page.screenshot(path=str(shots / shot))


def test_image_explanation_draws_a_heatmap(page, shots):
    _explain(page, shots, "grain", ".heatmaplayer image", "explanations_grain.png")
    assert page.locator(f"{FIG} .heatmaplayer image").count() > 0


def test_dna_explanation_draws_a_sequence_logo(page, shots):
    _explain(page, shots, "dna-motifs-small", ".shapelayer path", "explanations_dna.png")
    # the letters of each nucleotide are one filled path (a layout shape), the motif track one more; the legend
    # names the four nucleotides
    shapes = page.locator(f"{FIG} .shapelayer path")
    assert shapes.count() >= 3
    fills = {shapes.nth(i).evaluate("e => getComputedStyle(e).fill") for i in range(shapes.count())}
    assert len(fills) >= 3  # nucleotides in their own colours, the track in grey
    legend = " ".join(page.locator(f"{FIG} .legend .legendtext").all_text_contents())
    assert all(a in legend.split() for a in "ACGT"), legend


def test_expression_explanation_draws_gene_bars(page, shots):
    _explain(page, shots, "simu-small", ".barlayer .point", "explanations_expression.png")
    assert page.locator(f"{FIG} .barlayer .point").count() > 0
