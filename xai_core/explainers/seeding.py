"""Per-sample random streams for the methods that draw noise.

A seeded method's map of a sample must not depend on which other samples share its batch: the store reuses maps
across runs of other sizes, an adaptive run explains a few samples per round where a fixed run explains many at
once, and a resumed run batches what is left. So every draw for one sample comes from a generator of its own,
seeded by the run's seed and the sample's content (its bytes): the same sample gets the same noise in any batch,
on any executor, in any order.
"""
from __future__ import annotations

import math
import zlib

import torch


def sample_seed(seed: int, xi: torch.Tensor) -> int:
    """The seed of one sample's stream: the run's seed and the sample's bytes.

    Parameters
    ----------
    seed : int
        The run's seed.
    xi : Tensor
        One sample (no batch dimension).

    Returns
    -------
    int
    """
    return int(seed) * 1_000_003 + zlib.crc32(xi.detach().cpu().contiguous().numpy().tobytes())


def sample_generators(seed: int, x: torch.Tensor) -> list[torch.Generator]:
    """One CPU generator per sample of the batch ``x`` (``sample_seed``).

    Parameters
    ----------
    seed : int
        The run's seed.
    x : Tensor
        A batch of samples.

    Returns
    -------
    list of torch.Generator
    """
    return [torch.Generator().manual_seed(sample_seed(seed, xi)) for xi in x]


def per_sample_normal(gens: list[torch.Generator], shape: tuple[int, ...], copies: range) -> torch.Tensor:
    """(len(copies), len(gens), *shape) standard-normal draws: copy j of sample i is the j-th draw of sample i's
    stream, whichever chunk of copies asks for it, so chunking the copies never changes a value. ``copies`` must
    continue from where the generators stand (chunks in order).

    torch's CPU normal sampler fills a tensor in blocks of 16 values (and redraws a ragged tail), so k copies of
    a sample drawn by one call equal k calls of one copy exactly when a copy holds a multiple of 16 values; then
    each sample's copies are drawn by one call (``tests/test_seeding.py`` checks the equality), else one call
    per copy.

    Parameters
    ----------
    gens : list of torch.Generator
        The batch's streams (``sample_generators``).
    shape : tuple of int
        One sample's shape.
    copies : range
        Which copies (consecutive, in order).

    Returns
    -------
    Tensor
        On the CPU.
    """
    size = math.prod(shape)
    if size >= 16 and size % 16 == 0:
        return torch.stack([torch.randn((len(copies), *shape), generator=g) for g in gens], dim=1)
    return torch.stack([torch.stack([torch.randn(shape, generator=g) for g in gens]) for _ in copies])
