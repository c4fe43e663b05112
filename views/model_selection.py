"""Model selection: a population of models as performance vs consistency, the Pareto front, a model picked
by a stated rule; click a member (or choose it in the list) to open its explanations."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import state, ui
from xai_core.figures import selection as figs
from dashboard.progress import progress_bar

EXPLANATIONS = "views/explanations.py"
LABELS = {"accuracy": "Test accuracy (%)", "auroc": "Test AUROC (%)", "kmer_kld": "k-mer KLD",
          "spherical_kld": "Spherical KLD", "agreement": "Cross-model agreement (Spearman ρ)",
          "motif_auroc": "Motif AUROC", "motif_snr": "Motif SNR", "roc_auc": "Lesion ROC-AUC",
          "feature_agreement_local": "Feature agreement"}
FALLBACK_METHODS = ["saliency", "input_x_gradient", "integrated_gradients", "smoothgrad"]


def _open(path: str) -> None:  # a callback: the sidebar's model widget may only be changed before it is drawn
    st.session_state[state.MODEL] = path
    st.session_state["_sel_go"] = True


if st.session_state.pop("_sel_go", False):
    st.switch_page(EXPLANATIONS)

st.title("Model selection")
st.markdown(
    "Models with the same accuracy can explain their predictions very differently. **Consistency** measures "
    "whether a model's attribution maps keep pointing at the same patterns: across the samples (DNA: recurring "
    "k-mers, clustered attribution vectors) and across other models of the population (agreement of their maps). "
    "Majdandzic et al. (2022) show that, among equally accurate DNA models, the more consistent ones recover the "
    "true motifs better with fewer spurious scores, so the study selects on accuracy **and** consistency.")

from xai_core import selection as sel  # noqa: E402

ds_name, model, seed = state.current()
modality = {r["name"]: r["modality"] for r in state.dataset_catalogue()}[ds_name]
quick, full = sel.population(modality, "quick"), sel.population(modality, "full")

c1, c2, c3, c4 = st.columns([2, 2, 1, 2])
size = c1.radio("Population", ["quick", "full", "custom"], key="sel_size", horizontal=True,
                help=f"quick: {len(quick)} members, few epochs (a minute or two on a CPU for small datasets); "
                     f"full: {len(full)} members with the full training recipe (long); custom: the first "
                     f"members of the quick population with your number of epochs.")
n_members = epochs = None
if size == "custom":
    n_members = c1.number_input("Members", 2, len(quick), min(3, len(quick)), key="sel_members")
    epochs = c1.number_input("Epochs", 1, 100, 2, key="sel_epochs")
methods = FALLBACK_METHODS
if model is not None:
    with ui.friendly("Listing the explanation methods"):
        methods = state.applicable_methods(state.evaluation(ds_name, model, seed))
method = c2.selectbox("Explanation method", methods, key="sel_method", format_func=state.method_label,
                      index=methods.index("saliency") if "saliency" in methods else 0,
                      help="The study analyses saliency maps (the input gradient).")
n = int(c3.number_input("Samples", 4, 512, 32, step=4, key="sel_n",
                        help="Test samples explained per member (the same samples for every member)."))
measures = list(sel.SET_CONSISTENCY.get(modality, ())) + [sel.AGREEMENT]
y = c4.selectbox("Consistency measure", measures, key="sel_measure", format_func=lambda m: LABELS.get(m, m),
                 help="k-mer KLD / spherical KLD (DNA): consistency of one model's maps over the samples (spec "
                      "§3.6–3.7). Agreement: mean Spearman correlation of a member's maps with every other "
                      "member's maps on the same samples. Higher is more consistent for all.")

members = sel.population(modality, "quick" if size == "custom" else size, n_members, epochs)
result = None
with ui.friendly("Looking up the population"):
    result = sel.load_scores(ds_name, members, method, n, seed, state.store())
done = sum(sel.trained(ds_name, members))
st.caption(f"{len(members)} members ({', '.join(m.name for m in members[:4])}{', …' if len(members) > 4 else ''}): "
           f"{done} trained, scores {'stored' if result is not None else 'not computed yet'} for "
           f"{state.method_label(method)} on {n} samples. Trained members also appear in the sidebar's model list.")

if result is None and st.button("Train and score population", type="primary", key="sel_run"):
    bar, progress = progress_bar("Training…")
    with ui.friendly("Training and scoring the population"):
        sel.train_population(ds_name, members, progress=progress)
        bar.progress(0.0, text="Scoring…")
        result = sel.score_population(ds_name, members, state.store(), method=method, n=n, seed=seed,
                                      progress=progress)
    bar.empty()
    if result is not None:
        st.rerun()  # redraw from the store: the status line then says the population is trained and scored
ui.need(result is not None, "Nothing to show yet: train and score this population (members already trained or "
                            "scored are reused; results are stored and reopen instantly).")

table = result.table
perfs = ["accuracy"] + (["auroc"] if table["auroc"].notna().any() else [])
d1, d2 = st.columns([2, 2])
x = d1.selectbox("Performance", perfs, key="sel_perf", format_func=lambda m: LABELS.get(m, m),
                 index=len(perfs) - 1 if modality == "sequence" else 0,
                 help="On the test split. AUROC (binary tasks) is the DNA study's generalisation measure and the "
                      "default there: briefly trained DNA models rank well before their 0.5 threshold is calibrated.")
tolerance = d2.number_input("Tolerance (percentage points)", 0.0, 50.0, 1.0, step=0.5, key="sel_tol",
                            help="The rule: among Pareto-front members within this many points of the best "
                                 "performance, pick the most consistent one.")
colour = result.interpretability[0] if result.interpretability else None
front = sel.pareto_front(table, x, y)
chosen = sel.select_model(table, x, y, tolerance)
st.markdown(f"**Pareto front:** {len(front)} of {len(table)} members are not beaten on both axes. "
            + (f"**Selected** (rule: the most consistent front member within {tolerance:g} percentage points "
               f"of the best {LABELS[x].split(' (')[0].lower()}): `{chosen['member']}`." if chosen is not None
               else "No member has both numbers, so none is selected."))
fig = figs.population_scatter(table, x, y, front=front, selected=None if chosen is None else chosen["member"],
                              colour=colour, labels=LABELS,
                              title=f"{ds_name}: {LABELS.get(x, x)} vs {LABELS.get(y, y)}")
event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="sel_scatter",
                        config=ui.PLOTLY_CONFIG)
if colour:
    st.caption(f"Colour: {LABELS.get(colour, colour)} against the known ground truth (higher is better).")

names = list(table["member"])
points = ((event or {}).get("selection") or {}).get("points") or [] if hasattr(event, "get") else []
clicked = None
if points:
    cd = points[0].get("customdata")
    clicked = cd[0] if isinstance(cd, (list, tuple)) and cd else cd
if clicked != st.session_state.get("_sel_clicked"):
    st.session_state["_sel_clicked"] = clicked
    if clicked in names:
        st.session_state["sel_member"] = clicked
if st.session_state.get("sel_member") not in names:
    st.session_state["sel_member"] = chosen["member"] if chosen is not None else names[0]

st.subheader("Member")
settings = dict(zip(table["member"], table["settings"]))
name = st.selectbox("Inspect member (or click a point above)", names, key="sel_member",
                    format_func=lambda m: f"{m}: {settings[m]}")
row = table[table["member"] == name].iloc[0]
shown = [x, y] + [c for c in result.interpretability if c != y]
for col, c in zip(st.columns(len(shown)), shown):
    v = row[c]
    col.metric(LABELS.get(c, c), "n/a" if pd.isna(v) else f"{float(v):.1f}%" if c in perfs else f"{float(v):.3f}")
st.caption(f"{row['settings']}; on the Pareto front: {'yes' if name in set(front['member']) else 'no'}; "
           f"selected by the rule: {'yes' if chosen is not None and chosen['member'] == name else 'no'}.")
st.button("Open its explanations", key="sel_open", on_click=_open, args=(str(row["path"]),), type="primary",
          help="Make this member the sidebar's model and go to the Explanations page.")

with ui.friendly("Drawing the per-member figures"):
    if colour:
        ui.figure(figs.member_bars(table, colour, label=LABELS.get(colour, colour), selected=name,
                                   title=f"Ground-truth interpretability ({state.method_label(method)})"),
                  f"{ds_name}_population_{colour}", key="sel_bars")
    ui.figure(figs.agreement_heatmap(result.agreement, names, title="Agreement between members' maps"),
              f"{ds_name}_population_agreement", key="sel_heatmap")

st.subheader("Members")
cols = ["member", "settings", *perfs, *result.consistency, *result.interpretability]
out = table.assign(pareto=table["member"].isin(front["member"]),
                   selected=table["member"] == (chosen["member"] if chosen is not None else None))
st.dataframe(out[cols + ["pareto", "selected", "epochs_run", "path"]], hide_index=True)
ui.csv_download(out, f"{ds_name}_population_{method}", key="sel_csv")
