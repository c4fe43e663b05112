"""Small batched tensor operations shared by the metrics: a fast sort on the CPU, the first k of a stable sort,
and tie-averaged ranks."""
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


def top_order(v: torch.Tensor, k: int, descending: bool = True) -> torch.Tensor:
    """The first ``k`` indices of a stable sort along dim 1 of a (B, D) tensor: ``sort(v, 1, descending,
    stable=True)[1][:, :k]``, without sorting all D. On the CPU: ``torch.topk`` of k + 1, which is that order
    when no two of them tie; with ties, a partition finds each row's k-th value, the rows keep every element
    beyond it and the tied ones in index order, and only those k are sorted (stably, so ties stay in index
    order). NaNs, k > D/2 and ties on other devices take the full sort."""
    b, d = v.shape
    k = min(int(k), d)
    v = v.detach()
    if k == 0 or 2 * k > d or v.dtype not in (torch.float32, torch.float64) or torch.isnan(v).any():
        return sort(v, dim=1, descending=descending, stable=True)[1][:, :k]
    vals, idx = torch.topk(v, min(k + 1, d), dim=1, largest=descending)
    if not (vals[:, 1:] == vals[:, :-1]).any():  # no ties among the first k + 1: the order is the stable one
        return idx[:, :k]
    if v.device.type != "cpu":
        return sort(v, dim=1, descending=descending, stable=True)[1][:, :k]
    a = -v.numpy() if descending else v.numpy()  # ascending from here
    kth = np.partition(a, k - 1, axis=1)[:, k - 1:k]
    tied = a == kth
    if tied.sum() == b:  # only the k-th element itself sits at each row's k-th value
        keep = a <= kth
    else:
        below = a < kth
        room = k - below.sum(axis=1, keepdims=True)  # how many of the tied elements make the cut, per row
        keep = below | (tied & (np.cumsum(tied, axis=1) <= room))
    idx = (np.flatnonzero(keep) % d).reshape(b, k)  # per row, in index order (10x faster than np.nonzero)
    sub = np.take_along_axis(a, idx, axis=1)
    o = np.argsort(sub, axis=1)  # quicksort: 2.5x faster than the stable sort, and the same when no two tie
    s = np.take_along_axis(sub, o, axis=1)
    if (s[:, 1:] == s[:, :-1]).any():
        o = np.argsort(sub, axis=1, kind="stable")  # ties keep index order
    return torch.from_numpy(np.take_along_axis(idx, o, axis=1))


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
