"""§3: consistency-based model selection on synthetic DNA (Majdandzic, Rajesh & Koo, MLCB 2022).

A population of DNA CNNs (first-layer activation x BatchNorm x training regulariser x seed) is trained on the
synthetic regulatory-code data (``dna-motifs``, the JASPAR-2016 generator of §3.2) and explained with saliency
on the positive test sequences. Each model gets its test AUROC, the ground-truth interpretability of its maps
(motif AUROC, AUPR and SNR, §3.5) and the two consistency divergences (k-mer KLD §3.6, spherical KLD §3.7),
all through ``Evaluation`` and the results store. The study's numbers: the Pearson r of each divergence with
SNR across the population (paper 0.618 and 0.875), a pair of models with near-equal accuracy but very
different interpretability, and the Pareto front of accuracy vs consistency with the model it selects.

Options (``--set key=value``): preset (quick, full, or paper: the paper's recipe, for a GPU), dataset, arch,
activations, batchnorm, regularizers, seeds, epochs, lr, lr_exp_nobn (exponential members without BatchNorm diverge
at higher rates), lr_nobn (every member without BatchNorm; the paper preset's 1e-3, since ReLU members without it
also collapse at 1e-2), batch_size, dtype (the precision of training, ``float64`` in quick mode and ``float32`` in
full mode, below), n (sequences scored), n_boot, tolerance (pp of test AUROC for the selection), accuracy_window
(pp: the near-best models whose correlations are also reported, default 5), device (where the members train and are
scored: cpu, the default, cuda, cuda:N or auto; a member trained on a GPU has the same key as one trained on the
CPU, and the first one trained is the one committed), threads (torch threads, default 1: much faster than 2 on a
shared 2-core machine, and no reduction order that depends on the core count), store (a results store path; default
a fresh temporary one); parts (``train,score``, the default, or ``train``: train the population and report its
training only, a stage of a long run); and the paper preset's schedule: patience, burn_in_epochs, burn_in_lr,
adversarial_steps, clean_epochs, sn_from_epoch_nobn, pgd_clean_plateau_nobn (the PGD members without
BatchNorm train clean until validation stalls this many epochs, then adversarially).

Long runs (the paper preset: hours of CPU) are resumable and can be shared: every member's checkpoint is cached,
the paper preset's are also committed to ``docs/studies/dna-consistency/population`` so that a run on another
machine resumes from them, two processes on one cache train different members (``dna_population``), and a member
stopped part way continues after its last finished epoch (``models.resume``).

Reproducibility (docs/determinism.md): training is seeded and runs on one thread; the weights' hashes are recorded
(``provenance["trained_weights"]``). In float32 a CPU with another instruction set, or another thread count, rounds
differently and a few epochs of Adam amplify that into other weights. The quick population is therefore trained in
float64 (recipe option ``dtype``), where those differences stay below float32's resolution: the same command gives
the same numbers on another machine (the weights are rounded to float32 for scoring, like every model of the tool).
The full population keeps float32 for now (float64 took 1.5 times the CPU time; docs/determinism.md), so its numbers
are reported with their spread over training seeds; ``--set dtype=float64`` trains it machine-independent. The
shipped checkpoint is scored with the same protocol as a reference that does not pass through training.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import load_dataset
from ..errors import XaiError
from ..models import shipped_path
from ..models.checkpoints import read_metadata
from ..models.training import check_recipe
from ..runner import EvalConfig, Evaluation
from ..store import ResultStore
from .base import StudyContext, register_study, study_device
from .dna_analysis import KLDS, analyse
from . import dna_population
from .dna_population import CONFIGS, Spec, member_key, population, train_member, train_population

GT_METRICS = ["motif_auroc", "motif_aupr", "motif_snr"]
PARTS = ["train", "score"]
COMMON = {"parts": PARTS}  # options beside the presets' (study_options reads them)
__all__ = ["CONFIGS", "PARTS", "Spec", "member_key", "population", "score_member", "train_member"]


def score_member(ds_name: str, path: Path, store, cfg: dict[str, Any], seed: int, keep: int = 16
                 ) -> tuple[dict[str, Any], np.ndarray, pd.DataFrame, np.ndarray]:
    """Saliency on the positive test sequences; the metrics with the paper's settings, then the consistency
    metrics with the corrected settings (same stored maps). Returns (row, scored indices, per-sample ground-
    truth scores, the maps of the first ``keep`` sequences)."""
    nb = int(cfg["n_boot"])
    paper = {"kmer_kld": {"gradient_correct": False, "n_boot": nb},
             "spherical_kld": {"radius_cutoff": 0.99, "as_coded": True, "n_boot": nb}}
    corrected = {"kmer_kld": {"gradient_correct": True, "n_boot": nb},
                 "spherical_kld": {"radius_cutoff": 0.99, "as_coded": False, "n_boot": nb}}
    ev = Evaluation(EvalConfig(ds_name, model=str(path), methods=["saliency"], metrics=GT_METRICS + list(KLDS),
                               n=int(cfg["n"]), seed=seed, only_correct=False, metric_params=paper,
                               device=str(cfg.get("device") or "cpu")), store)
    plan = ev.plan()
    s1 = ev.run(plan)
    ev.config = dataclasses.replace(ev.config, metrics=list(KLDS), metric_params=corrected)
    s2 = ev.run(ev.plan())

    def mean(s, m):
        return float(np.nanmean(s.loc[s["metric"] == m, "score"].to_numpy(dtype=float)))

    meta = ev.model_meta
    row = {"weights": str(meta.get("tensors_sha256", ""))[:16],
           "auroc": 100 * float(meta["test_auroc"]), "accuracy": 100 * float(meta["test_accuracy"]),
           "epochs_run": meta.get("epochs_run"), "best_epoch": meta.get("best_epoch"),
           "train_seconds": float(meta.get("seconds") or 0.0),
           **{m: mean(s1, m) for m in GT_METRICS + list(KLDS)},
           **{f"{m}_corrected": mean(s2, m) for m in KLDS}}
    idx = plan.sample_idx
    per = s1[s1["metric"].isin(GT_METRICS)].pivot_table(index="sample", columns="metric", values="score")
    maps = ev.attributions("saliency", idx[:keep]).cpu().numpy() if keep else np.empty((0, *ev.ds.input_shape))
    return row, idx, per, maps


@register_study("dna-consistency", title="Consistency-based model selection on DNA", section="§3",
                paper="Majdandzic, Rajesh & Koo, 'Selecting deep neural networks that yield consistent "
                      "attribution-based interpretations for genomics' (MLCB 2022, PMLR 200)")
def run(ctx: StudyContext) -> None:
    preset = ctx.options.get("preset") or ("quick" if ctx.quick else "full")
    if preset not in CONFIGS:
        raise XaiError(f"study option preset must be one of {', '.join(CONFIGS)}, got {preset!r}")
    cfg = {**CONFIGS[preset], **{k: v for k, v in ctx.options.items() if k not in ("store", "preset")}}
    for k in ("activations", "regularizers", "seeds", "batchnorm"):
        cfg[k] = list(cfg[k]) if isinstance(cfg[k], (list, tuple)) else [cfg[k]]
    parts = cfg.get("parts", PARTS)
    cfg["parts"] = [v.strip() for v in parts.split(",") if v.strip()] if isinstance(parts, str) else list(parts)
    if "train" not in cfg["parts"] or set(cfg["parts"]) - set(PARTS):
        raise XaiError(f"study option parts must be train,score (the default) or train (a training-only stage), "
                       f"got {parts!r}")
    check_recipe(cfg["arch"], {"dtype": cfg["dtype"]}, flag="--set")  # a bad dtype: one line, before any work
    if "device" in cfg:  # cpu, cuda, cuda:N or auto; CUDA asked for on a machine without it: one line, before any work
        cfg["device"] = study_device(cfg["device"])
    # the runner fixed the seeds and threads (determinism.reproducible); the training time and what the cache held
    # are not the science
    ctx.result.volatile += ["protocol/training_time"]
    _run(ctx, cfg)
    ctx.step(1.0, "done")


def _training_report(ctx: StudyContext, cfg: dict[str, Any], specs: list[Spec], paths: list[Path],
                     fresh: list[bool]) -> None:
    """The report of a training-only stage: every member's schedule and test scores, where its checkpoint is."""
    r, rows = ctx.result, []
    for spec, path, new in zip(specs, paths, fresh):
        meta = read_metadata(path)
        auroc = meta.get("test_auroc")
        rows.append([spec.name, meta.get("epochs_run"), meta.get("best_epoch"),
                     None if auroc is None else 100 * float(auroc), 100 * float(meta["test_accuracy"]),
                     float(meta.get("seconds") or 0.0), "now" if new else "earlier",
                     "committed" if path.parent == dna_population.COMMITTED else "this machine's cache"])
    done = [row[3] for row in rows if row[3] is not None]
    r.summary.append(f"A training stage: {len(specs)} members of {cfg['arch']} on {cfg['dataset']}, "
                     f"{sum(fresh)} trained now and {len(specs) - sum(fresh)} found trained; test AUROC "
                     f"{min(done):.1f}–{max(done):.1f} %. A run with parts [train, score] reuses them and scores them.")
    r.table("training", "The population's training", ["member", "epochs run", "best epoch", "test AUROC (%)",
                                                        "test accuracy (%)", "seconds", "trained", "checkpoint"],
            rows, note="Seconds are those of the member's own training, wherever and whenever it ran.")
    r.volatile += ["tables/training"]  # where a checkpoint came from and how long it took: not the science


def _run(ctx: StudyContext, cfg: dict[str, Any]) -> None:
    with ctx.timed("data"):
        ds = load_dataset(cfg["dataset"])
    specs = population(cfg)
    ctx.step(0.0, f"{len(specs)} models of {cfg['arch']} on {ds.name}")
    with ctx.timed("train"):
        paths, fresh = train_population(ctx, ds, cfg, specs, share=0.75 if "score" in cfg["parts"] else 1.0)
    if "score" not in cfg["parts"]:
        _training_report(ctx, cfg, specs, paths, fresh)
        return
    tmp = None
    if ctx.options.get("store"):
        store = ResultStore(ctx.options["store"])
    else:
        tmp = tempfile.TemporaryDirectory(prefix="dna-consistency-")
        store = ResultStore(Path(tmp.name) / "results.sqlite")
    rows, per_sample, maps, reference = [], [], [], None
    try:
        with ctx.timed("score"):
            for k, (spec, path) in enumerate(zip(specs, paths)):
                ctx.step(0.75 + 0.2 * k / len(specs), f"scoring {k + 1}/{len(specs)} {spec.name}")
                row, idx, per, m = score_member(ds.name, path, store, cfg, ctx.seed)
                rows.append({"member": spec.name, "activation": spec.activation, "batchnorm": spec.batchnorm,
                             "regularizer": spec.regularizer, "seed": spec.seed, **row, "trained_now": fresh[k]})
                per_sample.append(per)
                maps.append(m)
            shipped = shipped_path(ds.name, cfg["arch"])
            if shipped.exists():  # fixed weights: the scoring alone, the same on every machine
                ctx.step(0.95, f"scoring the shipped {cfg['arch']} checkpoint (reference)")
                reference = {"member": f"shipped {shipped.name}", **score_member(ds.name, shipped, store, cfg,
                                                                                  ctx.seed, keep=0)[0]}
    finally:
        store.close()
        if tmp is not None:
            tmp.cleanup()
    ctx.result.provenance["trained_weights"] = {r["member"]: r["weights"] for r in rows}
    ctx.result.provenance["training_dtype"] = cfg["dtype"]  # float64: machine-independent training (the report)
    with ctx.timed("analyse"):
        analyse(ctx, ds, cfg, pd.DataFrame(rows), idx, per_sample, maps, reference)
