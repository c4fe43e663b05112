"""Train a model once and keep it: the one function that trains, saves and reuses a checkpoint.

Every place that trains (``python -m xai_core train``, the evaluation grid's population of training seeds,
the model selection's population, the DNA consistency study, the dashboard's training panels) calls
``train_cached`` with its own checkpoint path (the paths differ by caller and are part of each cache's key)
and its own reuse rule. A checkpoint is saved with its tensor hash (``save_checkpoint``) and verified when
it is loaded (``load_checkpoint``). A checkpoint trained in another precision (recipe option ``dtype``; one without
it was trained in float32) is never reused, whatever the caller's rule: the caller's path or cache key should name
a dtype other than float32 too, so the two do not overwrite each other.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

from xai_core.errors import XaiError
from xai_core.progress import ProgressFn, notify

from .checkpoints import load_checkpoint, read_metadata, save_checkpoint
from .training import DEFAULT_DTYPE, TrainReport, checkpoint_meta, train_model


@dataclass(frozen=True)
class CachedModel:
    """What ``train_cached`` found or made.

    Attributes
    ----------
    path : Path
        The checkpoint.
    trained : bool
        True when it was trained (and saved) by this call, False when an existing checkpoint was reused.
    report : TrainReport or None
        The training report when trained now (else None).
    model : nn.Module or None
        The checkpoint loaded (tensor hash verified) when ``load`` was given, else None.
    meta : dict or None
        Its metadata when ``load`` was given, else None.
    """

    path: Path
    trained: bool
    report: TrainReport | None = None
    model: nn.Module | None = None
    meta: dict[str, Any] | None = None


def train_cached(ds, arch: str, path: str | Path, *, seed: int = 0, arch_kwargs: dict | None = None,
                 recipe: Mapping[str, Any] | None = None, device: str = "cpu", progress: ProgressFn | None = None,
                 extra_meta: Mapping[str, Any] | None = None, reuse: bool | Callable[[dict], bool] = True,
                 damaged: Literal["retrain", "raise"] = "retrain", load: str | None = None,
                 resume: bool = False) -> CachedModel:
    """The checkpoint of ``arch`` trained on ``ds`` at ``path``: reused when it is there and passes
    ``reuse``, else trained with ``train_model`` and saved with ``checkpoint_meta`` (plus ``extra_meta``).

    Parameters
    ----------
    ds : Dataset
        The training data.
    arch : str
        The architecture's name (``ARCHS``).
    path : str or Path
        Where the checkpoint is kept; each caller's own naming (a cache key for some).
    seed : int
        The training seed.
    arch_kwargs : dict, optional
        Architecture options (``build_model``).
    recipe : mapping, optional
        Training-recipe overrides (``check_recipe``: epochs, lr, batch_size, regularizer, ...).
    device : str
        Where to train (the saved checkpoint holds CPU tensors either way).
    progress : ProgressFn, optional
        Gets ``Progress(0, 1, "train")`` when training starts, then ``train_model``'s epoch events
        (``done`` epochs of ``total``); nothing when the checkpoint is reused.
    extra_meta : mapping, optional
        Recorded in the checkpoint's metadata beside ``checkpoint_meta``.
    reuse : bool or callable
        False: always train (and overwrite). True: reuse any checkpoint at ``path`` whose metadata reads.
        A callable gets that metadata and says whether it fits (e.g. the dataset's fingerprint and recipe).
        Either way a checkpoint whose recorded ``dtype`` differs from the recipe's is trained again.
    damaged : {"retrain", "raise"}
        What to do when the checkpoint at ``path`` cannot be read: train it again, or raise the
        ``XaiError`` of ``read_metadata``.
    load : str, optional
        A device: also load the checkpoint from ``path`` onto it (``CachedModel.model`` and ``meta``),
        verifying its tensor hash.
    resume : bool
        Keep the training's state beside ``path`` after every epoch (``PATH.partial``, ``models.resume``), so that
        training stopped part way continues where it stopped; removed once the checkpoint is written.

    Returns
    -------
    CachedModel
        The path, whether it was trained now, the report, and the loaded model when asked for.
    """
    path = Path(path)
    trained, train_report = False, None
    if not _reusable(path, reuse, damaged, (recipe or {}).get("dtype", DEFAULT_DTYPE)):
        notify(progress, 0, 1, "train", f"training {arch} seed {seed}")  # starts: epochs follow
        partial = path.with_name(f"{path.name}.partial") if resume else None
        model, train_report = train_model(ds, arch, seed=seed, device=device, progress=progress,
                                          arch_kwargs=arch_kwargs, resume=partial, **(recipe or {}))
        save_checkpoint(model, path, {**checkpoint_meta(ds, arch, arch_kwargs, train_report), **(extra_meta or {})})
        if partial is not None:
            partial.unlink(missing_ok=True)
        trained = True
    model, meta = load_checkpoint(path, device=load) if load is not None else (None, None)
    return CachedModel(path, trained, train_report, model, meta)


def _reusable(path: Path, reuse: bool | Callable[[dict], bool], damaged: str, dtype: str) -> bool:
    if reuse is False or not path.exists():
        return False
    try:
        meta = read_metadata(path)
    except XaiError:
        if damaged == "raise":
            raise
        return False  # unreadable (e.g. an interrupted write): train again
    if (meta.get("recipe") or {}).get("dtype", DEFAULT_DTYPE) != dtype:  # trained in another precision
        return False
    return True if reuse is True else bool(reuse(meta))
