"""Metrics page (AppTest): choose methods and metrics, run, see distributions, curves and missing-score
reasons; the same results come back from the store after a restart without computing."""
import base64

import numpy as np
import streamlit as st
from app_helpers import no_exception, open_page, plotly_figures

from xai_core.figures.metrics import method_label

FAST = ["saliency", "input_x_gradient", "random"]


def run_page(dataset, methods, metrics, n):
    at = open_page("metrics", dataset=dataset, methods=methods, metrics=metrics)
    no_exception(at)
    at.number_input(key="metrics_n").set_value(n).run()
    assert any("forward" in m.value for m in at.markdown), "the plan's cost is shown before running"
    (run,) = [b for b in at.button if b.key == "metrics_run"]
    run.click().run()
    no_exception(at)
    return at


def values(v):
    """A trace's data array: plotly encodes numeric arrays as base64 typed arrays in JSON."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        return a.reshape([int(d) for d in str(v["shape"]).split(",")]) if "shape" in v else a
    return np.asarray(v)


def traces(at, kind):
    return [[t for t in f["data"] if t["type"] == kind] for f in plotly_figures(at)]


def restart():
    """What a new server process sees: nothing cached, only the results store on disk."""
    st.cache_data.clear()
    st.cache_resource.clear()


def test_metrics_page_runs_then_reopens_from_the_store(app_store):
    metrics = ["pixel_flipping", "sparseness", "feature_agreement_local"]
    at = run_page("simu-small", FAST, metrics, n=6)
    violins = [v for v in traces(at, "violin") if v]
    shown = [method_label(m) for m in FAST]  # traces carry the methods' labels, not their identifiers
    assert len(violins) == 3 and all([t["name"] for t in v] == shown for v in violins)
    assert all(len(values(t["y"])) == 6 for t in violins[0])  # every sample is a point
    curves = [f for f in plotly_figures(at) if "mean curve" in f["layout"]["title"]["text"]]
    assert len(curves) == 1 and len(curves[0]["data"]) == 2 * len(FAST)  # a band and a mean line per method
    assert "higher is better" in plotly_figures(at)[0]["layout"]["yaxis"]["title"]["text"]
    assert any(d.label == "Download scores (CSV)" for d in at.get("download_button"))

    at.radio(key="metrics_kind").set_value("box").run()  # a widget change reruns: read back, no Run button
    no_exception(at)
    assert not [b for b in at.button if b.key == "metrics_run"]
    assert len([b for b in traces(at, "box") if b]) == 3

    restart()
    again = open_page("metrics", dataset="simu-small", methods=FAST, metrics=metrics, eval_n=6)
    no_exception(again)
    assert not [b for b in again.button if b.key == "metrics_run"], "stored results need no Run"
    assert any("in the store" in s.value for s in again.success)
    before = {t["name"]: sorted(values(t["y"])) for t in violins[0]}
    after = {t["name"]: sorted(values(t["y"])) for t in next(v for v in traces(again, "violin") if v)}
    assert after == before


def test_metrics_page_sequences_show_why_scores_are_missing(app_store):
    at = run_page("dna-motifs-small", ["saliency", "random"], ["pixel_flipping", "motif_auroc", "random_logit"], n=4)
    assert len([v for v in traces(at, "violin") if v]) == 2
    assert any("random_logit" in i.value and "no method could be scored" in i.value for i in at.info)
    reasons = at.dataframe[-1].value
    assert set(reasons.columns) == {"method", "metric", "reason", "samples"}
    assert (reasons["metric"] == "random_logit").all() and (reasons["samples"] == 4).all()
    assert any("mean curve" in f["layout"]["title"]["text"] for f in plotly_figures(at))
