"""Tables and figure data of the ``grain-explainers`` study (see ``grain_explainers``).

Everything here reads attributions and scores that an ``Evaluation`` stored, or scores explanations with the
engine's own metrics (``build_inputs`` + ``compute_metric``) after channel pooling or normalisation; nothing
re-implements a metric.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ..explainers import (
    AGGREGATE,
    EXPLAINERS,
    NORMALISATIONS,
    combine,
    components,
    is_composite,
    normalise,
    pool_channels,
)
from ..metrics import METRICS, build_inputs, compute_metric
from ..metrics.augment import AUGMENTATIONS, similarity

INVARIANT_TOL = 1e-4  # relative change below which a score counts as unchanged (float32 rounding of the maps)
ARROW = {"higher": "↑", "lower": "↓"}
NORM_LABEL = {"per_map_max": "per-explanation max", "dataset_max": "dataset max",
              "per_map_p99": "per-explanation 99th percentile", "dataset_p99": "dataset 99th percentile"}


def sig(v: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (fixed notation where sensible); None/NaN as an em dash."""
    if v is None or not np.isfinite(v):
        return "—"
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    if -3 <= mag < 5:
        return f"{v:.{max(0, digits - 1 - mag)}f}"
    return f"{v:.{digits - 1}e}"


def mean_sem(v) -> tuple[float, float]:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def pm(v) -> str:
    m, s = mean_sem(v)
    return f"{sig(m)} ± {sig(s, 2)}"


def metric_label(metric: str) -> str:
    spec = METRICS.get(metric)
    return f"{spec.label} {ARROW[spec.direction]}"


def method_params(ev, method: str) -> dict[str, Any]:
    return EXPLAINERS.get(method).params_for(ev.ds.modality, ev.config.method_params.get(method, {}))


def protocol(r, o, ev, plans, methods, rank, study_metrics) -> None:
    """``r.protocol``: what was run, on what, with which settings."""
    agg = method_params(ev, AGGREGATE) if AGGREGATE in methods else {}
    ds = ev.ds
    r.protocol = {
        "dataset": f"grain (simulated kernels, {ds.X.shape[-1]}×{ds.X.shape[-2]} RGB, {len(ds)} images, classes "
                   f"{', '.join(ds.class_names)}); generator parameters {ds.params}",
        "model": f"{ev.model_meta['arch']} (shipped checkpoint {Path(ev.model_meta['path']).name}, hash "
                 f"{ev.model_hash}, test accuracy {ev.model_meta.get('test_accuracy', float('nan')):.3f})",
        "samples": f"the first {len(plans[0].sample_idx)} correctly classified test images of the lesion classes "
                   f"({', '.join(ds.class_names[c] for c in o['classes'])}); the metrics that re-explain "
                   + (f"(augmentations, sensitivities) use the first {len(plans[1].sample_idx)} of them"
                      if len(plans[1].sample_idx) < len(plans[0].sample_idx) else
                      "(augmentations, sensitivities) use all of them"),
        "explained output": "the logit of the true class",
        "methods": methods,
        "method parameters": {m: method_params(ev, m) for m in methods if method_params(ev, m)},
        "aggregate": (f"mean of {agg.get('methods')} after {agg.get('normalisation')} normalisation" if agg else "—"),
        "metrics": [f"{m} ({METRICS.get(m).direction} is better)" for m in study_metrics],
        "metric parameters": {m: METRICS.get(m).params_for("image", p.config.metric_params.get(m, {}))
                              for p in plans for m in p.metrics},
        "augmentations": {a.name: f"{a.kind}, {a.low:g} to {a.high:g}, grid {a.values(int(o['n_values']))}"
                          for a in AUGMENTATIONS.values()},
        "ranking": f"Monte Carlo MRR, {rank.params['n_draws']} normal draws around each mean with its standard "
                   f"error, seed {rank.params['seed']}, missing scores ranked last; metrics {rank.metrics_used}",
        "pooling analysis": f"mean vs max channel pooling on metrics {list(o['pool_metrics'])}",
        "normalisation analysis": f"the four normalisations on the mean-pooled maps of all methods; metric "
                                  f"invariance on {list(o['norm_methods'])} with {list(o['norm_metrics'])}",
        "seed": ev.config.seed,
    }


# -- per-method scores ----------------------------------------------------------------------------------
def score_matrix(scores: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    return {k: g["score"].to_numpy(float) for k, g in scores.groupby(["method", "metric"], sort=False)}


def summary_rows(cells: dict, methods: list[str], metrics: list[str]) -> list[list[Any]]:
    return [[m] + [pm(cells.get((m, k), [])) for k in metrics] for m in methods]


def metric_ranks(mu: pd.DataFrame) -> pd.DataFrame:
    """Rank of each method per metric on the means (1 = best, ties averaged, missing last)."""
    out = {}
    for metric in mu.columns:
        sign = -1.0 if METRICS.get(metric).direction == "lower" else 1.0
        v = np.where(np.isfinite(mu[metric].to_numpy(float)), sign * mu[metric].to_numpy(float), -np.inf)
        out[metric] = stats.rankdata(-v, method="average")
    return pd.DataFrame(out, index=mu.index)


# -- robustness to augmentations, per augmentation (from the stored similarity curves) ----------------------
def augmentation_similarity(ev, method: str, metric: str, idx: np.ndarray, augs: list[str], n_values: int
                            ) -> dict[str, float]:
    """Mean similarity (over images and the non-identity grid values) per augmentation of ``metric``."""
    curves = ev.stored_curves(method, metric, idx)
    out, start = {}, 0
    for name in augs:
        aug = AUGMENTATIONS.get(name)
        values = aug.values(n_values)
        stop = start + len(values)
        if curves is not None and curves.ndim == 2 and curves.shape[1] >= stop:
            c = np.delete(curves[:, start:stop], values.index(aug.identity), axis=1)
            out[name] = float(np.nanmean(c)) if np.isfinite(c).any() else float("nan")
        else:
            out[name] = float("nan")
        start = stop
    return out


def augmentation_probability(ev, idx: np.ndarray, n_values: int) -> dict[str, float]:
    """Mean probability of the explained class per augmentation, over images and the non-identity grid values."""
    inp = build_inputs(ev.ds, ev.ctx, idx, np.zeros((len(idx), *ev.ds.input_shape), np.float32))
    out = {}
    for aug in AUGMENTATIONS.values():
        vals = [v for v in aug.values(n_values) if v != aug.identity]
        out[aug.name] = float(np.mean([inp.output(aug.apply(inp.x, v)).mean().item() for v in vals]))
    out["none"] = float(inp.output(inp.x).mean().item())
    return out


# -- scoring maps that were post-processed here -----------------------------------------------------------
def score_maps(ev, idx: np.ndarray, method: str, maps: torch.Tensor, metric: str, explain_wrap=None,
               **overrides) -> np.ndarray:
    """Per-sample scores of ``metric`` for ``maps`` (N, C, H, W) with the engine's metric and the run's params."""
    cfg = ev.config
    params = EXPLAINERS.get(method).params_for(ev.ds.modality, cfg.method_params.get(method, {}))
    inp = build_inputs(ev.ds, ev.ctx, idx, maps, method, params, forward_batch=cfg.forward_batch,
                       explain_batch=cfg.explain_batch, seed=cfg.seed)
    if explain_wrap is not None:
        inp = dataclasses.replace(inp, explain_fn=explain_wrap(inp.explain_fn))
    return compute_metric(metric, inp, **{**cfg.metric_params.get(metric, {}), **overrides}).scores


def map_similarity(a: torch.Tensor, b: torch.Tensor, how: str) -> np.ndarray:
    return similarity(a.reshape(len(a), -1), b.reshape(len(b), -1), how=how).cpu().numpy()


# -- channel pooling --------------------------------------------------------------------------------------
def pooling_effect(ev, idx: np.ndarray, methods: list[str], metrics: list[str]) -> dict[str, Any]:
    """Mean- vs max-pooled maps: their similarity per method, and each metric's scores and method ranks under
    each pooling (the pooling is the metric's ``pooling`` parameter, the maps are the stored ones)."""
    sims, means = {}, {p: pd.DataFrame(index=methods, columns=metrics, dtype=float) for p in ("mean", "max")}
    for method in methods:
        a = ev.attributions(method, idx)
        pa, pb = pool_channels(a, "mean"), pool_channels(a, "max")
        sims[method] = {how: map_similarity(pa, pb, how) for how in ("pearson", "spearman")}
        for metric in metrics:
            for p in ("mean", "max"):
                means[p].loc[method, metric] = mean_sem(score_maps(ev, idx, method, a, metric, pooling=p))[0]
    ranks = {p: metric_ranks(means[p]) for p in means}
    delta = (ranks["mean"] - ranks["max"]).abs()
    per_method = [[m, pm(sims[m]["pearson"]), pm(sims[m]["spearman"]), float(delta.loc[m].mean()),
                   f"{delta.loc[m].max():g} ({metric_label(delta.loc[m].idxmax())})"] for m in methods]
    per_metric = []
    for metric in metrics:
        rho = stats.spearmanr(ranks["mean"][metric], ranks["max"][metric])[0] if len(methods) > 2 else float("nan")
        rel = ((means["max"][metric] - means["mean"][metric]).abs()
               / means["mean"][metric].abs().replace(0, np.nan)).mean()
        per_metric.append([metric_label(metric), sig(rho), int((delta[metric] > 0).sum()), sig(100 * rel, 2),
                           ranks["mean"][metric].idxmin(), ranks["max"][metric].idxmin()])
    return {"sims": sims, "per_method": per_method, "per_metric": per_metric, "delta": delta, "means": means}


# -- normalisation ----------------------------------------------------------------------------------------
def value_stats(ev, idx: np.ndarray, methods: list[str]) -> list[list[Any]]:
    """What the four normalisations (§2.4) do to the mean-pooled maps' values, as medians over methods."""
    rows = []
    for strategy in [None, *NORMALISATIONS.names()]:
        per = []
        for method in methods:
            a = pool_channels(ev.attributions(method, idx), "mean")
            v = (a if strategy is None else normalise(a, strategy)).abs().reshape(len(a), -1).double()
            per.append([float(v.median()), float(torch.quantile(v.reshape(-1), 0.99)), float(v.max()),
                        100 * float((v > 1).double().mean()), 100 * float((v < 0.05).double().mean()),
                        float(v.amax(1).min()), float(v.amax(1).max())])
        p = np.asarray(per)
        med = np.median(p, axis=0)
        spread = p[:, 1].max() / p[:, 1].min() if p[:, 1].min() > 0 else float("inf")
        rows.append(["none (raw values)" if strategy is None else NORM_LABEL.get(strategy, strategy),
                     sig(med[0]), sig(med[1]), sig(med[2]), sig(med[3], 2), sig(med[4], 2),
                     f"{sig(med[5])} – {sig(med[6])}", sig(spread)])
    return rows


def _normalising_explainer(strategy: str, reference: torch.Tensor):
    """Wrap a re-explanation function so re-explained maps get the same normalisation: per map for the
    per-explanation strategies, by the evaluated set's constant for the dataset strategies."""
    scaled = normalise(reference, strategy)
    const = float(reference.abs().amax() / scaled.abs().amax()) if scaled.abs().amax() > 0 else 1.0

    def wrap(fn):
        def explain(x, target, ctx=None):
            out = fn(x, target, ctx)
            return normalise(out, strategy) if strategy.startswith("per_map") else out / const
        return explain
    return wrap


def normalisation_invariance(ev, idx: np.ndarray, methods: list[str], metrics: list[str]
                             ) -> tuple[list[list[Any]], dict[str, list[str]]]:
    """Per metric and normalisation: the largest relative change of a per-sample score against the raw maps'
    score, over ``methods`` (measured by re-scoring the normalised maps). Also metric -> the normalisations
    that change it."""
    change = {(m, s): 0.0 for m in metrics for s in NORMALISATIONS.names()}
    for method in methods:
        a = ev.attributions(method, idx)
        for metric in metrics:
            reexplain = METRICS.get(metric).needs == "reexplain"
            raw = score_maps(ev, idx, method, a, metric)
            for s in NORMALISATIONS.names():
                wrap = _normalising_explainer(s, a) if reexplain else None
                new = score_maps(ev, idx, method, normalise(a, s), metric, explain_wrap=wrap)
                ok = np.isfinite(raw) & np.isfinite(new)
                if ok.any():
                    rel = np.abs(new[ok] - raw[ok]) / np.maximum(np.abs(raw[ok]), 1e-12)
                    change[(metric, s)] = max(change[(metric, s)], float(rel.max()))
    rows, changed = [], {}
    for metric in metrics:
        cells = [change[(metric, s)] for s in NORMALISATIONS.names()]
        changed[metric] = [s for s, c in zip(NORMALISATIONS.names(), cells) if c >= INVARIANT_TOL]
        rows.append([metric_label(metric)]
                    + [("invariant" if c < INVARIANT_TOL else f"changes (up to {sig(100 * c, 2)} %)") for c in cells])
    return rows, changed


def aggregate_normalisations(ev, idx: np.ndarray, metrics: list[str], mu: pd.DataFrame) -> tuple[list, dict]:
    """The aggregated explanation built with each of the four normalisations, scored on ``metrics``; its rank
    among the single methods (by their means in ``mu``) per metric, averaged."""
    params = method_params(ev, AGGREGATE)
    maps = [ev.attributions(m, idx) for m in components(AGGREGATE, params)]
    singles = [m for m in mu.index if not is_composite(m)]
    rows, mean_rank = [], {}
    for s in NORMALISATIONS.names():
        agg = combine(maps, s)
        cells, ranks = [], []
        for metric in metrics:
            v = score_maps(ev, idx, AGGREGATE, agg, metric)
            cells.append(pm(v))
            col = mu.loc[singles, [metric]].copy()
            col.loc["__agg__"] = mean_sem(v)[0]
            ranks.append(float(metric_ranks(col).loc["__agg__", metric]))
        mean_rank[s] = float(np.mean(ranks))
        rows.append([NORM_LABEL.get(s, s) + (" (the study's default)" if s == params["normalisation"] else "")]
                    + cells + [sig(mean_rank[s])])
    return rows, mean_rank


def figures(r, rank, mu, cells, ranks, agreement, panels, pool, order) -> None:
    """The study's figure data (kinds and schemas in ``studies.base``)."""
    t = rank.table
    r.figure("mrr", "Monte Carlo MRR per method", "bar",
             {"x": order, "series": {"E[MRR]": t["mrr"].tolist()},
              "error": {"E[MRR]": ((t["mrr_hi"] - t["mrr_lo"]) / 2).tolist()},
              "interval": [[a, b] for a, b in zip(t["mrr_lo"], t["mrr_hi"])], "x_title": "method",
              "y_title": "expected mean reciprocal rank"}, caption="error bars: half the width of the 95% interval")
    inv, eqv = "augmentation_invariant", "augmentation_equivariant"
    r.figure("robustness", "Robustness to invariant vs equivariant augmentations", "bar",
             {"x": order, "series": {"invariant (colour)": [mu.loc[m, inv] for m in order],
                                     "equivariant (geometry)": [mu.loc[m, eqv] for m in order]},
              "error": {"invariant (colour)": [mean_sem(cells.get((m, inv), []))[1] for m in order],
                        "equivariant (geometry)": [mean_sem(cells.get((m, eqv), []))[1] for m in order]},
              "x_title": "method", "y_title": "AUC(similarity) / AUC(probability)"}, caption="mean ± SEM over images")
    r.figure("maps", "One grain image, its lesion and the explanations", "images", {"panels": panels, "cols": 4},
             caption="mean-pooled maps, each scaled by its max |value|, 2×2 downsampled; lesion mask outlined")
    r.figure("metric_ranks", "Rank of each method per metric (1 = best, on the means)", "heatmap",
             {"x": [metric_label(c) for c in ranks.columns], "y": order, "z": ranks.loc[order].to_numpy().tolist(),
              "title": "rank"})
    r.figure("metric_agreement", "Agreement of the metrics (Spearman ρ of the method means)", "heatmap",
             {"x": list(agreement.columns), "y": list(agreement.index), "z": agreement.to_numpy().tolist(),
              "title": "ρ"})
    r.figure("pooling", "Similarity of mean- and max-pooled maps", "bar",
             {"x": order, "series": {"Pearson r": [mean_sem(pool["sims"][m]["pearson"])[0] for m in order],
                                     "Spearman ρ": [mean_sem(pool["sims"][m]["spearman"])[0] for m in order]},
              "x_title": "method", "y_title": "similarity"})


# -- figure data ------------------------------------------------------------------------------------------
def _down(z: np.ndarray, f: int, how: str = "mean") -> np.ndarray:
    h, w = (z.shape[0] // f) * f, (z.shape[1] // f) * f
    blocks = z[:h, :w].reshape(h // f, f, w // f, f)
    return blocks.max(axis=(1, 3)) if how == "max" else blocks.mean(axis=(1, 3))


def image_panels(ev, i: int, methods: list[str], factor: int = 2) -> list[dict[str, Any]]:
    """The grain image (grey), and each method's mean-pooled map, downsampled by ``factor``, mask outlined."""
    x = ev.ds.X[i]
    mask = ev.ds.ground_truth.masks[i].astype(float)
    outline = _down(mask, factor, "max").astype(int).tolist()
    panels = [{"title": f"{ev.ds.sample_ids[i]} ({ev.ds.class_names[ev.ds.y[i]]})", "kind": "image",
               "z": np.round(_down(x.mean(0), factor), 3).tolist(), "outline": outline}]
    for m in methods:
        a = pool_channels(ev.attributions(m, np.asarray([i])), "mean")[0].cpu().numpy()
        a = _down(a, factor)
        scale = np.abs(a).max() or 1.0
        panels.append({"title": EXPLAINERS.get(m).label, "kind": "map", "z": np.round(a / scale, 3).tolist(),
                       "outline": outline})
    return panels
