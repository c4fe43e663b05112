"""Small batched tensor operations shared by the metrics: a fast sort on the CPU and tie-averaged ranks."""
from __future__ import annotations

import numpy as np
import torch


def sort(v: torch.Tensor, dim: int = -1, descending: bool = False, stable: bool = False
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.sort`` semantics (values, indices); on the CPU through numpy, ~10x faster than torch's sort
    for (32, 12,288) float rows here. Descending + stable keeps tied elements in index order, as torch."""
    if v.device.type != "cpu" or v.requires_grad or v.dtype not in (torch.float32, torch.float64, torch.int64):
        return torch.sort(v, dim=dim, descending=descending, stable=stable)
    a = v.detach().numpy()
    idx = np.argsort(-a if descending else a, axis=dim, kind="stable" if stable else "quicksort")
    return torch.from_numpy(np.take_along_axis(a, idx, axis=dim)), torch.from_numpy(idx)


def sort_values(v: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Sorted values only (ascending): ``np.sort`` on the CPU, which skips the index bookkeeping."""
    if v.device.type != "cpu" or v.requires_grad:
        return torch.sort(v, dim=dim).values
    return torch.from_numpy(np.sort(v.detach().numpy(), axis=dim))


def average_ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks 1..D along dim 1, ties sharing their average rank (``scipy.stats.rankdata(method="average")``),
    float64, shape (B, D)."""
    v = v.double()
    b, d = v.shape
    s, order = sort(v, dim=1, stable=True)
    new = torch.ones_like(s, dtype=torch.bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    gid = new.long().cumsum(dim=1) - 1
    pos = torch.arange(d, device=v.device).expand(b, d)
    first = torch.full_like(pos, d).scatter_reduce(1, gid, pos, "amin")
    last = torch.zeros_like(pos).scatter_reduce(1, gid, pos, "amax")
    avg = (first.gather(1, gid) + last.gather(1, gid)).double() / 2.0 + 1.0
    return torch.empty_like(avg).scatter_(1, order, avg)
