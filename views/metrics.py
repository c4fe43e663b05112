"""Metrics: how each explanation method scores on faithfulness, robustness, complexity, localisation and
consistency; per-sample distributions, perturbation curves, and why some scores are missing."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import evaluate, ui
from xai_core.figures.metrics import (
    CURVES,
    direction_hint,
    method_colours,
    method_label,
    metric_label,
    perturbation_curves,
    score_distribution,
)

st.title("Metrics: how good are the explanations?")
st.markdown(
    "Each metric checks one property of an explanation: does removing the features it highlights change "
    "the prediction (**faithfulness**), does it find the known biology (**localisation**: known genes, lesions, "
    "motifs), is it stable (**robustness**), focused (**complexity**), and does it depend on what the model "
    "learned (**randomisation**). Every point below is one sample; ↑ means higher is better, ↓ lower.")

res = evaluate.run_panel("metrics")
if res is None:
    st.stop()
frame, methods, metrics = res.scores, list(res.plan.methods), list(res.plan.metrics)
colours = method_colours(methods)

st.header("Scores per method")
kind = st.radio("Show each distribution as", ["violin", "box"], horizontal=True, key="metrics_kind",
                help="Violin: the shape of the distribution; box: median and quartiles. Both show every sample.")
with ui.friendly("Drawing the score distributions"):
    cols = st.columns(2)
    for i, metric in enumerate(metrics):
        info = evaluate.metric_info(metric)
        rows = frame[frame["metric"] == metric]
        with cols[i % 2]:
            if not rows["score"].notna().any():
                why = "; ".join(rows["reason"].dropna().unique()) or "no reason recorded"
                st.info(f"**{info['label']}** ({metric}): no method could be scored here — {why}.")
                continue
            fig = score_distribution(frame, metric, kind=kind, direction=info["direction"], label=info["label"],
                                     methods=methods, colours=colours)
            ui.figure(fig, f"{metric}_scores", key=f"dist_{metric}", scale=f"{info['label']} ({metric}) per sample")
            scope = (" One score for the whole set of samples; the bar is its 95% interval."
                     if info["scope"] == "set" else "")
            st.caption(f"**{info['family']}**, {direction_hint(info['direction'])}. {info['description']}{scope}")

st.header("Perturbation curves")
curve_metrics = [m for m in metrics if m in CURVES]
if not curve_metrics:
    st.info(f"Add a perturbation metric ({', '.join(metric_label(m) for m in list(CURVES)[:5])} …) to "
            "see how the model's confidence changes as the features an explanation ranks first are removed.")
else:
    metric = st.selectbox("Curves of", curve_metrics, key="metrics_curve",
                          format_func=metric_label, help="The identifiers: " + ", ".join(
                              f"{metric_label(m)} = {m}" for m in curve_metrics))
    with ui.friendly("Drawing the perturbation curves"):
        cv = evaluate.curves(res, metric)
        if all(v is None for v in cv.values()):
            st.info(f"No curves are stored for {metric} (a result computed by an older version); run it again "
                    "with a new store to see them.")
        else:
            ui.figure(perturbation_curves(cv, metric, label=evaluate.metric_info(metric)["label"], colours=colours),
                      f"{metric}_curves", key=f"curves_{metric}", scale=CURVES[metric][1])
            st.caption(f"{CURVES[metric][2].capitalize()}. The band is the 95% interval of the mean over samples.")
            if note := evaluate.separation_note(frame, metric, method_label):
                st.info(note, icon=":material/info:")

st.header("Summary table")
with ui.friendly("Summarising the scores"):
    g = frame.groupby(["metric", "method"], sort=False)["score"]
    summary = pd.DataFrame({"mean": g.mean(), "sd": g.std(), "scored": g.count(), "samples": g.size()}).reset_index()
    summary["better"] = summary["metric"].map(lambda m: direction_hint(evaluate.metric_info(m)["direction"]))
    shown = summary.assign(metric=summary["metric"].map(metric_label), method=summary["method"].map(method_label))
    st.dataframe(shown.round(4), hide_index=True, width="stretch",
                 column_config={"metric": st.column_config.TextColumn("metric", help="The CSV keeps the identifiers"),
                                "sd": st.column_config.NumberColumn("sd", help="standard deviation over samples"),
                                "scored": st.column_config.NumberColumn("scored", help="samples with a score"),
                                "samples": st.column_config.NumberColumn("samples", help="samples asked for")})
    ui.csv_download(evaluate.scores_csv(frame), f"scores_{frame['dataset'].iloc[0]}", label="Download scores (CSV)",
                    key="csv_scores_metrics")

reasons = evaluate.nan_reasons(frame)
if len(reasons):
    st.subheader("Why some scores are missing")
    st.caption("A metric that cannot score a sample (no ground truth, an all-zero map, a model output of 0 …) "
               "records why instead of failing. These cells are left out of the plots and the means above.")
    st.dataframe(reasons, hide_index=True, width="stretch")
