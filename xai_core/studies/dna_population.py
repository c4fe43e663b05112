"""The dna-consistency study's population: its presets, its members, their training recipes, and where their
checkpoints live.

A member's checkpoint is kept in this machine's cache (``member_key``). The paper preset's population takes
hours of CPU to train, so its members are also written to ``docs/studies/dna-consistency/population`` (about
230 KB each): committed stage by stage, they let a run on another machine resume instead of training again. A
committed checkpoint is used only when its metadata matches this dataset's content and the member's exact recipe,
and its tensors match their recorded hash; a damaged one is named in a warning and trained again. Two processes
training the same population on one cache share it: each member is claimed before it is trained
(``studies.claims``), and a process that finds a member claimed comes back to it at the end.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

from ..data import cache_dir
from ..errors import XaiError
from ..models import load_checkpoint, train_cached
from ..models.checkpoints import read_metadata
from ..models.training import DEFAULT_DTYPE
from ..progress import Progress
from .base import DOCS, StudyContext
from .claims import Claims
from .dna_analysis import REG_PARAMS, TARGET_AUROC

COMMITTED = DOCS / "dna-consistency" / "population"  # the paper preset's members, committed stage by stage
PUBLISH_MIN_AUROC = TARGET_AUROC  # % test AUROC a member needs to be committed
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
    # So do the ReLU members without BatchNorm (``lr_nobn``): at 1e-2, 3 of the first 4 collapsed the same way (test
    # AUROC 73-74 %, best epoch the burn-in's last). The spectral-norm penalty starts after the burn-in for members
    # without BatchNorm (``sn_from_epoch_nobn``): from the first epoch it shrinks every layer until the ReLUs die in
    # epoch 2 (validation AUROC 0.5, test 0.588); started at epoch 3 the same member reached 0.891 by epoch 10.
    # The PGD members without BatchNorm train clean until validation has not improved for
    # ``pgd_clean_plateau_nobn`` epochs (``clean_plateau_patience``), then adversarially from the clean best: after
    # the paper's 5 clean epochs at 1e-3 they are far from converged (validation 0.84) and PGD holds them at chance
    # loss (test 0.83); a converged one kept validation 0.96 under PGD.
    "paper": {"dataset": "dna-motifs", "arch": "dna_deep", "activations": ["relu", "exponential"],
              "batchnorm": [True, False], "regularizers": ["standard", "gn", "manifold-gn", "mixup", "manifold-mixup",
                                                           "sn", "adversarial"],
              "seeds": [0, 1], "epochs": 100, "patience": 10, "lr": 1e-2, "lr_exp_nobn": 1e-3, "lr_nobn": 1e-3,
              "sn_from_epoch_nobn": 3, "pgd_clean_plateau_nobn": 10, "burn_in_epochs": 2,
              "burn_in_lr": 1e-3,
              "adversarial_steps": 10, "clean_epochs": 5, "batch_size": 128, "n": 2000, "n_boot": 5,
              "dtype": "float32"},
}
# the options that decide a member's weights: a paper-preset run that overrides none of them commits its members
RECIPE_KNOBS = ("dataset", "arch", "epochs", "patience", "lr", "lr_exp_nobn", "lr_nobn", "sn_from_epoch_nobn",
                "pgd_clean_plateau_nobn",
                "burn_in_epochs", "burn_in_lr", "adversarial_steps", "clean_epochs", "batch_size", "dtype")


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
    if not spec.batchnorm and "lr_nobn" in cfg:  # every member without BatchNorm (the paper preset: 1e-2 kills them)
        lr = cfg["lr_nobn"]
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
    if spec.regularizer == "sn" and not spec.batchnorm and cfg.get("sn_from_epoch_nobn"):
        recipe["regularizer_from_epoch"] = int(cfg["sn_from_epoch_nobn"])
    if spec.regularizer == "adversarial" and not spec.batchnorm and cfg.get("pgd_clean_plateau_nobn"):
        recipe["clean_plateau_patience"] = int(cfg["pgd_clean_plateau_nobn"])
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


def commits(cfg: dict[str, Any], spec: Spec) -> bool:
    """Whether ``spec`` trained with ``cfg`` belongs to the committed population: the paper preset's recipe with
    none of its weight-deciding options overridden, and a member of its activation x BatchNorm x regulariser grid
    (any seed: more seeds than the preset's two are welcome)."""
    paper = CONFIGS["paper"]
    return (all(cfg.get(k) == paper[k] for k in RECIPE_KNOBS) and spec.activation in paper["activations"]
            and spec.batchnorm in paper["batchnorm"] and spec.regularizer in paper["regularizers"])


def _matcher(want: dict[str, Any], recipe: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    def fits(meta: dict[str, Any]) -> bool:
        rec = meta.get("recipe") or {}
        return (all(meta.get(k) == v for k, v in want.items()) and all(rec.get(k) == v for k, v in recipe.items())
                and rec.get("dtype", DEFAULT_DTYPE) == recipe.get("dtype", DEFAULT_DTYPE))
    return fits


def _usable(path: Path, fits: Callable[[dict[str, Any]], bool], verify: bool) -> bool:
    """Whether the checkpoint at ``path`` is this member's: readable, fitting, and (``verify``) with tensors that
    match their recorded hash. A damaged file is named in a warning."""
    if not path.exists():
        return False
    try:
        if not fits(read_metadata(path)):
            return False
        if verify:
            load_checkpoint(path)  # checks the tensors against the hash recorded when they were saved
    except XaiError as e:
        warnings.warn(f"the population checkpoint {path} is damaged ({e}); the member is trained again",
                      stacklevel=3)
        return False
    return True


def _publish(src: Path, dest: Path) -> None:
    """Copy a trained member beside the study's committed results (a reader sees no file or a whole one), unless
    its test AUROC is below ``PUBLISH_MIN_AUROC``: a collapsed training must not enter the committed population
    (it stays in this machine's cache, is named in a warning, and the report counts it below the target)."""
    auroc = read_metadata(src).get("test_auroc")
    if auroc is not None and 100 * float(auroc) < PUBLISH_MIN_AUROC:
        warnings.warn(f"population member {src.stem} reached test AUROC {100 * float(auroc):.1f} %, below "
                      f"{PUBLISH_MIN_AUROC:g} %: it is not committed to {dest.parent}", stacklevel=3)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def train_member(ds, spec: Spec, cfg: dict[str, Any], progress=None, claims: Claims | None = None,
                 commit: bool = False) -> tuple[Path, bool] | None:
    """(checkpoint, trained now), or None when ``claims`` says another living process is training this member.

    The checkpoint is this machine's cached one (``member_key``) when it fits this dataset's content and this exact
    recipe, else the committed one (``COMMITTED``, verified), else it is trained now (``train_cached``, on
    ``cfg["device"]``, default the CPU: the device is not part of the member's key). ``commit``: also write it to
    ``COMMITTED`` when it is not there yet (``commits``). ``progress``: ``train_cached``'s training events."""
    path, want, recipe = member_key(ds, spec, cfg)
    fits, shared = _matcher(want, recipe), COMMITTED / path.name

    def found() -> tuple[Path, bool] | None:
        if _usable(path, fits, verify=False):
            if commit and not _usable(shared, fits, verify=True):
                _publish(path, shared)
            return path, False
        return (shared, False) if _usable(shared, fits, verify=True) else None

    out = found()
    if out is not None:
        return out
    if claims is not None and not claims.take(path.stem):
        return None
    try:
        out = found() if claims is not None else None  # trained by another process between the look and the claim?
        if out is None:
            got = train_cached(ds, spec.arch, path, seed=spec.seed, arch_kwargs=spec.arch_kwargs, recipe=recipe,
                               device=str(cfg.get("device") or "cpu"), progress=progress,
                               extra_meta={"population_member": spec.name,
                                                              "study": "dna-consistency"}, reuse=fits,
                               resume=True)  # a member stopped part way (session end) continues where it stopped
            if commit:
                _publish(got.path, shared)
            out = got.path, got.trained
    finally:
        if claims is not None:
            claims.release(path.stem)
    return out


def train_population(ctx: StudyContext, ds, cfg: dict[str, Any], specs: list[Spec], share: float = 0.75
                     ) -> tuple[list[Path], list[bool]]:
    """Every member's checkpoint and whether it was trained now, in the order of ``specs``. Members another
    process is training are waited for at the end (and trained here if that process stops). ``share``: the part of
    the study's progress bar that training takes."""
    claims = Claims(cache_dir() / "studies" / "dna-consistency")
    got: dict[int, tuple[Path, bool]] = {}

    def one(k: int, spec: Spec) -> tuple[Path, bool] | None:
        def prog(e: Progress) -> None:
            if e.done:  # the epochs (the start is announced below)
                ctx.step(share * (k + e.done / max(e.total, 1)) / len(specs),
                         f"training {k + 1}/{len(specs)} {spec.name}: epoch {e.done}/{e.total}")
        ctx.step(share * k / len(specs), f"training {k + 1}/{len(specs)} {spec.name}")
        return train_member(ds, spec, cfg, prog, claims, commit=not ctx.quick and commits(cfg, spec))

    waiting = []
    for k, spec in enumerate(specs):
        out = one(k, spec)
        if out is None:
            waiting.append(k)  # another process is training it: come back at the end
        else:
            got[k] = out
    while waiting:
        ctx.step(share, f"waiting for {len(waiting)} member(s) that another process is training")
        for k in list(waiting):
            if claims.held_elsewhere(member_key(ds, specs[k], cfg)[0].stem):
                continue
            out = one(k, specs[k])
            if out is not None:
                got[k] = out
                waiting.remove(k)
        if waiting:
            time.sleep(10)
    return [got[k][0] for k in range(len(specs))], [got[k][1] for k in range(len(specs))]
