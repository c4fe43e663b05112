"""Complexity metrics (sparseness, complexity) against Quantus 0.6 and closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

np.trapz = np.trapezoid  # numpy 2.4 shims Quantus 0.6 needs
np.NaN = np.nan
import zennit  # noqa: E402, F401  (must be importable before quantus)
import quantus  # noqa: E402

from tests.metric_helpers import shipped, shipped_inputs  # noqa: E402
from xai_core.explainers import pool_channels  # noqa: E402
from xai_core.metrics import compute_metric  # noqa: E402
from xai_core.metrics.complexity import entropy, gini  # noqa: E402

QUANTUS = {"sparseness": quantus.Sparseness, "complexity": quantus.Complexity}


def _quantus(name: str, inp, a: np.ndarray) -> np.ndarray:
    """Quantus on the same tensors; ``normalise_axes`` per sample = our per-map max normalisation.

    Quantus' default normalise_by_max divides by the max over the whole batch. Both metrics are
    scale-free except for Quantus' epsilons (1e-7, 1e-12), so we normalise per map (documented in the
    metric's reference); with per-sample normalise_axes the definitions agree exactly.
    """
    metric = QUANTUS[name](abs=True, normalise=True, normalise_func_kwargs={"normalise_axes": list(range(1, a.ndim))},
                           disable_warnings=True, display_progressbar=False)
    x = inp.x.double().cpu().numpy()
    y = inp.target.cpu().numpy()
    return np.asarray(metric(model=inp.ctx.model, x_batch=x, y_batch=y, a_batch=a.astype(np.float64), device="cpu"),
                      dtype=np.float64)


@pytest.fixture(scope="module")
def grain_inputs():
    return shipped_inputs("grain", n=8, method="saliency")


@pytest.mark.parametrize("name", ["sparseness", "complexity"])
def test_grain_images_match_quantus_all_channels(grain_inputs, name):
    inp = grain_inputs
    ours = compute_metric(name, inp, strict=True).scores
    ref = _quantus(name, inp, inp.a.cpu().numpy())  # (N, 3, H, W): Quantus flattens all channels
    assert np.abs(ours - ref).max() < 1e-5


@pytest.mark.parametrize("name", ["sparseness", "complexity"])
def test_grain_images_pooled_match_quantus(grain_inputs, name):
    inp = grain_inputs
    ours = compute_metric(name, inp, strict=True, pooling="sum").scores
    pooled = pool_channels(inp.a, "sum")[:, None].cpu().numpy()  # (N, 1, H, W), as Quantus expects
    assert np.abs(ours - _quantus(name, inp, pooled)).max() < 1e-5


@pytest.mark.parametrize("dataset", ["simu-small", "dna-motifs-small"])
@pytest.mark.parametrize("name", ["sparseness", "complexity"])
def test_expression_and_dna_match_quantus(dataset, name):
    inp = shipped_inputs(dataset, n=8, method="integrated_gradients")
    ours = compute_metric(name, inp, strict=True).scores
    assert np.abs(ours - _quantus(name, inp, inp.a.cpu().numpy())).max() < 1e-5


def test_closed_forms():
    one_hot = torch.tensor([[0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    uniform = torch.ones(1, 4, dtype=torch.float64)
    # Gini of a one-hot vector of length n is (n - 1) / n; of a constant vector 0.
    assert gini(one_hot, eps=0.0).item() == pytest.approx(0.75)
    assert gini(uniform, eps=0.0).item() == pytest.approx(0.0, abs=1e-12)
    # entropy: 0 for one feature, log(n) for n equal features; [1, 1, 2] -> p = [1/4, 1/4, 1/2]
    assert entropy(one_hot, eps=0.0).nan_to_num().item() == pytest.approx(0.0)
    assert entropy(uniform).item() == pytest.approx(math.log(4))
    p = np.array([0.25, 0.25, 0.5])
    assert entropy(torch.tensor([[1.0, 1.0, 2.0]], dtype=torch.float64)).item() == pytest.approx(-(p * np.log(p)).sum())
    # Gini of [1, 2, 3, 4] by hand: sum (2i - 5) a_i = -3 - 2 + 3 + 12 = 10; / (4 * 10) = 0.25
    assert gini(torch.tensor([[4.0, 1.0, 3.0, 2.0]], dtype=torch.float64), eps=0.0).item() == pytest.approx(0.25)


def test_sign_and_scale_do_not_matter_and_sparser_scores_better():
    inp = shipped_inputs("simu-small", n=4, method="saliency")
    base = {m: compute_metric(m, inp, strict=True).scores for m in ("sparseness", "complexity")}
    flipped = inp.subset(range(inp.n))
    flipped.a = -3.0 * inp.a
    for m in base:
        assert np.allclose(compute_metric(m, flipped, strict=True).scores, base[m], atol=1e-9)
    # keeping only each map's 10 largest |a| makes it sparser and simpler
    top = inp.a.abs().topk(10, dim=1).indices
    sparse = inp.subset(range(inp.n))
    sparse.a = torch.zeros_like(inp.a).scatter(1, top, inp.a.gather(1, top))
    assert (compute_metric("sparseness", sparse).scores > base["sparseness"]).all()
    assert (compute_metric("complexity", sparse).scores < base["complexity"]).all()


def test_metadata_and_pooling_ignored_for_expression():
    ds, _, _ = shipped("simu-small")
    inp = shipped_inputs("simu-small", n=3, method="saliency")
    r = compute_metric("sparseness", inp, pooling="sum")  # no channels: pooling does not apply
    assert np.allclose(r.scores, compute_metric("sparseness", inp).scores)
    assert r.family == "complexity" and r.direction == "higher"
    assert compute_metric("complexity", inp).direction == "lower"
    assert ds.modality == "expression"
