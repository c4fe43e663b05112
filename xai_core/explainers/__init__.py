"""Attribution methods: a registry of adapters over captum and zennit, post-processing, aggregation."""
from . import cam, control, gradient, lrp, perturbation  # noqa: F401  (registration)
from .base import (EXPLAINERS, ExplainContext, Explanation, ExplainerSpec, applicable_methods, estimate_cost,
                   explain, make_context, resolve_methods)
from .postprocess import (NORMALISATIONS, POOLINGS, dna_gradient_correction, dna_per_position, dna_project,
                          normalise, pool_channels)
from .runner import explain_many

__all__ = ["EXPLAINERS", "ExplainContext", "Explanation", "ExplainerSpec", "applicable_methods",
           "estimate_cost", "explain", "make_context", "resolve_methods", "NORMALISATIONS", "POOLINGS",
           "dna_gradient_correction", "dna_per_position", "dna_project", "normalise", "pool_channels",
           "explain_many"]
