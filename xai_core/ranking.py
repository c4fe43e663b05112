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
from scipy import stats

from .errors import UnknownChoice, XaiError
from .explainers import is_control

SET_LEVEL = "*"
DIRECTIONS = ("higher", "lower")
DISTS = ("normal", "bootstrap")
MISSING = ("drop", "worst")
_REQUIRED = ("method", "metric", "sample", "score")
_BLOCK = 1 << 22  # bootstrap count-matrix elements generated at once (bounds memory, not a per-draw loop)
_MRR_DECIMALS = 12  # MRRs equal to this precision are ties when methods are ranked by MRR
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


@dataclass
class _Prepared:
    methods: list[str]
    metrics: list[str]  # metrics taking part in the ranking
    directions: dict[str, str]  # every metric in the input
    families: dict[str, str]  # every metric in the input
    mu_all: pd.DataFrame  # raw means, methods x all metrics (NaN where missing)
    sigma_all: pd.DataFrame
    dropped: dict[str, str]
    rows: pd.DataFrame  # validated input rows

    def sign(self, metric: str) -> float:
        return -1.0 if self.directions[metric] == "lower" else 1.0

    def oriented_mu(self) -> np.ndarray:
        """(M, K) means over the used metrics with higher = better; -inf where a method has no finite mean."""
        mu = self.mu_all[self.metrics].to_numpy(float) * [self.sign(m) for m in self.metrics]
        return np.where(np.isfinite(mu), mu, -np.inf)


def _check_frame(scores: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(scores, pd.DataFrame) or scores.empty:
        raise XaiError("the scores frame is empty; pass a DataFrame with one row per method, metric and sample")
    absent = [c for c in _REQUIRED if c not in scores.columns]
    if absent:
        raise XaiError(f"the scores frame lacks column(s) {absent}; it needs columns {list(_REQUIRED)}")
    df = scores.dropna(subset=["method", "metric"]).copy()
    df["score"] = pd.to_numeric(df["score"], errors="coerce").astype(float)
    # an infinite score (or standard error) is no measurement: missing, with its reason, never ranked on
    inf = np.isinf(df["score"].to_numpy())
    if "se" in df.columns:
        se = pd.to_numeric(df["se"], errors="coerce").astype(float)
        inf_se = np.isinf(se.to_numpy()) & ~inf
        df["se"] = se.where(~np.isinf(se), np.nan)
    else:
        inf_se = np.zeros(len(df), dtype=bool)
    if inf.any() or inf_se.any():
        why = np.where(inf, "non-finite score (" + df["score"].astype(str) + ") treated as missing",
                       "non-finite standard error treated as a missing score")
        reason = df["reason"].astype(object) if "reason" in df.columns else pd.Series(None, index=df.index,
                                                                                      dtype=object)
        df["reason"] = reason.where(~(inf | inf_se), why)
        df.loc[inf | inf_se, "score"] = np.nan
    dup = df.duplicated(["method", "metric", "sample"])
    if dup.any():
        r = df[dup].iloc[0]
        raise XaiError(f"method '{r['method']}' has several rows for metric '{r['metric']}', sample "
                       f"'{r['sample']}'; keep one score per method, metric and sample")
    return df


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (method, metric): mu, sigma, n, set_level.

    mu is the mean of the finite per-sample scores, sigma the std (ddof=1) / sqrt(n) (0 when n = 1). A
    set-level row (sample "*") gives mu = score, sigma = se (NaN -> 0).

    Parameters
    ----------
    scores : DataFrame
        Tidy scores: columns ``method``, ``metric``, ``sample``, ``score`` (and ``se``, ``reason``, ``family``,
        ``direction`` when present); one row per method, metric and sample (``"*"`` for a set-level score).

    Returns
    -------
    DataFrame
        Indexed by (method, metric).

    Raises
    ------
    XaiError
        For an empty or malformed frame, or a metric with both set-level and per-sample rows for a method.
    """
    df = _check_frame(scores)
    is_set = df["sample"].astype(str) == SET_LEVEL
    g = df[~is_set].groupby(["method", "metric"], sort=False)["score"]
    per = pd.DataFrame({"mu": g.mean(), "n": g.count(), "sd": g.std(ddof=1)})
    per["sigma"] = (per.pop("sd") / np.sqrt(per["n"])).fillna(0.0)
    per["set_level"] = False
    s = df[is_set].set_index(["method", "metric"])
    se = s["se"].astype(float).fillna(0.0) if "se" in s.columns else 0.0
    sl = pd.DataFrame({"mu": s["score"], "n": np.isfinite(s["score"]).astype(int), "sigma": se, "set_level": True})
    both = per.index.intersection(sl.index)
    if len(both):
        meth, met = both[0]
        raise XaiError(f"method '{meth}' has both a set-level row (sample '*') and per-sample rows for "
                       f"metric '{met}'; keep one or the other")
    return pd.concat([per, sl])[["mu", "sigma", "n", "set_level"]]


def _per_metric(df, col, arg, given, metrics, default) -> dict[str, str]:
    out: dict[str, str] = {}
    if col in df.columns:
        for m, vals in df.groupby("metric", sort=False)[col]:
            u = pd.unique(vals.dropna())
            if len(u) > 1:
                raise XaiError(f"metric '{m}' has several {col} values {list(u)}; give one {col} per metric "
                               f"(or pass {arg}={{metric: value}})")
            if len(u):
                out[m] = u[0]
    out.update(given or {})
    return {m: out.get(m, default(m)) for m in metrics}


def _prepare(scores, directions=None, families=None, missing="drop") -> _Prepared:
    if missing not in MISSING:
        raise XaiError(f"unknown missing='{missing}'; use one of {list(MISSING)}")
    df = _check_frame(scores)
    summ = summarise(df)
    methods, metrics = list(pd.unique(df["method"])), list(pd.unique(df["metric"]))
    if len(methods) < 2:
        raise XaiError(f"ranking needs at least 2 methods, got {methods}; add scores for more methods")
    dirs = _per_metric(df, "direction", "directions", directions, metrics, lambda m: "higher")
    bad = {m: d for m, d in dirs.items() if d not in DIRECTIONS}
    if bad:
        raise XaiError(f"unknown direction(s) {bad}; each metric's direction must be 'higher' or 'lower'")
    fams = _per_metric(df, "family", "families", families, metrics, lambda m: m)
    mu = summ["mu"].unstack("metric").reindex(index=methods, columns=metrics).astype(float)
    sigma = summ["sigma"].unstack("metric").reindex(index=methods, columns=metrics).astype(float).fillna(0.0)
    used, dropped = [], {}
    for m in metrics:
        lacking = [meth for meth in methods if not np.isfinite(mu.at[meth, m])]
        if len(lacking) == len(methods):
            dropped[m] = "no method has a finite score on this metric"
        elif lacking and missing == "drop":
            dropped[m] = (f"no finite score for method(s) {lacking}; every method needs one to rank on this "
                          "metric (pass missing='worst' to rank them last instead)")
        else:
            used.append(m)
    if not used:
        raise XaiError(f"no metric has a finite score for every method (dropped: {dropped}); "
                       "add the missing scores or pass missing='worst'")
    return _Prepared(methods, used, dirs, fams, mu, sigma, dropped, df)


def _metric_weights(P: _Prepared, weights: dict[str, float] | None, per_family: bool) -> np.ndarray:
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(P.families.values()))
    if unknown:
        raise XaiError(f"weights name unknown famil(y/ies) {unknown}; valid families: "
                       f"{sorted(set(P.families.values()))} (a metric's family is its own name unless given)")
    if any(not np.isfinite(v) or v < 0 for v in weights.values()):
        raise XaiError(f"weights must be finite and >= 0, got {weights}")
    fams = [P.families[m] for m in P.metrics]
    w = np.array([float(weights.get(f, 1.0)) for f in fams])
    if per_family:
        w = w / np.array([fams.count(f) for f in fams])
    if w.sum() <= 0:
        raise XaiError(f"the weights give every used metric weight 0 ({dict(zip(P.metrics, w))}); "
                       "give at least one used family a positive weight")
    return w


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


def _draw(P: _Prepared, metric: str, dist: str, T: int, seed: int) -> tuple[np.ndarray, bool]:
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


def _rank_best_first(values: np.ndarray, axis: int, method: str = "average") -> np.ndarray:
    """Rank 1 = largest value; -inf (missing) ranks last."""
    return stats.rankdata(-values, axis=axis, method=method)


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
    P = _prepare(scores, directions, families, missing)
    w = _metric_weights(P, weights, per_family)
    T, M = int(n_draws), len(P.methods)
    acc, paired = np.zeros((T, M)), {}
    for k, metric in enumerate(P.metrics):
        raw, paired[metric] = _draw(P, metric, dist, T, seed)
        oriented = P.sign(metric) * raw
        oriented[:, ~np.isfinite(P.mu_all[metric].to_numpy(float))] = -np.inf
        acc += w[k] / _rank_best_first(oriented, axis=1)
    mrr = acc / w.sum()
    r = _rank_best_first(np.round(mrr, _MRR_DECIMALS), axis=1, method="min").astype(int)
    probs = np.stack([np.bincount(r[:, i], minlength=M + 1)[1:] for i in range(M)]) / T
    lo, hi = np.percentile(mrr, [2.5, 97.5], axis=0)
    table = pd.DataFrame({"mrr": mrr.mean(0), "mrr_lo": lo, "mrr_hi": hi, "mean_rank": r.mean(0)},
                         index=pd.Index(P.methods, name="method"))
    table["rank"] = _rank_best_first(table["mrr"].round(_MRR_DECIMALS).to_numpy(), 0, "min").astype(int)
    ctrl = [i for i, m in enumerate(P.methods) if is_control(m)]
    if ctrl:  # the controls floor: how often each method's MRR is strictly above the best control's
        rounded = np.round(mrr, _MRR_DECIMALS)
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
    return RankingResult(table.loc[order], rank_probs, _metric_ranks(P).loc[order], list(P.metrics),
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


def _metric_ranks(P: _Prepared) -> pd.DataFrame:
    ranks = _rank_best_first(P.oriented_mu(), axis=0)
    return pd.DataFrame(ranks, index=pd.Index(P.methods, name="method"), columns=P.metrics)


def _deterministic(scores, directions, families, weights, per_family, missing, name, better_high, fn):
    P = _prepare(scores, directions, families, missing)
    w = _metric_weights(P, weights, per_family)
    value = fn(_metric_ranks(P).to_numpy(), len(P.methods), w)
    out = pd.DataFrame({name: value}, index=pd.Index(P.methods, name="method"))
    key = np.round(value, _MRR_DECIMALS)
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
    P = _prepare(scores, directions, None, "drop")
    R = _metric_ranks(P).to_numpy()
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
    P = _prepare(scores, directions, None, "worst")
    oriented = P.mu_all * [P.sign(m) for m in P.mu_all.columns]
    return oriented.corr(method="spearman").rename_axis(index="metric", columns="metric")


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
