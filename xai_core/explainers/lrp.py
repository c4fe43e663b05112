"""Layer-wise relevance propagation with zennit composites and the BatchNorm-merging canonizer.

Relevance starts at the target output's value (``init="output"``), so that for conservative rules the
input relevances sum to the explained output (minus what biases absorb); ``init="onehot"`` starts at 1
as in the grain study's predecessor code. zennit restores the model on exit from its context.
"""
from __future__ import annotations

import torch
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import EpsilonAlpha2Beta1Flat, EpsilonGammaBox, EpsilonPlus, EpsilonPlusFlat

from ..modalities import MODALITIES
from ..errors import UnknownChoice
from .base import register_explainer
from .context import ExplainContext

ALL = MODALITIES


def _run(ctx: ExplainContext, x: torch.Tensor, target: torch.Tensor, composite, init: str) -> torch.Tensor:
    if init not in ("output", "onehot"):
        raise UnknownChoice("LRP init", init, ["output", "onehot"])
    with Gradient(model=ctx.forward, composite=composite) as attributor:
        def grad_output(out: torch.Tensor) -> torch.Tensor:
            onehot = torch.zeros_like(out).scatter_(1, target[:, None], 1.0)
            return onehot * out if init == "output" else onehot
        _, relevance = attributor(x, grad_output)
    return relevance


def _canon():
    return [SequentialMergeBatchNorm()]


def _box_bounds(ctx: ExplainContext, x: torch.Tensor) -> dict:
    """z-box bounds: the per-channel training min / max, shaped like the batch (zennit requires it)."""
    return {"low": ctx.low.expand_as(x).contiguous(), "high": ctx.high.expand_as(x).contiguous()}


def _lrp(name: str, label: str, composite_cls, description: str, extra: dict | None = None, bounds=None) -> None:
    def fn(ctx, x, target, init, **kwargs):
        composite = composite_cls(canonizers=_canon(), **(bounds(ctx, x) if bounds else {}), **kwargs)
        return _run(ctx, x, target, composite, init)

    register_explainer(name, label=label, family="lrp", modalities=ALL, cost=lambda p, c: (1.0, 1.0),
                       needs_eager=True, wraps=f"zennit.composites.{composite_cls.__name__} + SequentialMergeBatchNorm",
                       defaults={"*": {"epsilon": 1e-6, "init": "output", **(extra or {})}},
                       description=description)(fn)


_lrp("lrp_epsilon_plus_flat", "LRP EpsilonPlusFlat", EpsilonPlusFlat,
     "LRP: flat rule on the first layer, z+ on convolutions, epsilon on dense layers")
_lrp("lrp_epsilon_plus", "LRP EpsilonPlus", EpsilonPlus,
     "LRP: z+ on convolutions, epsilon on dense layers (epsilon everywhere for dense-only models)")
_lrp("lrp_epsilon_gamma_box", "LRP EpsilonGammaBox", EpsilonGammaBox,
     "LRP: z-box on the first layer (input bounds from training data), gamma on convolutions, epsilon dense",
     extra={"gamma": 0.25}, bounds=_box_bounds)
_lrp("lrp_epsilon_alpha2_beta1_flat", "LRP EpsilonAlpha2Beta1Flat", EpsilonAlpha2Beta1Flat,
     "LRP: flat first layer, alpha=2 beta=1 on convolutions, epsilon on dense layers")
