"""Attribution methods: a registry of adapters over captum and zennit, post-processing, aggregation."""
from ..batching import BATCH, BatchKnobs
from . import cam, control, gradient, lrp, perturbation  # noqa: F401  (registration)
from .base import (EXPLAINERS, ExplainerSpec, Explanation, applicable_methods, component_params, components,
                   composites, controls, estimate_cost, explain, is_composite, is_control, plain_methods,
                   resolve_methods, split_methods)
from .context import ExplainContext, make_context
from .control import AGGREGATE, RANDOM, combine
from .postprocess import (
    NORMALISATIONS,
    POOLINGS,
    dna_gradient_correction,
    dna_per_position,
    dna_project,
    normalise,
    pool_channels,
)
from .runner import explain_many

__all__ = ["EXPLAINERS", "ExplainContext", "Explanation", "ExplainerSpec", "applicable_methods",
           "estimate_cost", "explain", "make_context", "resolve_methods", "NORMALISATIONS", "POOLINGS",
           "dna_gradient_correction", "dna_per_position", "dna_project", "normalise", "pool_channels",
           "explain_many", "BATCH", "BatchKnobs", "component_params", "components", "composites", "controls",
           "is_composite", "is_control", "plain_methods", "split_methods", "AGGREGATE", "RANDOM", "combine"]
