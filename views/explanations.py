"""Explanations: choose samples and methods, see the cost, run on demand, compare maps side by side."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import explain_view as view
from dashboard import state, ui
from dashboard.progress import follow, progress_bar
from xai_core import costs
from xai_core.explain_files import stored_bundle
from xai_core.explainers import AGGREGATE, estimate_cost
from xai_core.figures.explanations import normalisation_label, pooling_label

st.title("Explanations")
ds_name, model, seed, ev = ui.current_evaluation()
preds = state.predictions(ds_name, model, seed)
ds = ev.ds
st.caption(f"{ds.name} · {ds.modality} · model {state.model_label(model)} · rows are samples, columns are methods")
if (_chance := state.chance_warning(ev)):
    st.warning(_chance, icon=":material/warning:")

pos = {sid: i for i, sid in enumerate(ds.sample_ids)}
test_ids = [ds.sample_ids[i] for i in ds.test_idx]
labels = {sid: view.sample_label(ev, pos[sid], preds) for sid in test_ids[:3000]}
left, right = st.columns(2)
with left:
    samples = state.multiselect("Samples (test set)", list(labels), state.SAMPLES,
                                view.default_samples(ev, preds), format_func=labels.get, max_selections=8,
                                help="Test samples the model did not see in training. The label gives the true "
                                     "class, then the model's prediction and its probability.")
    if samples:  # the box cuts long labels: name every chosen sample in full
        st.caption("Chosen: " + "; ".join(labels.get(s, s) for s in samples))
with right:
    applicable = state.applicable_methods(ev)
    methods = state.multiselect("Methods", applicable, state.METHODS, list(state.DEFAULT_METHODS),
                                format_func=state.method_label,
                                help="Only methods that apply to this data and model are listed.")
    if methods:
        st.caption("Chosen: " + ", ".join(state.method_label(m) for m in methods))

c1, c2, c3, c4 = st.columns(4)
pooling = c1.selectbox("Channel pooling", ["sum", "mean", "max", "abs"], key=state.X_POOLING,
                       disabled=ds.modality != "image", format_func=pooling_label,
                       help="How the colour channels of an image map become one value per pixel.")
normalisation = c2.selectbox("Normalisation", [view.NO_NORMALISATION, "per_map_max", "per_map_p99", "dataset_max",
                                               "dataset_p99"], index=2, key=state.X_NORMALISATION,
                             format_func=normalisation_label,
                             help="Divide each map (or all shown maps) by its largest or 99th-percentile "
                                  "|value|, so methods with different units share one colour scale.")
aggregate = c3.toggle("Aggregated explanation", key=state.X_AGGREGATE,
                      help="Add the mean of the normalised maps of the chosen methods (controls excluded).")
if ds.modality == "sequence":
    dna_view = c4.selectbox("Logo shows", list(view.DNA_VIEWS), format_func=view.DNA_VIEWS.get, key=state.X_DNA_VIEW)
    k = 15
elif ds.modality == "expression":
    k = c4.slider("Genes per map", 5, 40, 15, key=state.X_GENES_PER_MAP)
    dna_view = "observed"
else:
    opacity = c4.slider("Heatmap opacity", 0.2, 1.0, 0.7, key=state.X_OPACITY)
    dna_view, k = "observed", 15
opacity = st.session_state.get(state.X_OPACITY, 0.7)

ui.need(bool(samples), "Pick at least one sample to explain.")
ui.need(bool(methods), "Pick at least one method.")
comps = view.aggregate_components(methods)
if aggregate and len(comps) >= 2:
    st.caption(f"Aggregate = the mean of the normalised maps of {', '.join(map(state.method_label, comps))} "
               "(the chosen methods, controls left out); it reuses their maps, so it costs no extra pass.")
if aggregate and len(comps) < 2:
    st.info("The aggregated explanation needs at least two non-control methods.")
columns = methods + ([AGGREGATE] if aggregate and len(comps) >= 2 else [])
ev_run = view.evaluation_with(ds_name, model, seed, methods, aggregate)
idx = np.array([pos[s] for s in samples])

rows = []
for m in columns:
    arr, missing = ev_run.stored_attributions(m, idx)
    own = view.aggregate_cost(m, comps) if missing else None
    cost = own or estimate_cost(m, ev.ctx, len(missing))
    status = ("stored" if not missing else f"{len(missing)} to average (no pass of its own)" if own is not None
              else f"{len(missing)} to compute")
    rows.append({"method": view.column_label(m, comps), "status": status,
                 "forward passes": int(cost["forward"]), "backward passes": int(cost["backward"])})
plan = pd.DataFrame(rows)
todo = [m for m, r in zip(columns, rows) if r["status"] != "stored"]
to_go = costs.describe(plan["forward passes"].sum(), plan["backward passes"].sum(), state.pass_cost(ev_run)
                       if todo else None)
if todo:
    with st.expander(f"Cost: {to_go} to go on this machine", expanded=True):
        st.dataframe(plan, hide_index=True, width="stretch")
else:  # a table of "stored" rows says nothing, and mounting it costs the browser about 60 ms on a reopen
    st.caption("Cost: none. Every map shown is already stored, so nothing is computed.")

if todo:
    passes = float(plan["forward passes"].sum() + plan["backward passes"].sum())
    confirmed = True
    if costs.needs_confirmation(passes):  # the CLI's --yes guard, here a tick box
        st.warning(f"This run needs about {passes:,.0f} forward/backward passes, more than the "
                   f"{costs.COST_LIMIT:,.0f} the command line runs without --yes; it may take a long time. "
                   "Fewer samples or methods cost less.", icon=":material/warning:")
        confirmed = st.checkbox(f"Run anyway (about {passes:,.0f} passes)", key="x_confirm")
    if st.button(f"Explain ({len(todo)} method{'s' if len(todo) > 1 else ''})", type="primary", key="x_run",
                 disabled=not confirmed):
        bar, _ = progress_bar("Starting…")
        with ui.friendly("Computing the explanations"):
            for j, m in enumerate(todo):
                progress = follow(bar, lambda e, j=j, m=m: ((j + e.done / max(e.total, 1)) / len(todo),
                                                            f"{state.method_label(m)}: {e.done}/{e.total} samples"))
                ev_run.attributions(m, idx, progress)
            bar.progress(1.0, text="Done")
            st.rerun()
    else:
        st.info("Press **Explain** to compute the missing maps; they are stored and reused on every later visit.")

if not todo:
    with ui.friendly("Drawing the explanations"):
        drawn = view.grid_figure(ds_name, model, seed, tuple(samples), tuple(columns),
                                 tuple(comps if aggregate else ()), pooling if ds.modality == "image" else "sum",
                                 normalisation, dna_view, k,
                                 tuple(view.row_label(ev, pos[s], preds) for s in samples), opacity,
                                 (ev.dataset_fp, ev.model_hash))
        if drawn is None:
            st.warning("Some maps disappeared from the results store; press Explain again.")
        else:
            figs, scale = drawn
            what = {"image": "Heatmaps over the grey image. Outline: the expert lesion mask (ground truth).",
                    "expression": f"The {k} genes with the largest |attribution| in each map.",
                    "sequence": "Sequence logos of the attributions; the grey track below marks the planted motifs "
                                "(information content in bits)."}[ds.modality]
            ui.figure_caption(f"{what} {scale}", key="x_scale")
            short = (f"{normalisation_label(normalisation)}"
                     + (f"; pooling {pooling_label(pooling)}" if ds.modality == "image" else ""))
            shown = ", ".join(view.column_label(m, comps) for m in columns)
            for j, fig in enumerate(figs):
                ui.figure(fig, "explanations" + (f"_{samples[j]}" if len(figs) > 1 else ""), key=f"x_fig_{j}",
                          method="+".join(columns) if len(columns) <= 3 else f"{len(columns)} methods",
                          scale=f"{short}; methods: {shown}")
            st.download_button("Download these maps (attributions.npz + manifest.json, zip)",
                               lambda: stored_bundle(ev_run, columns, idx, preds["pred"]),  # zipped on click
                               file_name=ui.file_name(f"explanations_{len(samples)}_samples", "zip"),
                               mime="application/zip",
                               key="x_download", help="The raw maps of the shown samples and methods (input shape, "
                                                      "before pooling and normalisation), in the format "
                                                      "`python -m xai_core explain` writes, with what produced them.")
