"""Rank explanation methods across evaluation metrics (study §2.6).

Input is a tidy frame of per-sample scores: columns ``method``, ``metric``, ``sample``, ``score``
(NaN allowed), optional ``se`` (standard error of a set-level score, whose single row has
sample ``"*"``; NaN means 0), optional ``family`` and ``direction`` (``"higher"``/``"lower"`` is
better, default ``"higher"``). Directions and families passed as dicts metric -> value win over
the columns.

The headline ranker is :func:`mc_mrr`, a Monte Carlo mean reciprocal rank: each draw perturbs
every method's mean score on every metric within its uncertainty, ranks the methods per metric,
and averages the reciprocal ranks over metrics. :func:`mean_rank`, :func:`borda`,
:func:`kendalls_w` and :func:`metric_agreement` are cheap deterministic companions on the means.

The controls floor: when a control (the random map, ``is_control``) is ranked with the methods, every other
method gets ``p_above_control``, the share of the draws in which its MRR is strictly above the best control's,
and ``not_better_than_random`` = ``p_above_control < CONTROL_FLOOR`` (0.95): a method that does not beat the
random map in at least 95 % of the draws is not shown to be better than random on these metrics.
:func:`headline` and :func:`floor_sentence` word the result by the evidence (one wording for the dashboard,
the CLI and the report).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
import zlib

import numpy as np
import pandas as pd

from .errors import UnknownChoice, XaiError
from .explainers import is_control
from .ranking_consensus import borda, kendalls_w, mean_rank, metric_agreement
from .ranking_frame import (DIRECTIONS, MISSING, SET_LEVEL, MRR_DECIMALS, metric_ranks,
                            metric_weights, Prepared, prepare, rank_best_first, summarise)

__all__ = ["CONTROL_FLOOR", "DIRECTIONS", "DISTS", "MISSING", "RANKERS", "SET_LEVEL", "RankingResult", "borda",
           "get_ranker", "kendalls_w", "mc_mrr", "mean_rank", "metric_agreement", "summarise"]

DISTS = ("normal", "bootstrap")
_BLOCK = 1 << 22  # bootstrap count-matrix elements generated at once (bounds memory, not a per-draw loop)
CONTROL_FLOOR = 0.95  # a method above the control in fewer draws than this is "not better than random"


@dataclass
class RankingResult:
    """What ``mc_mrr`` returns.

    Attributes
    ----------
    table : DataFrame
        Index method; ``mrr``, ``mrr_lo``, ``mrr_hi``, ``mean_rank``, ``rank``; sorted by mrr desc. When a
        control was ranked, also ``p_above_control`` (NaN for the controls) and ``not_better_than_random``.
    rank_probabilities : DataFrame
        Index method (same order); columns 1..M; rows sum to 1.
    metric_ranks : DataFrame
        Index method; columns metric; rank on the means (1 = best, ties averaged).
    metrics_used : list of str
        The metrics ranked on.
    dropped : dict of str to str
        Metric -> why it was left out.
    params : dict
        The settings of the ranking (draws, distribution, seed, weights, directions, families).
    p_top_set : dict of int to float
        For each k asked for (``mc_mrr(top_k=...)``): the share of draws whose top k by MRR (rank <= k, ties
        sharing the best rank) is exactly the first k methods of ``table``: how sure the top-k *set* is. Empty
        when no k was asked for.
    """
    table: pd.DataFrame  # index method; mrr, mrr_lo, mrr_hi, mean_rank, rank; sorted by mrr desc
    rank_probabilities: pd.DataFrame  # index method (same order); columns 1..M; rows sum to 1
    metric_ranks: pd.DataFrame  # index method; columns metric; rank on the means (1 = best, ties averaged)
    metrics_used: list[str]
    dropped: dict[str, str]  # metric -> reason
    params: dict
    p_top_set: dict[int, float] = field(default_factory=dict)  # k -> P(the first k of table are the top k)

    def to_frame(self) -> pd.DataFrame:
        """The table joined with the rank probabilities as ``p_rank_1..p_rank_M``; index method.

        Returns
        -------
        DataFrame
            What ``to_csv`` writes, and what :func:`headline` and :func:`floor_sentence` read.
        """
        probs = self.rank_probabilities.rename(columns=lambda r: f"p_rank_{r}")
        out = self.table.join(probs)
        out.index.name = "method"
        return out

    def to_csv(self, path: str | Path) -> None:
        """Write one row per method: method, mrr, mrr_lo, mrr_hi, mean_rank, rank, the controls floor columns
        when a control was ranked (``p_above_control``, ``not_better_than_random``), p_rank_1..p_rank_M.

        Parameters
        ----------
        path : str or Path
            The CSV file.
        """
        self.to_frame().reset_index().to_csv(path, index=False)


def _boot_means(X: np.ndarray, T: int, rng: np.random.Generator) -> np.ndarray:
    """(T, k) bootstrap means of the columns of X (n, k), resampling the same rows for every column.

    NaN cells are skipped (mean over the finite resampled cells); NaN where a draw has none."""
    n = X.shape[0]
    ok = np.isfinite(X)
    X0 = np.where(ok, X, 0.0)
    out = np.empty((T, X.shape[1]))
    step = max(1, _BLOCK // n)
    for a in range(0, T, step):  # blocks of many draws, each block fully vectorised
        t = min(step, T - a)
        idx = rng.integers(0, n, (t, n)) + (np.arange(t) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=t * n).reshape(t, n).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[a:a + t] = (counts @ X0) / (counts @ ok)
    return out


def _stream(seed: int, *names: str) -> np.random.Generator:
    """The random stream of one (metric[, method]) of a ranking: a function of the seed and the names alone, so a
    method's draws do not depend on the order of the frame's rows or on which other methods are ranked beside it
    (common random numbers: the same data and seed rank the same however they were gathered)."""
    return np.random.default_rng([int(seed), *(zlib.crc32(n.encode()) for n in names)])


def _draw(P: Prepared, metric: str, dist: str, T: int, seed: int) -> tuple[np.ndarray, bool]:
    """(T, M) raw-score draws for one metric, and whether the bootstrap was paired. Each method's normal draws
    come from its own stream (``_stream``); a paired bootstrap resamples the samples, in sample-id order, from the
    metric's stream; an unpaired one each method's samples, in sample-id order, from the method's stream."""
    mu = P.mu_all[metric].to_numpy(float)
    sigma = P.sigma_all[metric].to_numpy(float)
    out = np.empty((T, len(mu)))
    for i, meth in enumerate(P.methods):  # set-level rows (and dist="normal") keep the normal draw
        out[:, i] = mu[i] + sigma[i] * _stream(seed, metric, meth).standard_normal(T)
    if dist == "normal":
        return out, False
    rows = P.rows[(P.rows["metric"] == metric) & (P.rows["sample"].astype(str) != SET_LEVEL)]
    ids = {meth: frozenset(g["sample"]) for meth, g in rows.groupby("method", sort=False)}
    paired = len(ids) == len(P.methods) and len(set(ids.values())) == 1
    if paired:
        X = rows.pivot(index="sample", columns="method", values="score").sort_index().reindex(columns=P.methods)
        out = _boot_means(X.to_numpy(float), T, _stream(seed, metric, "#paired"))
    else:
        for i, meth in enumerate(P.methods):
            if meth in ids and np.isfinite(mu[i]):
                g = rows[rows["method"] == meth].sort_values("sample", key=lambda c: c.astype(str))
                x = g["score"].dropna().to_numpy(float)
                out[:, i] = _boot_means(x[:, None], T, _stream(seed, metric, "#boot", meth))[:, 0]
    return np.where(np.isnan(out), mu, out), paired


def mc_mrr(scores: pd.DataFrame, *, directions: dict[str, str] | None = None, families: dict[str, str] | None = None,
           weights: dict[str, float] | None = None, per_family: bool = False, n_draws: int = 10_000,
           dist: str = "normal", seed: int = 0, missing: str = "drop",
           top_k: int | Sequence[int] = ()) -> RankingResult:
    """Monte Carlo mean reciprocal rank (study §2.6).

    Per draw, every method's score on every metric is redrawn: ``dist="normal"`` draws N(mu, sigma^2) with sigma
    the standard error; ``dist="bootstrap"`` resamples the samples with replacement and takes each method's mean.
    The bootstrap is *paired*: within a metric and draw the same sample ids are resampled for all methods when
    all methods were scored on the same sample ids (so a method better on every sample wins every draw);
    otherwise each method is resampled independently. Set-level rows (sample "*") always use the normal draw.
    Methods are ranked per metric (1 = best, ties averaged), RR = 1/rank, and MRR is the weighted mean of RR over
    metrics; a metric's weight is its family's weight (default 1), divided by the number of used metrics in that
    family when ``per_family``. A metric on which some method has no finite mean is dropped (see
    ``result.dropped``), or with ``missing="worst"`` that method ranks last. Per method: the expected MRR, its
    2.5/97.5 percentiles, and the distribution of its rank by MRR within a draw (ties share the best rank,
    "min"). All T draws are ranked at once per metric. When a control (``is_control``, e.g. ``random``) is among
    the methods, every other method's ``p_above_control`` is the share of draws in which its MRR is strictly above
    the best control's, and ``not_better_than_random`` is ``p_above_control < CONTROL_FLOOR`` (0.95). For each k of
    ``top_k``, ``result.p_top_set[k]`` is the share of draws in which the methods of rank <= k are exactly the first
    k methods of the table (the top-k set is separated from the rest); a tie across the k-th place counts against.
    Each method's draws come from a stream of its own, seeded by ``seed``, the metric and the method's name (the
    paired bootstrap's from the metric's, over the samples in id order): the same scores and seed give the same
    ranking whatever the order of the frame's rows, and a method's draws do not change when others join it. Ties
    in the table are broken by the mean rank, then the method's name.

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
    n_draws : int
        The number of draws T (a positive integer).
    dist : str
        ``"normal"`` or ``"bootstrap"``.
    seed : int
        Seeds the draws.
    missing : str
        ``"drop"``: drop a metric on which some method has no finite mean; ``"worst"``: that method ranks last.
    top_k : int or sequence of int
        The k (1 <= k < number of methods) for which to measure how sure the top-k set is (``p_top_set``).

    Returns
    -------
    RankingResult

    Raises
    ------
    XaiError
        For an unknown ``dist``, a bad ``n_draws`` or ``top_k``; an empty or malformed frame (missing columns,
        duplicated rows), fewer than 2 methods, an unknown direction, a bad weight or one for an unknown family, or no
        metric left to rank on.
    """
    if dist not in DISTS:
        raise XaiError(f"unknown dist='{dist}'; use one of {list(DISTS)}")
    if int(n_draws) != n_draws or n_draws < 1:
        raise XaiError(f"n_draws must be a positive integer, got {n_draws}")
    P = prepare(scores, directions, families, missing)
    w = metric_weights(P, weights, per_family)
    T, M = int(n_draws), len(P.methods)
    acc, paired = np.zeros((T, M)), {}
    for k, metric in enumerate(P.metrics):
        raw, paired[metric] = _draw(P, metric, dist, T, seed)
        oriented = P.sign(metric) * raw
        oriented[:, ~np.isfinite(P.mu_all[metric].to_numpy(float))] = -np.inf
        acc += w[k] / rank_best_first(oriented, axis=1)
    mrr = acc / w.sum()
    r = rank_best_first(np.round(mrr, MRR_DECIMALS), axis=1, method="min").astype(int)
    probs = np.stack([np.bincount(r[:, i], minlength=M + 1)[1:] for i in range(M)]) / T
    lo, hi = np.percentile(mrr, [2.5, 97.5], axis=0)
    table = pd.DataFrame({"mrr": mrr.mean(0), "mrr_lo": lo, "mrr_hi": hi, "mean_rank": r.mean(0)},
                         index=pd.Index(P.methods, name="method"))
    table["rank"] = rank_best_first(table["mrr"].round(MRR_DECIMALS).to_numpy(), 0, "min").astype(int)
    ctrl = [i for i, m in enumerate(P.methods) if is_control(m)]
    if ctrl:  # the controls floor: how often each method's MRR is strictly above the best control's
        rounded = np.round(mrr, MRR_DECIMALS)
        above = (rounded > rounded[:, ctrl].max(axis=1, keepdims=True)).mean(axis=0)
        is_ctrl = np.isin(np.arange(M), ctrl)
        table["p_above_control"] = np.where(is_ctrl, np.nan, above)
        table["not_better_than_random"] = ~is_ctrl & (above < CONTROL_FLOOR)
    order = table.assign(_name=table.index).sort_values(["rank", "mean_rank", "_name"], kind="stable").index
    p_top_set = _p_top_set(r, [P.methods.index(m) for m in order], top_k)
    rank_probs = pd.DataFrame(probs, index=table.index, columns=range(1, M + 1)).loc[order]
    params = dict(n_draws=T, dist=dist, seed=seed, missing=missing, per_family=per_family, weights=weights,
                  metric_weights=dict(zip(P.metrics, w.tolist())),
                  directions={m: P.directions[m] for m in P.metrics},
                  families={m: P.families[m] for m in P.metrics},
                  controls=[P.methods[i] for i in ctrl], control_floor=CONTROL_FLOOR)
    if dist == "bootstrap":
        params["paired"] = paired
    return RankingResult(table.loc[order], rank_probs, metric_ranks(P).loc[order], list(P.metrics),
                         dict(P.dropped), params, p_top_set)


def _p_top_set(r: np.ndarray, order: list[int], top_k: int | Sequence[int]) -> dict[int, float]:
    """k -> share of draws (rows of the (T, M) rank matrix ``r``) whose ranks <= k are exactly ``order[:k]``."""
    ks = [top_k] if isinstance(top_k, (int, np.integer)) else list(top_k)
    out = {}
    for k in ks:
        if isinstance(k, bool) or int(k) != k or not 1 <= k < r.shape[1]:
            raise XaiError(f"top_k must be whole numbers from 1 to {r.shape[1] - 1} (fewer than the {r.shape[1]} "
                           f"methods ranked), got {k}")
        k = int(k)
        inside = r <= k
        exact = inside[:, order[:k]].all(axis=1) & (inside.sum(axis=1) == k)
        out[k] = float(exact.mean())
    return out


RANKERS: dict[str, Callable] = {"mrr": mc_mrr, "mean_rank": mean_rank, "borda": borda}


def get_ranker(name: str) -> Callable:
    """The ranker registered under ``name``.

    Parameters
    ----------
    name : str
        ``mrr``, ``mean_rank`` or ``borda`` (``RANKERS``).

    Returns
    -------
    callable
        ``mc_mrr``, ``mean_rank`` or ``borda``.

    Raises
    ------
    UnknownChoice
        For an unknown name (an XaiError).
    """
    try:
        return RANKERS[name]
    except KeyError:
        raise UnknownChoice("ranker", name, RANKERS) from None
