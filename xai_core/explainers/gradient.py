"""Gradient and path methods, thin adapters over captum (one call each, no extra passes)."""
from __future__ import annotations


import torch
from captum.attr import (DeepLift, Deconvolution, GuidedBackprop, InputXGradient,
                         IntegratedGradients, Saliency)

from ..modalities import MODALITIES
from ..errors import UnknownChoice
from .base import register_explainer
from .context import ExplainContext
from .seeding import per_sample_normal, sample_generators
from .captum_compat import use_rescale_rule_for_exp

ALL = MODALITIES

BASELINES = ("zero", "train_mean", "class_mean", "uniform")


def baseline_for(ctx: ExplainContext, x: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Reference input: zeros, the training mean, the mean of the target's class, or 0.25 (one-hot DNA)."""
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "train_mean":
        return ctx.train_mean.expand_as(x).contiguous()
    if kind == "class_mean":
        return ctx.class_means[target].contiguous() if ctx.n_outputs > 1 else ctx.train_mean.expand_as(x).contiguous()
    if kind == "uniform":
        return torch.full_like(x, 0.25)
    raise UnknownChoice("baseline", kind, BASELINES)


def _one(params, ctx):
    return 1.0, 1.0


@register_explainer("saliency", label="Saliency (gradient)", family="gradient", modalities=ALL, cost=_one,
                    wraps="captum.attr.Saliency(abs=False)",
                    description="Signed gradient of the target output with respect to the input")
def saliency(ctx, x, target):
    return Saliency(ctx.forward).attribute(x, target=target, abs=False)


@register_explainer("input_x_gradient", label="Input x Gradient", family="gradient", modalities=ALL, cost=_one,
                    wraps="captum.attr.InputXGradient", description="Input times its gradient")
def input_x_gradient(ctx, x, target):
    return InputXGradient(ctx.forward).attribute(x, target=target)


@register_explainer("integrated_gradients", label="Integrated Gradients", family="path", modalities=ALL,
                    cost=lambda p, c: (p["n_steps"] + 2.0, float(p["n_steps"])), batch_param="internal_batch_size",
                    wraps="captum.attr.IntegratedGradients(method='gausslegendre')",
                    defaults={"*": {"n_steps": 50, "baseline": "zero", "method": "gausslegendre",
                                    "internal_batch_size": 1024}},
                    description="Path integral of gradients from a baseline; completeness error reported")
def integrated_gradients(ctx, x, target, n_steps, baseline, method, internal_batch_size):
    base = baseline_for(ctx, x, target, baseline)
    attr, delta = IntegratedGradients(ctx.forward).attribute(
        x, baselines=base, target=target, n_steps=n_steps, method=method,
        internal_batch_size=internal_batch_size, return_convergence_delta=True)
    # completeness error relative to the output difference it must explain
    with torch.no_grad():
        idx = target[:, None]
        diff = (ctx.forward(x).gather(1, idx) - ctx.forward(base).gather(1, idx))[:, 0]
    rel = (delta.abs() / diff.abs().clamp_min(1e-12)).detach().cpu().numpy()
    return attr, {"completeness_delta": delta.detach().cpu().numpy(), "completeness_rel_error": rel}


def _noise_std(ctx: ExplainContext, noise_level: float) -> float:
    return float(noise_level * (ctx.high.max() - ctx.low.min()))


def _noised_gradients(ctx, x, target, nt_samples, noise_level, nt_samples_batch_size):
    """(nt_samples, N, ...) float64 gradients of the target at ``nt_samples`` Gaussian-noised copies of each sample
    (sigma = noise_level x the input range), the copies batched ``nt_samples_batch_size`` at a time. Copy j of a
    sample carries the j-th draw of the sample's own stream (``seeding``): its map does not depend on its batch."""
    gens = sample_generators(ctx.seed, x)
    std = _noise_std(ctx, noise_level)
    sal = Saliency(ctx.forward)
    grads = []
    for k0 in range(0, nt_samples, nt_samples_batch_size):
        k = min(nt_samples_batch_size, nt_samples - k0)
        noise = per_sample_normal(gens, tuple(x.shape[1:]), range(k0, k0 + k)).to(x.device, x.dtype) * std
        noisy = (x[None] + noise).reshape(-1, *x.shape[1:])
        g = sal.attribute(noisy, target=target.repeat(k), abs=False)
        grads.append(g.detach().double().reshape(k, *x.shape))
    return torch.cat(grads)


_NT_DEFAULTS = {"*": {"nt_samples": 16, "noise_level": 0.15, "nt_samples_batch_size": 16}}
_nt_cost = lambda p, c: (float(p["nt_samples"]), float(p["nt_samples"]))  # noqa: E731


@register_explainer("smoothgrad", label="SmoothGrad", family="gradient", modalities=ALL, cost=_nt_cost, seeded=True,
                    batch_param="nt_samples_batch_size", defaults=_NT_DEFAULTS, version=2,
                    wraps="captum.attr.Saliency on noised copies (captum NoiseTunnel smoothgrad), noise per sample",
                    description="Mean gradient over Gaussian-noised copies (sigma = noise_level x input range)")
def smoothgrad(ctx, x, target, nt_samples, noise_level, nt_samples_batch_size):
    """Mean gradient over ``nt_samples`` noised copies (Smilkov et al. 2017), what captum's
    ``NoiseTunnel(Saliency, nt_type='smoothgrad')`` computes, with each sample's noise drawn from its own stream
    (version 2; version 1 drew one batch's noise from one generator, so a map depended on its batch)."""
    return _noised_gradients(ctx, x, target, nt_samples, noise_level, nt_samples_batch_size).mean(0).to(x.dtype)


@register_explainer("vargrad", label="VarGrad", family="gradient", modalities=ALL, cost=_nt_cost, seeded=True,
                    batch_param="nt_samples_batch_size", defaults=_NT_DEFAULTS,
                    wraps="captum.attr.Saliency on noised copies; two-pass float64 variance", version=3,
                    description="Variance of gradients over Gaussian-noised copies")
def vargrad(ctx, x, target, nt_samples, noise_level, nt_samples_batch_size):
    """Population variance of the gradient over ``nt_samples`` noised copies (Adebayo et al. 2018).

    captum's NoiseTunnel(vargrad) computes E[g^2] - E[g]^2 in float32, which leaves rounding noise of
    ~1e-7 x g^2 where the variance is truly 0 (any linear model): metrics then score that noise as if it
    were an explanation. Here the variance is taken in two passes in float64, so it is exactly 0 there.
    Each sample's noise comes from its own stream (version 3).
    """
    grads = _noised_gradients(ctx, x, target, nt_samples, noise_level, nt_samples_batch_size)
    return grads.var(dim=0, unbiased=False).to(x.dtype)


@register_explainer("guided_backprop", label="Guided Backprop", family="gradient", modalities=ALL, cost=_one,
                    wraps="captum.attr.GuidedBackprop", needs_eager=True,
                    description="Gradient with negative signals zeroed at every ReLU on the way back")
def guided_backprop(ctx, x, target):
    return GuidedBackprop(ctx.forward).attribute(x, target=target)


@register_explainer("deconvolution", label="Deconvolution", family="gradient", modalities=ALL, cost=_one,
                    wraps="captum.attr.Deconvolution", needs_eager=True,
                    description="ReLU applied to the backward signal")
def deconvolution(ctx, x, target):
    return Deconvolution(ctx.forward).attribute(x, target=target)


@register_explainer("deeplift", label="DeepLIFT", family="path", modalities=ALL, cost=lambda p, c: (2.0, 1.0),
                    wraps="captum.attr.DeepLift(multiply_by_inputs=True)", needs_eager=True,
                    defaults={"*": {"baseline": "zero"}},
                    description="Rescale-rule contributions relative to a baseline")
def deeplift(ctx, x, target, baseline):
    use_rescale_rule_for_exp()  # the DNA models' exponential activation gets DeepLIFT's rescale rule, as ReLU does
    return DeepLift(ctx.forward, multiply_by_inputs=True).attribute(
        x, baselines=baseline_for(ctx, x, target, baseline), target=target)


@register_explainer("gradient_shap", label="GradientSHAP", family="path", modalities=ALL, seeded=True,
                    cost=lambda p, c: (float(p["n_samples"]), float(p["n_samples"])), version=2,
                    wraps="captum.attr.GradientShap's estimator (multiply_by_inputs), draws per sample",
                    defaults={"*": {"n_samples": 16, "stdevs": 0.0}},
                    description="Expected gradients over random training baselines and path points")
def gradient_shap(ctx, x, target, n_samples, stdevs):
    """Expected gradients (Lundberg & Lee 2017), captum's GradientShap estimator: for each of ``n_samples`` draws,
    a baseline from the training pool, a point ``alpha`` ~ U(0, 1) on the path to the input (plus N(0, stdevs^2)
    noise on the input), and the gradient there times (input - baseline); the mean over draws. Every draw of a
    sample comes from its own stream (version 2; captum draws one batch at once, so a map depended on its batch)."""
    pool = ctx.baseline_pool
    gens = sample_generators(ctx.seed, x)
    shape = tuple(x.shape[1:])
    picks = torch.stack([torch.randint(0, len(pool), (n_samples,), generator=g) for g in gens], 1)  # (S, N)
    alpha = torch.stack([torch.rand((n_samples,), generator=g) for g in gens], 1)
    xs = x[None].expand(n_samples, *x.shape)
    if stdevs:
        xs = xs + per_sample_normal(gens, shape, range(n_samples)).to(x.device, x.dtype) * stdevs
    base = pool[picks.to(pool.device)].to(x.device, x.dtype)  # (S, N, ...)
    a = alpha.to(x.device, x.dtype).reshape(n_samples, len(x), *([1] * len(shape)))
    points = (base + a * (xs - base)).reshape(-1, *shape)
    grads = Saliency(ctx.forward).attribute(points, target=target.repeat(n_samples), abs=False)
    return (grads.reshape(n_samples, *x.shape) * (xs - base)).mean(0).detach()


