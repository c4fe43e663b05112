"""Choosing cells and genes: the stratified ``max_cells`` subsample and scanpy-style ``hvg`` selection.

The policies are stated in ``load_expression``'s module doc.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .user_common import UserDataError

HVG_MAX_LOG_VALUE = 50.0  # above this the values are not log-normalised (expm1 would overflow)


def subsample(y: np.ndarray, max_cells: int, seed: int, source: Any) -> np.ndarray | None:
    """Stratified cell indices (sorted): shares proportional to class sizes, at least 2 per class."""
    n, counts = len(y), np.bincount(y)
    if max_cells >= n:
        return None
    if max_cells < 2 * len(counts):
        raise UserDataError(source, f"max_cells={max_cells} is too few for {len(counts)} classes",
                            f"use max_cells >= {2 * len(counts)} (two cells per class)")
    exact = max_cells * counts / n
    quota = np.minimum(counts, np.maximum(2, np.floor(exact))).astype(np.int64)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    while quota.sum() < max_cells:
        for c in order:
            if quota.sum() < max_cells and quota[c] < counts[c]:
                quota[c] += 1
    while quota.sum() > max_cells:  # the minimum of two pushed it over: take from the largest shares
        quota[int(np.argmax(np.where(quota > 2, quota, -1)))] -= 1
    rng = np.random.RandomState(seed)
    picks = [rng.choice(np.flatnonzero(y == c), int(quota[c]), replace=False) for c in range(len(counts))]
    return np.sort(np.concatenate(picks))


def highly_variable(X: np.ndarray | sp.csr_matrix, rows: np.ndarray, n_top: int, source: Any = None,
                    n_bins: int = 20, chunk: int = 4096) -> np.ndarray:
    """Indices (sorted) of the ``n_top`` genes of highest seurat-flavour normalised dispersion over ``rows``.

    Follows ``scanpy.pp.highly_variable_genes(flavor="seurat")``: on ``expm1`` of the values, per-gene mean
    and variance (ddof=1), log dispersion z-scored within ``n_bins`` equal-width bins of ``log1p(mean)``
    (a bin holding one gene gets a normalised dispersion of 1). A sparse ``X`` is never densified.
    """
    import pandas as pd  # noqa: PLC0415 - pandas (0.4 s): `import xai_core.data` does not load it; only hvg needs it here

    rows = np.asarray(rows, dtype=np.int64)
    n, G = len(rows), X.shape[1]
    s1, s2 = np.zeros(G), np.zeros(G)
    lo, hi = np.inf, -np.inf
    for i in range(0, n, chunk):
        block = X[rows[i:i + chunk]]
        vals = block.data if sp.issparse(block) else block
        if vals.size:
            lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
        if lo < 0 or hi > HVG_MAX_LOG_VALUE:
            raise UserDataError(source, f"hvg needs log-normalised values, but they range from {lo:g} to {hi:g}",
                                "log-normalise first (scanpy normalize_total then log1p), or leave hvg out")
        if sp.issparse(block):
            e = block.astype(np.float64)
            e.data = np.expm1(e.data)
            s1 += np.asarray(e.sum(axis=0)).ravel()
            s2 += np.asarray(e.multiply(e).sum(axis=0)).ravel()
        else:
            e = np.expm1(block.astype(np.float64))
            s1 += e.sum(axis=0)
            s2 += (e * e).sum(axis=0)
    mean = s1 / max(n, 1)
    var = np.maximum(s2 / max(n, 1) - mean ** 2, 0.0) * (n / (n - 1) if n > 1 else 1.0)
    mean[mean == 0] = 1e-12
    disp = var / mean
    disp[disp == 0] = np.nan
    df = pd.DataFrame({"mean": np.log1p(mean), "disp": np.log(disp)})
    df["bin"] = pd.cut(df["mean"], bins=n_bins)
    stats = df.groupby("bin", observed=True)["disp"].agg(avg="mean", dev="std")
    single = stats["dev"].isnull()
    stats.loc[single, "dev"] = stats.loc[single, "avg"]
    stats.loc[single, "avg"] = 0.0
    per_gene = stats.loc[df["bin"]].to_numpy()
    norm = (df["disp"].to_numpy() - per_gene[:, 0]) / per_gene[:, 1]
    norm = np.nan_to_num(norm, nan=-np.inf)
    return np.sort(np.argsort(-norm, kind="stable")[:n_top])
