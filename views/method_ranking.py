"""Method ranking: which explanation method to trust on this dataset and model, with Monte Carlo uncertainty;
per-metric ranks, metric agreement, and the aggregated explanation against its components. "Stop when decided"
runs the evaluation in rounds (``xai_core.adaptive``) and says why it stopped."""
from __future__ import annotations

import json

import streamlit as st

from dashboard import evaluate, state, studies_view, ui
from xai_core.figures import ranking as rf
from xai_core.explainers import AGGREGATE
from xai_core.explainers import components as components_of
from xai_core.ranking_words import floor_sentence, headline

st.title("Method ranking: which explanation to trust here?")
st.markdown(
    "Methods are ranked on every metric (1 = best), and the ranks are combined into the **mean reciprocal "
    "rank** (MRR: 1 = best on every metric). Scores are means over a few samples, so the ranking is repeated "
    "many times with the scores redrawn within their uncertainty: the interval and the rank probabilities "
    "say how sure the ranking is. Same numbers as `python -m xai_core rank`.")

ds, model, seed = state.current()
components: list[str] = components_of(AGGREGATE)
AGG_LABEL = f"Aggregate (mean of {', '.join(state.method_label(c) for c in components)})"


def label(m: str) -> str:
    """Display name; the aggregate named with its components, as on the Explanations page."""
    return AGG_LABEL if m == AGGREGATE else state.method_label(m)


with_agg = st.toggle(f"Include {AGG_LABEL}", value=True, key="rank_agg",
                     help="Evaluates the mean of the normalised maps of these methods as one more method.")
if with_agg:
    st.caption(f"Here the aggregate is a fixed set: **{AGG_LABEL}**, the mean of these methods' normalised maps, "
               "whichever methods are chosen below. It is the same as the Explanations page's aggregate when "
               "these methods are picked there.")
else:
    components = []
with_comp = with_agg and st.toggle("Also evaluate all of its components", value=False, key="rank_comp",
                                   help="Their attributions are computed for the aggregate anyway; this adds "
                                        "only their metric scores.")
extra = ([AGGREGATE] if with_agg else []) + (components if with_comp else [])
res = evaluate.run_panel("ranking", extra_methods=extra, adaptive=True)
if res is None:
    st.stop()
if res.decision:  # an adaptive run: why it stopped, round by round, and what it did not compute
    decision = res.decision
    st.info(decision["sentence"], icon=":material/flag:")
    with st.expander(f"Round by round: {len(decision['rounds'])} rounds, {decision['samples']} of at most "
                     f"{decision['cap']} samples per method (the CLI writes this as decision.json)"):
        st.dataframe(evaluate.rounds_table(decision["rounds"]), hide_index=True, width="stretch")
        for item in decision["not_computed"]:
            who = "every method" if item["method"] == "all" else label(item["method"])
            st.caption(f"Not computed — {who}: {', '.join(item['metrics'])} on samples {item['samples']}: "
                       f"{item['why']}")
        st.download_button("Download decision.json", json.dumps(decision, indent=2, default=str), "decision.json",
                           mime="application/json", key="dl_decision", on_click="ignore")
frame = res.scores
ui.need(frame["method"].nunique() >= 2, "Ranking needs at least two methods: choose more above.")

with st.expander("Ranking options (as the CLI's --ranker, --draws, --dist, --missing, --weight)"):
    c1, c2, c3, c4 = st.columns(4)
    ranker = c1.selectbox("Ranker", ["mrr", "mean_rank", "borda"], key="rank_ranker",
                          format_func={"mrr": "Monte Carlo MRR", "mean_rank": "mean rank", "borda": "Borda count"}.get,
                          help="MRR with uncertainty (default), or the deterministic mean rank / Borda count.")
    draws = int(c2.number_input("Monte Carlo draws", 100, 100_000, 10_000, step=1000, key="rank_draws"))
    dist = c3.radio("Score uncertainty", ["normal", "bootstrap"], key="rank_dist",
                    help="normal: mean ± standard error; bootstrap: resample the samples (paired across methods).")
    missing = c4.radio("Method without a score on a metric", ["worst", "drop"], key="rank_missing",
                       format_func={"worst": "ranks last", "drop": "drop the metric"}.get)
    families = sorted(frame["family"].dropna().unique())
    st.caption("Family weights (1 = as much as the others; 0 = ignore the family).")
    wcols = st.columns(max(1, len(families)))
    weights = tuple((f, float(col.number_input(f, 0.0, 10.0, 1.0, step=0.5, key=f"rank_w_{f}")))
                    for f, col in zip(families, wcols))
    weights = tuple((f, w) for f, w in weights if w != 1.0)
    per_family = st.checkbox("Split each family's weight among its metrics", key="rank_per_family")

result = None
with ui.friendly("Ranking the methods"):
    result = evaluate.rank(frame, ranker, draws, dist, seed, missing, weights, per_family)
if result is None:
    st.stop()
mrr, table = result["mrr"], result["table"]
agg = AGGREGATE if AGGREGATE in mrr.table.index else None
comps = [c for c in components if c in mrr.table.index]

st.header("Ranking")
with ui.friendly("Drawing the ranking"):
    if ranker == "mrr":
        ui.figure(rf.mrr_intervals(mrr.table, aggregate=agg, components=comps), "expected_mrr", key="mrr")
        best = mrr.table.index[0]
        st.markdown(f"**{headline(mrr, label)}** {label(best)} has the highest expected mean reciprocal rank, "
                    f"{mrr.table['mrr'].iloc[0]:.2f} (95% interval {mrr.table['mrr_lo'].iloc[0]:.2f}–"
                    f"{mrr.table['mrr_hi'].iloc[0]:.2f}).")
        floor = floor_sentence(mrr, label)
        if floor:
            st.warning(floor, icon=":material/warning:")
        other = studies_view.study_ranking(ds)
        if other and other["winner"] != str(mrr.table.index[0]):
            st.info(studies_view.why_winners_differ(other, mrr, len(res.plan.sample_idx), label),
                    icon=":material/info:")
    else:
        col = ranker
        ui.figure(rf.score_bars(table.set_index("method")[col], label=col.replace("_", " "),
                                higher_better=ranker == "borda", aggregate=agg, components=comps),
                  f"{ranker}_ranking", key="simple")
    shown = table.copy()
    if "method" in shown:  # the method's name first; its identifier (as in the CLI and the CSV) beside it
        shown.insert(shown.columns.get_loc("method"), "name", shown["method"].map(label))
    st.dataframe(shown, hide_index=True, width="stretch", column_config=evaluate.ranking_column_config(table))
    ui.csv_download(table, f"ranking_{ds}", label="Download ranking (CSV)", key="csv_ranking")
    ui.csv_download(evaluate.scores_csv(frame), f"scores_{ds}", label="Download scores (CSV)", key="csv_scores_rank")
    for m, why in mrr.dropped.items():
        st.caption(f"Metric {m} is left out of the ranking: {why}")
    reasons = evaluate.nan_reasons(frame)
    if len(reasons):
        with st.expander(f"Why some scores are missing ({int(reasons['samples'].sum())} scores)"):
            st.dataframe(reasons, hide_index=True, width="stretch")
    left_out = [m for m in frame["metric"].unique() if not evaluate.metric_info(m)["in_ranking"]]
    if left_out:
        st.caption(f"{', '.join(left_out)}: a reference level, the same for every method; not used in the ranking.")

    st.subheader("How sure is each rank?")
    ui.figure(rf.rank_probability_heatmap(mrr.rank_probabilities), "rank_probabilities", key="rank_probs")
    st.caption("Each row: in what share of the Monte Carlo draws the method took each rank by MRR.")

    st.subheader("Rank on each metric")
    ui.figure(rf.metric_rank_heatmap(mrr.metric_ranks, mrr.params["directions"]), "metric_ranks", key="metric_ranks")

    st.subheader("Do the metrics agree?")
    kw = result["kendall"]
    if result["agreement"] is not None and len(result["agreement"]) >= 2:
        ui.figure(rf.agreement_heatmap(result["agreement"], w=kw.get("W"), p_value=kw.get("p_value")),
                  "metric_agreement", key="agreement")
        st.caption("Spearman correlation between metrics of the methods' mean scores (each oriented so that "
                   "higher = better): +1 means two metrics order the methods the same way. Kendall's W "
                   "(0 = no agreement, 1 = all metrics give the same order) summarises all metrics at once.")
    else:
        st.info("Metric agreement needs at least two metrics.")
    if "note" in kw:
        st.caption(f"Kendall's W: {kw['note']}")

if agg:
    st.header("The aggregated explanation")
    with ui.friendly("Comparing the aggregate with its components"):
        r = int(mrr.table.loc[agg, "rank"])
        text = f"The aggregate ranks **{r} of {len(mrr.table)}** by expected mean reciprocal rank."
        if comps:
            beaten = [c for c in comps if mrr.table.loc[c, "mrr"] < mrr.table.loc[agg, "mrr"]]
            text += (f" It beats {len(beaten)} of its {len(comps)} evaluated component(s)"
                     + (f" ({', '.join(label(c) for c in beaten)})" if beaten else "") + "; "
                     + ", ".join(f"{label(c)} ranks {int(mrr.table.loc[c, 'rank'])}" for c in comps) + ".")
        absent = [c for c in components if c not in comps]
        if absent:
            text += (f" Components not evaluated here: {', '.join(absent)} — switch on 'Also evaluate all of its "
                     "components' to compare with them.")
        st.markdown(text)
        ui.figure(rf.aggregate_vs_components(mrr.metric_ranks, agg, comps), "aggregate_vs_components",
                  key="aggregate")
