"""§2: explainers on grain-like images (Tětková, Dreier, Malm & Hansen, PLOS ONE 2025).

On the simulated grain data with the shipped SimpleNet-style CNN: every applicable explainer (full mode) is
scored with the metrics the study names (robustness to invariant and equivariant augmentations, pixel flipping,
IROF, Max/Avg-Sensitivity, entropy complexity, sparseness, ROC-AUC and relevance mass accuracy against the
lesion masks), the methods are ranked by the Monte Carlo mean reciprocal rank, and the effects of channel
pooling (mean vs max) and of the four normalisations are measured. The verdict on each of the study's claims
is computed from the numbers.

Options (``--set key=value``): ``n`` (samples), ``n_robust`` (samples for the metrics that re-explain:
augmentations and sensitivities), ``methods`` (list or "all"), ``aggregate_methods`` (comma list),
``n_values`` (augmentation grid), ``nr_samples`` (sensitivity draws), ``draws`` (Monte Carlo), ``classes``,
``pool_metrics``, ``norm_methods``, ``norm_metrics``, ``method_params`` / ``metric_params`` (dicts),
``figure_methods``, ``store`` (a results database to keep; default a fresh temporary one), ``device`` (where the
maps and scores are computed: cpu, the default, cuda, cuda:N or auto).
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from ..errors import XaiError
from ..explainers import AGGREGATE, RANDOM, components, is_control, plain_methods
from ..metrics import METRICS
from ..metrics.augment import EQUIVARIANT, INVARIANT
from ..progress import Progress
from ..ranking import kendalls_w, mc_mrr, metric_agreement
from ..ranking_words import floor_sentence
from ..runner import EvalConfig, Evaluation, ranking_input
from ..store import ResultStore
from . import grain_tables as gt
from .base import StudyContext, register_study, study_device

STUDY_METRICS = ["augmentation_invariant", "augmentation_equivariant", "pixel_flipping", "irof", "max_sensitivity",
                 "avg_sensitivity", "complexity", "sparseness", "roc_auc", "relevance_mass_accuracy"]
REEXPLAIN = {"augmentation_invariant", "augmentation_equivariant", "max_sensitivity", "avg_sensitivity"}
CHEAP_POOL_METRICS = ["roc_auc", "relevance_mass_accuracy", "pixel_flipping", "complexity", "sparseness"]
QUICK = {"n": 4, "n_robust": 4, "n_values": 2, "nr_samples": 3, "draws": 10_000,
         "methods": ["saliency", "input_x_gradient", "guided_backprop", "lrp_epsilon_plus_flat",
                     "lrp_epsilon_gamma_box", "random", "aggregate"],
         "aggregate_methods": "saliency,input_x_gradient,guided_backprop,lrp_epsilon_plus_flat",
         "norm_methods": ["lrp_epsilon_gamma_box", "saliency"], "method_params": {},
         "metric_params": {"irof": {"n_segments": 50}}, "pool_metrics": CHEAP_POOL_METRICS[:2] + CHEAP_POOL_METRICS[3:],
         "norm_metrics": CHEAP_POOL_METRICS[:2] + CHEAP_POOL_METRICS[3:] + ["max_sensitivity"]}
# every metric on all 32 images, the predecessor code's 10-value augmentation grid, 10 sensitivity draws per image
# (Quantus' default is 200; the report states each score's interval): about 6x the re-explaining work of the
# earlier 12 images x 4 values x 5 draws, about 3 hours of one core here (docs/studies/RUNS.md)
FULL = {"n": 32, "n_robust": 32, "n_values": 10, "nr_samples": 10, "draws": 10_000, "methods": "all",
        "aggregate_methods": None, "norm_methods": ["lrp_epsilon_gamma_box", "saliency", "guided_backprop"],
        # the predecessor code's captum defaults for the sampling methods (LIME 50 samples, KernelSHAP 25), and a
        # coarser occlusion stride: the re-explaining metrics call them dozens of times per image
        "method_params": {"lime": {"n_samples": 50}, "kernel_shap": {"n_samples": 25}, "occlusion": {"stride": 8}}}
COMMON = {"classes": [1, 2], "pool_metrics": CHEAP_POOL_METRICS,
          "norm_metrics": CHEAP_POOL_METRICS + ["max_sensitivity"],
          "figure_methods": ["saliency", "guided_backprop", "integrated_gradients", "lrp_epsilon_plus_flat",
                             "lrp_epsilon_gamma_box", "aggregate"], "metric_params": {}, "store": None,
          "device": "cpu"}  # where the maps and scores are computed: cpu, cuda, cuda:N or auto
# Arras et al.'s relevance mass accuracy (CLEVR-XAI, cited by the poster) counts positive relevance only; with signed
# maps the ratio is unbounded when the positive and negative mass nearly cancel
STUDY_METRIC_PARAMS = {"relevance_mass_accuracy": {"positive_only": True}}
FIG_METHODS_MAX = 6
LRP_EPF = "lrp_epsilon_plus_flat"


def options(ctx: StudyContext) -> dict[str, Any]:
    o = {**COMMON, **(QUICK if ctx.quick else FULL)}
    unknown = set(ctx.options) - set(o)
    if unknown:
        raise XaiError(f"unknown option(s) of grain-explainers: {', '.join(sorted(unknown))}; "
                       f"valid: {', '.join(sorted(o))}")
    o.update(ctx.options)
    o["n_robust"] = min(int(o["n_robust"]), int(o["n"]))
    o["device"] = study_device(o["device"])  # CUDA asked for on a machine without it: one line, before any work
    return o


def _grid_words(n_values: int) -> str:
    """How our augmentation grid compares with the predecessor code's 10 values."""
    return ("on the same grid of 10 values" if n_values == 10 else
            f"on a grid of {n_values} values instead of 10")


def _config(o: dict[str, Any], seed: int, metrics: list[str], n: int):
    mp = {"augmentation_invariant": {"n_values": o["n_values"]},
          "augmentation_equivariant": {"n_values": o["n_values"]},
          "max_sensitivity": {"nr_samples": o["nr_samples"]}, "avg_sensitivity": {"nr_samples": o["nr_samples"]},
          **STUDY_METRIC_PARAMS}
    for k, v in o["metric_params"].items():
        mp[k] = {**mp.get(k, {}), **v}
    meth = {k: dict(v) for k, v in o["method_params"].items()}
    if o["aggregate_methods"]:
        meth.setdefault(AGGREGATE, {})["methods"] = o["aggregate_methods"]
    return EvalConfig(dataset="grain", methods=o["methods"], metrics=metrics, n=n, classes=list(o["classes"]),
                      seed=seed, method_params=meth, metric_params=mp, device=o["device"])


@register_study("grain-explainers", title="Explainers on grain-like images", section="§2",
                paper="Tětková, Dreier, Malm & Hansen, 'Challenges in explaining deep learning models for data with "
                      "biological variation' (PLOS ONE 2025)")
def run(ctx: StudyContext) -> None:
    o = options(ctx)
    if o["store"]:
        return _run(ctx, o, ResultStore(Path(o["store"])))
    with tempfile.TemporaryDirectory(prefix="grain-study-") as tmp:
        _run(ctx, o, ResultStore(Path(tmp) / "results.sqlite"))


def _run(ctx: StudyContext, o: dict[str, Any], store) -> None:
    r = ctx.result
    with store:
        ctx.step(0.0, "loading the grain data and the CNN")
        with ctx.timed("setup"):
            robust = [m for m in STUDY_METRICS if m in REEXPLAIN]
            cheap = [m for m in STUDY_METRICS if m not in REEXPLAIN]
            ev = Evaluation(_config(o, ctx.seed, cheap, o["n"]), store)
            plans = [ev.plan()]
            ev.config = _config(o, ctx.seed, robust, o["n_robust"])
            plans.append(ev.plan())
            methods, idx = plans[0].methods, plans[0].sample_idx
        done, total = set(), len(methods) + sum(len(p.methods) * len(p.metrics) for p in plans)

        def progress(e: Progress) -> None:
            if e.finished:
                done.add((e.method, e.metric))
            ctx.step(0.02 + 0.75 * min(1.0, len(done) / total), f"{e.method} / {e.metric or 'explain'} "
                                                                   f"{e.done}/{e.total}")
        with ctx.timed("explain"):
            for m in methods:
                ev.attributions(m, idx, progress)
        with ctx.timed("metrics"):
            frames = []
            for p in plans:
                ev.config = p.config
                frames.append(ev.run(p, progress))
        scores = pd.concat(frames, ignore_index=True)
        ctx.step(0.78, "ranking (Monte Carlo MRR)")
        with ctx.timed("ranking"):
            ranked = ranking_input(scores)
            rank = mc_mrr(ranked, n_draws=int(o["draws"]), seed=ctx.seed, missing="worst")
            try:
                w = kendalls_w(ranked)
            except XaiError as e:
                w = {"W": float("nan"), "note": str(e)}
            agreement = metric_agreement(ranked)
        cells = gt.score_matrix(scores)
        order = list(rank.table.index)
        mu = pd.DataFrame({k: [gt.mean_sem(cells.get((m, k), []))[0] for m in order] for k in STUDY_METRICS},
                          index=order)
        ranks_on_means = gt.metric_ranks(mu)
        ctx.step(0.80, "channel pooling: mean vs max")
        with ctx.timed("pooling"):
            pool = gt.pooling_effect(ev, idx, methods, list(o["pool_metrics"]))
        ctx.step(0.88, "the four normalisations")
        with ctx.timed("normalisation"):
            norm_methods = [m for m in o["norm_methods"] if m in methods]
            values = gt.value_stats(ev, idx, methods)
            invariance, changed = gt.normalisation_invariance(ev, plans[1].sample_idx, norm_methods,
                                                              list(o["norm_metrics"]))
            agg_rows, agg_rank = (gt.aggregate_normalisations(ev, idx, list(o["pool_metrics"]), mu)
                                  if AGGREGATE in methods else ([], {}))
        ctx.step(0.97, "writing tables, claims and figures")
        with ctx.timed("report"):
            fig_methods = ([m for m in o["figure_methods"] if m in methods][:FIG_METHODS_MAX]
                           or methods[:FIG_METHODS_MAX])
            panels = gt.image_panels(ev, int(idx[0]), fig_methods)
            prob = gt.augmentation_probability(ev, plans[1].sample_idx, int(o["n_values"]))
            aug = {m: {k: gt.augmentation_similarity(ev, m, k, plans[1].sample_idx, list(ev.config.metric_params
                       .get(k, {}).get("augmentations") or _augs(k)), int(o["n_values"])) for k in
                       ("augmentation_invariant", "augmentation_equivariant")} for m in methods}
            gt.protocol(r, o, ev, plans, methods, rank, STUDY_METRICS)
            _tables(r, o, cells, rank, ranks_on_means, aug, prob, pool, values, invariance, agg_rows, order, plans)
            verdicts = _claims(r, mu, ranks_on_means, rank, w, ev, aug)
            _compare(r, o, verdicts, mu, pool, methods, agg_rank, prob, ev)
            gt.figures(r, rank, mu, cells, ranks_on_means, agreement, panels, pool, order)
            _summary(r, verdicts, rank, pool, w, changed, methods, agg_rank)
            _tolerances(r, order)
        ctx.step(1.0, "done")


def _tolerances(r, order: list[str]) -> None:
    """What another machine may move (docs/determinism.md), measured with other CPU kernels on one machine."""
    if RANDOM not in order:
        return
    why = ("the random control seeds its noise with the bytes of the input it explains; the re-explaining metrics "
           "explain augmented and perturbed copies whose last bits depend on the CPU's float kernels, so another "
           "machine draws other noise for them (a noise statistic over a few images)")
    for t in ("scores", "augmentation"):
        r.tolerate(f"tables/{t}/rows/{RANDOM}", 0.5, 0.1, why)
    i = order.index(RANDOM)
    for part in ("series", "error"):
        for name in ("invariant (colour)", "equivariant (geometry)"):
            r.tolerate(f"figures/robustness/data/{part}/{name}[{i}]", 0.5, 0.1, why)
    for path in ("figures/mrr", "tables/ranking"):
        r.tolerate(path, 1e-2, 1e-3, "E[MRR] is a Monte Carlo mean over draws of every method's scores, the "
                                     "random control's among them")


def _augs(metric: str) -> tuple[str, ...]:
    return tuple(METRICS.get(metric).params_for("image")["augmentations"])


def _tables(r, o, cells, rank, ranks, aug, prob, pool, values, invariance, agg_rows, order, plans) -> None:
    n, nr = len(plans[0].sample_idx), len(plans[1].sample_idx)
    pf = np.concatenate([v for (m, k), v in cells.items() if k == "pixel_flipping"])
    binary = 100 * float(np.mean((pf < 0.01) | (pf > 0.99))) if np.isfinite(pf).any() else 0.0
    why = (": the softmax output saturates, so an image's class either flips at the first step or survives the first "
           "20 % of the pixels whatever the order, and many methods tie" if binary >= 50 else "")
    r.table("scores", "Scores per method (mean ± SEM over images)",
            ["method"] + [gt.metric_label(m) for m in STUDY_METRICS],
            gt.summary_rows(cells, order, STUDY_METRICS),
            note=f"↑ higher is better, ↓ lower is better. {n} images; the augmentation and sensitivity columns use "
                 f"{nr}. Methods in the order of the ranking below. {gt.sig(binary, 2)} % of the per-image pixel "
                 f"flipping scores are below 0.01 or above 0.99{why}.")
    best = {m: [gt.metric_label(k) for k in ranks.columns if ranks.loc[m, k] == 1] for m in order}
    t = rank.table
    r.table("ranking", "Monte Carlo MRR ranking", ["rank", "method", "E[MRR]", "95% interval", "P(rank 1)",
                                                   "mean rank over draws", "metrics on which it is best"],
            [[int(t.loc[m, "rank"]), m, gt.sig(t.loc[m, "mrr"]),
              f"{gt.sig(t.loc[m, 'mrr_lo'])} – {gt.sig(t.loc[m, 'mrr_hi'])}",
              gt.sig(rank.rank_probabilities.loc[m, 1], 2),
              gt.sig(t.loc[m, "mean_rank"]), ", ".join(best[m]) or "—"] for m in order],
            note="Each of the draws perturbs every mean score within its standard error, ranks the methods per metric "
                 "and averages the reciprocal ranks over the metrics.")
    inv, eqv = "augmentation_invariant", "augmentation_equivariant"
    names = list(aug[order[0]][inv]) + list(aug[order[0]][eqv])
    rows = []
    for m in order:
        a, b = gt.mean_sem(cells.get((m, inv), []))[0], gt.mean_sem(cells.get((m, eqv), []))[0]
        rows.append([m, gt.pm(cells.get((m, inv), [])), gt.pm(cells.get((m, eqv), [])), gt.sig(a - b)]
                    + [gt.sig(v) for v in [*aug[m][inv].values(), *aug[m][eqv].values()]])
    r.table("augmentation", "Robustness to invariant (colour) vs equivariant (geometric) augmentations",
            ["method", "invariant score ↑", "equivariant score ↑", "invariant − equivariant"]
            + [f"r {a}" for a in names], rows,
            note="Score = AUC of the similarity curve / AUC of the probability curve over the augmentation grid "
                 "(§2.5a); "
                 "'r …' = mean Pearson correlation of the explanations over images and grid values per augmentation. "
                 f"Mean probability of the true class over the same grid: unaugmented {gt.sig(prob['none'])}, "
                 + ", ".join(f"{a} {gt.sig(p)}" for a, p in prob.items() if a != "none") + ".")
    r.table("pooling_methods", "Channel pooling: mean vs max, per method",
            ["method", "Pearson r of the pooled maps", "Spearman ρ", "mean |Δ rank| over metrics", "largest |Δ rank|"],
            pool["per_method"], note="Δ rank = rank among the methods with mean-pooled maps − with max-pooled maps, "
                                     "on the metrics " + ", ".join(o["pool_metrics"]) + ". A method whose channels are "
                                     "equal (r = 1) can still change rank when the other methods' scores move.")
    r.table("pooling_metrics", "Channel pooling: mean vs max, per metric",
            ["metric", "Spearman ρ of the method ranks", "methods whose rank changes", "mean |Δ score| (%)",
             "best with mean pooling", "best with max pooling"], pool["per_metric"])
    r.table("normalisation_values", "What the four normalisations do to the values (mean-pooled maps)",
            ["normalisation", "median |v|", "99th pct |v|", "max |v|", "% pixels |v| > 1", "% pixels |v| < 0.05",
             "per-map max, range over maps", "largest/smallest method 99th pct |v|"], values,
            note="Medians over methods. |v| > 1 is clipped by a colour scale on [−1, 1]; |v| < 0.05 looks blank on it. "
                 "The last column says how comparable the methods' scales are (1 = the same scale).")
    r.table("normalisation_metrics", "Are the metrics invariant to the normalisation? (measured)",
            ["metric"] + [gt.NORM_LABEL[s] for s in gt.NORM_LABEL], invariance,
            note="Largest relative change of a per-image score against the raw maps over the methods "
                 + ", ".join(o["norm_methods"])
                 + "; re-explaining metrics normalise the re-explained maps the same way.")
    if agg_rows:
        r.table("aggregate_normalisation", "The aggregated explanation under each normalisation",
                ["normalisation"] + [gt.metric_label(m) for m in o["pool_metrics"]]
                + ["mean rank among single methods"],
                agg_rows, note="The normalisation used to bring the component maps to a common scale before averaging "
                               "changes the aggregate itself, unlike single maps.")


def _claims(r, mu, ranks, rank, w, ev, aug) -> dict[str, Any]:
    out: dict[str, Any] = {}
    inv, eqv = mu["augmentation_invariant"], mu["augmentation_equivariant"]
    real = [m for m in mu.index if not is_control(m) and np.isfinite(inv[m]) and np.isfinite(eqv[m])]
    k = sum(inv[m] > eqv[m] for m in real)
    r_inv = float(np.nanmean([np.nanmean(list(aug[m]["augmentation_invariant"].values())) for m in real] or [np.nan]))
    r_eqv = float(np.nanmean([np.nanmean(list(aug[m]["augmentation_equivariant"].values())) for m in real] or [np.nan]))
    if not real:
        v = "not tested"
    else:
        v = ("agrees" if k >= 0.8 * len(real) and inv[real].mean() > eqv[real].mean() else
             "partly" if k > len(real) / 2 or inv[real].mean() > eqv[real].mean() else "differs")
        if v == "agrees" and not r_inv > r_eqv:  # the raw similarities say otherwise
            v = "partly"
    out["robust"] = (v, k, len(real), r_inv, r_eqv)
    r.claim("Explanations are more robust to invariant augmentations (brightness, hue, saturation) than to "
            "equivariant ones (rotation, translation, scale)", v,
            f"by the study's score (similarity AUC / probability AUC) invariant > equivariant for {k} of {len(real)} "
            f"methods (random control excluded); mean over methods {gt.sig(inv[real].mean())} vs "
            f"{gt.sig(eqv[real].mean())}. The raw similarity of the explanations, without dividing by the prediction's "
            f"stability, is {gt.sig(r_inv)} (colour) vs {gt.sig(r_eqv)} (geometry) (mean Pearson r)."
            if real else "no robustness scores")
    n_metrics = ranks.shape[1]
    firsts = (ranks == 1).sum(axis=1)
    top = firsts.idxmax()
    v = "differs" if firsts.max() == n_metrics else "agrees"
    per_metric = "; ".join(f"{gt.metric_label(c)}: {ranks[c].idxmin()}" for c in ranks.columns)
    out["no_best"] = (v, int(firsts.max()), n_metrics, top)
    r.claim("No method is best on every metric", v,
            f"the most frequent winner, {top}, is best on {int(firsts.max())} of {n_metrics} metrics; Kendall's W of "
            f"the metrics = {gt.sig(w.get('W'))}. Best per metric: {per_metric}.")
    t = rank.table
    singles = plain_methods(list(t.index))
    if AGGREGATE in t.index and singles:
        comps = [c for c in components(AGGREGATE, gt.method_params(ev, AGGREGATE)) if c in t.index]
        agg, best_single = t.loc[AGGREGATE, "mrr"], t.loc[singles, "mrr"].max()
        beats = sum(t.loc[AGGREGATE, "mrr"] > t.loc[c, "mrr"] for c in comps)
        top_third = int(t.loc[AGGREGATE, "rank"]) <= math.ceil(len(t) / 3)
        v = ("agrees" if agg >= best_single else
             "partly" if (comps and beats == len(comps)) or top_third else "differs")
        mean_ranks = ranks.mean(axis=1)
        by_mean = int((mean_ranks < mean_ranks[AGGREGATE]).sum()) + 1
        out["aggregate"] = (v, int(t.loc[AGGREGATE, "rank"]), len(t), by_mean, float(mean_ranks[AGGREGATE]))
        r.claim("The mean of explanations ranks above single methods", v,
                f"the aggregate ranks {int(t.loc[AGGREGATE, 'rank'])} of {len(t)} by E[MRR] ({gt.sig(agg)}, P(rank 1) "
                f"= {gt.sig(rank.rank_probabilities.loc[AGGREGATE, 1], 2)}); best single method "
                f"{t.loc[singles, 'mrr'].idxmax()} {gt.sig(best_single)}; it beats {beats} of its {len(comps)} "
                f"components ({', '.join(comps)}). By its mean "
                f"rank over the metrics ({gt.sig(out['aggregate'][4])}) it would place {by_mean}"
                + (": MRR rewards being first on some metric, which an average of maps rarely is."
                   if by_mean < int(t.loc[AGGREGATE, "rank"]) else "."))
    else:
        out["aggregate"] = ("not tested", None, len(t), None, None)
        r.claim("The mean of explanations ranks above single methods", "not tested", "the aggregate was not evaluated")
    if LRP_EPF in t.index:
        pos, top_k = int(t.loc[LRP_EPF, "rank"]), max(3, math.ceil(len(t) / 4))
        overlap = t.loc[LRP_EPF, "mrr_hi"] >= t["mrr_lo"].iloc[0]
        v = "agrees" if pos <= top_k else "partly" if pos <= len(t) / 2 or overlap else "differs"
        out["lrp"] = (v, pos, len(t))
        r.claim("LRP EpsilonPlusFlat is among the best methods", v,
                f"LRP EpsilonPlusFlat ranks {pos} of {len(t)} by E[MRR] ({gt.sig(t.loc[LRP_EPF, 'mrr'])}, 95% "
                f"{gt.sig(t.loc[LRP_EPF, 'mrr_lo'])}–{gt.sig(t.loc[LRP_EPF, 'mrr_hi'])}; the top method {t.index[0]} "
                f"has {gt.sig(t['mrr'].iloc[0])}); 'among the best' = top {top_k}.")
    else:
        out["lrp"] = ("not tested", None, len(t))
        r.claim("LRP EpsilonPlusFlat is among the best methods", "not tested", "LRP EpsilonPlusFlat was not evaluated")
    return out


def _data_note(ev) -> str:
    n_conv = sum(isinstance(m, nn.Conv2d) for m in ev.model.modules())
    size = "×".join(str(d) for d in ev.ds.input_shape[1:])
    return (f"our images are simulated {size} grain-like kernels with exact lesion masks, not FOSS images with expert "
            f"annotations, and our CNN is a small SimpleNet-style net ({n_conv} conv layers, "
            f"{ev.ds.n_classes} classes)")


def _compare(r, o, v, mu, pool, methods, agg_rank, prob, ev) -> None:
    data_note = _data_note(ev)
    g = "Qualitative findings (the paper has no numeric tables, §2.8)"
    rv, k, n, r_inv, r_eqv = v["robust"]
    p_inv, p_eqv = np.mean([prob[a] for a in INVARIANT]), np.mean([prob[a] for a in EQUIVARIANT])
    colour = (": in our simulated kernels colour carries the lesion signal, so colour changes move both the prediction "
              "and the explanation" if p_inv < p_eqv and r_inv < r_eqv else "")
    r.compare("methods more robust to invariant than to equivariant augmentations", k / n if n else None, None,
              unit="share of methods", verdict=rv, group=g,
              explanation=f"The poster states it without numbers; {data_note}; the augmentations follow the "
                          f"predecessor code's set and ranges in float torch instead of uint8 imgaug, "
                          f"{_grid_words(int(o['n_values']))}. The study's score divides the similarity by the "
                          f"prediction's stability; the raw similarity alone is {gt.sig(r_inv)} (colour) vs "
                          f"{gt.sig(r_eqv)} (geometry), while the true-class probability falls from "
                          f"{gt.sig(prob['none'])} to {gt.sig(p_inv)} under colour and to {gt.sig(p_eqv)} under "
                          f"geometric changes{colour}.")
    nv, best, nm, _ = v["no_best"]
    r.compare("metrics won by the most frequent winner", best, None, unit=f"of {nm} metrics", verdict=nv, group=g,
              explanation=f"The paper reports no per-metric table; our metric set is the one the poster names, with "
                          f"cheaper settings (sensitivity {o['nr_samples']} draws instead of Quantus' 200).")
    av, pos, m, by_mean, _ = v["aggregate"]
    r.compare("rank of the mean of explanations by E[MRR]", pos, None, unit=f"of {m} methods", verdict=av, group=g,
              explanation=("The poster gives no rank; our aggregate is an inferred reconstruction (§2.7): the mean of "
                           "a few gradient and LRP maps after per-map 99th-percentile normalisation. Ranked by mean "
                           f"rank over the metrics instead of MRR it would place {by_mean}; the normalisation used to "
                           "combine the maps moves its mean rank among the single methods ("
                           + ", ".join(f"{gt.NORM_LABEL[s]} {gt.sig(x)}" for s, x in agg_rank.items()) + ").")
              if pos else "The aggregate was not evaluated in this run.")
    lv, pos, m = v["lrp"]
    r.compare("rank of LRP EpsilonPlusFlat by E[MRR]", pos, None, unit=f"of {m} methods", verdict=lv, group=g,
              explanation=f"The claim comes from a third-party summary, not a table; {data_note}, with BatchNorm "
                          f"merged into the convolutions and a global max pool before the classifier, both of which "
                          f"shape LRP.")
    real = [x for x in methods if not is_control(x)]
    auc = float(np.nanmean(mu.loc[real, "roc_auc"]))
    r.compare("mean ROC-AUC of the maps against the lesion masks", auc, None, verdict="agrees" if auc > 0.7 else
              "partly" if auc > 0.6 else "differs", group=g,
              explanation="The poster calls the explanations 'quite aligned' with human annotations; our masks are "
                          "the simulator's pixel-exact lesion regions (every pixel outside them is identical to the "
                          "healthy rendering, so the class evidence lies only inside), not an expert's outline.")
    pr = [gt.mean_sem(pool["sims"][x]["pearson"])[0] for x in methods]
    spread = float(np.nanmax(pr) - np.nanmin(pr))
    r.compare("spread across methods of the mean-vs-max pooling similarity (Pearson r, max − min)", spread, None,
              verdict="agrees" if spread > 0.1 else "differs", group=g,
              explanation="The poster says some methods are more robust to channel pooling than others without a "
                          "formula; ours (Pearson r of mean- and max-pooled maps) is an inferred reading (§2.5g).")
    r.compare("robustness to augmentation similar to ImageNet", None, None, verdict="not tested", group=g,
              explanation="We run no ImageNet model; the grain data are simulated.")


def _summary(r, v, rank, pool, w, changed, methods, agg_rank) -> None:
    t = rank.table
    rv, k, n, r_inv, r_eqv = v["robust"]
    wv = w.get("W", float("nan"))
    agree = "weakly" if wv < 0.5 else "moderately" if wv < 0.7 else "strongly" if wv >= 0.7 else "(W undefined)"
    overlap = sum(t["mrr_lo"].iloc[i] <= t["mrr_hi"].iloc[i + 1] for i in range(len(t) - 1))
    top3 = ", ".join(f"{m} ({gt.sig(t.loc[m, 'mrr'])})" for m in t.index[:3])
    s = [(f"The top three methods by Monte Carlo MRR are {top3}, and the random control ranks "
          f"{int(t.loc[RANDOM, 'rank']) if RANDOM in t.index else '—'} of {len(t)}; the 95% intervals of "
          f"{overlap} of the {len(t) - 1} pairs of neighbours in the ranking overlap." +
          (f" {floor}" if (floor := floor_sentence(rank, label=str)) else "")),
         (f"By the study's score, explanations were more robust to colour (invariant) than to geometric "
          f"(equivariant) augmentations for {k} of {n} methods ({rv}); the raw map similarity is {gt.sig(r_inv)} "
          f"under colour and {gt.sig(r_eqv)} under geometric changes (mean Pearson r)."),
         (f"No method wins every metric: the most frequent winner, {v['no_best'][3]}, is best on "
          f"{v['no_best'][1]} of {v['no_best'][2]}, and the metrics agree {agree} (Kendall's W = "
          f"{gt.sig(w.get('W'))}).")]
    if v["aggregate"][1]:
        s.append(f"The mean of explanations ranks {v['aggregate'][1]} of {v['aggregate'][2]} ({v['aggregate'][0]}); "
                 f"LRP EpsilonPlusFlat ranks {v['lrp'][1]} ({v['lrp'][0]}).")
    pr = {m: gt.mean_sem(pool["sims"][m]["pearson"])[0] for m in methods}
    lo = min(pr, key=lambda m: np.nan_to_num(pr[m], nan=9))
    same = [m for m in methods if pr[m] > 0.999]
    hi = max(pr, key=lambda m: np.nan_to_num(pr[m], nan=-9))
    alike = (f"identical maps (r > 0.999) for {', '.join(same)}" if same else
             f"the most similar maps for {hi} (r = {gt.sig(pr[hi])})")
    moved = {m: ss for m, ss in changed.items() if ss}
    norm = ("changed " + "; ".join(f"{m} (under {', '.join(gt.NORM_LABEL[x] for x in ss)})" for m, ss in moved.items())
            if moved else "changed none of the metrics tested")
    s.append(f"Mean and max channel pooling give {alike} and the least similar for {lo} (r = {gt.sig(pr[lo])}); "
             f"of the metrics re-scored after normalisation, the four "
             f"normalisations {norm}" + (f"; for the aggregated explanation the choice moves its mean rank among "
                                         f"single methods between {gt.sig(min(agg_rank.values()))} and "
                                         f"{gt.sig(max(agg_rank.values()))}." if agg_rank else "."))
    r.summary = s


