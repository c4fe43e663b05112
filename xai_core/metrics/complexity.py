"""Complexity metrics: how concentrated an attribution map is (Gini sparseness, entropy).

Both use |a| and are invariant to the map's scale (up to Quantus' tiny epsilons, which we keep so the
numbers match Quantus 0.6 on identical tensors). By default every feature of the attribution counts
(all channels of an image, all four nucleotides of a sequence), as Quantus flattens whatever array it
is given; ``pooling`` ("sum", "mean", "max", "abs") first pools image / sequence channels.
"""
from __future__ import annotations

import torch

from ..explainers.postprocess import pool_channels
from .base import register_metric
from .metric_inputs import MetricInputs
from .ops import sort_values

GINI_EPS = 1e-7  # Quantus Sparseness adds this to every |a| before the Gini index
ENTROPY_EPS = 1e-12  # Quantus Complexity: -sum p log(p + 1e-12)

_DEFAULTS = {"*": {"pooling": None}}


def _flat_abs(inp: MetricInputs, pooling: str | None) -> torch.Tensor:
    """|a| flattened per sample (N, F) in float64, scaled so each map's max is 1.

    Quantus' default ``normalise_by_max`` divides by the maximum over the *whole batch*; we divide each
    map by its own maximum so a score does not depend on which other samples were scored with it.
    """
    a = inp.a
    if pooling is not None and inp.modality in ("image", "sequence"):
        a = pool_channels(a, pooling)
    a = a.reshape(len(a), -1).double().abs()
    top = a.amax(dim=1, keepdim=True)
    return a / torch.where(top > 0, top, torch.ones_like(top))


def gini(a: torch.Tensor, eps: float = GINI_EPS) -> torch.Tensor:
    """Gini index per row of non-negative ``a`` (N, F): sum_i (2i - F - 1) a_(i) / (F sum a), a sorted up."""
    a = sort_values(a + eps, dim=1)
    n = a.shape[1]
    i = torch.arange(1, n + 1, device=a.device, dtype=a.dtype)
    return ((2 * i - n - 1) * a).sum(dim=1) / (n * a.sum(dim=1))


def entropy(a: torch.Tensor, eps: float = ENTROPY_EPS) -> torch.Tensor:
    """Shannon entropy (nats) per row of p = a / sum(a), for non-negative ``a`` (N, F)."""
    p = a / a.sum(dim=1, keepdim=True)
    return -(p * torch.log(p + eps)).sum(dim=1)


_REF_QUANTUS = ("Quantus 0.6 computes it on the array it is given after normalise_by_max over the whole batch; "
                "we normalise each map by its own max (scores then do not depend on the batch; identical to "
                "Quantus with normalise_axes per sample).")


@register_metric(
    "sparseness", label="Sparseness (Gini)", family="complexity", direction="higher",
    defaults=_DEFAULTS,
    description="How concentrated the explanation is on a few features (Gini index of |attribution|, 0 to 1): "
                "high means a few genes / pixels / positions carry almost all the relevance.",
    reference="Chalasani et al. 2020, 'Concise explanations of neural networks using adversarial training'; "
              "Quantus Sparseness (abs=True, +1e-7 before sorting). " + _REF_QUANTUS)
def sparseness(inp: MetricInputs, pooling: str | None = None) -> torch.Tensor:
    """Gini index of |a| per sample (higher = sparser)."""
    return gini(_flat_abs(inp, pooling))


@register_metric(
    "complexity", label="Complexity (entropy)", family="complexity", direction="lower",
    defaults=_DEFAULTS,
    description="Entropy of the share of |attribution| each feature gets (natural log): low means the "
                "explanation points at few features, high means relevance is spread over everything.",
    reference="Bhatt et al. 2020, 'Evaluating and aggregating feature-based model explanations'; Quantus "
              "Complexity (abs=True, -sum p log(p + 1e-12)). " + _REF_QUANTUS)
def complexity(inp: MetricInputs, pooling: str | None = None) -> torch.Tensor:
    """Entropy of p = |a| / sum |a| per sample (lower = simpler)."""
    return entropy(_flat_abs(inp, pooling))
