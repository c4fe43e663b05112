"""What the IG study could not do (docs/protocols/ig-expression.md §1): the same protocol on real data (rank
stability across training seeds, overlap with marker genes) and IG against the other explainers on the same
simulated data."""
from __future__ import annotations

import numpy as np
import torch

from .. import genes
from ..data import DATASETS, load_dataset
from ..explainers import EXPLAINERS, explain
from ..explainers.context import make_context
from .expression_protocol import (PG_METRICS, adaptive_ig, explained_samples, groups_for, ig_baseline, l2_normalised,
                                  protocol_scores, studied, train_arch)

TOP_K = 50
# gradient-family explainers that scale to 15,000 genes (perturbation ones would need 1,500+ forwards per sample)
COMPARED = ("saliency", "input_x_gradient", "smoothgrad", "deeplift", "gradient_shap", "guided_backprop",
            "lrp_epsilon_plus", "random")


def _explain_correct(ds, model, seed: int, max_samples: int, cfg: dict):
    classes, base, knob = studied(ds)
    idx = explained_samples(ds, model, classes, max_samples, seed)
    ctx = make_context(model, ds, seed=seed, output="probability")
    x, y = torch.as_tensor(ds.X[idx]), torch.as_tensor(ds.y[idx])
    return ctx, idx, adaptive_ig(ctx, x, y, ig_baseline(ctx, x, base, knob), tol_pp=cfg["tol_pp"],
                                 start=cfg["start_steps"])


def real_data(r, cfg: dict, seed0: int) -> None:
    """Per real dataset: K seeds of its default model; Spearman stability of the class rankings across seeds;
    overlap of each class's top-50 genes with the bundled marker genes (hypergeometric p)."""
    stab_rows, marker_rows = [], []
    for name in cfg["real"]:
        ds = load_dataset(name)
        arch = DATASETS.get(name).default_arch
        recipe = {"epochs": cfg["epochs"]} if cfg.get("epochs") else {}
        scores, accs, steps = [], [], []
        for s in range(cfg["real_seeds"]):
            model, rep = train_arch(ds, arch, seed0 + s, None, **recipe)
            accs.append(100 * rep.test_balanced_accuracy)
            ctx, idx, ig = _explain_correct(ds, model, seed0 + s, cfg["max_samples"] or 0, cfg)
            steps.append(float(np.median(ig.steps)))
            oriented = genes.oriented(ig.attributions, ds.y[idx], ctx.n_outputs)
            scores.append(genes.class_scores(oriented, ds.y[idx], ds.n_classes))
        S = np.stack(scores)  # (K, C, G)
        rho = [genes.spearman_matrix(S[:, c]) for c in range(ds.n_classes) if np.isfinite(S[:, c]).all()]
        off = [m[np.triu_indices(len(m), 1)] for m in rho]
        topk = [genes.topk_overlap_matrix({str(k): S[k, c] for k in range(len(S))}, TOP_K).to_numpy()
                for c in range(ds.n_classes) if np.isfinite(S[:, c]).all()]
        top_off = [m[np.triu_indices(len(m), 1)] for m in topk]
        stab_rows.append([name, arch, len(S), float(np.mean(accs)), float(np.median(steps)),
                          float(np.nanmean(np.concatenate(off))) if off and len(S) > 1 else None,
                          100 * float(np.mean(np.concatenate(top_off))) if top_off and len(S) > 1 else None])
        truth = genes.truth_sets(ds)
        mean_scores = np.nanmean(S, 0)
        if not truth:
            marker_rows.append([name, "—", 0, None, None, None, None, "no marker genes bundled with this dataset"])
        for c, known in truth.items():
            ov = genes.overlap(genes.order(mean_scores[c])[:TOP_K], known, ds.X.shape[1])
            marker_rows.append([name, ds.class_names[c], ov["n_known"], ov["hits"], 100 * ov["precision"],
                                ov["expected"], ov["p_value"], ""])
    r.table("real_stability", "Real data: how stable are IG gene rankings across training seeds?",
            ["dataset", "model", "seeds", "balanced accuracy (%)", "median IG steps",
             "Spearman between seeds (mean over classes and pairs)", f"top-{TOP_K} genes shared between seeds (%)"],
            stab_rows, "Not in the study (it used TCGA, which is not bundled). Rankings: per class, the mean of the "
                       "L2-normalised IG attributions of the correctly classified test samples.")
    r.table("real_markers", f"Real data: overlap of each class's top-{TOP_K} IG genes with marker genes",
            ["dataset", "class", "markers", "hits", "precision (%)", "expected by chance", "hypergeometric p",
             "note"], marker_rows,
            "Rankings averaged over the seeds. Markers are literature sets (weak ground truth), not exact biomarkers.")
    if marker_rows and any(row[3] for row in marker_rows if row[3] is not None):
        best = max((row for row in marker_rows if row[3] is not None), key=lambda row: row[4])
        r.summary.append(f"On real data, IG's top-{TOP_K} genes of class {best[1]} ({best[0]}) contain {best[3]} of "
                         f"its {best[2]} marker genes (p = {best[6]:.1e}).")


def compare_explainers(r, cfg: dict, seed: int) -> None:
    """One LR and one MLP on the comparison dataset; IG (adaptive) against gradient-family explainers under the
    same protocol (same samples, L2 normalisation, prediction gaps and feature agreement)."""
    ds = load_dataset(cfg["compare_dataset"])
    rows = []
    recipe = {"epochs": cfg["epochs"]} if cfg.get("epochs") else {}
    for arch in ("lr", "mlp"):
        model, _ = train_arch(ds, arch, seed, None, **recipe)
        ctx, idx, ig = _explain_correct(ds, model, seed, cfg["compare_n"], cfg)
        _, base, knob = studied(ds)
        groups = groups_for(ds, idx, head_convention=True)
        x, y = torch.as_tensor(ds.X[idx]), torch.as_tensor(ds.y[idx])
        maps = {"integrated_gradients": ig.attributions}
        for m in COMPARED:
            if m in EXPLAINERS:
                maps[m] = explain(ctx, x, y, m, explain_batch=64).attributions
        for m, a in maps.items():
            s = protocol_scores(ds, ctx, idx, l2_normalised(a), groups, (base, knob), cfg["n_random"],
                                diffusion=False, pg_metrics=PG_METRICS[:4])  # PGR ignores the explainer
            rows.append([m, arch, s["fa_local"], s["fa_global"], s["pgi_local"], s["pgu_local"], s["pgi_global"],
                         s["pgu_global"]])
    r.table("explainers", f"IG against other explainers on {cfg['compare_dataset']} (%, same protocol)",
            ["method", "model", "FA local", "FA global", "PGI local", "PGU local", "PGI global", "PGU global"], rows,
            f"{len(idx)} correctly classified test samples per model; gradient-family methods only (perturbation "
            "methods would need thousands of forwards per sample at this width).")
    for arch in ("lr", "mlp"):
        sub = [row for row in rows if row[1] == arch]
        best = max(sub, key=lambda row: row[2])
        ig_row = next(row for row in sub if row[0] == "integrated_gradients")
        rank = 1 + sum(row[2] > ig_row[2] for row in sub)
        r.summary.append(f"{arch.upper()} on {cfg['compare_dataset']}: IG ranks {rank} of {len(sub)} explainers by "
                         f"local feature agreement ({ig_row[2]:.1f} %; best {best[0]} {best[2]:.1f} %).")
    r.figure("explainers", f"Feature agreement by explainer on {cfg['compare_dataset']}", "bar", {
        "x": [row[0] for row in rows if row[1] == "lr"],
        "series": {f"{arch.upper()} {k}": [row[i] for row in rows if row[1] == arch]
                   for arch in ("lr", "mlp") for k, i in (("FA local", 2), ("FA global", 3))},
        "x_title": "explainer", "y_title": "feature agreement (%)"})
