"""Adaptive evaluation (issue 13): the stopping and racing rules on synthetic scores with a known answer, budgets in
seconds and passes, decision.json, and a real small run through the CLI whose cells a later fixed-n run reuses.

The synthetic grid below is a real ``Grid`` for the loop of ``xai_core.adaptive``: every method's per-sample scores
are drawn once from normal distributions with known means (the answer), and "computing" a cell reveals its first
n draws; its clock advances by the passes computed, so time budgets are tested without sleeping."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xai_core.adaptive import AdaptiveRun, EvaluationGrid
from xai_core.cli import main
from xai_core.errors import XaiError
from xai_core.progress import Progress
from xai_core.racing import STOP_REASONS, DecisionRule, parse_budget, standing
from xai_core.ranking import mc_mrr
from xai_core.runner import EvalConfig, Evaluation
from xai_core.store import ResultStore

CLASSES = {"gt": "explanation", "flip": "model", "robust": "reexplain", "randomise": "reexplain"}
PASSES = {"explanation": 0.0, "model": 10.0, "reexplain": 100.0}


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class SyntheticGrid:
    """Known true means per method (the same on every metric), per-sample noise sd 1, drawn once per seed."""

    def __init__(self, means: dict[str, float], cap: int = 32, seed: int = 0, clock: Clock | None = None,
                 seconds_per_pass: float = 0.0, predicted_per_pass: float | None = None):
        self.methods, self.metrics, self.cap = list(means), list(CLASSES), cap
        rng = np.random.default_rng(seed)
        mu = np.array([means[m] for m in self.methods], float)[:, None, None]
        self.x = mu + rng.standard_normal((len(self.methods), len(self.metrics), cap))
        self.have: dict[tuple[str, str], int] = {}
        self.clock, self.spp = clock, seconds_per_pass
        self.predicted = seconds_per_pass if predicted_per_pass is None else predicted_per_pass

    def cost_class(self, metric):
        return CLASSES[metric]

    def explain_cost(self, method):
        return 0.0

    def metric_cost(self, metric):
        return PASSES[CLASSES[metric]]

    def _missing(self, method, metrics, n):
        return {x: max(n - self.have.get((method, x), 0), 0) for x in metrics}

    def step_cost(self, method, metrics, n):
        miss = self._missing(method, metrics, n)
        passes = sum(k * PASSES[CLASSES[x]] for x, k in miss.items())
        return passes, passes * self.predicted, sum(miss.values())

    def compute(self, method, metrics, n, progress):
        for x, k in self._missing(method, metrics, n).items():
            for done in range(1, k + 1):  # one sample per "batch", as the runner reports per batch
                if self.clock is not None:
                    self.clock.t += PASSES[CLASSES[x]] * self.spp
                self.have[(method, x)] = self.have.get((method, x), 0) + 1
                if progress:
                    progress(Progress(done, k, "metric", method=method, metric=x))

    def scores(self, n):
        rows = [(m, x, f"s{s}", self.x[i, j, s], "higher")
                for i, m in enumerate(self.methods) for j, x in enumerate(self.metrics)
                for s in range(min(self.have.get((m, x), 0), n))]
        return pd.DataFrame(rows, columns=["method", "metric", "sample", "score", "direction"])


def ladder(gaps, lead=1.0, names=None):
    names = names or [f"m{i}" for i in range(len(gaps))]
    return {n: lead - g for n, g in zip(names, gaps)}


RULE = dict(n_draws=1000, max_samples=32, round_size=4, min_samples=8)


# -- the rules, by hand ------------------------------------------------------------------------------------
def test_budget_parsing_and_rule_checks():
    assert parse_budget("10m") == (600.0, None)
    assert parse_budget("600s") == (600.0, None)
    assert parse_budget("1.5h, 5000passes") == (5400.0, 5000.0)
    assert parse_budget("2e4passes") == (None, 20000.0)
    for bad, needle in [("10", "needs a number and a unit"), ("10x", "needs a number and a unit"),
                        ("0s", "must be positive"), ("1m,2m", "a time twice"), ("", "empty")]:
        with pytest.raises(XaiError, match=needle):
            parse_budget(bad)
    for bad, needle in [(dict(confidence=1.0), "confidence"), (dict(confidence=0.5), "confidence"),
                        (dict(top_k=0), "top_k"), (dict(min_samples=80), "above the cap"),
                        (dict(race_alpha=0.7), "race_alpha"), (dict(budget_s=-1.0), "budget_s")]:
        with pytest.raises(XaiError, match=needle):
            DecisionRule(**bad).check()
    rule = DecisionRule(max_samples=30, round_size=4, min_samples=8, race_alpha=0.01)
    assert rule.schedule(100) == [4, 8, 12, 16, 20, 24, 28, 30]
    assert rule.schedule(10) == [4, 8, 10]
    # racing is tested at 8..28 (not after the last round): 6 rounds share the 1 % of error
    assert rule.race_threshold(rule.schedule(100)) == pytest.approx(0.01 / 6)


def test_p_top_set_separated_and_tied():
    rng = np.random.default_rng(0)
    rows = [(m, met, s, mu + 0.1 * rng.standard_normal()) for m, mu in [("a", 3), ("b", 2), ("c", 1), ("d", 1)]
            for met in ("x", "y") for s in range(10)]
    frame = pd.DataFrame(rows, columns=["method", "metric", "sample", "score"])
    res = mc_mrr(frame, n_draws=2000, top_k=[1, 2, 3])
    assert res.p_top_set[1] == 1.0 and res.p_top_set[2] == 1.0  # a then b, far apart
    assert res.p_top_set[3] < 0.9  # c and d are tied for the third place
    s = standing(res, 2)
    assert s.leader == "a" and s.p_leader == 1.0 and s.top == ("a", "b") and s.p_in_top["d"] < 0.01
    with pytest.raises(XaiError, match="top_k"):
        mc_mrr(frame, n_draws=10, top_k=4)
    with pytest.raises(XaiError, match="top_k=3"):
        standing(res.__class__(**{**res.__dict__, "p_top_set": {}}), 3)


# -- the loop on synthetic scores with a known answer ---------------------------------------------------------
def test_a_clear_leader_stops_early_and_is_the_true_one():
    run = AdaptiveRun(SyntheticGrid(ladder([0, 2, 2.2, 2.4, 3]), seed=1), DecisionRule(**RULE)).run()
    assert run.stopped_because == "decided"
    assert run.records[-1].n == 8  # the first round at which a decision may be taken
    assert run.records[-1].leader == "m0" and run.records[-1].p_leader >= 0.9
    assert "decided, the leader is first" in run.sentence


@pytest.mark.parametrize("budget", [None, "passes"])
def test_a_tie_runs_to_the_cap_or_the_budget_and_says_so(budget):
    means = ladder([0, 0, 1, 1.5, 2])  # m0 and m1 tied for first
    kw = dict(budget_passes=8_000.0) if budget else {}
    run = AdaptiveRun(SyntheticGrid(means, seed=2), DecisionRule(**{**RULE, "top_k": 1}, **kw)).run()
    last = run.records[-1]
    if budget is None:
        assert run.stopped_because == "samples exhausted" and last.n == 32
        assert "every sample up to the cap is used" in run.sentence
    else:
        assert run.stopped_because == "budget" and run.passes <= 8_000
        assert "the budget was spent" in run.sentence and last.n < 32
    assert last.p_leader < 0.9 and set(last.top) <= {"m0", "m1"}
    left = [e for e in run.decision()["not_computed"] if e["method"] == "all"]
    assert bool(left) == (budget is not None)  # the samples after the stop, with the reason


def test_racing_never_drops_the_true_leader_over_40_seeds():
    """40 seeds of a ladder where the leader is ahead by 0.4 sd of a sample and the tail is hopeless: the tail is
    raced out (the test can fail), the true leader never; when the leader rule decides, it names the true one."""
    means = ladder([0, 0.4, 0.6, 0.8, 1.5, 2.0, 2.5, 3.0])
    raced_tail = leader_raced = decided_right = decided_leader = 0
    for seed in range(40):
        run = AdaptiveRun(SyntheticGrid(means, cap=24, seed=seed), DecisionRule(**{**RULE, "max_samples": 24},
                                                                               seed=seed)).run()
        leader_raced += "m0" in run.raced
        raced_tail += bool(set(run.raced) & {"m5", "m6", "m7"})
        last = run.records[-1]
        if run.stopped_because == "decided" and last.p_leader >= 0.9:
            decided_leader += 1
            decided_right += last.leader == "m0"
    assert leader_raced == 0
    assert raced_tail >= 10  # racing really happens (17 of the 40 seeds when written)
    assert decided_right == decided_leader


def test_racing_withholds_only_the_expensive_metrics_and_never_a_control():
    means = {"m0": 1.0, "m1": 0.6, "m2": 0.4, "m3": -2.0, "random": -3.0}
    grid = SyntheticGrid(means, seed=3)
    run = AdaptiveRun(grid, DecisionRule(**{**RULE, "confidence": 0.999, "top_k": 2})).run()
    assert "m3" in run.raced and "random" not in run.raced  # random is the control: the floor
    n = run.records[-1].n
    assert n > run.raced["m3"]["samples"]
    samples = run.decision()["samples_per_method"]["m3"]
    assert samples["cheap"] == n and samples["expensive"] == run.raced["m3"]["samples"]
    assert grid.have[("random", "robust")] == n
    why = [e for e in run.decision()["not_computed"] if e["method"] == "m3"]
    assert why and why[0]["metrics"] == ["robust", "randomise"] and why[0]["why"].startswith("raced out after round")


def test_time_budget_stops_before_a_step_that_does_not_fit_and_mid_step_when_it_overruns():
    clock = Clock()
    grid = SyntheticGrid(ladder([0, 0, 0.1, 0.1, 0.2]), seed=4, clock=clock, seconds_per_pass=0.01)
    run = AdaptiveRun(grid, DecisionRule(**RULE, budget_s=60.0), clock=clock).run()
    assert run.stopped_because == "budget" and run.elapsed() <= 60.0
    assert "the next step" in run.sentence
    # a step takes 5 times longer than predicted: the run stops mid-step at the budget, keeping what it did
    clock = Clock()
    grid = SyntheticGrid(ladder([0, 0, 0.1, 0.1, 0.2]), seed=4, clock=clock, seconds_per_pass=0.05,
                         predicted_per_pass=0.01)
    run = AdaptiveRun(grid, DecisionRule(**RULE, budget_s=1.0), clock=clock).run()
    assert run.stopped_because == "budget" and run.elapsed() <= 1.0 + 10 * 0.05  # at most one sample late
    assert "spent during" in run.sentence
    assert 0 < sum(k for (_, x), k in grid.have.items() if x == "flip") < 4 * 5


def test_budget_stop_in_the_first_round_ranks_what_is_there_and_lists_the_rest():
    grid = SyntheticGrid(ladder([0, 0.5, 1.0]), seed=5)
    run = AdaptiveRun(grid, DecisionRule(**{**RULE, "top_k": 1}, budget_passes=150.0)).run()
    d = run.decision()
    assert d["stopped_because"] == "budget" and len(d["rounds"]) == 1 and not d["rounds"][0]["complete"]
    assert set(d["rounds"][0]["left_out"]) == {"robust", "randomise"}  # not computed for every method yet
    assert {e["why"] for e in d["not_computed"] if e["method"] != "all"} == {
        "the budget was spent before this step of the last round"}
    json.dumps(d)  # plain JSON


class ParallelGrid(SyntheticGrid):
    """The synthetic grid as a parallel executor (Ray) presents it: the loop hands it every method of a step."""
    parallel = True

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls: list[list[str]] = []

    def compute(self, method, metrics, n, progress, _within=False):
        if not _within:
            self.calls.append([method])
        super().compute(method, metrics, n, progress)

    def compute_many(self, methods, metrics, n, progress):
        self.calls.append(list(methods))
        for method in methods:
            self.compute(method, metrics, n, progress, _within=True)


@pytest.mark.parametrize("seed", [1, 3, 6])
def test_a_parallel_grid_gets_whole_steps_and_reaches_the_same_decision(seed):
    means, rule = ladder([0, 0.3, 0.6, 1.0, 2.0]), DecisionRule(**{**RULE, "top_k": 2}, seed=seed)
    one = AdaptiveRun(SyntheticGrid(means, seed=seed), rule).run()
    grid = ParallelGrid(means, seed=seed)
    many = AdaptiveRun(grid, rule).run()
    assert max(len(c) for c in grid.calls) == 5  # every method of a step at once
    assert many.stopped_because == one.stopped_because and set(many.raced) == set(one.raced)
    assert [(r.n, r.leader, r.p_leader, r.top) for r in many.records] == [(r.n, r.leader, r.p_leader, r.top)
                                                                         for r in one.records]
    assert many.passes == one.passes


def test_a_parallel_step_that_does_not_fit_the_budget_goes_one_method_at_a_time():
    """A pass budget that holds part of a step: the parallel run falls back to single methods and stops where
    the in-process run stops, with the same cells computed."""
    means = ladder([0, 0.5, 1.0])
    rule = DecisionRule(**{**RULE, "top_k": 1}, budget_passes=100.0)  # 2 of the 3 methods' first model step
    one_grid, grid = SyntheticGrid(means, seed=5), ParallelGrid(means, seed=5)
    one, many = AdaptiveRun(one_grid, rule).run(), AdaptiveRun(grid, rule).run()
    assert many.stopped_because == one.stopped_because == "budget"
    assert grid.have == one_grid.have and many.passes == one.passes <= 100.0
    assert any(len(c) == 1 for c in grid.calls)  # the step that did not fit whole


# -- the real thing: the CLI on simu-small, and the store ----------------------------------------------------
FAST = "saliency,input_x_gradient,smoothgrad,random"
TWO = "sparseness,pixel_flipping"


def test_cli_until_decided_writes_decision_json_and_a_fixed_run_reuses_its_cells(tmp_path, capsys):
    store, out = tmp_path / "r.sqlite", tmp_path / "out"
    rc = main(["evaluate", "--dataset", "simu-small", "--methods", FAST, "--metrics", TWO, "--until", "decided",
               "--n", "16", "--top-k", "2", "--round", "4", "--min-samples", "4", "--draws", "2000",
               "--store", str(store), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "round 1: 4 samples" in printed and "Stopped after" in printed
    d = json.loads((out / "decision.json").read_text())
    assert d["stopped_because"] in STOP_REASONS and d["cap"] == 16  # --n is the cap
    assert d["dataset"] == "simu-small" and d["model"] == "mlp"
    assert set(d["samples_per_method"]) == set(FAST.split(",")) and 0 <= d["p_leader"] <= 1
    assert [r["round"] for r in d["rounds"]] == list(range(1, len(d["rounds"]) + 1))
    for key in ("raced_out", "not_computed", "sentence", "rule", "top_k", "p_top_k", "seconds", "passes"):
        assert key in d
    n = d["samples"]
    scores = pd.read_csv(out / "scores.csv", dtype={"sample": str})
    assert scores.groupby(["method", "metric"]).size().eq(n).all()
    ranking = pd.read_csv(out / "ranking.csv")  # the last round's ranking: the same draws, the same order
    assert list(ranking["method"].head(2)) == d["top_k"]
    assert ranking["p_rank_1"].max() == pytest.approx(d["p_leader"])
    # a fixed run of the same n computes nothing: every attribution and score is read back
    with ResultStore(store) as rs:
        ev = Evaluation(EvalConfig(dataset="simu-small", methods=FAST, metrics=TWO, n=n), rs)
        events: list[Progress] = []
        fixed = ev.run(progress=events.append)
    assert events and all(e.cached for e in events), [e for e in events if not e.cached][:3]
    merged = fixed.merge(scores, on=["method", "metric", "sample"], suffixes=("_fixed", "_adaptive"))
    assert len(merged) == len(scores)
    np.testing.assert_allclose(merged["score_fixed"], merged["score_adaptive"])


def test_evaluation_grid_costs_and_missing_scores(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as rs:
        ev = Evaluation(EvalConfig(dataset="simu-small", methods="saliency,random", metrics=TWO, n=8), rs)
        grid = EvaluationGrid(ev, 8)
        assert grid.cap == 8 and grid.methods == ["saliency", "random"] and grid.skipped == []
        passes, _, missing = grid.step_cost("saliency", ["pixel_flipping"], 4)
        assert passes > 0 and missing == 4
        grid.compute("saliency", ["pixel_flipping"], 4, None)
        assert grid.step_cost("saliency", ["pixel_flipping"], 4)[2] == 0
        idx = grid.plan.sample_idx
        assert ev.missing_scores("saliency", "pixel_flipping", idx[:4]) == []
        assert len(ev.missing_scores("saliency", "pixel_flipping", idx)) == 4


@pytest.mark.parametrize("args, needle", [
    (["--confidence", "0.9"], "only apply with --until decided"),
    (["--until", "decided", "--budget", "10"], "needs a number and a unit"),
    (["--until", "decided", "--top-k", "4"], "--top-k 4 needs more than 4 methods"),
    (["--until", "decided", "--ranker", "borda"], "decides on the Monte Carlo ranking"),
    (["--until", "decided", "--n", "4", "--min-samples", "8"], "above the cap"),
])
def test_cli_refuses_bad_adaptive_flags_with_one_line(tmp_path, capsys, args, needle):
    rc = main(["evaluate", "--dataset", "simu-small", "--methods", FAST, "--metrics", TWO, *args,
               "--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "o" / "decision.json").exists()


def test_cli_refuses_until_over_several_datasets_and_a_bad_confidence(tmp_path, capsys):
    rc = main(["evaluate", "--dataset", "simu-small,grain", "--until", "decided", "--out", str(tmp_path / "o")])
    assert rc == 2 and "give a single --dataset" in capsys.readouterr().err
    rc = main(["evaluate", "--dataset", "simu-small", "--until", "decided", "--confidence", "1.5",
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "--confidence" in capsys.readouterr().err
