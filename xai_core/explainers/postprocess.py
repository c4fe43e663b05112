"""Post-processing as named operations: channel pooling, normalisation, DNA correction and projection.

Attributions keep the input's shape until a view asks for a pixel map, a per-position logo or a
per-gene score; these functions do that, batched in torch.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..registry import Registry

POOLINGS: Registry[Callable[[torch.Tensor], torch.Tensor]] = Registry("channel pooling")
NORMALISATIONS: Registry[Callable[[torch.Tensor], torch.Tensor]] = Registry("normalisation")


def _pool(name):
    return POOLINGS.decorator(name, lambda fn: fn)


@_pool("sum")
def pool_sum(a: torch.Tensor) -> torch.Tensor:
    """Sum over channels."""
    return a.sum(dim=1)


@_pool("mean")
def pool_mean(a: torch.Tensor) -> torch.Tensor:
    """Mean over channels."""
    return a.mean(dim=1)


@_pool("max")
def pool_max(a: torch.Tensor) -> torch.Tensor:
    """Signed maximum over channels."""
    return a.amax(dim=1)


@_pool("abs")
def pool_abs(a: torch.Tensor) -> torch.Tensor:
    """Maximum absolute value over channels (Simonyan et al.)."""
    return a.abs().amax(dim=1)


def pool_channels(a: torch.Tensor, how: str) -> torch.Tensor:
    """(N, C, ...) -> (N, ...).

    Parameters
    ----------
    a : Tensor
        Attributions (N, C, ...).
    how : str
        A channel pooling of ``POOLINGS``: ``sum``, ``mean``, ``max`` (signed maximum) or ``abs`` (maximum absolute
        value, Simonyan et al.).

    Returns
    -------
    Tensor
        (N, ...).

    Raises
    ------
    UnknownChoice
        For an unknown pooling.
    """
    return POOLINGS.get(how)(a)


def _flat_abs(a: torch.Tensor) -> torch.Tensor:
    return a.abs().reshape(len(a), -1)


def _scale(a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    s = s.reshape(-1, *([1] * (a.ndim - 1))) if s.ndim else s
    return torch.where(s > 0, a / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(a))


def _norm(name):
    return NORMALISATIONS.decorator(name, lambda fn: fn)


@_norm("per_map_max")
def norm_per_map_max(a: torch.Tensor) -> torch.Tensor:
    """Divide each map by its max of |a|."""
    return _scale(a, _flat_abs(a).amax(dim=1))


@_norm("dataset_max")
def norm_dataset_max(a: torch.Tensor) -> torch.Tensor:
    """Divide every map by the max of |a| over all maps given."""
    return _scale(a, a.abs().amax())


@_norm("per_map_p99")
def norm_per_map_p99(a: torch.Tensor) -> torch.Tensor:
    """Divide each map by its 99th percentile of |a|."""
    return _scale(a, torch.quantile(_flat_abs(a).float(), 0.99, dim=1))


@_norm("dataset_p99")
def norm_dataset_p99(a: torch.Tensor) -> torch.Tensor:
    """Divide every map by the 99th percentile of |a| over all maps given (estimated above 16M values)."""
    flat = a.abs().reshape(-1).float()
    if flat.numel() > 16_000_000:  # torch.quantile's input limit: estimate from a fixed subsample
        flat = flat[torch.linspace(0, flat.numel() - 1, 16_000_000, device=flat.device).long()]
    return _scale(a, torch.quantile(flat, 0.99))


def normalise(a: torch.Tensor, strategy: str) -> torch.Tensor:
    """Divide by the max or 99th percentile of |a|, per map or over all maps given (§2.1).

    Signs are kept; a map whose scale is 0 stays 0. "dataset" strategies use every map passed in.

    Parameters
    ----------
    a : Tensor
        Attributions (N, ...).
    strategy : str
        A normalisation of ``NORMALISATIONS``: ``per_map_max``, ``dataset_max``, ``per_map_p99``, ``dataset_p99``.

    Returns
    -------
    Tensor
        Of the shape of ``a``.

    Raises
    ------
    UnknownChoice
        For an unknown strategy.
    """
    return NORMALISATIONS.get(strategy)(a)


def dna_gradient_correction(a: torch.Tensor) -> torch.Tensor:
    """Subtract the mean over the 4 nucleotides at each position (Majdandzic et al. 2023), (N, 4, L).

    Parameters
    ----------
    a : Tensor
        Attributions (N, 4, L).

    Returns
    -------
    Tensor
        (N, 4, L).
    """
    return a - a.mean(dim=1, keepdim=True)


def dna_project(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Keep only the observed nucleotide's attribution (a * one-hot), shape (N, 4, L): a sequence logo.

    Parameters
    ----------
    a : Tensor
        Attributions (N, 4, L).
    x : Tensor
        The one-hot sequences (N, 4, L).

    Returns
    -------
    Tensor
        (N, 4, L).
    """
    return a * x


def dna_per_position(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Score per position: the attribution at the observed nucleotide (§3.5), shape (N, L).

    Parameters
    ----------
    a : Tensor
        Attributions (N, 4, L).
    x : Tensor
        The one-hot sequences (N, 4, L).

    Returns
    -------
    Tensor
        (N, L).
    """
    return (a * x).sum(dim=1)


NO_NORMALISATION = "none"  # the maps as stored, on their own scale


def for_display(maps, x, modality: str, *, pooling: str = "sum", normalisation: str = "per_map_p99",
                dna_view: str = "observed"):
    """Stored maps (the input's shape) -> what a view draws: (N, H, W) pixels, (N, G) genes or (N, 4, L) logo
    heights. One function for the Explanations page and the report, so both draw the same numbers.

    Parameters
    ----------
    maps : ndarray or Tensor
        Attributions with the input's shape.
    x : ndarray or Tensor
        The inputs of those maps (used for sequences: the observed nucleotide).
    modality : str
        ``"expression"``, ``"image"`` or ``"sequence"``.
    pooling : str
        How image channels are pooled (``pool_channels``).
    normalisation : str
        A normalisation strategy (``normalise``), or ``"none"`` for the maps as stored.
    dna_view : str
        ``"observed"`` (the observed nucleotide's attribution, ``dna_project``) or the gradient-corrected
        four-letter view (``dna_gradient_correction``).

    Returns
    -------
    ndarray
    """
    a = torch.as_tensor(maps)
    if modality == "image":
        a = pool_channels(a, pooling)
    elif modality == "sequence":
        a = dna_project(a, torch.as_tensor(x)) if dna_view == "observed" else dna_gradient_correction(a)
    if normalisation != NO_NORMALISATION:
        a = normalise(a, normalisation)
    return a.numpy()
