"""Cheap deterministic companions of the Monte Carlo MRR on the methods' mean scores: the mean rank and the Borda
count (rankers), Kendall's W (how far the metrics agree on the order) and the metric x metric Spearman agreement."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .errors import XaiError
from .ranking_frame import MRR_DECIMALS, metric_ranks, metric_weights, prepare


def _deterministic(scores, directions, families, weights, per_family, missing, name, better_high, fn):
    P = prepare(scores, directions, families, missing)
    w = metric_weights(P, weights, per_family)
    value = fn(metric_ranks(P).to_numpy(), len(P.methods), w)
    out = pd.DataFrame({name: value}, index=pd.Index(P.methods, name="method"))
    key = np.round(value, MRR_DECIMALS)
    out["rank"] = stats.rankdata(-key if better_high else key, method="min").astype(int)
    return out.sort_values("rank", kind="stable")


def mean_rank(scores: pd.DataFrame, *, directions: dict[str, str] | None = None,
              families: dict[str, str] | None = None, weights: dict[str, float] | None = None,
              per_family: bool = False, missing: str = "drop") -> pd.DataFrame:
    """Per method: (weighted) mean over metrics of its rank on the means (lower is better), and rank.

    Parameters
    ----------
    scores : DataFrame
        Tidy scores: columns ``method``, ``metric``, ``sample``, ``score`` (and ``se``, ``reason``, ``family``,
        ``direction`` when present); one row per method, metric and sample (``"*"`` for a set-level score).
    directions : dict of str to str, optional
        Metric -> ``"higher"`` or ``"lower"`` is better, over the frame's ``direction`` column (default higher).
    families : dict of str to str, optional
        Metric -> family, over the frame's ``family`` column (default: each metric its own family).
    weights : dict of str to float, optional
        Family -> weight (default 1).
    per_family : bool
        Divide each family's weight among its used metrics.
    missing : str
        ``"drop"``: drop a metric on which some method has no finite mean; ``"worst"``: that method ranks last.

    Returns
    -------
    DataFrame
        Index method; ``mean_rank``, ``rank``; sorted by rank.

    Raises
    ------
    XaiError
        For an empty or malformed frame (missing columns, duplicated rows), fewer than 2 methods, an unknown
        direction, a bad weight or one for an unknown family, or no metric left to rank on.
    """
    return _deterministic(scores, directions, families, weights, per_family, missing, "mean_rank", False,
                          lambda R, M, w: R @ w / w.sum())


def borda(scores: pd.DataFrame, *, directions: dict[str, str] | None = None,
          families: dict[str, str] | None = None, weights: dict[str, float] | None = None,
          per_family: bool = False, missing: str = "drop") -> pd.DataFrame:
    """Per method: Borda count sum_m w_m (M - rank_m) on the means (higher is better), and rank.

    Parameters
    ----------
    scores : DataFrame
        Tidy scores: columns ``method``, ``metric``, ``sample``, ``score`` (and ``se``, ``reason``, ``family``,
        ``direction`` when present); one row per method, metric and sample (``"*"`` for a set-level score).
    directions : dict of str to str, optional
        Metric -> ``"higher"`` or ``"lower"`` is better, over the frame's ``direction`` column (default higher).
    families : dict of str to str, optional
        Metric -> family, over the frame's ``family`` column (default: each metric its own family).
    weights : dict of str to float, optional
        Family -> weight (default 1).
    per_family : bool
        Divide each family's weight among its used metrics.
    missing : str
        ``"drop"``: drop a metric on which some method has no finite mean; ``"worst"``: that method ranks last.

    Returns
    -------
    DataFrame
        Index method; ``borda``, ``rank``; sorted by rank.

    Raises
    ------
    XaiError
        For an empty or malformed frame (missing columns, duplicated rows), fewer than 2 methods, an unknown
        direction, a bad weight or one for an unknown family, or no metric left to rank on.
    """
    return _deterministic(scores, directions, families, weights, per_family, missing, "borda", True,
                          lambda R, M, w: (M - R) @ w)


def kendalls_w(scores: pd.DataFrame, *, directions: dict[str, str] | None = None) -> dict:
    """Kendall's coefficient of concordance of the metrics (judges) over the methods (objects).

    W = 12 S / (m^2 (n^3 - n) - m sum_j T_j), S the sum of squared deviations of the methods' rank sums, T_j = sum
    over tie groups of metric j of (t^3 - t); chi2 = m (n - 1) W on n - 1 degrees of freedom. Uses the metrics on
    which every method has a finite mean.

    Parameters
    ----------
    scores : DataFrame
        Tidy scores: columns ``method``, ``metric``, ``sample``, ``score`` (and ``se``, ``reason``, ``family``,
        ``direction`` when present); one row per method, metric and sample (``"*"`` for a set-level score).
    directions : dict of str to str, optional
        Metric -> ``"higher"`` or ``"lower"`` is better, over the frame's ``direction`` column (default higher).

    Returns
    -------
    dict
        ``W``, ``chi2``, ``p_value``, ``n_methods``, ``n_metrics``, ``metrics``.

    Raises
    ------
    XaiError
        For fewer than 2 metrics with a finite score for every method, or as ``mean_rank``.
    """
    P = prepare(scores, directions, None, "drop")
    R = metric_ranks(P).to_numpy()
    n, m = R.shape
    if m < 2:
        raise XaiError(f"Kendall's W needs at least 2 metrics with a finite score for every method, got "
                       f"{P.metrics} (dropped: {P.dropped}); add scores for more metrics")
    Rs = R.sum(axis=1)
    S = float(((Rs - Rs.mean()) ** 2).sum())
    ties = sum(float((c ** 3 - c).sum()) for c in (np.unique(R[:, j], return_counts=True)[1] for j in range(m)))
    denom = m ** 2 * (n ** 3 - n) - m * ties
    W = 12.0 * S / denom if denom > 0 else float("nan")
    chi2 = m * (n - 1) * W
    return {"W": W, "chi2": chi2, "p_value": float(stats.chi2.sf(chi2, n - 1)), "n_methods": n, "n_metrics": m,
            "metrics": list(P.metrics)}


def metric_agreement(scores: pd.DataFrame, *, directions: dict[str, str] | None = None) -> pd.DataFrame:
    """Metric x metric Spearman correlation of the methods' mean scores.

    Each metric is oriented so that higher = better (positive = the metrics agree). Pairwise over methods with
    finite means on both.

    Parameters
    ----------
    scores : DataFrame
        Tidy scores: columns ``method``, ``metric``, ``sample``, ``score`` (and ``se``, ``reason``, ``family``,
        ``direction`` when present); one row per method, metric and sample (``"*"`` for a set-level score).
    directions : dict of str to str, optional
        Metric -> ``"higher"`` or ``"lower"`` is better, over the frame's ``direction`` column (default higher).

    Returns
    -------
    DataFrame
        Metric x metric.

    Raises
    ------
    XaiError
        For an empty or malformed frame (missing columns, duplicated rows), fewer than 2 methods, an unknown
        direction, or no metric left.
    """
    P = prepare(scores, directions, None, "worst")
    oriented = P.mu_all * [P.sign(m) for m in P.mu_all.columns]
    return oriented.corr(method="spearman").rename_axis(index="metric", columns="metric")
