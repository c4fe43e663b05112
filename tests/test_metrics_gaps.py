"""Prediction gaps PGI / PGU / PGR (Bontonou et al. 2023): hand computations with plain numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tests.metric_helpers import shipped_inputs
from xai_core.explainers.context import ExplainContext
from xai_core.metrics import METRICS, MetricInputs, compute_metric, estimate_metric_cost

G, GAP = 20, 10


def hand_inputs(model: nn.Module, x: torch.Tensor, a: torch.Tensor, target, train_mean: torch.Tensor
                ) -> MetricInputs:
    """Expression MetricInputs around a hand-made model (no dataset needed)."""
    ctx = ExplainContext(model=model.eval(), modality="expression", input_shape=tuple(x.shape[1:]),
                         train_mean=train_mean, class_means=train_mean[None], low=x.min(0).values,
                         high=x.max(0).values, baseline_pool=x)
    t = torch.as_tensor(target)
    return MetricInputs(ctx=ctx, x=x, a=a, target=t, label=t)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def pg_numpy(W, b, x, y, order, base, gap=GAP):
    """PG(x) = (gap/G) Σ_k max(p_y(x) - p_y(x^(k)), 0), x^(k): the first k*gap features of ``order`` replaced."""
    p0 = softmax(W @ x + b)[y]
    total = 0.0
    for k in range(1, len(x) // gap + 1):
        xk = x.copy()
        idx = order[:k * gap]
        xk[idx] = base[idx]
        total += max(p0 - softmax(W @ xk + b)[y], 0.0)
    return gap / len(x) * total


@pytest.fixture(scope="module")
def linear3():
    """A 3-class linear-softmax model on G = 20 features, 4 samples, a = x * W_y, a non-zero training mean."""
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(3, G)), rng.normal(size=3)
    X = rng.normal(size=(4, G)) * 2
    y = np.array([0, 1, 2, 1])
    A = X * W[y]
    mean = rng.normal(size=G) * 0.3
    model = nn.Linear(G, 3).double()
    model.weight.data, model.bias.data = torch.tensor(W), torch.tensor(b)
    inp = hand_inputs(model, torch.tensor(X), torch.tensor(A), y, torch.tensor(mean))
    return W, b, X, y, A, mean, inp


def test_local_gaps_by_hand(linear3):
    W, b, X, y, A, mean, inp = linear3
    pgi = compute_metric("pgi_local", inp, strict=True)
    pgu = compute_metric("pgu_local", inp, strict=True)
    for i in range(4):
        desc = np.argsort(-A[i], kind="stable")
        asc = np.argsort(A[i], kind="stable")
        assert pgi.scores[i] == pytest.approx(pg_numpy(W, b, X[i], y[i], desc, mean), abs=1e-12)
        assert pgu.scores[i] == pytest.approx(pg_numpy(W, b, X[i], y[i], asc, mean), abs=1e-12)
    assert pgi.curves.shape == (4, G // GAP) and (pgi.scores > pgu.scores).all()
    adj = compute_metric("pgu_local", inp, strict=True, adjusted=True)
    p_base = softmax(W @ mean + b)[y]
    np.testing.assert_allclose(adj.scores, pgu.scores / (1 - p_base), atol=1e-12)
    zero = compute_metric("pgi_local", inp, strict=True, baseline="zero")
    assert zero.scores[0] == pytest.approx(pg_numpy(W, b, X[0], y[0], np.argsort(-A[0], kind="stable"),
                                                    np.zeros(G)), abs=1e-12)


def test_global_order_differs_from_local(linear3):
    """One order for all samples: Σ_n a_n / ‖a_n‖₂; runner-given ``global_attr`` takes precedence."""
    W, b, X, y, A, mean, inp = linear3
    g = (A / np.linalg.norm(A, axis=1, keepdims=True)).sum(0)
    glob = np.argsort(-g, kind="stable")
    local = [np.argsort(-A[i], kind="stable") for i in range(4)]
    assert any(not np.array_equal(local[i][:GAP], glob[:GAP]) for i in range(4))
    pgi_g = compute_metric("pgi_global", inp, strict=True)
    expect = [pg_numpy(W, b, X[i], y[i], glob, mean) for i in range(4)]
    np.testing.assert_allclose(pgi_g.scores, expect, atol=1e-12)
    assert not np.allclose(pgi_g.scores, compute_metric("pgi_local", inp).scores)
    pgu_g = compute_metric("pgu_global", inp, strict=True)
    np.testing.assert_allclose(pgu_g.scores, [pg_numpy(W, b, X[i], y[i], glob[::-1], mean) for i in range(4)],
                               atol=1e-12)  # no ties: ascending = reversed descending
    inp.extras["global_attr"] = -g  # the runner's sum over the whole evaluation set wins over the batch's
    try:
        np.testing.assert_allclose(compute_metric("pgi_global", inp, strict=True).scores, pgu_g.scores, atol=1e-12)
    finally:
        inp.extras.pop("global_attr")


def test_pgr_seeded(linear3):
    *_, inp = linear3
    a = compute_metric("pgr", inp, strict=True, n_random=5)
    inp.forward_batch = 3  # other chunking: same permutations
    try:
        b = compute_metric("pgr", inp, strict=True, n_random=5)
    finally:
        inp.forward_batch = 256
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-12)
    inp.seed = 7
    try:
        c = compute_metric("pgr", inp, strict=True, n_random=5)
    finally:
        inp.seed = 0
    assert np.abs(a.scores - c.scores).max() > 1e-6
    assert ((a.scores >= 0) & (a.scores <= 1)).all()


def test_pgr_is_the_mean_of_random_orders(linear3):
    """n_random=1 equals PG of the one seeded permutation, recomputed with numpy."""
    W, b, X, y, A, mean, inp = linear3
    r = compute_metric("pgr", inp, strict=True, n_random=1)
    keys = torch.rand(4, G, generator=inp.generator("pgr:0")).numpy()
    expect = [pg_numpy(W, b, X[i], y[i], np.argsort(keys[i], kind="stable"), mean) for i in range(4)]
    np.testing.assert_allclose(r.scores, expect, atol=1e-12)


def test_pgi_above_pgu_for_ig_on_simu():
    inp = shipped_inputs("simu-small", 8, "integrated_gradients")
    pgi = compute_metric("pgi_local", inp, strict=True).scores
    pgu = compute_metric("pgu_local", inp, strict=True).scores
    pgr = compute_metric("pgr", inp, strict=True, n_random=5).scores
    assert pgi.mean() > pgr.mean() > pgu.mean() and (pgi > pgu).all()
    assert compute_metric("pgi_global", inp).mean > compute_metric("pgu_global", inp).mean


def test_other_modalities_use_their_units():
    dna = shipped_inputs("dna-motifs-small", 4, "saliency")
    r = compute_metric("pgi_local", dna, strict=True)
    assert r.curves.shape == (4, 100) and np.isfinite(r.scores).all()  # 200 positions, 2 per chunk
    g = compute_metric("pgi_global", dna, strict=True, dna_score="sum")
    assert np.isfinite(g.scores).all()


def test_metadata_and_cost():
    spec = {m: METRICS.get(m) for m in ("pgi_local", "pgu_local", "pgi_global", "pgu_global", "pgr")}
    assert [s.direction for s in spec.values()] == ["higher", "lower", "higher", "lower", "higher"]
    assert not spec["pgr"].in_ranking and all(s.in_ranking for n, s in spec.items() if n != "pgr")
    assert spec["pgi_local"].params_for("image")["gap"] == 64 and spec["pgi_local"].params_for("sequence")["gap"] == 2
    assert estimate_metric_cost("pgi_local", None, "expression", 2)["forward"] == 2 * (200 + 1)
    assert estimate_metric_cost("pgr", None, "expression", 1)["forward"] == 30 * 200 + 1
    assert estimate_metric_cost("pgu_local", None, "expression", 1, adjusted=True)["forward"] == 202
