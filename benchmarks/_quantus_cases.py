"""Perturbation and sensitivity cases for ``metrics_vs_quantus.py``: the settings of the reference tests.

Each builder returns ``(ours, ref)`` (and optionally a third function giving Quantus' values where the
timed Quantus call cannot give equal values). Quantus' deviations that the reference tests neutralise
are neutralised the same way here (see ``tests/test_metrics_faithfulness.py``):

- ties in saliency maps are broken by a seeded 1e-6 jitter applied to both sides' maps;
- the "mean" baseline is the original image's mean, passed to Quantus as an array;
- Quantus' pixel flipping counts array elements: it gets a re-encoded map whose pixel channels are
  consecutive, 3x the steps, and every third of its steps is one of ours;
- IROF: Quantus pads a batch's curves to its largest segment count, so its values are taken per image
  (the timed call is Quantus' normal batched call).
"""
from __future__ import annotations

import numpy as np
import torch
from quantus.functions.perturb_func import baseline_replacement_by_mask

import quantus
from xai_core.data import MODALITIES
from xai_core.explainers import explain, pool_channels
from xai_core.metrics import compute_metric
from xai_core.metrics.robustness import sensitivity_perturbations

QUIET = dict(disable_warnings=True, display_progressbar=False)


def _jitter(inp):
    if not getattr(inp, "_jittered", False):
        inp.a = inp.a + 1e-6 * torch.randn(inp.a.shape, generator=torch.Generator().manual_seed(0))
        inp._jittered = True
    return inp


def _f0(inp):
    with torch.no_grad():
        return torch.softmax(inp.ctx.model(inp.x), 1)[torch.arange(inp.n), inp.target].numpy()


def pixel_flipping():
    def ours(inp):
        return compute_metric("pixel_flipping", _jitter(inp), strict=True, fraction=1.0).curves

    def ref(inp):
        inp = _jitter(inp)
        x, y = inp.x.numpy(), inp.target.numpy()
        n, c, h, w = x.shape
        pooled = pool_channels(inp.a, "sum").reshape(n, -1).numpy()
        order = np.argsort(-pooled, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(np.arange(h * w), order.shape), 1)
        a_q = -(3 * rank[:, None, :] + np.arange(3)[None, :, None]).reshape(n, c, h, w).astype(np.float64)
        base = np.repeat(x.reshape(n, -1).mean(1)[:, None], 64, 1)
        pf = quantus.PixelFlipping(features_in_step=64, perturb_baseline=base, normalise=False, abs=False, **QUIET)
        q = np.array(pf(model=inp.ctx.model, x_batch=x, y_batch=y, a_batch=a_q, device="cpu", softmax=True))
        return q[:, 2::3] / _f0(inp)[:, None]
    return ours, ref


def pixel_flipping_aoc():
    """The study's score (area over the first 20% of the curve, §2.5b): Quantus computes the whole curve,
    ours stops after the steps the score needs."""
    full = pixel_flipping()[1]

    def ours(inp):
        return compute_metric("pixel_flipping", _jitter(inp), strict=True).scores  # fraction 0.2 -> 13 steps

    def ref(inp):
        q = full(inp)
        k = int(np.ceil(0.2 * q.shape[1]))
        return 1 - np.trapezoid(q[:, :k], dx=1 / (k - 1), axis=1)
    return ours, ref


def region_perturbation():
    def ours(inp):
        return compute_metric("region_perturbation", _jitter(inp), strict=True, patch_size=8,
                              regions_evaluation=30).curves

    def ref(inp):
        inp = _jitter(inp)
        x, y = inp.x.numpy(), inp.target.numpy()
        n, c = x.shape[:2]
        pooled = pool_channels(inp.a, "sum").numpy()[:, None].astype(np.float64)
        base = np.repeat(x.reshape(n, -1).mean(1)[:, None], c * 64, 1)
        rp = quantus.RegionPerturbation(patch_size=8, order="morf", regions_evaluation=30, perturb_baseline=base,
                                        normalise=False, abs=False, **QUIET)
        return np.array(rp(model=inp.ctx.model, x_batch=x, y_batch=y, a_batch=pooled, device="cpu", softmax=True))
    return ours, ref


def _irof_quantus(inp, per_image: bool):
    x, y = inp.x.numpy(), inp.target.numpy()
    pooled = pool_channels(inp.a, "sum").numpy()[:, None].astype(np.float64)

    def by_mask(arr, mask, **kw):
        return baseline_replacement_by_mask(arr, np.broadcast_to(mask, arr.shape), **kw)

    chunks = [slice(i, i + 1) for i in range(len(x))] if per_image else [slice(0, len(x))]
    out = []
    for s in chunks:
        base = np.broadcast_to(x[s].mean(axis=(1, 2, 3))[:, None, None, None], x[s].shape).copy()
        irof = quantus.IROF(segmentation_method="slic", perturb_func=by_mask,
                            perturb_baseline=base, normalise=False, abs=False,
                            return_aggregate=False, **QUIET)
        out += list(irof(model=inp.ctx.model, x_batch=x[s], y_batch=y[s], a_batch=pooled[s], device="cpu",
                         softmax=True, batch_size=len(x[s])))
    return np.array(out)


def irof():
    def ours(inp):
        return compute_metric("irof", _jitter(inp), strict=True, normalise_by_segments=False).scores

    return ours, (lambda inp: _irof_quantus(_jitter(inp), per_image=False)), \
        (lambda inp: _irof_quantus(_jitter(inp), per_image=True))


def sensitivity(name: str, qcls, k: int = 10):
    cache: dict = {}

    def perturbations(inp):
        key = id(inp)
        if key not in cache:
            kind = "mutate" if inp.modality == "sequence" else "uniform"
            cache[key] = sensitivity_perturbations(inp, kind, k, 0.2, 2)
        return cache[key]

    def over(inp):
        return {"pooling": "sum"} if inp.modality == "image" else {}

    def ours(inp):
        return compute_metric(name, inp, strict=True, nr_samples=k, **over(inp)).scores

    def ref(inp):
        xs = perturbations(inp)
        replay = iter(xs)
        pool = (lambda a: a.sum(1, keepdim=True)) if inp.modality == "image" else (lambda a: a)

        def explain_func(model, inputs, targets, **kw):
            a = explain(inp.ctx, torch.as_tensor(inputs), torch.as_tensor(targets), "saliency").attributions
            return pool(a).numpy()

        m = qcls(nr_samples=k, lower_bound=0.2, abs=False, normalise=False, **QUIET,
                 perturb_func=lambda arr, indices, **kw: next(replay).reshape(arr.shape).numpy())
        return m(model=inp.ctx.model, x_batch=inp.x.numpy(), y_batch=inp.target.numpy(),
                 a_batch=pool(inp.a).numpy(), explain_func=explain_func, device="cpu", softmax=False)
    return ours, ref


EXTRA_CASES = {
    "pixel_flipping": (("image",), pixel_flipping),
    "pixel_flipping_aoc": (("image",), pixel_flipping_aoc),
    "region_perturbation": (("image",), region_perturbation),
    "irof": (("image",), irof),
    "max_sensitivity": (MODALITIES, lambda: sensitivity("max_sensitivity", quantus.MaxSensitivity)),
    "avg_sensitivity": (MODALITIES, lambda: sensitivity("avg_sensitivity", quantus.AvgSensitivity)),
}
