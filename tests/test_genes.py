"""xai_core.genes against closed forms and hand computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from tests.conftest import make_dataset
from xai_core import genes
from xai_core.explainers import explain, make_context


def linear_model(W: np.ndarray) -> nn.Module:
    m = nn.Linear(W.shape[1], W.shape[0], bias=True)
    with torch.no_grad():
        m.weight.copy_(torch.as_tensor(W, dtype=torch.float32))
        m.bias.zero_()
    return m.eval()


def test_linear_model_saliency_ranks_genes_by_their_weight():
    """Saliency of a linear model is the weight row of the class, for every sample: the local rankings all
    equal the global one, which orders genes by weight; the class score is the L2-normalised weight row."""
    ds = make_dataset("expression", n=60, n_classes=3)
    W = np.random.default_rng(1).normal(size=(3, 30))
    ctx = make_context(linear_model(W), ds)
    a = explain(ctx, ds.X, ds.y, "saliency").attributions
    a = genes.oriented(a, ds.y, ctx.n_outputs)
    S = genes.class_scores(a, ds.y, 3)
    np.testing.assert_allclose(S, W / np.linalg.norm(W, axis=1, keepdims=True), atol=1e-6)
    for c in range(3):
        np.testing.assert_array_equal(genes.order(S[c]), np.argsort(-W[c]))
        lg = genes.local_vs_global(a[ds.y == c], S[c], 5)
        assert np.allclose(lg["shared_top_k"], 1.0) and np.allclose(lg["spearman"], 1.0)


def test_single_logit_binary_orients_class_zero_as_negative_evidence():
    ds = make_dataset("expression", n=40, n_classes=2)
    w = np.random.default_rng(2).normal(size=(1, 30))
    ctx = make_context(linear_model(w), ds)
    assert ctx.n_outputs == 1
    a = genes.oriented(explain(ctx, ds.X, ds.y, "saliency").attributions, ds.y, 1)
    S = genes.class_scores(a, ds.y, 2)
    unit = w[0] / np.linalg.norm(w[0])
    np.testing.assert_allclose(S[0], -unit, atol=1e-6)
    np.testing.assert_allclose(S[1], unit, atol=1e-6)


def test_class_scores_mean_of_normalised_rows_and_nan_for_absent_class():
    a = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0]])
    S = genes.class_scores(a, np.array([0, 0, 1]), 3)
    np.testing.assert_allclose(S[0], [0.3, 0.4, 0.5])
    np.testing.assert_allclose(S[1], [1.0, 0.0, 0.0])
    assert np.isnan(S[2]).all()


def test_order_and_ranks_break_ties_by_gene_index():
    s = np.array([0.5, 2.0, 0.5, -1.0])
    np.testing.assert_array_equal(genes.order(s), [1, 0, 2, 3])
    np.testing.assert_array_equal(genes.ranks(s), [2, 1, 3, 4])


def test_overlap_hand_case_and_hypergeometric_p_value():
    o = genes.overlap(np.array([0, 1, 2, 3]), np.array([1, 3, 9]), 10)
    assert (o["k"], o["n_known"], o["hits"]) == (4, 3, 2)
    assert o["precision"] == 0.5 and o["recall"] == pytest.approx(2 / 3)
    assert o["expected"] == pytest.approx(4 * 3 / 10)
    # P(X >= 2), X ~ hypergeometric(N=10, K=3, n=4) = (C(3,2)C(7,2) + C(3,3)C(7,1)) / C(10,4) = 70 / 210
    assert o["p_value"] == pytest.approx(1 / 3)
    assert genes.overlap(np.array([5, 6]), np.array([1]), 10)["p_value"] == pytest.approx(1.0)


def test_recovery_curve_and_local_precision_hand_case():
    s = np.array([5.0, 4.0, 3.0, 2.0, 1.0])  # ranking 0, 1, 2, 3, 4
    truth = np.array([0, 2])
    np.testing.assert_allclose(genes.recovery_curve(s, truth, [1, 2, 3, 5]), [1, 0.5, 2 / 3, 0.4])
    a = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0], [0.1, 0.2, 9.0, 0.3, 8.0]])
    np.testing.assert_allclose(genes.local_precision(a, truth, 2), [0.5, 0.5])
    np.testing.assert_allclose(genes.local_precision(a, truth, 3), [2 / 3, 1 / 3])
    assert genes.local_precision(a[:0], truth, 2).shape == (0,)


def test_spearman_matrix_symmetric_unit_diagonal_and_equal_to_scipy():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 6, size=(4, 50)).astype(float)  # many ties
    rows[3] = -rows[0]
    c = genes.spearman_matrix(rows)
    np.testing.assert_allclose(c, c.T)
    np.testing.assert_allclose(np.diag(c), 1.0)
    np.testing.assert_allclose(c, spearmanr(rows, axis=1).statistic, atol=1e-12)
    assert c[0, 3] == pytest.approx(-1.0)
    const = genes.spearman_matrix(np.vstack([rows[:1], np.ones((1, 50))]))
    assert np.isnan(const[0, 1]) and np.isnan(const[1, 1])


def test_rank_correlation_averages_classes_present_in_every_ranking():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(3, 40)), rng.normal(size=(3, 40))
    b[2] = np.nan  # class 2 has no sample in ranking b
    df = genes.rank_correlation({"a": a, "b": b})
    expected = np.mean([spearmanr(a[c], b[c]).statistic for c in (0, 1)])
    assert list(df.index) == ["a", "b"] and df.loc["a", "b"] == pytest.approx(expected)
    assert genes.rank_correlation({"a": a, "b": b}, [1]).loc["b", "a"] == pytest.approx(spearmanr(a[1], b[1]).statistic)
    assert genes.rank_correlation({"a": a[0], "b": a[0]}).loc["a", "b"] == pytest.approx(1.0)


def test_topk_overlap_matrix_hand_case():
    m = genes.topk_overlap_matrix({"x": np.array([4.0, 3, 2, 1]), "y": np.array([4.0, 1, 3, 2])}, 2)
    np.testing.assert_allclose(m.to_numpy(), [[1, 0.5], [0.5, 1]])


def test_top_table_names_known_genes_and_other_ranks():
    s, other = np.array([0.1, 0.9, 0.5]), np.array([3.0, 1.0, 2.0])
    t = genes.top_table(s, 2, ["A", "B", "C"], np.array([2]), {"DE": other})
    assert t["gene"].tolist() == ["B", "C"] and t["known"].tolist() == [False, True]
    assert t["rank in DE"].tolist() == [3, 2]
    ov = genes.overlap_table({"m": s}, np.array([2]), 2, 3)
    assert ov.loc[0, "hits"] == 1 and ov.loc[0, "ranking"] == "m"


@pytest.mark.parametrize("test", genes.DE_METHODS)
def test_de_ranking_finds_planted_genes(test):
    rng = np.random.default_rng(0)
    n, G, C = 150, 200, 3
    y = np.repeat(np.arange(C), n // C)
    X = rng.normal(size=(n, G)).astype("f4")
    for c in range(C):
        X[y == c, 10 * c:10 * c + 10] += 2.0
    score, padj = genes.de_scores(X, y, C, test)
    assert score.shape == padj.shape == (C, G)
    for c in range(C):
        assert set(genes.order(score[c])[:10]) == set(range(10 * c, 10 * c + 10))
        assert (padj[c, 10 * c:10 * c + 10] < 1e-6).all()
    with pytest.raises(KeyError):
        genes.de_scores(X, y, C, "anova")


def test_select_per_class_keeps_first_correct_samples_of_each_class():
    y = np.array([0, 0, 0, 1, 1, 1, 2])
    pred = np.array([0, 1, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(genes.select_per_class(y, pred, np.arange(7), 2), [0, 2, 3, 4])
    np.testing.assert_array_equal(genes.select_per_class(y, pred, np.arange(7), 1, only_correct=False), [0, 3, 6])


def test_population_models_rankings_and_store(tmp_path, monkeypatch):
    """A shipped logistic regression: saliency class scores = its normalised weight rows; training seeds are
    detected on disk, explained once, then read from the store."""
    import xai_core.runner
    from xai_core.runner import EvalConfig, Evaluation
    from xai_core.store import ResultStore

    ev = Evaluation(EvalConfig(dataset="simu-small", model="lr", population_seeds=1, population_epochs=1),
                    ResultStore(tmp_path / "r.sqlite"))
    monkeypatch.setattr(xai_core.runner, "cache_dir", lambda: tmp_path)  # where the population's models go
    idx = ev.ds.test_idx[:12]
    assert genes.missing_attributions(ev, "saliency", idx) == 12
    assert not genes.population_trained(ev)
    scores = genes.seed_scores(ev, "saliency", idx)
    assert genes.population_trained(ev) and list(scores) == ["main model", "seed 1"]
    assert genes.missing_attributions(ev, "saliency", idx) == 0
    assert genes.missing_attributions(ev, "saliency", idx, ev.population_models()[0]) == 0
    W = ev.model[1].weight.detach().double().numpy()
    present = np.unique(ev.ds.y[idx])
    np.testing.assert_allclose(scores["main model"][present],
                               (W / np.linalg.norm(W, axis=1, keepdims=True))[present], atol=1e-5)
