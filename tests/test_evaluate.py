"""The evaluation grid: plan and cost, reuse of attributions, resume after an interruption, CLI outputs."""
import json

import numpy as np
import pandas as pd
import pytest

from xai_core.cli import main
from xai_core.metrics import METRICS, MetricOutput, register_metric
from xai_core.runner import EvalConfig, Evaluation
from xai_core.store import ResultStore

CALLS: list[tuple[str, int]] = []
FLAKY = {"fail": True}

def _count_l1(inp):
    CALLS.append(("l1", inp.n))
    return inp.a.abs().reshape(inp.n, -1).sum(1)


def _flaky(inp):
    CALLS.append(("flaky", inp.n))
    if FLAKY["fail"]:
        raise RuntimeError("boom")
    return inp.a.abs().reshape(inp.n, -1).amax(1)


def _count_set(inp):
    CALLS.append(("set", inp.n))
    return MetricOutput(float(inp.a.abs().mean()), se=0.0)


@pytest.fixture(autouse=True, scope="module")
def test_metrics():
    """Metrics that count their calls, registered for this module only (so 'all' elsewhere is the real set)."""
    register_metric("test_count_l1", label="L1 (test)", family="complexity", direction="lower")(_count_l1)
    register_metric("test_flaky", label="fails once (test)", family="complexity", direction="lower")(_flaky)
    register_metric("test_count_set", label="mean (test)", family="consistency", direction="higher",
                    scope="set")(_count_set)
    yield
    for name in ("test_count_l1", "test_flaky", "test_count_set"):
        METRICS.remove(name)


def _eval(tmp_path, **kw):
    cfg = dict(dataset="simu-small", methods="saliency,input_x_gradient,random",
               metrics="test_count_l1,test_count_set", n=12, batch_size=5)
    cfg.update(kw)
    return Evaluation(EvalConfig(**cfg), ResultStore(tmp_path / "r.sqlite"))


def test_plan_prints_cost_and_selects_correct_samples(tmp_path):
    ev = _eval(tmp_path)
    plan = ev.plan()
    assert len(plan.sample_idx) == 12
    pred = ev._predict(plan.sample_idx)
    assert (pred == ev.ds.y[plan.sample_idx]).all()  # only correctly classified samples by default
    assert plan.total_forward > 0 and "3 methods x 2 metrics on 12 samples" in plan.describe()


def test_finished_cells_are_never_recomputed_and_runs_resume(tmp_path):
    CALLS.clear()
    ev = _eval(tmp_path)
    plan = ev.plan()

    class Stop(Exception):
        pass

    seen = []

    def interrupt(event):  # stop after the first metric batch has been stored
        seen.append(event)
        if event["stage"] == "metric" and not event["cached"]:
            raise Stop

    with pytest.raises(Stop):
        ev.run(plan, progress=interrupt)
    assert CALLS == [("l1", 5)]
    CALLS.clear()
    ev2 = _eval(tmp_path)  # a new process would see the same file
    scores = ev2.run(ev2.plan())
    # saliency/l1 resumes with the 7 samples left (batches of 5 and 2); the other cells run in full
    assert CALLS[:2] == [("l1", 5), ("l1", 2)]
    assert sum(n for k, n in CALLS if k == "l1") == 12 * 3 - 5
    assert [n for k, n in CALLS if k == "set"] == [12, 12, 12]
    assert len(scores) == 3 * (12 + 1)
    CALLS.clear()
    again = _eval(tmp_path).run()
    assert CALLS == []  # everything stored
    pd.testing.assert_frame_equal(scores.sort_values(["method", "metric", "sample"]).reset_index(drop=True),
                                  again.sort_values(["method", "metric", "sample"]).reset_index(drop=True))


def test_attributions_are_reused_across_metrics_and_aggregate_reuses_components(tmp_path):
    ev = _eval(tmp_path, methods="saliency,aggregate")
    ev.run()
    store = ev.store
    ids = [ev.ds.sample_ids[i] for i in ev.plan().sample_idx]
    params = ev._method_params("saliency")
    arr, missing = store.get_attributions(dataset_fp=ev.dataset_fp, model_hash=ev.model_hash, method="saliency",
                                          method_params=params, output="logit", sample_ids=ids)
    assert missing == [] and arr.shape == (12, 2000)
    # the aggregate's components were stored too, so explaining them again is free
    comp = ev._method_params("integrated_gradients")
    _, missing = store.get_attributions(dataset_fp=ev.dataset_fp, model_hash=ev.model_hash,
                                        method="integrated_gradients", method_params=comp, output="logit",
                                        sample_ids=ids)
    assert missing == []


def test_metric_parameters_are_part_of_the_key(tmp_path):
    CALLS.clear()
    _eval(tmp_path, methods="saliency", metrics="test_count_l1").run()
    n_before = len(CALLS)
    with pytest.raises(Exception, match="parameter of metric"):
        _eval(tmp_path, methods="saliency", metrics="test_count_l1",
              metric_params={"test_count_l1": {"nope": 1}}).plan()
    assert len(CALLS) == n_before


def test_cli_evaluate_writes_tidy_scores_and_ranking_then_rank_reranks(tmp_path, capsys):
    out, store = tmp_path / "out", tmp_path / "s.sqlite"
    rc = main(["evaluate", "--dataset", "simu-small", "--methods", "saliency,integrated_gradients,random",
               "--metrics", "test_count_l1,test_count_set", "--n", "6", "--draws", "2000", "--out", str(out),
               "--store", str(store)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "forward" in err and "backward" in err  # the cost estimate comes first
    scores = pd.read_csv(out / "scores.csv")
    for col in ("dataset", "model", "method", "metric", "sample", "family", "direction", "score"):
        assert col in scores.columns
    assert len(scores) == 3 * (6 + 1)
    ranking = pd.read_csv(out / "ranking.csv")
    assert set(ranking["method"]) == {"saliency", "integrated_gradients", "random"}
    assert {"mrr", "mrr_lo", "mrr_hi", "p_rank_1", "p_rank_3"} <= set(ranking.columns)
    assert np.allclose(ranking[["p_rank_1", "p_rank_2", "p_rank_3"]].sum(axis=1), 1.0)
    assert (ranking["mrr_lo"] <= ranking["mrr_hi"]).all()
    # the mean of the draws lies in their 2.5-97.5 % range up to the discreteness of MRR: a method tied in almost
    # every draw has its percentiles at the tie's value and its mean a hair off it
    assert (ranking["mrr"] - ranking["mrr"].clip(ranking["mrr_lo"], ranking["mrr_hi"])).abs().max() < 0.01
    json.loads((out / "agreement.json").read_text())
    rc = main(["rank", "--scores", str(out / "scores.csv"), "--ranker", "borda", "--out", str(tmp_path / "r2")])
    assert rc == 0
    assert "borda" in pd.read_csv(tmp_path / "r2" / "ranking.csv").columns
    rc = main(["rank", "--store", str(store), "--dist", "bootstrap", "--draws", "500", "--out", str(tmp_path / "r3")])
    assert rc == 0


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--dataset", "simu-small", "--metrics", "nope"], "unknown metric 'nope'"),
    (["--dataset", "simu-small", "--metric-param", "foo=1"], "must look like name.key=value"),
])
def test_cli_evaluate_bad_input_is_one_line(tmp_path, capsys, argv, message):
    rc = main(["evaluate", *argv, "--out", str(tmp_path), "--store", str(tmp_path / "s.sqlite")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_unexpected_failures_are_stored_as_nan_and_retried(tmp_path):
    FLAKY["fail"] = True
    first = _eval(tmp_path, methods="saliency", metrics="test_flaky").run()
    assert first["score"].isna().all() and first["reason"].str.startswith("error: RuntimeError: boom").all()
    FLAKY["fail"] = False
    again = _eval(tmp_path, methods="saliency", metrics="test_flaky").run()
    assert np.isfinite(again["score"]).all() and again["reason"].isna().all()



def test_a_changed_explainer_implementation_is_recomputed(tmp_path):
    """Stored attributions are keyed by the explainer's version: bumping it never serves the old maps."""
    import dataclasses

    from xai_core.explainers import EXPLAINERS

    CALLS.clear()
    _eval(tmp_path, methods="saliency", metrics="test_count_l1").run()
    assert sum(n for _, n in CALLS) == 12
    old = EXPLAINERS.get("saliency")
    EXPLAINERS._entries["saliency"] = dataclasses.replace(old, version=2)  # in place: keeps the registry order
    try:
        _eval(tmp_path, methods="saliency", metrics="test_count_l1").run()
    finally:
        EXPLAINERS._entries["saliency"] = old
    assert sum(n for _, n in CALLS) == 24


def test_a_changed_metric_implementation_is_recomputed(tmp_path):
    import dataclasses

    CALLS.clear()
    _eval(tmp_path, methods="saliency", metrics="test_count_l1").run()
    old = METRICS.get("test_count_l1")
    METRICS._entries["test_count_l1"] = dataclasses.replace(old, version=2)
    try:
        scores = _eval(tmp_path, methods="saliency", metrics="test_count_l1").run()
    finally:
        METRICS._entries["test_count_l1"] = old
    assert sum(n for _, n in CALLS) == 24 and len(scores) == 12  # only the new version's rows are returned
