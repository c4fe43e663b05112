"""Study 1 (docs/protocols/ig-expression.md §1): Integrated Gradients on gene-expression classifiers with known
biomarkers.

Per dataset, architecture and training seed: train (the study's SGD recipe), explain the correctly classified
test samples of the studied classes with IG of the class probability (baseline: the training mean, i.e. 0 in
standardised space, for SIMU1/2; the class-1 training mean for SimuA–C, where only class 0 is explained),
with steps doubled per sample until completeness holds to ``tol_pp``; L2-normalise; score PGU/PGI (local,
global), PGR and feature agreement (local, global; with and without diffusion); mean ± std over seeds beside
§1.8. Then what the study could not do: the same models on real data (rank stability across seeds, overlap
with marker genes) and IG against other explainers on the same simulated data.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings

import numpy as np
import torch

from xai_core.models.training import evaluate_model

from ..data import cache_dir, load_dataset
from ..errors import XaiError
from ..explainers.context import make_context
from .base import DOCS, StudyContext, json_safe, register_study
from .claims import Claims
from .expression_protocol import (adaptive_ig, diffusion_for, explained_samples, groups_for, ig_baseline,
                                  l2_normalised, protocol_scores, studied, train_arch)
from .ig_extras import compare_explainers, real_data
from .ig_reference import ACCURACY, FA, FA_COLUMNS, LABELS, PAPER_DATASET, PG, PG_COLUMNS, sentence, verdict

# What a run computes. A long run is split into stages by running some parts (and some datasets) at a time: the
# model runs are cached one by one, so the last stage, with every part, reuses them (docs/studies/RUNS.md).
PARTS = ["models", "real", "compare"]
FULL = dict(parts=PARTS, datasets=["simu1", "simu2", "simuA", "simuB", "simuC"],
            archs=["lr", "mlp", "diffuse_lr", "diffuse_mlp"], seeds=10, diffuse_seeds=3, max_samples=0,
            n_random=30, pgr_samples=300, tol_pp=1.0, start_steps=16,
            real=["pbmc68k", "breast-cancer"], real_seeds=5, compare_dataset="simu1", compare_n=600)
QUICK = dict(parts=PARTS, datasets=["simu-small"], archs=["lr", "mlp", "diffuse_lr"], seeds=2, diffuse_seeds=1,
             max_samples=150,
             n_random=5, pgr_samples=100, tol_pp=1.0, start_steps=16, real=["breast-cancer"], real_seeds=2,
             compare_dataset="simu-small", compare_n=60, epochs=10)
SCORES = (*PG_COLUMNS, *FA_COLUMNS)
COMMITTED_RUNS = DOCS / "ig-expression" / "runs"  # the full study's model runs, committed stage by stage


def run_one(ds, arch: str, seed: int, cfg: dict, A: torch.Tensor | None) -> dict:
    t = {}
    t0 = time.perf_counter()
    recipe = {"epochs": cfg["epochs"]} if cfg.get("epochs") else {}
    model, report = train_arch(ds, arch, seed, A, **recipe)
    t["train"] = time.perf_counter() - t0
    acc = 100 * evaluate_model(model, ds.X[ds.test_idx], ds.y[ds.test_idx])["balanced_accuracy"]
    classes, base, knob = studied(ds)
    idx = explained_samples(ds, model, classes, cfg["max_samples"], seed)
    ctx = make_context(model, ds, seed=seed, output="probability")
    x = torch.as_tensor(ds.X[idx])
    y = torch.as_tensor(ds.y[idx])
    b = ig_baseline(ctx, x, base, knob)
    t0 = time.perf_counter()
    ig = adaptive_ig(ctx, x, y, b, tol_pp=cfg["tol_pp"], start=cfg["start_steps"])
    t["ig"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    groups = groups_for(ds, idx, head_convention=True)
    scores = protocol_scores(ds, ctx, idx, l2_normalised(ig.attributions), groups, (base, knob), cfg["n_random"],
                             pgr_samples=cfg["pgr_samples"])
    t["metrics"] = time.perf_counter() - t0
    return {"accuracy": acc, **scores, "n_explained": len(idx), "steps_median": float(np.median(ig.steps)),
            "steps_max": int(ig.steps.max()), "at_start": float(np.mean(ig.steps == cfg["start_steps"])),
            "error_max_pp": float(ig.error_pp.max()), "evals_per_sample": ig.evaluations / max(len(idx), 1),
            "seconds": t, "epochs_run": report.epochs_run}


_RUN_VERSION = 1  # bump when run_one's numbers change meaning
RUN_KNOBS = ("max_samples", "n_random", "tol_pp", "start_steps", "epochs", "pgr_samples")  # change a run's numbers


def is_full_run(dname: str, arch: str, seed: int, cfg: dict) -> bool:
    """Whether a model run belongs to the full study at its default settings, the runs committed beside its
    results. Splitting a run into stages (``parts``, ``datasets``, ``seeds``) keeps that; any other knob
    (``--set max_samples=1000``, a dataset or seed beyond the full study's) gives runs that stay in this
    machine's run cache only."""
    n = FULL["diffuse_seeds"] if arch.startswith("diffuse") else FULL["seeds"]
    return (all(cfg.get(k) == FULL.get(k) for k in RUN_KNOBS) and dname in FULL["datasets"]
            and arch in FULL["archs"] and seed < n)


def _run_key(dname: str, fingerprint: str, arch: str, seed: int, cfg: dict) -> str:
    """The run cache's key: dataset content, model, seed, the knobs that change the numbers, and the torch
    version and CPU kernels (a run from another torch or instruction set is recomputed, not reused)."""
    knobs = {k: cfg.get(k) for k in RUN_KNOBS}
    kernels = [torch.__version__, torch.backends.cpu.get_cpu_capability()]
    h = hashlib.sha256(json.dumps([_RUN_VERSION, fingerprint, knobs, kernels], sort_keys=True).encode())
    return f"{dname}__{arch}__s{seed}__{h.hexdigest()[:12]}"


def _run_path(key: str):
    return cache_dir() / "studies" / "ig-expression" / "runs" / f"{key}.json"


def _cached(key: str) -> dict | None:
    """The run from this machine's run cache, else from the committed runs of the full study
    (``docs/studies/ig-expression/runs``: a long run committed stage by stage resumes on another machine of the
    same kernels); checked when read (JSON with the accuracy, every score and the stage times). None when
    neither has it; a damaged or incomplete file is named in a warning and skipped (the run is computed again)."""
    for p in (_run_path(key), COMMITTED_RUNS / f"{key}.json"):
        if not p.exists():
            continue
        try:
            out = json.loads(p.read_text())
            ok = isinstance(out, dict) and all(k in out for k in ("accuracy", "n_explained", "seconds", *SCORES))
        except (OSError, ValueError):
            ok = False
        if ok:
            return out
        warnings.warn(f"the cached model run {p} is damaged or incomplete; it is computed again", stacklevel=2)
    return None


def _store(key: str, out: dict, commit: bool = False) -> None:
    """Write a run to the run cache and, for the full study at its defaults (``commit``, ``is_full_run``),
    beside its committed results."""
    for p in (_run_path(key), *([COMMITTED_RUNS / f"{key}.json"] if commit else [])):
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(json_safe(out), sort_keys=True))
        os.replace(tmp, p)  # stages run side by side: a reader sees no run or a whole one


def _ms(vals: list[float]) -> tuple[float, float | None]:
    v = np.asarray(vals, dtype=float)
    return float(np.nanmean(v)), (float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else None)


@register_study("ig-expression", title="Integrated Gradients on gene expression", section="§1",
                paper="Bontonou, Haget, Boldt, Lalande & Gripon, 'Studying limits of explainability by Integrated "
                      "Gradients for gene expression models' (arXiv 2303.11336)")
def run(ctx: StudyContext) -> None:
    cfg = {**(QUICK if ctx.quick else FULL), **ctx.options}
    for k in ("parts", "datasets", "archs", "real"):  # --set datasets=simu1,simu2 as well as a JSON list
        if isinstance(cfg[k], str):
            cfg[k] = [v.strip() for v in cfg[k].split(",") if v.strip()]
    parts = list(cfg["parts"])
    if not parts or set(parts) - set(PARTS):
        raise XaiError(f"study option parts must name some of {', '.join(PARTS)}, got {cfg['parts']!r}")
    r = ctx.result
    r.protocol = {"datasets": cfg["datasets"], "models": cfg["archs"], "training seeds": cfg["seeds"],
                  "seeds of the Diffuse models": cfg["diffuse_seeds"], "training": "SGD lr 0.1, momentum 0.9, "
                  "weight decay 1e-4, batch 32, MultiStepLR [12, 22], early stopping on a 10 % validation split"
                  + (f", {cfg['epochs']} epochs" if cfg.get("epochs") else ", 25 epochs"),
                  "explained": "correctly classified test samples (SimuA–C: class 0 only)"
                  + (f", at most {cfg['max_samples']} per model" if cfg["max_samples"] else ", all"),
                  "IG": f"captum Gauss–Legendre on the softmax probability; steps start at {cfg['start_steps']} "
                        f"and double per sample until the completeness error is <= {cfg['tol_pp']} pp",
                  "IG baseline": "training mean (0 after standardisation); SimuA–C: class-1 training mean",
                  "normalisation": "each attribution vector divided by its L2 norm",
                  "prediction gaps": f"10 genes per step, replaced by the baseline; PGR over {cfg['n_random']} "
                                     f"random orders on at most {cfg['pgr_samples']} samples; mean per class, then "
                                     "over classes",
                  "feature agreement": "top-n_c genes by signed attribution (n_c = number of true genes); global: "
                                       "top-n_c of the class sum of normalised attributions; SimuA–C per sub-class "
                                       "with the HEAD convention (the other class's genes count as informative); "
                                       "diffusion: attributions times the correlation graph (> 0.5)"}
    rows: dict[tuple[str, str], list[dict]] = {}
    plan = [(d, a, s) for s in range(max(cfg["seeds"], cfg["diffuse_seeds"])) for d in cfg["datasets"]
            for a in cfg["archs"] if s < (cfg["diffuse_seeds"] if a.startswith("diffuse") else cfg["seeds"])
            ] if "models" in parts else []
    cache: dict[str, tuple] = {}
    prints: dict[str, str] = {}  # dataset -> content fingerprint (part of the run cache's key)

    def key_of(dname: str, arch: str, seed: int) -> str:
        if dname not in cache:  # datasets stay loaded: the plan goes seed by seed over all of them
            with ctx.timed("load data"):
                ds = load_dataset(dname)
                cache[dname], prints[dname] = (ds, None), ds.fingerprint()
        return _run_key(dname, prints[dname], arch, seed, cfg)

    def compute(dname: str, arch: str, seed: int, key: str) -> dict:
        ds, A = cache[dname]
        try:
            if arch.startswith("diffuse") and A is None:
                with ctx.timed("diffusion graph"):
                    A = diffusion_for(ds)
                cache[dname] = (ds, A)
            out = run_one(ds, arch, seed, cfg, A)
            _store(key, out, commit=not ctx.quick and is_full_run(dname, arch, seed, cfg))
        finally:
            claims.release(key)
        return out

    claims = Claims(_run_path("x").parent)  # stages side by side on one cache share the model runs
    outs: dict[tuple, dict] = {}
    waiting: list[tuple] = []
    computed = 0
    for k, (dname, arch, seed) in enumerate(plan):
        ctx.step(0.8 * k / len(plan), f"{dname} {arch} seed {seed}: train, IG, metrics ({k + 1}/{len(plan)})")
        key = key_of(dname, arch, seed)
        out = _cached(key)
        if out is None and not claims.take(key):
            waiting.append((dname, arch, seed))  # another process is computing it: come back at the end
            continue
        if out is None:
            out = _cached(key)  # finished by another process between the look and the claim?
            if out is None:
                out, computed = compute(dname, arch, seed, key), computed + 1
            else:
                claims.release(key)
        outs[(dname, arch, seed)] = out
    while waiting:
        ctx.step(0.8, f"waiting for {len(waiting)} model run(s) that another process is computing")
        for item in list(waiting):
            key = key_of(*item)
            out = _cached(key)
            if out is None and claims.take(key):  # its holder stopped: computed here
                out, computed = compute(*item, key), computed + 1
            if out is not None:
                outs[item] = out
                waiting.remove(item)
        if waiting:
            time.sleep(5)
    for item in plan:  # in the plan's order, whoever computed them
        out = outs[item]
        for stage, sec in out["seconds"].items():
            r.timings[stage] = r.timings.get(stage, 0.0) + sec
        rows.setdefault(item[:2], []).append(out)
    reused = len(plan) - computed
    r.protocol["runs reused from the run cache"] = f"{reused} of {len(plan)} (their stage times are those measured " \
        "when they were computed)" if reused else "none"
    r.volatile += ["protocol/runs reused from the run cache", "tables/timing"]  # time and cache state, not science
    if parts != PARTS:
        r.summary.append(f"This run computed only part of the study ({', '.join(parts)}): a stage of a longer run, "
                         "whose model runs a later run with every part reuses from the run cache.")
    if ctx.quick:
        r.summary.append("Quick mode runs the small SIMU1-style demo data (simu-small), for which the paper has no "
                         "numbers; the committed full run compares SIMU1, SIMU2 and SimuA–C with the paper.")
    if "models" in parts:
        _tables(r, rows, cfg)
    if "real" in parts:
        ctx.step(0.82, "real data: rank stability and marker overlap")
        with ctx.timed("real data"):
            real_data(r, cfg, ctx.seed)
    if "compare" in parts:
        ctx.step(0.9, f"IG against other explainers on {cfg['compare_dataset']}")
        with ctx.timed("explainer comparison"):
            compare_explainers(r, cfg, ctx.seed)
    if "models" in parts:
        _claims(r, rows)
    ctx.step(1.0, "done")


def _tables(r, rows: dict, cfg: dict) -> None:
    acc_rows, pg_rows, fa_rows, ig_rows, time_rows = [], [], [], [], []
    words = (cfg["max_samples"] or 0, cfg["seeds"])  # the sentences name this run's sample cap and seeds
    for (d, a), outs in rows.items():
        name = PAPER_DATASET.get(d, d)
        acc = _ms([o["accuracy"] for o in outs])
        paper_acc = ACCURACY.get((d, a))
        acc_rows.append([name, a, len(outs), *acc, None if paper_acc is None else paper_acc[0]])
        if paper_acc:
            v = verdict(acc[0], acc[1], *paper_acc)
            r.compare(f"{name} {a.upper()}", acc[0], paper_acc[0], ours_sd=acc[1], paper_sd=paper_acc[1], unit="%",
                      verdict=v, explanation=sentence("accuracy", acc[0], paper_acc[0], v, *words),
                      group="Balanced accuracy")
        stats = {c: _ms([o[c] for o in outs]) for c in (*PG_COLUMNS, *FA_COLUMNS)}
        pg_rows.append([name, a, *[_cell(stats[c], PG.get((d, a, c))) for c in PG_COLUMNS]])
        fa_rows.append([name, a, *[_cell(stats[c], FA.get((d, a, c))) for c in FA_COLUMNS]])
        for table, group in ((PG, "Prediction gaps (%)"), (FA, "Feature agreement (%)")):
            for c in (PG_COLUMNS if table is PG else FA_COLUMNS):
                ref = table.get((d, a, c))
                if ref is None:
                    continue
                v = verdict(*stats[c], *ref)
                r.compare(f"{LABELS[c]}, {name} {a.upper()}", stats[c][0], ref[0], ours_sd=stats[c][1],
                          paper_sd=ref[1], unit="%", verdict=v, explanation=sentence(c, stats[c][0], ref[0], v, *words),
                          group=group)
        ig_rows.append([name, a, float(np.mean([o["n_explained"] for o in outs])),
                        float(np.median([o["steps_median"] for o in outs])), max(o["steps_max"] for o in outs),
                        100 * float(np.mean([o["at_start"] for o in outs])), max(o["error_max_pp"] for o in outs),
                        float(np.mean([o["evals_per_sample"] for o in outs]))])
        secs = {k: float(np.median([o["seconds"][k] for o in outs])) for k in outs[0]["seconds"]}
        time_rows.append([name, a, *[secs[k] for k in ("train", "ig", "metrics")], sum(secs.values())])
    r.table("accuracy", "Balanced test accuracy (%)", ["dataset", "model", "seeds", "ours", "± std", "paper"],
            acc_rows)
    note = "Cells: ours mean ± std over seeds [paper]. Diffuse models have no reference numbers."
    r.table("prediction_gaps", "Prediction gaps (%)", ["dataset", "model", *[LABELS[c] for c in PG_COLUMNS]],
            pg_rows, note)
    r.table("feature_agreement", "Feature agreement (%)", ["dataset", "model", *[LABELS[c] for c in FA_COLUMNS]],
            fa_rows, note)
    r.table("ig_steps", "Integrated Gradients: steps needed for completeness", [
        "dataset", "model", "explained samples", "median steps", "max steps", f"% done at {cfg['start_steps']}",
        "max error (pp)", "gradient evaluations per sample"], ig_rows,
        f"The study starts at 3,000 steps and adds more when the error exceeds 1 pp; steps here start at "
        f"{cfg['start_steps']} and double per sample only where needed.")
    r.table("timing", "Seconds per model and seed (median over seeds)",
            ["dataset", "model", "train", "IG", "metrics", "total"], time_rows,
            "The issue's target: the full protocol for one model and one seed on SIMU1 in under 5 minutes.")
    r.figure("fa_bars", "Feature agreement, ours and the paper's", "bar", {
        "x": [f"{PAPER_DATASET.get(d, d)} {a}" for (d, a) in rows],
        "series": {**{f"ours {LABELS[c]}": [_ms([o[c] for o in outs])[0] for outs in rows.values()]
                      for c in ("fa_local", "fa_global")},
                   **{f"paper {LABELS[c]}": [(FA.get((d, a, c)) or (None,))[0] for (d, a) in rows]
                      for c in ("fa_local", "fa_global")}},
        "error": {f"ours {LABELS[c]}": [_ms([o[c] for o in outs])[1] for outs in rows.values()]
                  for c in ("fa_local", "fa_global")},
        "x_title": "dataset and model", "y_title": "feature agreement (%)"})


def _cell(stat: tuple[float, float | None], ref: tuple | None) -> str:
    m, s = stat
    txt = "—" if m != m else (f"{m:.2f}" + (f" ± {s:.2f}" if s is not None else ""))
    return txt + (f" [{ref[0]:.2f}]" if ref else "")


def _mean(rows: dict, d: str, a: str, c: str) -> float | None:
    outs = rows.get((d, a))
    return None if not outs else _ms([o[c] for o in outs])[0]


def _claims(r, rows: dict) -> None:
    keys = list(rows)
    loc = [(_mean(rows, d, a, "fa_local"), f"{d} {a}") for d, a in keys if not a.startswith("diffuse")]
    lo, hi = min(v for v, _ in loc), max(v for v, _ in loc)
    r.claim("Local IG rankings recover only about 45–80 % of the true biomarkers",
            "agrees" if lo >= 35 and hi <= 90 else "partly" if hi <= 95 else "differs",
            f"local feature agreement ranges over {lo:.1f}–{hi:.1f} % across {len(loc)} dataset/model pairs")
    gains = [(_mean(rows, d, a, "fa_global") - _mean(rows, d, a, "fa_local"), f"{d} {a}") for d, a in keys]
    r.claim("Aggregating over samples (global) recovers far more biomarkers than local rankings",
            "agrees" if all(g > 0 for g, _ in gains) else "partly" if sum(g > 0 for g, _ in gains) > len(gains) / 2
            else "differs", "global minus local FA: " + ", ".join(f"{n} {g:+.1f} pp" for g, n in gains))
    diff = {d: _mean(rows, d, "lr", "fa_global_diffused") - _mean(rows, d, "lr", "fa_global")
            for d in ("simu1", "simu2") if (d, "lr") in rows}
    if len(diff) == 2:
        ok = diff["simu2"] < 0 <= diff["simu1"] + 0.5
        r.claim("Diffusion helps for non-overlapping gene groups (SIMU1) and hurts for overlapping ones (SIMU2)",
                "agrees" if ok else "partly" if diff["simu2"] < diff["simu1"] else "differs",
                f"LR global FA change with diffusion: SIMU1 {diff['simu1']:+.2f} pp, SIMU2 {diff['simu2']:+.2f} pp")
    else:
        r.claim("Diffusion helps for non-overlapping gene groups (SIMU1) and hurts for overlapping ones (SIMU2)",
                "not tested", "needs SIMU1 and SIMU2 (full run)")
    multi = [(d, a) for d, a in keys if d in ("simu1", "simu2", "simu-small") and not a.startswith("diffuse")]
    drops = [(_mean(rows, d, a, "pgi_local") - _mean(rows, d, a, "pgi_global"), f"{d} {a}") for d, a in multi]
    r.claim("In multi-class problems the global PGI is much lower than the local PGI",
            "not tested" if not drops else "agrees" if all(x > 10 for x, _ in drops) else
            "partly" if any(x > 10 for x, _ in drops) else "differs",
            ", ".join(f"{n}: local − global PGI {x:.1f} pp" for x, n in drops) or "no multi-class dataset run")
    order = [(f"{d} {a}", _mean(rows, d, a, "pgi_local"), _mean(rows, d, a, "pgr"), _mean(rows, d, a, "pgu_local"))
             for d, a in keys]
    good = sum(i > p > u for _, i, p, u in order)
    r.claim("IG orders are better than random: PGI > PGR > PGU",
            "agrees" if good == len(order) else "partly" if good else "differs",
            f"{good}/{len(order)} dataset/model pairs have PGI > PGR > PGU (local orders)")
    agree = sum(c["verdict"] == "agrees" for c in r.comparisons)
    r.summary.insert(0, f"{agree} of {len(r.comparisons)} numbers agree with the paper's README (within 2 pp or "
                        "twice the combined std); every other one has a sentence on why it differs.")
