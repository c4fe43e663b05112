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
at higher rates), batch_size, dtype (the precision of training, ``float64`` in quick mode and ``float32`` in full
mode, below), n (sequences scored), n_boot, tolerance (pp of test AUROC for the selection), accuracy_window (pp: the
near-best models whose correlations are also reported, default 5), threads (torch threads, default 1: much faster
than 2 on a shared 2-core machine, and no reduction order that depends on the core count), store (a results store
path; default a fresh temporary one); and the paper preset's schedule: patience, burn_in_epochs, burn_in_lr,
adversarial_steps, clean_epochs.

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
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import cache_dir, load_dataset
from ..errors import XaiError
from ..models import shipped_path, train_cached
from ..models.training import DEFAULT_DTYPE, check_recipe
from ..progress import Progress, ProgressFn
from ..runner import EvalConfig, Evaluation
from ..store import ResultStore
from .base import StudyContext, register_study
from .dna_analysis import KLDS, REG_PARAMS, analyse

GT_METRICS = ["motif_auroc", "motif_aupr", "motif_snr"]
CONFIGS: dict[str, dict[str, Any]] = {
    "quick": {"dataset": "dna-motifs-small", "arch": "dna_shallow", "activations": ["relu", "exponential"],
              "batchnorm": [True], "regularizers": ["standard", "gn", "mixup", "adversarial"], "seeds": [0, 1],
              "epochs": 4, "lr": 3e-3, "batch_size": 64, "n": 256, "n_boot": 3, "dtype": "float64"},
    "full": {"dataset": "dna-motifs", "arch": "dna_deep", "activations": ["relu", "exponential"],
             "batchnorm": [True, False], "regularizers": ["standard", "gn", "mixup", "manifold-mixup", "adversarial"],
             "seeds": [0, 1], "epochs": 8, "lr": 2e-3, "lr_exp_nobn": 1e-3, "batch_size": 128, "n": 1000, "n_boot": 5,
             "dtype": "float32"},
    # the paper's recipe (§3.3), for a GPU (hours of CPU): ``--set preset=paper``. Adam, a 2-epoch burn-in at lr
    # 1e-3 with BatchNorm and dropout off, then lr 1e-2; up to 100 epochs, early stopping on validation AUROC with
    # patience 10; every activation x BatchNorm x regulariser member, with 10-step PGD after 5 clean epochs and the
    # spectral-norm penalty; 2 seeds (56 models); every positive test sequence scored. The exponential members
    # without BatchNorm stay at 1e-3 after the burn-in: at 1e-2 they collapse to chance in the first epoch (validation
    # AUROC 0.745 -> 0.5, never recovering), at 1e-3 one reached test AUROC 0.960 in 30 epochs (docs/studies/RUNS.md).
    "paper": {"dataset": "dna-motifs", "arch": "dna_deep", "activations": ["relu", "exponential"],
              "batchnorm": [True, False], "regularizers": ["standard", "gn", "manifold-gn", "mixup", "manifold-mixup",
                                                           "sn", "adversarial"],
              "seeds": [0, 1], "epochs": 100, "patience": 10, "lr": 1e-2, "lr_exp_nobn": 1e-3, "burn_in_epochs": 2,
              "burn_in_lr": 1e-3,
              "adversarial_steps": 10, "clean_epochs": 5, "batch_size": 128, "n": 2000, "n_boot": 5,
              "dtype": "float32"},
}


@dataclass(frozen=True)
class Spec:
    """One population member: architecture options, training regulariser and seed."""

    arch: str
    activation: str
    batchnorm: bool
    regularizer: str
    seed: int

    @property
    def name(self) -> str:
        act = {"exponential": "exp"}.get(self.activation, self.activation)
        return f"{act}-{'bn' if self.batchnorm else 'nobn'}-{self.regularizer}-s{self.seed}"

    @property
    def arch_kwargs(self) -> dict[str, Any]:
        return {"activation": self.activation, "batchnorm": self.batchnorm}


def population(cfg: dict[str, Any]) -> list[Spec]:
    return [Spec(cfg["arch"], a, bool(bn), r, int(s)) for s in cfg["seeds"] for a in cfg["activations"]
            for bn in cfg["batchnorm"] for r in cfg["regularizers"]]


def _recipe(cfg: dict[str, Any], spec: Spec) -> dict[str, Any]:
    slow = spec.activation == "exponential" and not spec.batchnorm  # diverges at 2e-3 without BatchNorm
    lr = cfg.get("lr_exp_nobn", cfg["lr"]) if slow else cfg["lr"]
    params = dict(REG_PARAMS.get(spec.regularizer, {}))
    if spec.regularizer == "adversarial" and "adversarial_steps" in cfg:
        params["steps"] = int(cfg["adversarial_steps"])
    recipe = {"epochs": int(cfg["epochs"]), "lr": float(lr), "batch_size": int(cfg["batch_size"]),
              "patience": int(cfg.get("patience", cfg["epochs"])), "regularizer": spec.regularizer,
              "regularizer_params": params}
    if cfg.get("burn_in_epochs"):  # the paper's schedule (absent from the CPU recipes, whose keys stay as they were)
        recipe.update(burn_in_epochs=int(cfg["burn_in_epochs"]), burn_in_lr=float(cfg.get("burn_in_lr", 1e-3)))
    if spec.regularizer == "adversarial" and cfg.get("clean_epochs"):
        recipe["regularizer_from_epoch"] = int(cfg["clean_epochs"]) + 1
    # the precision joins the recipe (so the checkpoint's cache key) only when it is not float32: the float32
    # members cached before the option existed keep their keys
    dtype = cfg.get("dtype", DEFAULT_DTYPE)
    return recipe if dtype == DEFAULT_DTYPE else {**recipe, "dtype": dtype}


def member_key(ds, spec: Spec, cfg: dict[str, Any]) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """(checkpoint path, what its metadata must record, the recipe): the path's key hashes the dataset's content,
    the member and the exact recipe (the precision only when it is not float32, so float32 checkpoints cached
    before the ``dtype`` option keep their names)."""
    recipe = json.loads(json.dumps(_recipe(cfg, spec)))
    want = {"dataset_fingerprint": ds.fingerprint(), "arch": spec.arch, "arch_kwargs": spec.arch_kwargs,
            "seed": spec.seed}
    key = hashlib.sha256(json.dumps([want, recipe], sort_keys=True).encode()).hexdigest()[:10]
    path = cache_dir() / "studies" / "dna-consistency" / f"{ds.name}__{spec.arch}-{spec.name}__{key}.safetensors"
    return path, want, recipe


def train_member(ds, spec: Spec, cfg: dict[str, Any], progress: ProgressFn | None = None) -> tuple[Path, bool]:
    """(checkpoint, trained now): under ``cache_dir()/studies/dna-consistency`` (``member_key``), reused only when
    its metadata matches this dataset's content and this exact recipe, else (or when unreadable) trained and saved
    again. ``progress``: ``train_cached``'s training events."""
    path, want, recipe = member_key(ds, spec, cfg)

    def fits(meta: dict[str, Any]) -> bool:
        return all(meta.get(k) == v for k, v in want.items()) and \
            all(meta.get("recipe", {}).get(k) == v for k, v in recipe.items())

    found = train_cached(ds, spec.arch, path, seed=spec.seed, arch_kwargs=spec.arch_kwargs, recipe=recipe,
                         progress=progress, extra_meta={"population_member": spec.name, "study": "dna-consistency"},
                         reuse=fits)
    return found.path, found.trained


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
                               n=int(cfg["n"]), seed=seed, only_correct=False, metric_params=paper), store)
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
    check_recipe(cfg["arch"], {"dtype": cfg["dtype"]}, flag="--set")  # a bad dtype: one line, before any work
    # the runner fixed the seeds and threads (determinism.reproducible); the training time and what the cache held
    # are not the science
    ctx.result.volatile += ["protocol/training_time"]
    _run(ctx, cfg)
    ctx.step(1.0, "done")


def _run(ctx: StudyContext, cfg: dict[str, Any]) -> None:
    with ctx.timed("data"):
        ds = load_dataset(cfg["dataset"])
    specs = population(cfg)
    ctx.step(0.0, f"{len(specs)} models of {cfg['arch']} on {ds.name}")
    paths, fresh = [], []
    with ctx.timed("train"):
        for k, spec in enumerate(specs):
            def prog(e: Progress, k: int = k, spec: Spec = spec) -> None:
                if e.done:  # the epochs (the start is announced below)
                    ctx.step(0.75 * (k + e.done / max(e.total, 1)) / len(specs),
                             f"training {k + 1}/{len(specs)} {spec.name}: epoch {e.done}/{e.total}")
            ctx.step(0.75 * k / len(specs), f"training {k + 1}/{len(specs)} {spec.name}")
            path, new = train_member(ds, spec, cfg, prog)
            paths.append(path)
            fresh.append(new)
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
