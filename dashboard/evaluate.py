"""The run panel shared by the Metrics and Method ranking pages: choose methods, metrics and samples, see
the cost, run (with progress) or read the results straight from the store; plus the cached ranking.

With ``adaptive=True`` (the Method ranking page) the panel offers "Stop when decided": the samples become the
cap, and Run adds them in rounds through ``xai_core.adaptive`` until the ranking is decided or the budget is
spent, redrawing the ranking after each round; the decision (``AdaptiveRun.decision``, as the CLI's
decision.json) is kept for the session and returned with the results.

Results are keyed in the store by content, so a grid computed once (here or with
``python -m xai_core evaluate``) is read back without computing anything.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from xai_core import costs
from xai_core.adaptive import AdaptiveRun, EvaluationGrid
from xai_core.errors import XaiError
from xai_core.figures import ranking as rf
from xai_core.figures.metrics import metric_label
from xai_core.metrics import METRICS
from xai_core.progress import Progress
from xai_core.racing import DecisionRule
from xai_core.ranking import get_ranker, kendalls_w, mc_mrr, metric_agreement
from xai_core.runner import ranking_input
from xai_core.store import SCORE_COLUMNS

from . import state, ui
from .progress import progress_bar

N_KEY = "eval_n"
# Cheap and informative first choices per modality: one faithfulness, one ground-truth, one complexity metric.
DEFAULT_METRICS = {"expression": ["pixel_flipping", "feature_agreement_local", "precision_at_k", "sparseness",
                                  "complexity"],
                   "image": ["pixel_flipping", "relevance_rank_accuracy", "sparseness", "complexity"],
                   "sequence": ["pixel_flipping", "motif_auroc", "sparseness", "complexity"]}


@dataclass
class Results:
    scores: pd.DataFrame  # tidy, one row per method, metric and sample ("*" for set-level metrics)
    ev: Any  # the Evaluation (dataset, model, store)
    plan: Any  # the Plan: samples, methods, metrics, cost
    decision: dict | None = None  # an adaptive run's decision (why it stopped, the rounds), as decision.json


def metric_info(name: str) -> dict[str, Any]:
    return METRICS.get(name).info()


def arrow(name: str) -> str:
    return "↓" if metric_info(name)["direction"] == "lower" else "↑"


def metric_table(names: list[str]) -> pd.DataFrame:
    """Family, direction and meaning of each metric (the help table)."""
    rows = []
    for n in names:
        i = metric_info(n)
        rows.append({"metric": n, "name": i["label"], "family": i["family"],
                     "better": "higher ↑" if i["direction"] == "higher" else "lower ↓",
                     "what it tells you": i["description"], "used in ranking": "yes" if i["in_ranking"] else "no"})
    return pd.DataFrame(rows)


def default_metrics(modality: str, applicable: list[str], k: int = 3) -> list[str]:
    return [m for m in DEFAULT_METRICS.get(modality, []) if m in applicable][:k] or applicable[:1]


@st.cache_data(show_spinner=False, max_entries=32)
def applicable_metric_names(dataset: str, model: str, seed: int) -> list[str]:
    """Metrics that apply to this dataset and model (modality, ground truth at hand, convolutions)."""
    return state.evaluation_for(dataset, model, seed, metrics="all").resolve_metrics()


@st.cache_data(show_spinner="Selecting correctly classified samples and estimating the cost…", max_entries=64)
def _plan(dataset: str, model: str, seed: int, model_hash: str, methods: tuple[str, ...], metrics: tuple[str, ...],
          n: int):
    return state.evaluation_for(dataset, model, seed, methods=list(methods), metrics=list(metrics), n=n).plan()


def missing_cells(ev, plan, frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(method, metric) cells of the plan with fewer stored rows than samples; reads the store only."""
    counts = frame.groupby(["method", "metric"]).size()
    n = len(plan.sample_idx)
    return [(me, mt) for me in plan.methods for mt in plan.metrics
            if counts.get((me, mt), 0) < (1 if METRICS.get(mt).scope == "set" else n)]


def cli_command(dataset: str, model: str, seed: int, methods: list[str], metrics: list[str], n: int) -> str:
    return (f"python -m xai_core evaluate --dataset {dataset} --model {model} --methods {','.join(methods)} "
            f"--metrics {','.join(metrics)} --n {n} --seed {seed} --out runs/{dataset}-eval")


def _progress(plan):
    total, finished = len(plan.methods) * (1 + len(plan.metrics)), set()

    def describe(e: Progress) -> tuple[float, str]:
        what = e.metric or "attributions"
        if e.finished:
            finished.add((e.method, what))
        return len(finished) / total, (f"{state.method_label(e.method)} · {what}: {e.done}/{e.total}"
                                       + (" (stored)" if e.cached else ""))
    return progress_bar("Starting…", describe)


def adaptive_controls(page: str, n: int) -> DecisionRule | None:
    """The "Stop when decided" toggle and its rule (the CLI's --until decided, --confidence, --top-k, --budget,
    --round); None when it is off. ``n`` (the samples chosen) is the cap."""
    if not st.toggle("Stop when decided", key=f"{page}_until",
                     help="Add samples in rounds (up to the number above) and stop as soon as the ranking is "
                          "decided or the budget is spent; methods with no chance of the top k stop getting the "
                          "costly re-explaining metrics. The CLI's `evaluate --until decided`."):
        return None
    c1, c2, c3, c4 = st.columns(4)
    confidence = c1.slider("Confidence", 0.6, 0.99, 0.9, 0.01, key=f"{page}_confidence",
                           help="Stop when the leader is first in this share of the Monte Carlo draws, or the top k "
                                "are separated from the rest in it.")
    k = int(c2.number_input("Top k", 1, 20, 3, key=f"{page}_top_k", help="The top-k set that may decide the run, "
                                                                          "and that racing protects."))
    minutes = float(c3.number_input("Budget (minutes, 0 = none)", 0.0, 600.0, 0.0, step=1.0, key=f"{page}_budget"))
    size = int(c4.number_input("Samples per round", 1, 64, 4, key=f"{page}_round"))
    return DecisionRule(confidence=confidence, top_k=k, round_size=size, max_samples=n, min_samples=min(8, n),
                        budget_s=minutes * 60 or None)


def rounds_table(rounds: list[dict]) -> pd.DataFrame:
    """One row per round of an adaptive run (``RoundRecord.to_dict()`` or decision.json's ``rounds``)."""
    return pd.DataFrame([{
        "round": r["round"], "samples": r["n"], "leader": state.method_label(r["leader"]) if r["leader"] else "–",
        "P(rank 1)": r["p_leader"], f"top {len(r['top'])}": ", ".join(map(state.method_label, r["top"])),
        "P(top set)": r["p_top"], "raced out": ", ".join(state.method_label(x["method"]) for x in r["raced_out"]),
        "seconds": round(r["seconds"], 1), "complete": r["complete"]} for r in rounds])


def _until_decided(page: str, ev, plan, rule: DecisionRule, per_pass) -> dict:
    """Run ``plan`` adaptively, redrawing the rounds and the ranking after each one; returns the decision."""
    total = max(1, len(rule.schedule(len(plan.sample_idx))))
    where = {"round": 0, "text": "Starting…"}

    def describe(e: Progress) -> tuple[float, str]:
        if e.stage == "round":
            where.update(round=e.done, text=e.message)
        else:
            what = f"{state.method_label(e.method)} · {e.metric or 'attributions'}"
            where["text"] = f"{where['text'].split(' · ')[0]} · {what}"
        return where["round"] / total, where["text"]

    bar, update = progress_bar("Starting…", describe)
    live = st.empty()
    run = AdaptiveRun(EvaluationGrid(ev, len(plan.sample_idx), per_pass, plan=plan), rule, progress=update,
                      label=state.method_label)
    for rec in run.rounds():
        with live.container():
            st.caption(rec.sentence or f"Round {rec.round}: {rec.n} samples per method; the ranking so far:")
            st.dataframe(rounds_table([r.to_dict() for r in run.records]), hide_index=True, width="stretch")
            if rec.ranking is not None:
                ui.figure(rf.mrr_intervals(rec.ranking.table), "adaptive_mrr", key=f"{page}_live_{rec.round}",
                          downloads=False)
    bar.empty()
    return run.decision()


def run_panel(page: str, *, extra_methods: list[str] | tuple = (), adaptive: bool = False) -> Results | None:
    """Choices, cost and Run button; the stored results when every cell of the plan is in the store. With
    ``adaptive``, also "Stop when decided" (``adaptive_controls``), whose finished run's results are returned with
    its decision."""
    ds, model, seed = state.current()
    ui.need(model is not None, "No model for this dataset yet: train one on the Data & model page.")
    ev = state.evaluation(ds, model, seed)
    options = state.applicable_methods(ev)
    names = applicable_metric_names(ds, model, seed)
    c1, c2, c3 = st.columns([4, 4, 1])
    with c1:
        methods = state.multiselect("Methods", options, state.METHODS, default=list(state.DEFAULT_METHODS),
                                    format_func=state.method_label,
                                    help="Attribution methods to evaluate; 'Random (control)' is the floor "
                                         "every real method should beat.")
    with c2:
        metrics = state.multiselect(
            "Metrics", names, state.METRICS, default=default_metrics(ev.ds.modality, names),
            format_func=lambda m: f"{metric_label(m)} {arrow(m)}",
            help="↑ higher is better, ↓ lower is better.\n\n" + "\n".join(
                f"- **{m}** ({metric_info(m)['family']}, {metric_info(m)['direction']} is better): "
                f"{metric_info(m)['label']}" for m in names) + "\n\nSee 'What the metrics measure' for details.")
    with c3:
        n = int(st.number_input("Samples", 2, 512, value=int(st.session_state.get(N_KEY, 16)), step=4,
                                key=f"{page}_n", help="Correctly classified test samples scored per method "
                                                      "(the CLI's --n). More samples: narrower intervals, slower."))
        st.session_state[N_KEY] = n
    with st.expander("What the metrics measure (family, which direction is better, meaning)"):
        st.table(metric_table(names).set_index("name"))  # a table wraps the long meanings; a dataframe cuts them
    rule = adaptive_controls(page, n) if adaptive else None
    ui.need(bool(methods), "Choose at least one explanation method above.")
    ui.need(bool(metrics), "Choose at least one metric above.")
    methods = list(methods) + [m for m in extra_methods if m in options and m not in methods]

    plan = None
    with ui.friendly("Planning the evaluation"):
        plan = _plan(ds, model, seed, ev.model_hash, tuple(methods), tuple(metrics), n)
    if plan is None:
        return None
    run_ev = state.evaluation_for(ds, model, seed, methods=methods, metrics=list(metrics), n=n)
    frame = run_ev.scores(plan)
    missing = missing_cells(run_ev, plan, frame)
    cells = len(plan.methods) * len(plan.metrics)
    per_pass = state.pass_cost(run_ev)
    st.markdown(f"**Cost** — {len(plan.methods)} methods × {len(plan.metrics)} metrics on {len(plan.sample_idx)} "
                f"samples: {costs.describe(plan.total_forward, plan.total_backward, per_pass)} before reuse of "
                "stored results" + (" (time from one pass timed on this machine)." if per_pass else "."))
    with st.expander("Cost per method and metric, notes, command line"):
        for note in plan.notes:
            st.caption(f"Note: {note}")
        cost = plan.cost.pivot_table(index="method", columns="metric", values="forward", aggfunc="sum", sort=False)
        st.caption("Forward passes of the model per cell ('(explain)' = computing the attributions).")
        st.dataframe(cost.round(0), width="stretch")
        st.code(cli_command(ds, model, seed, plan.methods, plan.metrics, n), language="bash")
    if rule is not None:
        ui.need(rule.top_k < len(plan.methods), f"Top k is {rule.top_k}: choose more than {rule.top_k} methods, or "
                                                "a smaller top k.")
        decisions = st.session_state.setdefault(f"{page}_decisions", {})
        key = repr((ds, model, seed, tuple(plan.methods), tuple(plan.metrics), n, rule))
        done = decisions.get(key)
        if done is not None and done["samples"] and done["leader"]:
            used = _plan(ds, model, seed, ev.model_hash, tuple(methods), tuple(metrics), done["samples"])
            return Results(run_ev.scores(used), run_ev, used, done)
        if done is not None:
            st.warning(done["sentence"], icon=":material/timer_off:")
    if not missing:
        st.success(f"All {cells} method × metric results are in the store (computed earlier here or with "
                   f"`python -m xai_core evaluate`); nothing to compute.")
        return Results(frame, run_ev, plan)
    if len(missing) < cells:
        st.caption(f"{cells - len(missing)} of {cells} results are already stored; Run computes only the "
                   f"{len(missing)} missing ones.")
    todo = set(missing)
    left = plan.cost[[(me, mt) in todo or (mt == "(explain)" and any(me == m for m, _ in todo))
                      for me, mt in zip(plan.cost["method"], plan.cost["metric"])]]
    passes = float(left["forward"].sum() + left["backward"].sum())  # the missing cells, before reuse within them
    took = (f" ({costs.format_seconds(costs.seconds(left['forward'].sum(), left['backward'].sum(), per_pass))} "
            "on this machine)" if per_pass else "")
    confirmed = True
    if costs.needs_confirmation(passes):  # the CLI's --yes guard, here a tick box
        st.warning(f"This run needs about {passes:,.0f} forward/backward passes{took}, more than the "
                   f"{costs.COST_LIMIT:,.0f} the command line runs without --yes; it may take a long time. "
                   "Fewer samples, methods or metrics cost less.", icon=":material/warning:")
        confirmed = st.checkbox(f"Run anyway (about {passes:,.0f} passes{took})", key=f"{page}_confirm")
    if not st.button("Run until decided" if rule else "Run", type="primary", key=f"{page}_run", disabled=not confirmed,
                     help="Compute the missing attributions and scores; every result is stored as it is done, "
                          "so an interrupted run resumes where it stopped."):
        st.info("Press **Run** to compute the scores (or run the command under 'Cost' in a terminal; "
                "the results then show here without computing).")
        return None
    if rule is not None:
        decision = None
        with ui.friendly("Running the evaluation until decided"):
            decision = _until_decided(page, run_ev, plan, rule, per_pass)
        if decision is not None:
            decisions[key] = decision
            st.rerun()  # redraw from the store with the decision
        return None
    bar, update = _progress(plan)
    done = None
    with ui.friendly("Running the evaluation"):
        done = run_ev.run(plan, progress=update)
    bar.empty()
    if done is not None:
        st.rerun()  # redraw from the store, so the status line above says everything is stored
    return None


def curves(res: Results, metric: str) -> dict[str, np.ndarray | None]:
    """Stored per-sample curves of ``metric`` for every method of the run (None where not stored)."""
    return {m: res.ev.stored_curves(m, metric, res.plan.sample_idx) for m in res.plan.methods}


def intervals(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per method: mean of the finite per-sample scores of ``metric``, and its 95% interval (mean ± 1.96 standard
    errors); methods with fewer than two scores are left out."""
    rows = frame[(frame["metric"] == metric) & (frame["sample"].astype(str) != "*")]
    g = pd.to_numeric(rows["score"], errors="coerce").groupby(rows["method"], sort=False)
    t = pd.DataFrame({"mean": g.mean(), "se": g.std(ddof=1) / np.sqrt(g.count()), "n": g.count()})
    t = t[t["n"] >= 2]
    return t.assign(lo=t["mean"] - 1.96 * t["se"], hi=t["mean"] + 1.96 * t["se"])


def separation_note(frame: pd.DataFrame, metric: str, label=str) -> str | None:
    """A sentence when ``metric`` barely separates the methods: every pair of methods' 95% intervals of the mean
    score overlap (or most pairs do); None when it separates them. ``label`` names a method."""
    t = intervals(frame, metric)
    if len(t) < 2:
        return None
    names = list(t.index)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    overlap = [(a, b) for a, b in pairs if t.at[a, "lo"] <= t.at[b, "hi"] and t.at[b, "lo"] <= t.at[a, "hi"]]
    what = f"{metric_info(metric)['label']} ({metric})"
    n = int(t["n"].max())
    if len(overlap) == len(pairs):
        return (f"The methods' {what} scores lie within each other's 95 % intervals (means from "
                f"{t['mean'].min():.3g} to {t['mean'].max():.3g}): on these {n} samples this metric does not "
                "separate the methods. More samples narrow the intervals.")
    if 2 * len(overlap) >= len(pairs):
        apart = [f"{label(a)} / {label(b)}" for a, b in pairs if (a, b) not in overlap]
        return (f"{what} barely separates the methods: the 95 % intervals of {len(overlap)} of the {len(pairs)} "
                f"pairs overlap; only {', '.join(apart[:4])}{' …' if len(apart) > 4 else ''} are apart.")
    return None


def nan_reasons(frame: pd.DataFrame) -> pd.DataFrame:
    """Why scores are missing: one row per method, metric and reason, with the number of samples."""
    bad = frame[frame["score"].isna()]
    bad = bad.assign(reason=bad["reason"].fillna("no reason recorded"))
    return bad.groupby(["method", "metric", "reason"]).size().rename("samples").reset_index()


def scores_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """The scores in the CLI's scores.csv layout."""
    return frame[[c for c in SCORE_COLUMNS if c in frame.columns]]


# what the ranking table's identifiers mean on screen (the CSV keeps the identifiers)
RANKING_COLUMNS = {
    "name": ("method", "The method's name"),
    "method": ("identifier", "The method's identifier, as the CLI and the CSV spell it"),
    "mrr": ("expected MRR", "mrr: expected mean reciprocal rank over the Monte Carlo draws (1 = always first)"),
    "mrr_lo": ("MRR low (2.5 %)", "mrr_lo: 2.5th percentile of the MRR draws"),
    "mrr_hi": ("MRR high (97.5 %)", "mrr_hi: 97.5th percentile of the MRR draws"),
    "rank": ("rank", "rank: position by expected MRR"),
    "p_above_control": ("P(above random)", "p_above_control: share of draws with an MRR above the random control's"),
    "not_better_than_random": ("not better than random",
                               "not_better_than_random: above the random control in fewer than 95 % of the draws"),
}


def ranking_column_config(table: pd.DataFrame) -> dict[str, Any]:
    """Plain column titles for the ranking table, each with its identifier and meaning as the tooltip."""
    out: dict[str, Any] = {}
    for c in table.columns:
        title, why = RANKING_COLUMNS.get(c, (None, None))
        if c.startswith("p_rank_"):
            title, why = f"P(rank {c[7:]})", f"{c}: share of draws in which the method ranks {c[7:]}"
        if title is None:
            continue
        is_float = pd.api.types.is_float_dtype(table[c])
        out[c] = (st.column_config.NumberColumn(title, help=why, format="%.3f") if is_float
                  else st.column_config.Column(title, help=why))
    return out


@st.cache_data(show_spinner="Ranking the methods…", max_entries=32)
def rank(frame: pd.DataFrame, ranker: str = "mrr", draws: int = 10_000, dist: str = "normal", seed: int = 0,
         missing: str = "worst", weights: tuple[tuple[str, float], ...] = (), per_family: bool = False) -> dict:
    """Rank as ``python -m xai_core evaluate/rank`` does: the same input filter, ranker and options.

    Returns ``table`` (the CLI's ranking.csv rows), ``mrr`` (the Monte Carlo MRR result: rank
    probabilities, per-metric ranks), ``kendall`` (Kendall's W, or a note) and ``agreement``.
    """
    ranked = ranking_input(frame)
    opts = dict(weights=dict(weights) or None, per_family=per_family)
    res = mc_mrr(ranked, n_draws=draws, dist=dist, seed=seed, missing=missing, **opts)
    if ranker == "mrr":
        t = res.table.copy()
        for r in res.rank_probabilities.columns:
            t[f"p_rank_{r}"] = res.rank_probabilities[r]
    else:
        t = get_ranker(ranker)(ranked, missing=missing, **opts)
    t = t.reset_index().rename(columns={"index": "method"})
    t.insert(0, "model", frame["model"].iloc[0])
    t.insert(0, "dataset", frame["dataset"].iloc[0])
    scored = ranked.groupby("method")["score"].apply(lambda v: np.isfinite(v).any())
    try:
        kendall = kendalls_w(ranked[ranked["method"].isin(scored[scored].index)])
    except XaiError as e:
        kendall = {"note": str(e)}
    try:
        agreement = metric_agreement(ranked).dropna(how="all").dropna(axis=1, how="all")  # unscored metrics out
    except XaiError:
        agreement = None
    return {"table": t, "mrr": res, "kendall": kendall, "agreement": agreement}
