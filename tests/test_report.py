"""The one-click report (xai_core.report, ``python -m xai_core report``, the sidebar's Report action).

A small grain grid (6 methods x 3 samples x 4 cheap metrics) is computed once into a temporary store; every test
then reads it: the report's size, the report opened offline in chromium with all network blocked, the CLI's and the
dashboard's reports of one selection holding the same numbers, and bad input ending with one line and exit != 0.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import e2e
from xai_core.cli import main
from xai_core.explainers import AGGREGATE, component_params, plain_methods
from xai_core.report import Selection, build_report, report_data
from xai_core.runner import EvalConfig, Evaluation
from xai_core.store import ResultStore

METHODS = ["saliency", "integrated_gradients", "smoothgrad", "deeplift", "gradcam", "random"]
METRICS = ["sparseness", "complexity", "relevance_rank_accuracy", "relevance_mass_accuracy"]
MAX_BYTES = 15_000_000


@pytest.fixture(scope="module")
def grain(tmp_path_factory):
    """(store path, Evaluation, sample ids) after the grid was computed into a fresh store."""
    path = tmp_path_factory.mktemp("report") / "results.sqlite"
    store = ResultStore(path)
    ev = Evaluation(EvalConfig(dataset="grain", methods=METHODS, metrics=METRICS, n=3), store)
    plan = ev.plan()
    ev.run(plan)
    # the aggregate of the plain methods, as the Explanations page stores it (reusing their maps: no pass)
    ev.with_config(method_params={AGGREGATE: component_params(AGGREGATE, plain_methods(METHODS))}).attributions(
        AGGREGATE, plan.sample_idx[:2])
    yield path, ev, [ev.ds.sample_ids[i] for i in plan.sample_idx]
    store.close()


@pytest.fixture(scope="module")
def report_file(grain, tmp_path_factory) -> Path:
    _, ev, _ = grain
    report, html = build_report(ev, Selection(methods=METHODS, metrics=METRICS))
    out = tmp_path_factory.mktemp("html") / "report.html"
    out.write_text(html, encoding="utf-8")
    return out


def _comparable(data: dict) -> dict:
    """The report's numbers without what differs between two writes (the time written, the store's spelling)."""
    prov = dict(data.get("provenance") or {})
    prov.pop("created", None)
    prov.pop("store", None)
    prov["commands"] = {k: v for k, v in prov.get("commands", {}).items() if k != "this report"}
    return {**data, "provenance": prov}


def test_report_size_and_contents(report_file):
    size = report_file.stat().st_size
    print(f"grain report, {len(METHODS)} methods x 3 samples x {len(METRICS)} metrics: {size / 1e6:.2f} MB")
    assert size < MAX_BYTES
    text = report_file.read_text(encoding="utf-8")
    assert text.count("<script>") == 2  # plotly.js inline once, plus the drawing code
    assert 'src="http' not in text and "<link" not in text  # nothing fetched from anywhere
    data = report_data(text)
    assert data["dataset"] == "grain" and data["methods"] == METHODS and data["metrics"] == METRICS
    assert len(data["scored_samples"]) == 3 and data["scored_cells"] == len(METHODS) * len(METRICS)
    assert data["data"]["checkpoint_hash"] == data["checkpoint_hash"] and data["data"]["test_accuracy"] > 0.9
    assert data["explanations"]["drawn"] and data["explanations"]["methods"] == METHODS
    rk = data["ranking"]
    assert set(rk["methods"]) == set(METHODS) and rk["headline"]
    assert "p_above_control" in rk["table"]["saliency"]  # the controls floor
    assert rk["table"]["random"]["p_above_control"] is None
    prov = data["provenance"]
    assert prov["dataset"]["fingerprint"] and prov["model"]["checkpoint_hash"] and prov["versions"]["torch"]
    assert len(prov["score_cells"]) == len(METHODS) * len(METRICS)
    assert any(c.startswith("python -m xai_core evaluate") for c in prov["commands"].values())
    assert data["not_computed"] == []


@pytest.mark.skipif(e2e.chromium_path() is None and os.environ.get("CI") != "true",
                    reason="Debian chromium is not installed (apt-get install chromium); CI installs it")
def test_report_opens_offline_in_a_browser(report_file):
    from playwright.sync_api import sync_playwright

    errors, requests = [], []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=e2e.chromium_path(), headless=True, args=e2e.CHROMIUM_ARGS)
        try:
            page = b.new_page(viewport=e2e.VIEWPORT)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            def route(r):
                if r.request.url.startswith("file://"):
                    r.continue_()
                else:
                    requests.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(report_file.resolve().as_uri())
            page.wait_for_load_state("load")
            figures = page.locator("div.figure")
            n = figures.count()
            assert n >= 1 + len(METRICS) + 2  # explanations, one per metric, MRR intervals, rank probabilities
            undrawn = [figures.nth(i).get_attribute("id") for i in range(n)
                       if figures.nth(i).locator(".main-svg").count() == 0]
        finally:
            b.close()
    assert not undrawn, undrawn
    assert not errors, errors
    assert not requests, requests


def test_cli_report_equals_dashboard_report(grain, tmp_path, monkeypatch, capsys):
    import streamlit as st

    from dashboard import report_view

    path, ev, ids = grain
    samples = ids[1::-1]  # two samples, not in the stored order
    view = {"pooling": "abs", "normalisation": "dataset_max", "aggregate": True, "opacity": 0.5}
    out = tmp_path / "cli.html"
    pdf = tmp_path / "cli.pdf"
    argv = ["report", "--dataset", "grain", "--store", str(path), "--methods", ",".join(METHODS),
            "--metrics", ",".join(METRICS), "--samples", ",".join(samples), "--pooling", "abs", "--scale",
            "dataset_max", "--aggregate", "--opacity", "0.5", "--out", str(out)]
    if e2e.chromium_path():
        argv += ["--pdf", str(pdf)]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    if e2e.chromium_path():
        assert pdf.read_bytes()[:5] == b"%PDF-"
    monkeypatch.setenv("XAI_CORE_STORE", str(path))
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        _, html = report_view.build("grain", "simplenet", 0,
                                    Selection(methods=list(METHODS), metrics=list(METRICS), samples=samples, **view))
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
    cli, dash = report_data(out.read_text(encoding="utf-8")), report_data(html)
    ex = cli["explanations"]
    assert ex["samples"] == samples and ex["methods"] == [*METHODS, AGGREGATE]
    assert (ex["pooling"], ex["normalisation"], ex["opacity"]) == ("abs", "dataset_max", 0.5)
    assert ex["aggregate_of"] == plain_methods(METHODS) and "magnitude" in ex["caption"]
    assert all(min(v) >= 0 for v in ex["drawn_abs_sum"].values())
    assert _comparable(cli) == _comparable(dash)
    # the drawing choices change the drawn numbers, not the stored maps
    default = report_data(build_report(ev, Selection(methods=list(METHODS), metrics=list(METRICS),
                                                     samples=samples))[1])["explanations"]
    assert default["maps"]["saliency"] == ex["maps"]["saliency"]
    assert default["drawn_abs_sum"]["saliency"] != ex["drawn_abs_sum"]["saliency"]
    assert AGGREGATE not in default["methods"]


def test_report_file_name():
    from datetime import date

    from dashboard import report_view

    assert report_view.file_stem("grain", "simplenet", date(2026, 1, 2)) == "report_grain_simplenet_2026-01-02"
    assert report_view.file_stem("pbmc68k", "/x/pbmc68k__mlp-seed0.safetensors", date(2026, 1, 2)) == \
        "report_pbmc68k_mlp-seed0_2026-01-02"


@pytest.mark.parametrize("argv, code, says", [
    (["--dataset", "nope"], 2, "unknown dataset 'nope'"),
    (["--dataset", "grain", "--sections", "data,nope"], 2, "unknown section 'nope'"),
    (["--dataset", "grain", "--methods", "saliency,nope"], 2, "unknown method 'nope'"),
    (["--dataset", "grain", "--store", "{tmp}/absent.sqlite"], 1, "no results store at"),
    (["--dataset", "grain", "--store", "{tmp}/empty.sqlite"], 1, "python -m xai_core evaluate"),
    (["--dataset", "grain", "--store", "{grain}", "--methods", "lime"], 1, "holds no scores or maps"),
    (["--dataset", "grain", "--pooling", "median"], 2, "--pooling: unknown choice 'median'"),
    (["--dataset", "grain", "--scale", "p95"], 2, "--normalisation: unknown choice 'p95'"),
    (["--dataset", "grain", "--dna-view", "both"], 2, "--dna-view: unknown choice 'both'"),
    (["--dataset", "grain", "--genes-per-map", "3"], 2, "--genes-per-map"),
    (["--dataset", "grain", "--opacity", "2"], 2, "--opacity"),
    (["--dataset", "grain", "--store", "{grain}", "--samples", "{id},nope"], 2, "unknown sample id(s) of grain: nope"),
])
def test_bad_input_is_one_line(argv, code, says, grain, tmp_path, capsys):
    ResultStore(tmp_path / "empty.sqlite").close()
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{grain}", str(grain[0])).replace("{id}", grain[2][0])
            for a in argv]
    out = tmp_path / "r.html"
    assert main(["report", *argv, "--out", str(out)]) == code
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1, err
    assert not out.exists()
    assert not (tmp_path / "absent.sqlite").exists()  # a report never creates a store


def test_sidebar_report_action(grain, monkeypatch):
    """The sidebar's Report: Build reads the store and offers the HTML download, named by dataset, model and date."""
    import streamlit as st

    from tests.app_helpers import no_exception, open_page

    monkeypatch.setenv("XAI_CORE_STORE", str(grain[0]))
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = open_page(None, dataset="grain", methods=list(METHODS), metrics=list(METRICS))
        at.button(key="report_build").click().run()
        no_exception(at)
        res = at.session_state["_report_result"]
        assert res["stem"].startswith("report_grain_simplenet_") and not res["empty"]
        assert report_data(res["html"])["methods"] == METHODS
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()


def test_report_draws_what_the_explanations_page_shows(grain, monkeypatch):
    """Choose samples, methods, pooling and normalisation on the Explanations page, switch to another page, build
    the report from the sidebar: it draws those choices (the page's widget keys are gone by then)."""
    import streamlit as st

    from tests.app_helpers import no_exception, open_page

    path, ev, ids = grain
    monkeypatch.setenv("XAI_CORE_STORE", str(path))
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        chosen = ["saliency", "gradcam", "random"]
        at = open_page("explanations", dataset="grain")
        at.session_state["methods"], at.session_state["samples"] = chosen, ids[:2]
        at.run()
        at.selectbox(key="x_pooling").set_value("abs").run()
        at.selectbox(key="x_norm").set_value("dataset_p99").run()
        no_exception(at)
        at.switch_page("views/metrics.py").run()
        at.button(key="report_build").click().run()
        no_exception(at)
        ex = report_data(at.session_state["_report_result"]["html"])["explanations"]
        assert ex["methods"] == chosen and ex["samples"] == ids[:2]
        assert (ex["pooling"], ex["normalisation"]) == ("abs", "dataset_p99")
        cli = _engine_drawn(ev, chosen, ids[:2])
        assert ex["drawn_abs_sum"] == cli
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()


def _engine_drawn(ev, methods, samples) -> dict:
    """The drawn numbers of the same choices, from the engine directly."""
    sel = Selection(methods=methods, samples=samples, pooling="abs", normalisation="dataset_p99",
                    sections=("explanations",))
    return report_data(build_report(ev, sel)[1])["explanations"]["drawn_abs_sum"]
