"""The input side of ranking: the tidy scores frame checked, summarised per method and metric, and prepared
(directions, families, the metrics every method can be ranked on, weights) for the rankers of
:mod:`xai_core.ranking` and :mod:`xai_core.ranking_consensus`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .errors import XaiError

SET_LEVEL = "*"
DIRECTIONS = ("higher", "lower")
MISSING = ("drop", "worst")
REQUIRED = ("method", "metric", "sample", "score")
MRR_DECIMALS = 12  # MRRs equal to this precision are ties when methods are ranked by MRR


@dataclass
class Prepared:
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


def check_frame(scores: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(scores, pd.DataFrame) or scores.empty:
        raise XaiError("the scores frame is empty; pass a DataFrame with one row per method, metric and sample")
    absent = [c for c in REQUIRED if c not in scores.columns]
    if absent:
        raise XaiError(f"the scores frame lacks column(s) {absent}; it needs columns {list(REQUIRED)}")
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
    df = check_frame(scores)
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


def per_metric(df, col, arg, given, metrics, default) -> dict[str, str]:
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


def prepare(scores, directions=None, families=None, missing="drop") -> Prepared:
    if missing not in MISSING:
        raise XaiError(f"unknown missing='{missing}'; use one of {list(MISSING)}")
    df = check_frame(scores)
    summ = summarise(df)
    methods, metrics = list(pd.unique(df["method"])), list(pd.unique(df["metric"]))
    if len(methods) < 2:
        raise XaiError(f"ranking needs at least 2 methods, got {methods}; add scores for more methods")
    dirs = per_metric(df, "direction", "directions", directions, metrics, lambda m: "higher")
    bad = {m: d for m, d in dirs.items() if d not in DIRECTIONS}
    if bad:
        raise XaiError(f"unknown direction(s) {bad}; each metric's direction must be 'higher' or 'lower'")
    fams = per_metric(df, "family", "families", families, metrics, lambda m: m)
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
    return Prepared(methods, used, dirs, fams, mu, sigma, dropped, df)


def metric_weights(P: Prepared, weights: dict[str, float] | None, per_family: bool) -> np.ndarray:
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


def rank_best_first(values: np.ndarray, axis: int, method: str = "average") -> np.ndarray:
    """Rank 1 = largest value; -inf (missing) ranks last."""
    return stats.rankdata(-values, axis=axis, method=method)


def metric_ranks(P: Prepared) -> pd.DataFrame:
    ranks = rank_best_first(P.oriented_mu(), axis=0)
    return pd.DataFrame(ranks, index=pd.Index(P.methods, name="method"), columns=P.metrics)
