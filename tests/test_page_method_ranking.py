"""Method ranking page (AppTest): run, rank with uncertainty, the aggregate against its components; the
numbers equal the engine's (``python -m xai_core rank``) on the same stored scores."""
import numpy as np
import pandas as pd
import pytest
import streamlit as st
from app_helpers import no_exception, open_page, plotly_figures

from xai_core.ranking import borda, kendalls_w, mc_mrr
from xai_core.runner import ranking_input
from xai_core.store import ResultStore

FAST = ["saliency", "input_x_gradient", "random"]
METRICS = ["pixel_flipping", "sparseness", "feature_agreement_local"]


def stored_frame(db, dataset):
    """What `python -m xai_core rank --store DB --dataset D` ranks."""
    with ResultStore(db) as store:
        return store.scores_frame(dataset=dataset)


def titles(at):
    return [f["layout"]["title"]["text"] for f in plotly_figures(at)]


def test_ranking_page_runs_ranks_like_the_engine_and_reopens(app_store):
    at = open_page("method_ranking", methods=FAST, metrics=METRICS)
    no_exception(at)
    at.number_input(key="ranking_n").set_value(6).run()
    (run,) = [b for b in at.button if b.key == "ranking_run"]
    run.click().run()
    no_exception(at)

    figs = plotly_figures(at)
    mrr_fig = next(f for f in figs if f["layout"]["title"]["text"].startswith("Expected mean reciprocal rank"))
    assert mrr_fig["data"][0]["type"] == "scatter" and "error_x" in mrr_fig["data"][0]
    assert sum(t["type"] == "heatmap" for f in figs for t in f["data"]) == 3  # rank P, per-metric ranks, agreement
    agg_fig = next(f for f in figs if "aggregated explanation" in f["layout"]["title"]["text"])
    assert agg_fig["data"][0]["name"] == "aggregate"
    assert any("The aggregate ranks" in m.value for m in at.markdown)
    assert {"Download ranking (CSV)", "Download scores (CSV)"} <= {d.label for d in at.get("download_button")}

    frame = ranking_input(stored_frame(app_store, "simu-small"))
    assert set(frame["method"]) == set(FAST) | {"aggregate"}
    engine = mc_mrr(frame, n_draws=10_000, dist="normal", seed=0, missing="worst")
    shown = next(d.value for d in at.dataframe if "mrr" in d.value.columns).set_index("method")
    assert list(shown.index) == list(engine.table.index)
    np.testing.assert_allclose(shown[["mrr", "mrr_lo", "mrr_hi", "mean_rank"]], engine.table[
        ["mrr", "mrr_lo", "mrr_hi", "mean_rank"]], rtol=1e-12)
    np.testing.assert_allclose(shown[[f"p_rank_{r}" for r in engine.rank_probabilities.columns]],
                               engine.rank_probabilities, rtol=1e-12)
    w = kendalls_w(frame)["W"]
    assert any(f"Kendall's W = {w:.2f}" in t for t in titles(at))

    at.selectbox(key="rank_ranker").set_value("borda").run()
    no_exception(at)
    b = next(d.value for d in at.dataframe if "borda" in d.value.columns).set_index("method")
    pd.testing.assert_series_equal(b["borda"], borda(frame, missing="worst")["borda"].loc[b.index])

    st.cache_data.clear()
    st.cache_resource.clear()  # a restart: only the store on disk is left
    again = open_page("method_ranking", methods=FAST, metrics=METRICS, eval_n=6)
    no_exception(again)
    assert not [b for b in again.button if b.key == "ranking_run"]
    shown2 = next(d.value for d in again.dataframe if "mrr" in d.value.columns).set_index("method")
    pd.testing.assert_frame_equal(shown2, shown)


def test_results_of_the_cli_show_without_running_and_match_its_ranking_csv(app_store, tmp_path):
    from xai_core.cli import main

    out = tmp_path / "eval"
    rc = main(["evaluate", "--dataset", "dna-motifs-small", "--model", "dna_shallow", "--methods", "saliency,random",
               "--metrics", "pixel_flipping,motif_auroc,random_logit", "--n", "4", "--store", str(app_store),
               "--out", str(out)])
    assert rc == 0
    at = open_page("method_ranking", dataset="dna-motifs-small", model="dna_shallow", methods=["saliency", "random"],
                   metrics=["pixel_flipping", "motif_auroc", "random_logit"], eval_n=4, rank_agg=False)
    no_exception(at)
    assert not [b for b in at.button if b.key == "ranking_run"], "the CLI's results are read, not recomputed"
    cli = pd.read_csv(out / "ranking.csv")
    shown = next(d.value for d in at.dataframe if "mrr" in d.value.columns)
    assert list(shown["method"]) == list(cli["method"])
    num = [c for c in cli.columns if c not in ("dataset", "model", "method")]
    np.testing.assert_allclose(shown[num].to_numpy(float), cli[num].to_numpy(float), rtol=1e-9)
    assert any("random_logit is left out" in c.value for c in at.caption)  # no method has a score on it
    reasons = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert set(reasons["metric"]) == {"random_logit"}


@pytest.mark.parametrize("ranker", ["mean_rank"])
def test_other_ranker_and_options_without_aggregate(app_store, ranker):
    at = open_page("method_ranking", methods=["saliency", "random"], metrics=["sparseness", "complexity"],
                   eval_n=4, rank_agg=False, rank_ranker=ranker, rank_dist="bootstrap")
    (run,) = [b for b in at.button if b.key == "ranking_run"]
    run.click().run()
    no_exception(at)
    assert any(t.startswith("mean rank") for t in titles(at))
    assert not any("aggregated explanation" in t for t in titles(at))


def test_stop_when_decided_runs_in_rounds_says_why_and_ranks_what_it_stored(app_store):
    from xai_core.runner import EvalConfig, Evaluation

    methods, metrics = ["saliency", "input_x_gradient", "random"], ["sparseness", "pixel_flipping"]
    at = open_page("method_ranking", methods=methods, metrics=metrics, eval_n=12, rank_agg=False,
                   ranking_until=True, ranking_top_k=1)
    no_exception(at)
    (run,) = [b for b in at.button if b.key == "ranking_run"]
    assert run.label == "Run until decided"
    run.click().run()
    no_exception(at)

    (decision,) = at.session_state["ranking_decisions"].values()
    assert decision["stopped_because"] in ("decided", "samples exhausted") and decision["cap"] == 12
    said = [i.value for i in at.info if i.value.startswith("Stopped after")]
    assert said == [decision["sentence"]]
    rounds = next(d.value for d in at.dataframe if "P(top set)" in d.value.columns)
    assert list(rounds["round"]) == list(range(1, len(decision["rounds"]) + 1))
    assert list(rounds["samples"]) == [r["n"] for r in decision["rounds"]]
    assert not [b for b in at.button if b.key == "ranking_run"], "the decided run's results are shown"

    # the ranking shown is the engine's, on the samples the run used, all read back from the store
    with ResultStore(app_store) as store:
        ev = Evaluation(EvalConfig(dataset="simu-small", methods=methods, metrics=metrics,
                                   n=decision["samples"]), store)
        events = []
        frame = ev.run(progress=events.append)
    assert all(e.cached for e in events)
    engine = mc_mrr(ranking_input(frame), n_draws=10_000, dist="normal", seed=0, missing="worst")
    shown = next(d.value for d in at.dataframe if "mrr" in d.value.columns).set_index("method")
    assert list(shown.index) == list(engine.table.index)
    np.testing.assert_allclose(shown["mrr"], engine.table["mrr"], rtol=1e-12)
    assert engine.rank_probabilities[1].max() == pytest.approx(decision["p_leader"])
