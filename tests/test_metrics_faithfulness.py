"""Faithfulness metrics: perturbation machinery, closed forms, and Quantus 0.6.0 on identical tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

np.trapz = np.trapezoid; np.NaN = np.nan  # noqa: E702  numpy 2.4 shims Quantus 0.6 needs
import zennit  # noqa: E402,F401  (must be importable before quantus)
import quantus  # noqa: E402
from quantus.functions.perturb_func import baseline_replacement_by_mask  # noqa: E402

from tests.metric_helpers import shipped_inputs  # noqa: E402
from xai_core.explainers.context import ExplainContext  # noqa: E402
from xai_core.explainers.postprocess import pool_channels  # noqa: E402
from xai_core.metrics import METRICS, MetricInputs, compute_metric, estimate_metric_cost  # noqa: E402
from xai_core.metrics.metric_inputs import auto_forward_batch  # noqa: E402
from xai_core.metrics.perturb import (cumulative_masks, dinuc_shuffle, gaussian_blur, make_baseline,  # noqa: E402
                                      order_units, steps_from_order, unit_relevance)

QUIET = dict(disable_warnings=True, display_progressbar=False)


def hand_inputs(model: nn.Module, modality: str, x: torch.Tensor, a: torch.Tensor, target, seed: int = 0,
                train_mean: torch.Tensor | None = None, feature_groups=None) -> MetricInputs:
    """MetricInputs around a hand-made model (no dataset needed)."""
    shape = tuple(x.shape[1:])
    tm = torch.zeros(shape) if train_mean is None else train_mean
    ctx = ExplainContext(model=model.eval(), modality=modality, input_shape=shape, train_mean=tm,
                         class_means=tm[None], low=x.min(0).values, high=x.max(0).values, baseline_pool=x,
                         feature_groups=feature_groups)
    t = torch.as_tensor(target)
    return MetricInputs(ctx=ctx, x=x, a=a, target=t, label=t, seed=seed, feature_groups=feature_groups)


def tie_free(inp: MetricInputs) -> MetricInputs:
    """Saliency maps hold exact ties (zero gradients); Quantus breaks them with an unstable argsort, we keep
    index order. A 1e-6 seeded jitter makes the order unique so both sides rank identically."""
    inp.a = inp.a + 1e-6 * torch.randn(inp.a.shape, generator=torch.Generator().manual_seed(0))
    return inp


@pytest.fixture(scope="module")
def grain():
    return tie_free(shipped_inputs("grain", 8, "saliency"))


# -- machinery -----------------------------------------------------------------------------------------
def test_baselines_and_units():
    inp = shipped_inputs("dna-motifs-small", 6, "saliency")
    x = inp.x
    b = make_baseline("dinuc_shuffle", inp)
    tok, sh = x.argmax(1), b.argmax(1)
    dinuc = lambda t: F.one_hot(t[:, :-1] * 4 + t[:, 1:], 16).sum(1)  # noqa: E731
    assert torch.equal(dinuc(tok), dinuc(sh)) and torch.equal(tok[:, [0, -1]], sh[:, [0, -1]])
    assert (tok != sh).float().mean() > 0.3 and torch.equal(b, make_baseline("dinuc_shuffle", inp))
    assert torch.equal(b.sum(1), torch.ones_like(b[:, 0]))  # still one-hot
    assert torch.allclose(make_baseline("uniform", inp), torch.full_like(x, 0.25))
    assert torch.allclose(make_baseline("mean", inp), torch.full_like(x, 0.25))  # one-hot mean
    noise = make_baseline("uniform_noise", inp) - x
    assert noise.abs().max() <= 0.02 and noise.abs().max() > 0.01
    assert torch.equal(unit_relevance(inp.a, x, "sequence"), (inp.a * x).sum(1))
    assert torch.equal(unit_relevance(inp.a, x, "sequence", dna_score="sum"), inp.a.sum(1))
    g = torch.Generator().manual_seed(3)
    img = torch.rand(2, 3, 16, 16, generator=g)
    assert torch.allclose(gaussian_blur(torch.ones(1, 3, 9, 9), 2.0), torch.ones(1, 3, 9, 9), atol=1e-6)
    assert gaussian_blur(img, 2.0).std() < img.std() / 2
    r = compute_metric("pixel_flipping", inp, baseline="blur")  # image-only baseline on DNA
    assert np.isnan(r.scores).all() and "does not apply to sequence" in r.reasons[0]


def test_dinuc_shuffle_is_uniform():
    """Every sequence with the same dinucleotide counts and first base is equally likely (12-mer: 84 of them)."""
    s = torch.tensor([0, 1, 2, 0, 1, 0, 2, 1, 0, 3, 1, 0])
    x = F.one_hot(s.expand(8000, -1), 4).permute(0, 2, 1).float()
    out = dinuc_shuffle(x, [torch.Generator().manual_seed(1 + i) for i in range(len(x))]).argmax(1)
    _, counts = torch.unique(out, dim=0, return_counts=True)
    assert len(counts) == 84 and counts.min() > 60 and counts.max() < 135  # expected 95 each


def test_cumulative_masks_from_order():
    r = torch.tensor([[0.1, 0.9, -0.5, 0.3, 0.2]])
    order = order_units(r)
    assert order.tolist() == [[1, 3, 4, 0, 2]]
    step = steps_from_order(order, 2)
    assert step.tolist() == [[1, 0, 2, 0, 1]]
    assert cumulative_masks(step, 0, 3)[:, 0].int().tolist() == [[0, 1, 0, 1, 0], [1, 1, 0, 1, 1], [1] * 5]


# -- closed forms ---------------------------------------------------------------------------------------
class PixelSum(nn.Module):
    """Logits of a 2-class model on a 2x2 image: class 0 = Σ_p w_p Σ_c x_cp, class 1 = 0."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.as_tensor(w, dtype=torch.float32)
        self.lin = nn.Linear(1, 1)  # gives the module a device

    def forward(self, x):
        z = (x.sum(1).flatten(1) * self.w).sum(1, keepdim=True)
        return torch.cat([z, torch.zeros_like(z)], 1)


def test_pixel_flipping_by_hand():
    """4-pixel image, logit output, zero baseline, one pixel per step: f(x_k) = f(x) minus the removed terms."""
    w = np.array([1.0, 2.0, 3.0, 4.0])
    x = torch.tensor([[[[1.0, 1.0], [2.0, 0.5]]] * 3]).reshape(1, 3, 2, 2)
    contrib = w * x.sum(1).flatten().numpy()  # per pixel: [3, 6, 18, 6]
    a = torch.tensor([[[[0.4, 0.1], [0.3, 0.2]]]]).expand(1, 3, 2, 2) / 3  # order: p0, p2, p3, p1
    inp = hand_inputs(PixelSum(w), "image", x, a, [0])
    r = compute_metric("pixel_flipping", inp, strict=True, features_in_step=1, fraction=1.0, baseline="zero",
                       output="logit")
    f0 = contrib.sum()
    curve = (f0 - np.cumsum(contrib[[0, 2, 3, 1]])) / f0
    np.testing.assert_allclose(r.curves[0], curve, atol=1e-6)
    np.testing.assert_allclose(r.scores[0], 1 - np.trapezoid(curve, dx=1 / 3), atol=1e-6)
    r2 = compute_metric("pixel_flipping", inp, strict=True, features_in_step=1, baseline="zero", output="logit")
    np.testing.assert_allclose(r2.scores[0], 1 - np.trapezoid(curve[:2], dx=1.0), atol=1e-6)  # k = ceil(.8) -> 2


def test_irof_expression_pathways_by_hand():
    """Linear logit model, zero baseline; pathways {0,1}, {2,3} and the ungrouped genes {4,5} as one segment."""
    w = torch.tensor([[1.0, 2.0, -1.0, 0.5, 3.0, 1.0]])
    model = nn.Linear(6, 1, bias=False)
    model.weight.data = w
    x = torch.tensor([[1.0, 1.0, 2.0, 2.0, 1.0, 1.0]])
    a = torch.tensor([[0.5, 0.3, 0.9, 0.9, 0.0, 0.1]])  # segment means: 0.4, 0.9, 0.05 -> order 1, 0, 2
    inp = hand_inputs(model, "expression", x, a, [0], feature_groups=np.array([3, 3, 7, 7, -1, -1]))
    r = compute_metric("irof", inp, strict=True, baseline="zero", output="logit", normalise_by_segments=False)
    seg = np.array([(w[0] * x[0])[idx].sum().item() for idx in ([2, 3], [0, 1], [4, 5])])  # [-1, 3, 4]
    f0 = seg.sum()
    preds = (f0 - np.cumsum(seg)) / f0
    np.testing.assert_allclose(r.curves[0], preds, atol=1e-6)
    np.testing.assert_allclose(r.scores[0], 3 - np.trapezoid(preds), atol=1e-6)
    rn = compute_metric("irof", inp, strict=True, baseline="zero", output="logit")
    np.testing.assert_allclose(rn.scores[0], r.scores[0] / 3, atol=1e-6)


def test_irof_segments_per_modality():
    """Pathways (200 of 10 genes in simu-small), k-means gene clusters without them, DNA windows."""
    expr = shipped_inputs("simu-small", 4, "saliency")
    assert compute_metric("irof", expr, strict=True).curves.shape == (4, 200)
    clusters = compute_metric("irof", expr, strict=True, gene_segments="clusters", n_segments=8)
    assert clusters.curves.shape == (4, 8) and np.isfinite(clusters.scores).all()
    assert ("irof_gene_clusters", 8) in expr.ctx.extras  # cached for the next method
    dna = shipped_inputs("dna-motifs-small", 4, "saliency")
    r = compute_metric("irof", dna, strict=True, window=20)
    assert r.curves.shape == (4, 10) and np.isfinite(r.scores).all()


@pytest.mark.parametrize("modality", ["expression", "image"])
def test_faithfulness_correlation_linear_is_one(modality):
    """Logit of a linear model, zero baseline, a = x * W_y: f(x) - f(x_S) = Σ_S a exactly, so r = 1."""
    g = torch.Generator().manual_seed(0)
    shape = (30,) if modality == "expression" else (3, 8, 8)
    x = torch.randn(5, *shape, generator=g)
    model = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), 3))
    y = torch.tensor([0, 1, 2, 1, 0])
    a = x * model[1].weight.detach()[y].reshape(5, *shape)
    inp = hand_inputs(model, modality, x, a, y)
    r = compute_metric("faithfulness_correlation", inp, strict=True, baseline="zero", output="logit",
                       subset_size=6, nr_runs=40)
    np.testing.assert_allclose(r.scores, 1.0, atol=1e-5)
    again = compute_metric("faithfulness_correlation", inp, strict=True, subset_size=6, nr_runs=40)
    inp.forward_batch = 7  # other chunking, same draws (float32 matmuls differ in the last bits)
    np.testing.assert_allclose(again.scores, compute_metric("faithfulness_correlation", inp, subset_size=6,
                                                            nr_runs=40).scores, atol=1e-5)
    inp.seed = 1
    assert np.abs(again.scores - compute_metric("faithfulness_correlation", inp, subset_size=6,
                                                nr_runs=40).scores).max() > 1e-3


# -- Quantus 0.6.0 on identical tensors -----------------------------------------------------------------
def _f0(inp):
    with torch.no_grad():
        return torch.softmax(inp.ctx.model(inp.x), 1)[torch.arange(inp.n), inp.target].numpy()


def test_pixel_flipping_vs_quantus(grain):
    """Quantus PixelFlipping (baseline "mean", normalise=False, abs=False, softmax) on the grain CNN.

    Deliberate differences, neutralised here and documented in the metric's ``reference``:
    - Quantus broadcasts the pooled map over the 3 channels and counts *array elements*: with
      features_in_step=64 it takes 192 steps of 64 elements; its unstable argsort may split a pixel's
      channels between steps. We rank the pixels with a stable sort and give Quantus a monotone
      re-encoding with the channels of a pixel consecutive; every 3rd Quantus step is one of our steps.
    - Quantus' "mean" is recomputed on the already-perturbed image each step (it drifts; on these 8
      images the curves move by up to 0.19); ours is the original image's mean, passed to Quantus as an array.
    - Quantus returns f_y(x_k); the grain-paper curve is f_y(x_k)/f_y(x).
    """
    x, y = grain.x.numpy(), grain.target.numpy()
    n, c, h, w = x.shape
    pooled = pool_channels(grain.a, "sum").reshape(n, -1).numpy()
    order = np.argsort(-pooled, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(h * w), order.shape), 1)
    a_q = -(3 * rank[:, None, :] + np.arange(3)[None, :, None]).reshape(n, c, h, w).astype(np.float64)
    base = np.repeat(x.reshape(n, -1).mean(1)[:, None], 64, 1)
    pf = quantus.PixelFlipping(features_in_step=64, perturb_baseline=base, normalise=False, abs=False, **QUIET)
    q = np.array(pf(model=grain.ctx.model, x_batch=x, y_batch=y, a_batch=a_q, device="cpu", softmax=True))
    q = q[:, 2::3] / _f0(grain)[:, None]
    full = compute_metric("pixel_flipping", grain, strict=True, fraction=1.0)
    assert full.curves.shape == (8, 64) and np.abs(full.curves - q).max() < 1e-5
    r = compute_metric("pixel_flipping", grain, strict=True)  # fraction 0.2 -> k = ceil(12.8) = 13
    np.testing.assert_allclose(r.scores, 1 - np.trapezoid(q[:, :13], dx=1 / 12, axis=1), atol=1e-5)


def test_region_perturbation_vs_quantus(grain):
    """Quantus RegionPerturbation (MoRF, batch_baseline_replacement_by_indices, fixed "mean" as an array).

    patch_size 10 on 64x64 pads the grid like Quantus (3 before, 3 after); Quantus 0.6 uses a
    non-overlapping grid, so no overlap handling is needed. AOPC = mean of Quantus' curve (k = 1..L).
    """
    x, y = grain.x.numpy(), grain.target.numpy()
    n, c = x.shape[:2]
    pooled = pool_channels(grain.a, "sum").numpy()[:, None].astype(np.float64)
    base = np.repeat(x.reshape(n, -1).mean(1)[:, None], c * 100, 1)
    rp = quantus.RegionPerturbation(patch_size=10, order="morf", regions_evaluation=30, perturb_baseline=base,
                                    normalise=False, abs=False, **QUIET)
    q = np.array(rp(model=grain.ctx.model, x_batch=x, y_batch=y, a_batch=pooled, device="cpu", softmax=True))
    r = compute_metric("region_perturbation", grain, strict=True, patch_size=10, regions_evaluation=30)
    assert np.abs(r.curves - q).max() < 1e-5 and np.abs(r.scores - q.mean(1)).max() < 1e-5


def test_region_perturbation_dna_vs_quantus():
    """DNA windows of 7 positions (200 = 28*7 + 4: padded 1 before, 2 after), Quantus' 1-D path (it adds a
    height axis of 1), logits of the one-output model; baseline "uniform" = Quantus' "mean" of a one-hot input."""
    inp = shipped_inputs("dna-motifs-small", 8, "saliency")
    x = inp.x.numpy()
    score = (inp.a * inp.x).sum(1, keepdim=True).numpy().astype(np.float64)
    rp = quantus.RegionPerturbation(patch_size=7, order="morf", regions_evaluation=29, normalise=False, abs=False,
                                    perturb_baseline=np.full((8, 4 * 49), 0.25), **QUIET)
    q = np.array(rp(model=inp.ctx.model, x_batch=x, y_batch=inp.target.numpy(), a_batch=score, device="cpu",
                    softmax=False))
    r = compute_metric("region_perturbation", inp, strict=True, patch_size=7, regions_evaluation=29, output="logit")
    assert np.abs(r.curves - q).max() < 1e-5


def test_irof_vs_quantus(grain):
    """Quantus IROF (SLIC n_segments=100, compactness=10, start_label=0; return_aggregate=False).

    Run per image (batch_size=1): Quantus pads the curves of images with fewer segments with zeros up
    to the batch's largest count, so a score depends on its batch-mates. Quantus 0.6.0 builds a
    1-channel mask and asserts it has the image's shape, so it fails on RGB: the test broadcasts the
    mask. The "mean" baseline is the image's fixed mean (Quantus: the batch's mean, recomputed each step).
    Ours runs with forward_batch=1 like Quantus: float32 convolutions differ in the last bits with the
    batch size, and IROF sums ~115 ratios to f(x) (some f(x) are small); batched, ours is within 3e-6 relative.
    """
    x, y = grain.x.numpy(), grain.target.numpy()
    pooled = pool_channels(grain.a, "sum").numpy()[:, None].astype(np.float64)

    def by_mask(arr, mask, **kw):
        return baseline_replacement_by_mask(arr, np.broadcast_to(mask, arr.shape), **kw)

    q = []
    for i in range(len(x)):
        irof = quantus.IROF(segmentation_method="slic", perturb_func=by_mask, perturb_baseline=np.full(
            (1, *x.shape[1:]), x[i].mean()), normalise=False, abs=False, return_aggregate=False, **QUIET)
        q.append(irof(model=grain.ctx.model, x_batch=x[i:i + 1], y_batch=y[i:i + 1], a_batch=pooled[i:i + 1],
                      device="cpu", softmax=True, batch_size=1)[0])
    q = np.array(q)
    batched = compute_metric("irof", grain, strict=True, normalise_by_segments=False)
    np.testing.assert_allclose(batched.scores, q, rtol=3e-6)
    grain.forward_batch = 1
    try:
        r = compute_metric("irof", grain, strict=True, normalise_by_segments=False)
    finally:
        grain.forward_batch = auto_forward_batch(tuple(grain.x.shape[1:]))
    assert np.abs(r.scores - q).max() < 1e-5
    n_seg = np.isfinite(r.curves).sum(1)
    np.testing.assert_allclose(compute_metric("irof", grain).scores, batched.scores / n_seg, atol=1e-9)


def test_metadata_and_cost():
    info = {m: METRICS.get(m).info() for m in
            ("pixel_flipping", "region_perturbation", "irof", "faithfulness_correlation")}
    assert all(i["family"] == "faithfulness" and i["direction"] == "higher" and i["needs"] == "model"
               for i in info.values())
    assert info["region_perturbation"]["modalities"] == ["image", "sequence"]
    assert estimate_metric_cost("pixel_flipping", None, "image", 10)["forward"] == 10 * (13 + 1)
    assert estimate_metric_cost("pixel_flipping", None, "expression", 1)["forward"] == 20 + 1  # 100 steps
    assert estimate_metric_cost("region_perturbation", None, "image", 1)["forward"] == 64 + 1
    assert estimate_metric_cost("faithfulness_correlation", None, "sequence", 1)["forward"] == 101


def test_random_subsets_are_distinct_and_uniform():
    from xai_core.metrics.faithfulness import random_subsets

    rng = np.random.default_rng(0)
    sub = random_subsets(rng, (4000, 2), 12, 2)  # dense path
    assert (sub[..., 0] != sub[..., 1]).all()
    sub = random_subsets(rng, (20000,), 50, 5)  # sparse path: draws with repeats dropped
    assert all(len(set(r)) == 5 for r in sub[:500])
    counts = np.bincount(sub.ravel(), minlength=50) / sub.size
    assert np.abs(counts - 1 / 50).max() < 0.003  # every unit equally likely (5 sigma ~ 0.0028)


def test_random_subsets_keep_the_first_distinct_draws_and_redraw_short_rows():
    """Each row is the first ``size`` distinct values of its draws, in draw order; a row whose draws hold fewer
    distinct values is redrawn whole (a generator that draws only 0s and 1s for some rows forces it)."""
    from xai_core.metrics.faithfulness import random_subsets

    class Rigged:
        def __init__(self):
            self.rng = np.random.default_rng(3)
            self.draws = None

        def integers(self, lo, hi, shape):
            d = self.rng.integers(lo, hi, shape)
            d[::3] = d[::3] % 2  # every third row holds two distinct values only
            self.draws = d
            return d

        def random(self, shape):
            return self.rng.random(shape)

    g = Rigged()
    sub = random_subsets(g, (30,), 200, 6)
    for i, (row, d) in enumerate(zip(sub, g.draws)):
        assert len(set(row)) == 6 and row.min() >= 0 and row.max() < 200
        if i % 3:
            assert list(row) == list(dict.fromkeys(d))[:6]
