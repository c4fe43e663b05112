"""The random control and the aggregated explanation (mean of normalised maps, §2.7)."""
from __future__ import annotations


import torch

from ..modalities import MODALITIES
from .base import EXPLAINERS, check_applicable, components, is_composite, register_explainer
from .postprocess import normalise
from .seeding import sample_generators

ALL = MODALITIES
RANDOM = "random"  # the random control's name (what it is: ``is_control``)
AGGREGATE = "aggregate"  # the aggregated explanation's name (what it is: ``is_composite``, ``components``)
DEFAULT_COMPONENTS = "saliency,input_x_gradient,integrated_gradients,smoothgrad,lrp_epsilon_plus_flat"


@register_explainer(RANDOM, label="Random (control)", family="control", modalities=ALL, seeded=True,
                    cost=lambda p, c: (0.0, 0.0), wraps="torch.randn", control=True,
                    description="Standard-normal noise: the floor every method must beat")
def random_control(ctx, x, target):
    """Seeded by each sample's content, so a sample gets the same noise in any batch."""
    gens = sample_generators(ctx.seed, x)
    return torch.stack([torch.randn(tuple(x.shape[1:]), generator=g) for g in gens]).to(x.device)


def combine(maps: list[torch.Tensor], normalisation: str) -> torch.Tensor:
    """Mean of the maps after bringing each to a common scale."""
    return torch.stack([normalise(m, normalisation) for m in maps]).mean(dim=0)


def _aggregate_cost(p, ctx):
    f = b = 0.0
    for m in components(AGGREGATE, p):
        spec = EXPLAINERS.get(m)
        cf, cb = spec.cost(spec.params_for(ctx.modality), ctx)
        f, b = f + cf, b + cb
    return f, b


@register_explainer(AGGREGATE, label="Aggregate (mean of methods)", family="aggregate", modalities=ALL,
                    cost=_aggregate_cost, wraps="mean of normalised component maps", components_param="methods",
                    defaults={"*": {"methods": DEFAULT_COMPONENTS, "normalisation": "per_map_p99"}},
                    description="Mean of the normalised explanations of several methods, evaluated as a method")
def aggregate(ctx, x, target, methods, normalisation):
    maps = []
    for m in components(AGGREGATE, {"methods": methods}):
        if is_composite(m):
            raise ValueError("an aggregate cannot contain itself")
        spec = EXPLAINERS.get(m)
        check_applicable(spec, ctx)
        out = spec.fn(ctx, x, target, **spec.params_for(ctx.modality))
        maps.append((out[0] if isinstance(out, tuple) else out).detach())
    return combine(maps, normalisation)
