"""Rankings across metrics (study §2.6): Monte Carlo MRR, mean rank, Borda, Kendall's W — checked by hand."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xai_core.errors import XaiError
from xai_core.ranking import (RANKERS, RankingResult, borda, get_ranker, kendalls_w, mc_mrr, mean_rank,
                              metric_agreement, summarise)


def tidy(values: dict, n_samples: int = 3, directions: dict | None = None, families: dict | None = None):
    """{metric: {method: value}} -> tidy frame with n identical per-sample scores (sigma = 0)."""
    rows = []
    for metric, per_method in values.items():
        for method, v in per_method.items():
            for s in range(n_samples):
                row = {"method": method, "metric": metric, "sample": f"s{s}", "score": v}
                if directions:
                    row["direction"] = directions[metric]
                if families:
                    row["family"] = families[metric]
                rows.append(row)
    return pd.DataFrame(rows)


# metric A (higher better): a=3, b=2, c=1 -> ranks 1, 2, 3; metric B (lower better): ranks b=1, a=2, c=3
HAND = tidy({"A": {"a": 3.0, "b": 2.0, "c": 1.0}, "B": {"a": 0.2, "b": 0.1, "c": 0.3}},
            directions={"A": "higher", "B": "lower"}, families={"A": "f1", "B": "f2"})


@pytest.mark.parametrize("dist", ["normal", "bootstrap"])
def test_hand_case_without_noise(dist):
    res = mc_mrr(HAND, n_draws=500, dist=dist)
    assert isinstance(res, RankingResult)
    t = res.table
    assert t.loc["a", "mrr"] == pytest.approx(0.75)
    assert t.loc["b", "mrr"] == pytest.approx(0.75)
    assert t.loc["c", "mrr"] == pytest.approx(1 / 3)
    assert np.allclose(t["mrr_lo"], t["mrr"]) and np.allclose(t["mrr_hi"], t["mrr"])  # intervals collapse
    assert list(t.index[-1:]) == ["c"] and set(t.index[:2]) == {"a", "b"}
    assert t["rank"].to_dict() == {"a": 1, "b": 1, "c": 3}  # a and b tie on MRR: both rank 1 ("min")
    assert t["mean_rank"].to_dict() == {"a": 1.0, "b": 1.0, "c": 3.0}
    P = res.rank_probabilities
    assert list(P.columns) == [1, 2, 3] and list(P.index) == list(t.index)
    assert np.allclose(P.sum(axis=1), 1.0)
    assert P.loc["a"].tolist() == [1.0, 0.0, 0.0] and P.loc["b"].tolist() == [1.0, 0.0, 0.0]
    assert P.loc["c"].tolist() == [0.0, 0.0, 1.0]
    assert res.metric_ranks.loc[["a", "b", "c"], "A"].tolist() == [1, 2, 3]
    assert res.metric_ranks.loc[["a", "b", "c"], "B"].tolist() == [2, 1, 3]
    assert res.metrics_used == ["A", "B"] and res.dropped == {}
    assert res.params["n_draws"] == 500 and res.params["dist"] == dist


def test_ties_get_average_ranks():
    res = mc_mrr(tidy({"A": {"a": 3.0, "b": 3.0, "c": 1.0}}), n_draws=100)
    assert res.metric_ranks["A"].to_dict() == {"a": 1.5, "b": 1.5, "c": 3.0}
    assert res.table.loc["a", "mrr"] == pytest.approx(2 / 3)
    assert res.table.loc["b", "mrr"] == pytest.approx(2 / 3)
    assert res.table.loc["c", "mrr"] == pytest.approx(1 / 3)


def test_directions_dict_wins_over_column():
    res = mc_mrr(HAND, directions={"B": "higher"}, n_draws=50)  # now B ranks c=1, a=2, b=3
    assert res.table.loc["a", "mrr"] == pytest.approx((1 + 1 / 2) / 2)
    assert res.table.loc["c", "mrr"] == pytest.approx((1 / 3 + 1) / 2)


def test_summary_statistics():
    df = pd.DataFrame({"method": ["a"] * 4 + ["b"], "metric": "m", "sample": ["0", "1", "2", "3", "*"],
                       "score": [1.0, 2.0, 3.0, np.nan, 5.0], "se": [np.nan] * 5})
    s = summarise(df)
    assert s.loc[("a", "m"), "mu"] == pytest.approx(2.0)
    assert s.loc[("a", "m"), "sigma"] == pytest.approx(1.0 / math.sqrt(3))
    assert s.loc[("a", "m"), "n"] == 3
    assert s.loc[("b", "m"), "mu"] == 5.0 and s.loc[("b", "m"), "sigma"] == 0.0  # se NaN -> 0


def test_noise_probability_matches_normal_theory():
    df = pd.DataFrame({"method": ["a", "b"], "metric": "m", "sample": "*", "score": [0.6, 0.5], "se": [0.1, 0.1]})
    res = mc_mrr(df, n_draws=20_000, seed=1)
    expected = stats.norm.cdf(0.1 / (0.1 * math.sqrt(2)))  # ~0.760
    assert res.rank_probabilities.loc["a", 1] == pytest.approx(expected, abs=0.02)
    assert res.table.index[0] == "a"
    assert res.table.loc["a", "mrr_lo"] == pytest.approx(0.5) and res.table.loc["a", "mrr_hi"] == pytest.approx(1.0)
    again = mc_mrr(df, n_draws=20_000, seed=1)
    pd.testing.assert_frame_equal(res.table, again.table)  # seeded


def test_family_weight_zero_removes_metric():
    res = mc_mrr(HAND, weights={"f2": 0.0}, n_draws=50)
    assert res.table["mrr"].to_dict() == pytest.approx({"a": 1.0, "b": 0.5, "c": 1 / 3})
    assert res.params["metric_weights"] == {"A": 1.0, "B": 0.0}


def test_per_family_weights_split_between_family_members():
    df = tidy({"A": {"a": 2.0, "b": 1.0}, "A2": {"a": 2.0, "b": 1.0}, "B": {"a": 1.0, "b": 2.0}},
              families={"A": "f", "A2": "f", "B": "g"})
    res = mc_mrr(df, per_family=True, n_draws=50)
    assert res.params["metric_weights"] == {"A": 0.5, "A2": 0.5, "B": 1.0}
    assert res.table["mrr"].to_dict() == pytest.approx({"a": 0.75, "b": 0.75})
    unweighted = mc_mrr(df, n_draws=50)  # without per_family the two-metric family dominates
    assert unweighted.table.loc["a", "mrr"] == pytest.approx((1 + 1 + 0.5) / 3)


def test_paired_bootstrap_keeps_a_uniformly_better_method_first():
    rng = np.random.default_rng(0)
    base = rng.normal(size=30)
    rows = [{"method": m, "metric": "m", "sample": i, "score": v + d}
            for m, d in (("a", 0.01), ("b", 0.0)) for i, v in enumerate(base)]
    df = pd.DataFrame(rows)
    res = mc_mrr(df, dist="bootstrap", n_draws=2000)
    assert res.params["paired"] == {"m": True}
    assert res.rank_probabilities.loc["a", 1] == 1.0
    # different sample ids per method -> independent resampling, and the tiny edge is no longer certain
    df.loc[df["method"] == "a", "sample"] += 1000
    res = mc_mrr(df, dist="bootstrap", n_draws=2000)
    assert res.params["paired"] == {"m": False}
    assert 0.3 < res.rank_probabilities.loc["a", 1] < 0.8


def test_missing_drop_records_reason_and_worst_ranks_last():
    df = pd.concat([HAND, tidy({"C": {"a": 1.0, "b": 2.0, "c": np.nan}})], ignore_index=True)
    dropped = mc_mrr(df, n_draws=50)
    assert dropped.metrics_used == ["A", "B"]
    assert "'c'" in dropped.dropped["C"] and "missing='worst'" in dropped.dropped["C"]
    assert dropped.table["mrr"].to_dict() == pytest.approx({"a": 0.75, "b": 0.75, "c": 1 / 3})
    worst = mc_mrr(df, missing="worst", n_draws=50)
    assert worst.dropped == {} and worst.metrics_used == ["A", "B", "C"]
    assert worst.metric_ranks["C"].to_dict() == {"a": 2.0, "b": 1.0, "c": 3.0}
    assert worst.table["mrr"].to_dict() == pytest.approx({"a": (1 + 0.5 + 0.5) / 3, "b": (0.5 + 1 + 1) / 3,
                                                          "c": 1 / 3})
    assert worst.table.index[0] == "b" and worst.table.index[-1] == "c"


def test_borda_and_mean_rank_on_hand_case():
    mr = mean_rank(HAND)
    assert mr["mean_rank"].to_dict() == {"a": 1.5, "b": 1.5, "c": 3.0}
    assert mr["rank"].to_dict() == {"a": 1, "b": 1, "c": 3}
    b = borda(HAND)
    assert b["borda"].to_dict() == {"a": 3.0, "b": 3.0, "c": 0.0}
    assert b["rank"].to_dict() == {"a": 1, "b": 1, "c": 3} and b.index[-1] == "c"
    assert borda(HAND, weights={"f2": 0.0})["borda"].to_dict() == {"a": 2.0, "b": 1.0, "c": 0.0}


def test_kendalls_w_perfect_reversed_and_ties():
    vals = {"a": 3.0, "b": 2.0, "c": 1.0}
    agree = tidy({"A": vals, "B": {"a": 0.1, "b": 0.2, "c": 0.3}}, directions={"A": "higher", "B": "lower"})
    assert kendalls_w(agree)["W"] == pytest.approx(1.0)
    reversed_ = kendalls_w(agree, directions={"B": "higher"})
    assert reversed_["W"] == pytest.approx(0.0) and reversed_["p_value"] == pytest.approx(1.0)
    # X ranks (1, 2, 3); Y ties a and b -> (1.5, 1.5, 3). Rank sums 2.5, 3.5, 6, mean 4 -> S = 6.5.
    # Ties: T_Y = 2^3 - 2 = 6. W = 12 * 6.5 / (2^2 (27 - 3) - 2 * 6) = 78 / 84.
    ties = kendalls_w(tidy({"X": vals, "Y": {"a": 5.0, "b": 5.0, "c": 1.0}}))
    assert ties["W"] == pytest.approx(78 / 84)
    assert ties["chi2"] == pytest.approx(2 * 2 * 78 / 84)
    assert ties["p_value"] == pytest.approx(math.exp(-ties["chi2"] / 2))  # chi2 sf on 2 df
    assert ties["n_methods"] == 3 and ties["n_metrics"] == 2


def test_metric_agreement_is_direction_oriented():
    agr = metric_agreement(HAND)
    assert agr.loc["A", "A"] == pytest.approx(1.0)
    assert agr.loc["A", "B"] == pytest.approx(0.5)  # d = (1, 1, 0): 1 - 6 * 2 / (3 * 8)
    assert metric_agreement(HAND, directions={"B": "higher"}).loc["A", "B"] == pytest.approx(-0.5)


def test_registry_and_csv(tmp_path):
    assert RANKERS == {"mrr": mc_mrr, "mean_rank": mean_rank, "borda": borda}
    assert get_ranker("borda") is borda
    with pytest.raises(XaiError, match="unknown ranker"):
        get_ranker("nope")
    path = tmp_path / "rank.csv"
    mc_mrr(HAND, n_draws=20).to_csv(path)
    out = pd.read_csv(path)
    assert list(out.columns) == ["method", "mrr", "mrr_lo", "mrr_hi", "mean_rank", "rank",
                                 "p_rank_1", "p_rank_2", "p_rank_3"]
    assert out["method"].tolist()[-1] == "c"


@pytest.mark.parametrize("make, kwargs, match", [
    (lambda: HAND.assign(direction="sideways"), {}, "unknown direction"),
    (lambda: HAND, {"directions": {"A": "up"}}, "unknown direction"),
    (lambda: HAND, {"dist": "poisson"}, "unknown dist"),
    (lambda: HAND, {"missing": "ignore"}, "unknown missing"),
    (lambda: HAND, {"n_draws": 0}, "n_draws"),
    (lambda: HAND, {"weights": {"nofamily": 1.0}}, "unknown famil"),
    (lambda: HAND, {"weights": {"f1": 0.0, "f2": 0.0}}, "weight 0"),
    (lambda: HAND.iloc[:0], {}, "empty"),
    (lambda: pd.DataFrame(), {}, "empty"),
    (lambda: HAND.drop(columns="sample"), {}, "lacks column"),
    (lambda: HAND[HAND["method"] == "a"], {}, "at least 2 methods"),
    (lambda: pd.concat([HAND, HAND]), {}, "several rows"),
    (lambda: HAND.assign(score=np.nan), {}, "no metric has a finite score"),
])
def test_bad_input_raises_xai_error(make, kwargs, match):
    with pytest.raises(XaiError, match=match):
        mc_mrr(make(), **{"n_draws": 10, **kwargs})


def test_kendalls_w_needs_two_metrics():
    with pytest.raises(XaiError, match="at least 2 metrics"):
        kendalls_w(tidy({"A": {"a": 1.0, "b": 2.0}}))


def _noisy(n_samples=30, seed=0, methods=("a", "b", "c", "d"), metrics=("M1", "M2")):
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"method": m, "metric": k, "sample": f"s{s}", "score": float(rng.normal(j * 0.05, 1.0))}
                         for k in metrics for j, m in enumerate(methods) for s in range(n_samples)])


@pytest.mark.parametrize("dist", ["normal", "bootstrap"])
def test_the_ranking_does_not_depend_on_the_order_of_the_rows(dist):
    """The same scores gathered in another order (an adaptive run's rounds against one fixed-n run) rank the
    same: near-tied methods once swapped places with the row order."""
    frame = _noisy()
    ref = mc_mrr(frame, n_draws=2000, dist=dist, seed=3, top_k=2)
    for s in (1, 2):
        other = mc_mrr(frame.sample(frac=1, random_state=s), n_draws=2000, dist=dist, seed=3, top_k=2)
        pd.testing.assert_frame_equal(other.table, ref.table)
        pd.testing.assert_frame_equal(other.rank_probabilities, ref.rank_probabilities)
        assert other.p_top_set == ref.p_top_set


@pytest.mark.parametrize("dist", ["normal", "bootstrap"])
def test_a_method_that_joins_last_changes_no_other_methods_draws(dist):
    frame = _noisy()
    worst = frame[frame["method"] == "a"].assign(method="w", score=-1e6)  # last in every draw
    alone, joined = (mc_mrr(f, n_draws=2000, dist=dist, seed=5) for f in (frame, pd.concat([worst, frame])))
    pd.testing.assert_series_equal(joined.table.loc[alone.table.index, "mrr"], alone.table["mrr"])
    assert list(joined.table.index) == [*alone.table.index, "w"]
    assert mc_mrr(frame, n_draws=2000, dist=dist, seed=6).table["mrr"].to_dict() != alone.table["mrr"].to_dict()
