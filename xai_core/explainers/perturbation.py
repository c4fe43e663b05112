"""Perturbation methods (occlusion) and surrogates (LIME, KernelSHAP) over captum."""
from __future__ import annotations

import math

import torch
from captum._utils.models.linear_model import SkLearnLasso, SkLearnLinearRegression, SkLearnRidge
from captum.attr import KernelShap, Lime, Occlusion

from ..modalities import MODALITIES
from ..errors import UnknownChoice
from .base import register_explainer
from .context import ExplainContext
from .masks import expression_groups, image_mask, sequence_mask
from .seeding import sample_seed


def _windows(p, ctx: ExplainContext) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if ctx.modality == "image":
        return (ctx.input_shape[0], p["window"], p["window"]), (ctx.input_shape[0], p["stride"], p["stride"])
    if ctx.modality == "sequence":
        return (ctx.input_shape[0], p["window"]), (ctx.input_shape[0], p["stride"])
    return (p["window"],), (p["stride"],)


def _occlusion_cost(p, ctx):
    shape, stride = _windows(p, ctx)
    n = 1
    for size, win, st in zip(ctx.input_shape, shape, stride):
        n *= math.floor((size - win) / st) + 1
    return float(n + 1), 0.0


@register_explainer("occlusion", label="Occlusion", family="perturbation",
                    modalities=MODALITIES, cost=_occlusion_cost,
                    batch_param="perturbations_per_eval", wraps="captum.attr.Occlusion",
                    defaults={"*": {"window": 1, "stride": 1, "perturbations_per_eval": 64},
                              "image": {"window": 8, "stride": 4},
                              "sequence": {"window": 10, "stride": 5}},
                    description="Output drop when a sliding window is replaced by the baseline (zeros)")
def occlusion(ctx, x, target, window, stride, perturbations_per_eval):
    shape, strides = _windows({"window": window, "stride": stride}, ctx)
    return Occlusion(ctx.forward).attribute(x, sliding_window_shapes=shape, strides=strides, baselines=0.0,
                                            target=target, perturbations_per_eval=perturbations_per_eval)


def feature_mask(ctx: ExplainContext, x: torch.Tensor, p: dict) -> torch.Tensor:
    if ctx.modality == "image":
        return image_mask(x, p["segmentation"], p["n_segments"])
    if ctx.modality == "sequence":
        return sequence_mask(x, p["window"])
    key = ("gene_groups", p["grouping"], p["n_groups"])
    if key not in ctx.extras:  # computed once per context
        groups = expression_groups(ctx.input_shape[0], ctx.feature_groups, ctx.train_X, p["grouping"],
                                   p["n_groups"], ctx.seed)
        ctx.extras[key] = torch.as_tensor(groups, dtype=torch.long, device=ctx.device)
    return ctx.extras[key].expand_as(x).contiguous()


_SURROGATE_DEFAULTS = {
    "*": {"n_samples": 200, "perturbations_per_eval": 50},
    "image": {"segmentation": "slic", "n_segments": 50},
    "sequence": {"window": 10},
    "expression": {"grouping": "auto", "n_groups": 64},
}


SURROGATES = {  # LIME's interpretable model; ridge (alpha 1) as in the original LIME package
    "ridge": lambda: SkLearnRidge(alpha=1.0),
    "lasso": lambda: SkLearnLasso(alpha=0.01),  # captum's default: often all-zero for small output changes
    "linear": SkLearnLinearRegression,
}


def _surrogate(cls):
    def fn(ctx, x, target, n_samples, perturbations_per_eval, surrogate=None, **mask_params):
        """Version 2: the perturbations of each sample are drawn from its own stream (``seeding``); version 1
        seeded once per batch, so a sample's map depended on the samples before it."""
        mask = feature_mask(ctx, x, mask_params)
        kwargs = {}
        if surrogate is not None:
            if surrogate not in SURROGATES:
                raise UnknownChoice("LIME surrogate", surrogate, SURROGATES)
            kwargs["interpretable_model"] = SURROGATES[surrogate]()
        explainer, out = cls(ctx.forward, **kwargs), []
        for i in range(len(x)):  # captum fits one surrogate per sample anyway; each draws from its own stream
            torch.manual_seed(sample_seed(ctx.seed, x[i]))
            out.append(explainer.attribute(x[i:i + 1], baselines=0.0, target=target[i:i + 1],
                                           feature_mask=mask[i:i + 1], n_samples=n_samples,
                                           perturbations_per_eval=perturbations_per_eval))
        return torch.cat(out)
    return fn


_surrogate_cost = lambda p, c: (float(p["n_samples"]), 0.0)  # noqa: E731
register_explainer("lime", label="LIME", family="surrogate", modalities=MODALITIES, seeded=True,
                   cost=_surrogate_cost, batch_param="perturbations_per_eval",
                   defaults={**_SURROGATE_DEFAULTS, "*": {**_SURROGATE_DEFAULTS["*"], "surrogate": "ridge"}},
                   wraps="captum.attr.Lime", version=2,
                   description="Local linear surrogate over superpixels / DNA windows / gene groups"
                   )(_surrogate(Lime))
register_explainer("kernel_shap", label="KernelSHAP", family="surrogate", seeded=True,
                   modalities=MODALITIES, cost=_surrogate_cost,
                   batch_param="perturbations_per_eval", defaults=_SURROGATE_DEFAULTS,
                   wraps="captum.attr.KernelShap", version=2,
                   description="Shapley-kernel weighted surrogate over superpixels / DNA windows / gene groups"
                   )(_surrogate(KernelShap))
