"""Gene rankings (expression data): top genes per class, local vs global rankings, overlap with known genes,
stability across methods and training seeds, and a differential-expression ranking side by side.

All science is in ``xai_core.genes``; what is cached and tabulated is in ``dashboard.genes_view``; attributions
come from the results store (computed once, on click).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import genes_view as view
from dashboard import progress as bars
from dashboard import state, ui
from xai_core.figures import genes as gfig
from xai_core import genes

st.title("Gene rankings")
st.caption("Which genes does the model use to recognise each class? Attribution methods give every gene a "
           "score per cell or tumour (local ranking); averaging over the samples of a class gives the class "
           "ranking (global). We compare both with the known genes, across methods, across retrained models, "
           "and with a classical differential-expression test.")

ds_name, model, seed = state.current()
modality = {r["name"]: r["modality"] for r in state.dataset_catalogue()}.get(ds_name)
ui.need(modality == "expression",
        f"Gene rankings need gene-expression data, and **{ds_name}** is {modality} data. Pick **simu-small** "
        "(quick), simu1, simu2 or simuA/B/C (simulated, with true biomarkers), or **pbmc68k** / "
        "**breast-cancer** (real data, literature markers) in the sidebar. For images and DNA, see the "
        "Explanations page.")
ui.need(model is not None, "No model for this dataset yet: train one on the Data & model page.")

ev = pred = None
with ui.friendly("Loading the dataset and model"):
    ev = state.evaluation(ds_name, model, seed)
    pred = state.predictions(ds_name, model, seed)["pred"]
if ev is None or pred is None:
    st.stop()
ds, G = ev.ds, ev.ds.X.shape[1]
truth, exact, KNOWN = view.known_genes(ds)


def initial(key: str, value) -> dict:
    """The widget's first value, unless the session already holds one (avoids Streamlit's double-set warning)."""
    return {} if key in st.session_state else {"value": value}


def progress_bar(text: str, steps: int):
    """A progress bar and the engine callback that moves it; ``steps`` = attribution runs expected."""
    done = [0]

    def describe(e) -> tuple[float, str]:  # a Progress of stage "train" or "explain"
        if e.stage == "train":
            return done[0] / steps, f"Training {e.method}…"
        shown = ((done[0] + e.done / max(e.total, 1)) / steps,
                 f"Explaining with {state.method_label(e.method)}: {e.done}/{e.total} samples")
        done[0] += e.finished
        return shown
    return bars.progress_bar(text, describe)


# -- choices -------------------------------------------------------------------------------------------
c1, c2 = st.columns([3, 2])
with c1:
    methods = state.multiselect("Methods", state.applicable_methods(ev), state.METHODS,
                                default=list(state.DEFAULT_METHODS), format_func=state.method_label,
                                help="Attribution methods whose gene rankings are compared.")
    if methods:  # the box cuts long labels: name every chosen method in full
        st.caption("Chosen: " + ", ".join(state.method_label(m) for m in methods))
if st.session_state.get("gr_class", 0) >= ds.n_classes:
    st.session_state["gr_class"] = 0
cls = c2.selectbox("Class", range(ds.n_classes), format_func=lambda c: ds.class_names[c], key="gr_class",
                   help="The cell type or condition whose genes are ranked.")
c3, c4, c5, c6 = st.columns(4)
if st.session_state.get("gr_k", 0) > min(100, G):
    st.session_state["gr_k"] = min(100, G)
k = c3.slider("Top k genes", 3, min(100, G), key="gr_k", help="How many top-ranked genes to look at.",
              **initial("gr_k", min(20, G)))
n_per = c4.slider("Samples per class", 2, 50, key="gr_n", **initial("gr_n", 10),
                  help="Test samples explained per class; the class ranking averages over them.")
de_test = c5.selectbox("DE test", genes.DE_METHODS, key="gr_de",
                       help="scanpy rank_genes_groups, one class versus the rest, on the training samples.")
only_correct = c6.checkbox("Correct predictions only", key="gr_correct", **initial("gr_correct", True),
                           help="As in the study: explain only samples the model classifies correctly.")
ui.need(bool(methods), "Choose at least one attribution method above.")
idx, empty = view.samples(ds, pred, n_per, only_correct)
if empty:
    st.caption(f"No {'correctly classified ' if only_correct else ''}test sample for: {', '.join(empty)}.")
ui.need(len(idx) > 0, "No test sample to explain with these choices; untick 'Correct predictions only'.")

# -- attributions (stored; computed on click) -------------------------------------------------------------
ready: list[str] = []
with ui.friendly("Checking stored attributions"):
    todo = view.missing_methods(ev, methods, idx)
    if todo:
        box = st.empty()
        with box.container():
            st.info(f"{', '.join(map(state.method_label, todo))}: not yet computed for these {len(idx)} samples. "
                    "Results are stored, so this is needed only once.")
            if not st.button("Compute attributions", type="primary", key="gr_run"):
                st.stop()
        box.empty()
        bar, update = progress_bar("Explaining…", len(todo))
        for m in todo:
            with ui.friendly(f"Explaining with {state.method_label(m)}"):
                ev.attributions(m, idx, update)
        bar.empty()
    failed = view.missing_methods(ev, methods, idx)
    ready = [m for m in methods if m not in failed]
ui.need(bool(ready), "No attributions could be computed; try other methods.")

idx_t, ready_t = tuple(int(i) for i in idx), tuple(ready)
CLS = ds.class_names[cls]
METHOD_ID = {state.method_label(m): m for m in ready}  # the page shows labels; the CSVs keep the identifiers too
SHOWN = "+".join(ready) if len(ready) <= 3 else f"{len(ready)} methods"
DE, t_c, scores = f"DE ({de_test})", truth.get(cls), None
with ui.friendly("Ranking genes"):
    scores = view.class_rankings(ds_name, model, seed, ready_t, idx_t)
    de, padj = view.de_scores(ds_name, de_test)
if scores is None:
    st.stop()
ui.need(bool((ds.y[idx] == cls).any()), f"No sample of **{ds.class_names[cls]}** to rank genes for: pick another "
                                        "class or untick 'Correct predictions only'.")

# -- top genes ----------------------------------------------------------------------------------------
with ui.friendly("Top genes"):
    st.subheader(f"Top {k} genes for {ds.class_names[cls]}")
    tables, long, wide = view.top_genes(scores, cls, k, ds.feature_names, t_c)
    shown = min(k, 30)
    ui.figure(gfig.top_genes({n: t.head(shown) for n, t in tables.items()}, known_label=KNOWN[:-1]),
              "top_genes", key="gr_top", method=SHOWN, cls=CLS, scale="mean attribution over the class's samples")
    st.caption(f"Each bar is a gene's average evidence for this class over the explained samples (longer = the model "
               f"relies on it more; top {shown} shown, all {k} in the table below)."
               + (f" Highlighted bars and ★ mark {KNOWN}." if t_c is not None else ""))
    st.dataframe(wide, width="stretch")
    ui.csv_download(long.assign(method_id=long["method"].map(METHOD_ID)), "top_genes", key="gr_csv_top",
                    method=SHOWN, cls=CLS, label="Download top genes (CSV)")

# -- overlap with known genes ---------------------------------------------------------------------------
with ui.friendly("Overlap with known genes"):
    st.subheader(f"Overlap with the {KNOWN}")
    if t_c is None:
        st.info(f"No known marker genes are bundled for {ds.class_names[cls]} in {ds_name}, so the overlap cannot be "
                "measured here; the rankings and their stability below still apply.")
    else:
        if not exact:
            st.caption("These are literature markers (weak ground truth): a model may also use other, correlated "
                       "genes, so a low overlap does not prove the explanation wrong.")
        ov, curves = view.overlap_with_known({**{n: s[cls] for n, s in scores.items()}, DE: de[cls]}, t_c, k, G)
        st.dataframe(ov.style.format({"precision": "{:.0%}", "recall": "{:.0%}", "expected": "{:.2f}",
                                      "p_value": "{:.2g}"}), width="stretch", hide_index=True)
        ui.csv_download(ov, "overlap_with_known", key="gr_csv_ov", method=SHOWN, cls=CLS,
                        label="Download overlap (CSV)")
        st.caption(f"hits = {KNOWN} among the top {k}; expected = hits a random gene list would get; p-value = "
                   "hypergeometric chance of at least that many hits at random.")
        ui.figure(gfig.recovery(curves, len(t_c) / G, known_label=KNOWN), "recovery", key="gr_recovery",
                  method=SHOWN, cls=CLS, scale=f"share of {KNOWN} in the top k")
        st.caption(f"Walking down each ranking: the share of {KNOWN} among the top k genes. Curves far above the "
                   "dashed chance line find the known genes first.")

# -- local versus global ----------------------------------------------------------------------------
with ui.friendly("Local versus global rankings"):
    st.subheader("Local (per sample) versus global (class) rankings")
    lv = view.local_view(ds_name, model, seed, ready_t, idx_t, cls, k)
    glob = view.class_precision(lv, t_c, G)
    ui.figure(gfig.local_vs_global({n: v["local"] for n, v in lv.items()}, {n: v["shared"] for n, v in lv.items()},
                                   glob, k, known_label=KNOWN), "local_vs_global", key="gr_local_global",
              method=SHOWN, cls=CLS)
    rhos = ", ".join(f"{n} {np.nanmedian(v['spearman']):.2f}" for n, v in lv.items())
    st.caption("Each dot is one sample. A single sample's explanation is noisier than the class average (diamond): "
               "if the dots sit well below the diamond, trust class-level gene lists more than single-cell ones. "
               f"Median Spearman correlation of a sample's full gene ranking with the class ranking: {rhos}.")
    shown_method = st.selectbox("Method for the per-sample view", list(lv), key="gr_view")
    v = lv[shown_method]
    ui.figure(gfig.local_heatmap(v["heat"], v["ranks"], v["samples"], [ds.feature_names[g] for g in v["top"]]),
              "per_sample", key="gr_local_heat", method=METHOD_ID.get(shown_method, shown_method), cls=CLS,
              scale="normalised attribution (red for the class, blue against)")
    st.caption("Rows are samples, columns the class's top genes: red = evidence for the class, blue = against. "
               "Hover to see where the gene ranks in that sample.")

# -- stability across methods ---------------------------------------------------------------------------
with ui.friendly("Method stability"):
    st.subheader("Stability across methods")
    over_all = st.toggle("Average over all classes", False, key="gr_allcls",
                         help="Off: correlate the rankings of the chosen class only.")
    sub = None if over_all else (cls,)
    ui.figure(gfig.correlation_heatmap(view.method_corr(ds_name, model, seed, ready_t, idx_t, de_test, sub)),
              "method_correlation", key="gr_mcorr", method=SHOWN, cls="all classes" if over_all else CLS,
              scale="Spearman correlation")
    st.caption("Spearman correlation between the complete gene rankings (1 = same order, 0 = unrelated). Methods "
               "that agree with each other and with differential expression give more trustworthy gene lists.")

# -- stability across training seeds -------------------------------------------------------------------
st.subheader("Stability across training seeds")
st.caption("Retrain the same architecture with other random seeds and explain the same samples: do the "
           "retrained models rely on the same genes?")
s1, s2, s3 = st.columns(3)
seed_method = s1.selectbox("Method", ready, format_func=state.method_label, key="gr_seed_method")
K = s2.slider("Extra training seeds", 1, 5, key="gr_K", **initial("gr_K", 2))
E = s3.select_slider("Training epochs per seed", [2, 5, 10, "full recipe"], key="gr_E", **initial("gr_E", 5),
                     help="Fewer epochs train faster; 'full recipe' trains like the shipped model.")
with ui.friendly("Training-seed stability"):
    E = None if E == "full recipe" else E
    evp = state.evaluation_for(ds_name, model, seed, population_seeds=K, population_epochs=E)
    stored = view.population_stored(evp, seed_method, idx)
    clicked = not stored and st.button(f"Train {K} models and explain", key="gr_seed_run",
                                       help="Trained models are cached; explanations are stored.")
    if stored or clicked:
        if clicked:
            bar, update = progress_bar("Training…", K + 1)
            genes.seed_scores(evp, seed_method, idx, update)
            bar.empty()
        per_seed, corr = view.seed_rankings(ds_name, model, seed, seed_method, idx_t, K, E, sub)
        ui.figure(gfig.correlation_heatmap(corr, axis="model"), "seed_correlation", key="gr_scorr",
                  method=seed_method, cls="all classes" if over_all else CLS, scale="Spearman correlation")
        st.caption("Spearman correlation between the class rankings of models that differ only by their training "
                   "seed. Values near 1 mean the gene list is a property of the data, not of one training run.")
        if t_c is not None:
            sov = genes.overlap_table({n: s[cls] for n, s in per_seed.items()}, t_c, k, G)
            st.dataframe(sov[["ranking", "hits", "precision", "p_value"]].rename(columns={"ranking": "model"}),
                         hide_index=True)
            ui.csv_download(sov, "seed_overlap", key="gr_csv_seed", method=seed_method, cls=CLS,
                            label="Download seed overlap (CSV)")

# -- differential expression side by side -----------------------------------------------------------------
with ui.friendly("Differential-expression comparison"):
    st.subheader("Side by side with differential expression")
    cmp_m = st.selectbox("Attribution method", list(scores), key="gr_cmp")
    side = view.de_side_by_side(scores[cmp_m][cls], de[cls], padj[cls], cmp_m, DE, k, ds.feature_names, t_c)
    a_tab, dt = side["attribution"], side["de"]
    left, right = st.columns(2)
    left.markdown(f"**{cmp_m}**")
    left.dataframe(a_tab, hide_index=True, width="stretch")
    right.markdown(f"**{DE}**, {ds.class_names[cls]} versus the rest")
    right.dataframe(dt, hide_index=True, width="stretch")
    ui.csv_download(pd.concat([a_tab.assign(ranking=cmp_m), dt.assign(ranking=DE)]), "de_vs_attribution",
                    key="gr_csv_de", method=METHOD_ID.get(cmp_m, cmp_m), cls=CLS,
                    label="Download both rankings (CSV)")
    ui.figure(gfig.de_scatter(side["rank_de"], side["rank_attribution"], ds.feature_names, side["known"], cmp_m,
                              de_test, known_label=KNOWN[:-1]), "de_scatter", key="gr_de_scatter",
              method=METHOD_ID.get(cmp_m, cmp_m), cls=CLS, scale="rank (1 = top)")
    st.caption(f"Every gene, placed by its rank in differential expression (x) and in {cmp_m} (y); genes in the lower "
               f"left are top-ranked by both. Spearman ρ = {side['rho']:.2f}. Genes high for the model but not in DE "
               "may act in combination with others, or may be an artefact of the explanation.")
