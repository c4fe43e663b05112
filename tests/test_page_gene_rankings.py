"""Gene rankings page (AppTest, no browser): expression datasets work, other modalities get a friendly note."""
from __future__ import annotations

import base64

import numpy as np
from app_helpers import no_exception, open_page, plotly_figures

FAST = {"methods": ["saliency", "integrated_gradients"], "gr_n": 4}


def trace_types(at) -> list[set[str]]:
    return [{t["type"] for t in f["data"]} for f in plotly_figures(at)]


def array(v) -> np.ndarray:
    """A plotly array from the figure JSON (plain list, or base64 'bdata' with dtype and shape)."""
    if isinstance(v, dict):
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        return a.reshape([int(n) for n in str(v.get("shape", len(a))).split(",")])
    return np.asarray(v, dtype=float)


def click(at, key: str):
    buttons = [b for b in at.button if b.key == key]
    assert buttons, f"no button {key}; buttons: {[b.key for b in at.button]}"
    buttons[0].click().run()
    return at


def test_simu_small_rankings_then_training_seeds(app_store):
    at = open_page("gene_rankings", **FAST, gr_K=1, gr_E=2)
    no_exception(at)
    assert not plotly_figures(at), "nothing is drawn before the attributions are computed"
    click(at, "gr_run")
    no_exception(at)
    kinds = trace_types(at)
    assert {"bar"} in kinds  # top genes
    assert any("box" in k for k in kinds)  # local vs global
    assert sum(k == {"heatmap"} for k in kinds) == 2  # per-sample view, method correlation
    assert any("scattergl" in k for k in kinds)  # DE vs attribution
    assert any(k == {"scatter"} for k in kinds)  # recovery curves with chance line
    overlap = [d.value for d in at.dataframe if "p_value" in getattr(d.value, "columns", [])]
    assert overlap and set(overlap[0]["ranking"]) == {"Saliency (gradient)", "Integrated Gradients", "DE (t-test)"}
    assert (overlap[0]["hits"] <= overlap[0]["k"]).all()
    assert not [b for b in at.button if b.key == "gr_run"], "stored results need no second click"

    click(at, "gr_seed_run")
    no_exception(at)
    assert sum(k == {"heatmap"} for k in trace_types(at)) == 3
    seed_corr = [f["data"][0]["z"] for f in plotly_figures(at) if f["data"][0].get("y") == ["main model", "seed 1"]]
    assert seed_corr and np.allclose(np.diag(array(seed_corr[0])), 1.0)

    # a new session reads everything from the store: all figures without any click
    again = open_page("gene_rankings", **FAST, gr_K=1, gr_E=2)
    no_exception(again)
    assert not [b for b in again.button if b.key in ("gr_run", "gr_seed_run")]
    assert sum(k == {"heatmap"} for k in trace_types(again)) == 3


def test_pbmc_marker_genes_and_class_switch(app_store):
    at = open_page("gene_rankings", dataset="pbmc68k", **FAST)
    click(at, "gr_run")
    no_exception(at)
    assert any("literature markers" in s.value for s in at.subheader)
    assert any("weak ground truth" in c.value for c in at.caption)
    at.selectbox(key="gr_class").set_value(5).run()  # CD14+ monocytes
    no_exception(at)
    assert any("CD14+ Monocyte" in s.value for s in at.subheader)
    assert len(plotly_figures(at)) >= 5


def test_breast_cancer_without_markers_still_ranks_genes(app_store):
    at = open_page("gene_rankings", dataset="breast-cancer", **FAST)
    click(at, "gr_run")
    no_exception(at)
    assert any("No known marker genes" in i.value for i in at.info)
    assert {"bar"} in trace_types(at)


def test_image_dataset_gets_a_friendly_explanation(app_store):
    at = open_page("gene_rankings", dataset="grain")
    no_exception(at)
    assert any("gene-expression data" in i.value and "simu-small" in i.value for i in at.info)
    assert not plotly_figures(at)
