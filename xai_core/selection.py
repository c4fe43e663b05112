"""Consistency-based model selection (Majdandzic et al. 2022, protocol §3.8): a population of models of one
dataset scored for generalisation (test accuracy / AUROC), interpretability against the ground truth where
the data has one, and consistency of its attribution maps; the Pareto front of performance vs consistency.

Members are trained once and cached under ``cache_dir()/app_models`` (the dashboard's model picker lists
them); attributions and scores go to the results store through ``Evaluation``, so a scored population
reopens instantly. All members are explained on the same test samples, correct or not (the study scores
every model on all positive test sequences), so their scores and maps are comparable. Consistency (higher
is more consistent): ``kmer_kld`` and ``spherical_kld`` (DNA, one model's maps, protocol §3.6–3.7) and
``agreement`` (every modality: mean Spearman correlation of a member's maps with each other member's maps,
see ``importance_maps``): a map that other models reproduce reflects the data, not one training run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .data import cache_dir, load_dataset
from .errors import UnknownChoice
from .metrics.ops import average_ranks
from .models import ARCHS, evaluate_model, train_cached
from .models.checkpoints import checkpoint_hash
from .progress import Progress, ProgressFn, as_progress_fn, notify
from .runner import EvalConfig, Evaluation

SIZES = ("quick", "full")
_SUMMARY_VERSION = 1  # bump when the scoring changes, so older summaries are not shown
AGREEMENT = "agreement"
INTERPRETABILITY = {"sequence": ("motif_auroc", "motif_snr"), "image": ("roc_auc",),
                    "expression": ("feature_agreement_local",)}
_GT_FIELD = {"sequence": "pwm", "image": "masks", "expression": "feature_sets"}
SET_CONSISTENCY = {"sequence": ("kmer_kld", "spherical_kld")}
_SHOWN = ("activation", "batchnorm", "dropout")  # architecture options listed per member (empty if n/a)
_TAGS = {("activation", "relu"): "relu", ("activation", "exponential"): "exp", ("batchnorm", True): "bn",
         ("batchnorm", False): "nobn"}


@dataclass(frozen=True)
class Member:
    """One population member: an architecture, its options, a training seed and an epoch budget."""

    arch: str
    seed: int = 0
    epochs: int | None = None  # None: the architecture's full recipe (with early stopping)
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def arch_kwargs(self) -> dict[str, Any]:
        """The architecture options as a dict."""
        return dict(self.kwargs)

    @property
    def name(self) -> str:
        """A short unique name: architecture, option tags, seed and epoch budget (``dna_deep-relu-bn-s0-e10``)."""
        tags = [_TAGS.get((k, v), f"{k[:2]}{v:g}" if isinstance(v, float) else f"{k[:2]}{v}") for k, v in self.kwargs]
        return "-".join([self.arch, *tags, f"s{self.seed}", f"e{self.epochs}" if self.epochs else "full"])

    def describe(self) -> str:
        """One line for people: architecture, options, seed and epochs."""
        opts = ", ".join(f"{k} {v}" for k, v in self.kwargs)
        return f"{self.arch}{f' ({opts})' if opts else ''}, seed {self.seed}, " + \
            (f"{self.epochs} epochs" if self.epochs else "full recipe")

    def path(self, dataset: str) -> Path:
        """Where this member's checkpoint for ``dataset`` is cached."""
        return cache_dir() / "app_models" / f"{dataset}__pop-{self.name}.safetensors"


def _dna(size: str) -> list[Member]:
    if size == "quick":  # ordered so that the first few already differ in the first-layer activation
        ep = 10
        deep = lambda a, bn, s=0: Member("dna_deep", s, ep, (("activation", a), ("batchnorm", bn)))  # noqa: E731
        shallow = lambda a: Member("dna_shallow", 0, ep, (("activation", a),))  # noqa: E731
        return [deep("relu", True), deep("exponential", True), shallow("relu"), shallow("exponential"),
                deep("relu", False), deep("exponential", False), deep("relu", True, 1), deep("exponential", True, 1)]
    return [Member(arch, seed, None, (("activation", a), ("batchnorm", bn))) for seed in range(3)
            for arch in ("dna_deep", "dna_shallow") for a in ("relu", "exponential") for bn in (True, False)]


def _expression(size: str) -> list[Member]:
    if size == "quick":
        return ([Member(arch, s) for s in range(3) for arch in ("lr", "mlp")]
                + [Member(arch, 0, None, (("dropout", 0.5),)) for arch in ("lr", "mlp")])
    return [Member(arch, s, None, (("dropout", d),))
            for s in range(5) for arch in ("lr", "mlp") for d in (0.0, 0.2, 0.5)]


def _image(size: str) -> list[Member]:
    if size == "quick":
        return [Member("simplenet", s, 5, (("dropout", d),)) for s in range(3) for d in (0.1, 0.3)]
    return [Member("simplenet", s, None, (("dropout", d),)) for s in range(5) for d in (0.1, 0.3)]


POPULATIONS: dict[str, Callable[[str], list[Member]]] = {"sequence": _dna, "expression": _expression, "image": _image}


def population(modality: str, size: str = "quick", members: int | None = None, epochs: int | None = None
               ) -> list[Member]:
    """The registered population of ``modality`` at ``size``.

    ``members`` keeps the first few, ``epochs`` overrides every member's epoch budget (a custom, smaller
    population).

    Parameters
    ----------
    modality : str
        ``expression``, ``image`` or ``sequence``.
    size : str
        ``"quick"`` or ``"full"``.
    members : int, optional
        Keep the first this many members.
    epochs : int, optional
        Every member's epoch budget.

    Returns
    -------
    list of Member

    Raises
    ------
    UnknownChoice
        For an unknown modality or size.
    """
    if modality not in POPULATIONS:
        raise UnknownChoice("modality", modality, sorted(POPULATIONS))
    if size not in SIZES:
        raise UnknownChoice("population size", size, list(SIZES))
    out = POPULATIONS[modality](size)[: members or None]
    return [dataclasses.replace(m, epochs=int(epochs)) for m in out] if epochs else out


# -- training --------------------------------------------------------------------------------------
def trained(dataset: str, members: list[Member]) -> list[bool]:
    """Which members have a checkpoint (existence only: no dataset is loaded)."""
    return [m.path(dataset).exists() for m in members]


def train_population(dataset: str, members: list[Member], progress: ProgressFn | None = None) -> list[Path]:
    """Train every member not yet cached for this exact dataset content; returns the checkpoint paths.

    A checkpoint is reused when its metadata records this dataset's fingerprint; an unreadable one (e.g. an
    interrupted write) is trained again.

    Parameters
    ----------
    dataset : str
        The dataset's name.
    members : list of Member
        The population (``population``).
    progress : ProgressFn, optional
        Gets ``Progress`` events of stage ``selection`` (a fraction of 1 and a message); a
        ``(fraction, message)`` callback still works.

    Returns
    -------
    list of Path
        One checkpoint per member, in order.
    """
    progress = as_progress_fn(progress)
    ds = load_dataset(dataset)
    fp, paths = ds.fingerprint(), []
    for k, m in enumerate(members):

        def step(e: Progress, k: int = k, m: Member = m) -> None:
            notify(progress, (k + e.done / max(e.total, 1)) / len(members), 1.0, "selection",
                   f"Training {k + 1}/{len(members)}: {m.name}, epoch {e.done}/{e.total}")

        paths.append(train_cached(ds, m.arch, m.path(dataset), seed=m.seed, arch_kwargs=m.arch_kwargs,
                                  recipe={"epochs": m.epochs} if m.epochs else {}, progress=step,
                                  extra_meta={"population_member": m.name},
                                  reuse=lambda meta: meta.get("dataset_fingerprint") == fp).path)
    notify(progress, 1.0, 1.0, "selection", f"{len(members)} members trained")
    return paths


# -- scoring ---------------------------------------------------------------------------------------
def agreement_matrix(maps: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """(M, N, ...) maps of M models on the same N samples -> (M, M) mean per-sample Spearman correlation
    of the flattened signed maps (constant maps have no correlation and are left out of the mean)."""
    a = torch.as_tensor(np.stack([np.asarray(m) for m in maps])).double()
    M, N = a.shape[:2]
    r = average_ranks(a.reshape(M * N, -1)).reshape(M, N, -1)
    r = r - r.mean(-1, keepdim=True)
    norm = r.norm(dim=-1, keepdim=True)
    r = torch.where(norm > 0, r / norm.clamp_min(1e-300), torch.full_like(r, float("nan")))
    corr = torch.bmm(r.transpose(0, 1), r.permute(1, 2, 0))  # (N, M, M)
    return torch.nanmean(corr, dim=0).clamp(-1, 1).numpy()


def importance_maps(maps: np.ndarray, modality: str) -> np.ndarray:
    """What agreement compares: DNA maps gradient-corrected (signed, as the consistency measures of the
    study), image maps as |a| summed over channels (the sign of an image gradient is mostly noise, so
    signed image maps barely correlate between any two models), expression maps signed as they are."""
    if modality == "sequence":
        return maps - maps.mean(axis=1, keepdims=True)
    if modality == "image":
        return np.abs(maps).sum(axis=1)
    return maps


def cross_model_agreement(maps: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """(M,) each model's mean agreement with every other model (NaN with fewer than two models)."""
    mat = agreement_matrix(maps)
    M = len(mat)
    if M < 2:
        return np.full(M, np.nan)
    off = np.where(np.eye(M, dtype=bool), np.nan, mat)
    with np.errstate(all="ignore"):
        return np.nanmean(off, axis=1) if np.isfinite(off).any() else np.full(M, np.nan)


def metrics_for(ds) -> tuple[list[str], list[str]]:
    """(ground-truth interpretability metrics, set-level consistency metrics) that apply to ``ds``."""
    gt, mod = ds.ground_truth, ds.modality
    field_ = None if gt is None else getattr(gt, _GT_FIELD.get(mod, ""), None)
    interp = list(INTERPRETABILITY.get(mod, ())) if field_ is not None and len(field_) else []
    return interp, list(SET_CONSISTENCY.get(mod, ()))


@dataclass
class PopulationScores:
    """What ``score_population`` returns (and caches as JSON next to the models).

    Attributes
    ----------
    table : DataFrame
        One row per member: settings, accuracy (in %), the interpretability and consistency columns.
    agreement : ndarray
        (M, M) pairwise agreement of the members' maps.
    interpretability : list of str
        Ground-truth metric columns (mean over samples).
    consistency : list of str
        Consistency columns (set-level metrics, then ``"agreement"``).
    method : str
        The attribution method.
    n : int
        The number of samples explained.
    """
    table: pd.DataFrame  # one row per member
    agreement: np.ndarray  # (M, M) pairwise agreement
    interpretability: list[str]  # ground-truth metric columns (mean over samples)
    consistency: list[str]  # consistency columns (set-level metrics, then "agreement")
    method: str
    n: int

    def to_json(self) -> str:
        """The scores as JSON text."""
        return json.dumps({**vars(self), "table": self.table.to_dict(orient="list"),
                           "agreement": self.agreement.tolist()}, default=str)

    @classmethod
    def from_json(cls, text: str) -> PopulationScores:
        """Scores read back from ``to_json``'s text."""
        d = json.loads(text)
        return cls(**{**d, "table": pd.DataFrame(d["table"]), "agreement": np.asarray(d["agreement"], dtype=float)})


def scores_path(dataset: str, members: list[Member], method: str, n: int, seed: int, store) -> Path | None:
    """Where the summary of this exact population run lives (None while a member is untrained)."""
    paths = [m.path(dataset) for m in members]
    if not paths or not all(p.exists() for p in paths):
        return None
    key = json.dumps([_SUMMARY_VERSION, str(Path(store.path).resolve()), method, int(n), int(seed),
                      [(m.name, checkpoint_hash(p)) for m, p in zip(members, paths)]])
    return cache_dir() / "selection" / f"{dataset}__{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def load_scores(dataset: str, members: list[Member], method: str, n: int, seed: int, store
                ) -> PopulationScores | None:
    """The stored scores of this population run, or None if it was not scored yet (cheap: no model runs)."""
    path = scores_path(dataset, members, method, n, seed, store)
    return PopulationScores.from_json(path.read_text()) if path is not None and path.exists() else None


def score_population(dataset: str, members: list[Member], store, method: str = "saliency", n: int = 32,
                     seed: int = 0, progress: ProgressFn | None = None) -> PopulationScores:
    """Score every (trained) member through ``Evaluation``: accuracy, ground-truth interpretability, consistency.

    Attributions and scores land in ``store``; the summary is cached next to the models. All members are
    explained on the same test samples, correct or not.

    Parameters
    ----------
    dataset : str
        The dataset's name.
    members : list of Member
        The population, trained (``train_population``).
    store : ResultStore
        Where attributions and scores are kept.
    method : str
        The attribution method.
    n : int
        The number of test samples explained.
    seed : int
        The evaluation's seed.
    progress : ProgressFn, optional
        As for ``train_population``.

    Returns
    -------
    PopulationScores
    """
    progress = as_progress_fn(progress)
    rows, maps, idx0 = [], [], None
    interp, consistency = [], []
    for k, m in enumerate(members):
        notify(progress, k / len(members), 1.0, "selection",
               f"Scoring {k + 1}/{len(members)}: {m.name} ({method} on {n} samples)")
        path = m.path(dataset)
        ev = Evaluation(EvalConfig(dataset, model=str(path), methods=[method], metrics=[], n=n, seed=seed,
                                   only_correct=False), store)
        if k == 0:
            interp, consistency = metrics_for(ev.ds)
        ev.config = dataclasses.replace(ev.config, metrics=interp + consistency)
        plan = ev.plan()

        def inner(e: Progress, k: int = k, m: Member = m) -> None:  # this member's events, a share of its step
            if e.total:
                share = 0.8 * e.done / e.total if e.stage == "explain" else 0.9
                notify(progress, (k + share) / len(members), 1.0, "selection",
                       f"Scoring {k + 1}/{len(members)}: {m.name}, {e.metric or e.method} {e.done}/{e.total}")

        scores, idx = ev.run(plan, progress=inner), plan.sample_idx
        if idx0 is not None and not np.array_equal(idx, idx0):
            raise RuntimeError(f"{m.name} was explained on other samples than the first member")
        idx0 = idx
        maps.append(importance_maps(ev.attributions(method, idx).detach().cpu().numpy(), ev.ds.modality))
        test = evaluate_model(ev.model, ev.ds.X[ev.ds.test_idx], ev.ds.y[ev.ds.test_idx])
        used = ev.model_meta.get("arch_kwargs") or {}
        row = {"member": m.name, "arch": m.arch, "settings": m.describe(), "seed": m.seed,
               "epochs": m.epochs or "full", **{o: str(used.get(o, ARCHS.get(m.arch).defaults.get(o, "")))
                                                 for o in _SHOWN},
               "accuracy": 100 * test["accuracy"], "balanced_accuracy": 100 * test["balanced_accuracy"],
               "auroc": None if test["auroc"] is None else 100 * test["auroc"],
               "epochs_run": ev.model_meta.get("epochs_run")}
        for metric in interp + consistency:
            vals = scores.loc[scores["metric"] == metric, "score"].to_numpy(dtype=float)
            row[metric] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        row.update(n_samples=len(idx), path=str(path), checkpoint_hash=ev.model_hash)
        rows.append(row)
    table = pd.DataFrame(rows)
    mat = agreement_matrix(maps) if maps else np.zeros((0, 0))
    table[AGREEMENT] = cross_model_agreement(maps) if maps else []
    out = PopulationScores(table, mat, interp, consistency + [AGREEMENT], method, int(n))
    target = scores_path(dataset, members, method, n, seed, store)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{time.time_ns()}.tmp")
        tmp.write_text(out.to_json())
        tmp.replace(target)
    notify(progress, 1.0, 1.0, "selection", f"{len(members)} members scored")
    return out


# -- selection -------------------------------------------------------------------------------------
def pareto_front(df: pd.DataFrame, x: str, y: str, maximise: tuple[bool, bool] = (True, True)) -> pd.DataFrame:
    """The non-dominated rows of ``df`` (rows with a missing x or y are left out), sorted by x.

    A row is dominated when another is at least as good on both axes and strictly better on one; equal rows do
    not dominate each other, so tied points are all on the front.

    Parameters
    ----------
    df : DataFrame
        One row per member.
    x, y : str
        The two columns.
    maximise : tuple of (bool, bool)
        Whether higher is better on x and on y.

    Returns
    -------
    DataFrame
    """
    d = df[np.isfinite(df[x].astype(float)) & np.isfinite(df[y].astype(float))]
    X = d[x].to_numpy(dtype=float) * (1 if maximise[0] else -1)
    Y = d[y].to_numpy(dtype=float) * (1 if maximise[1] else -1)
    geq = (X[None, :] >= X[:, None]) & (Y[None, :] >= Y[:, None])
    gt = (X[None, :] > X[:, None]) | (Y[None, :] > Y[:, None])
    dominated = (geq & gt).any(axis=1)
    return d[~dominated].sort_values(x, ascending=maximise[0], kind="stable")


def select_model(df: pd.DataFrame, x: str = "accuracy", y: str = AGREEMENT, tolerance: float = 1.0
                 ) -> pd.Series | None:
    """The rule: the most consistent Pareto-front member among those about as accurate as the best.

    Among the Pareto-front members whose ``x`` (accuracy, in %) is within ``tolerance`` percentage points of the
    best, take the most consistent (highest ``y``); ties go to the higher ``x``, then the first listed.
    Generalisation first, then consistency, as the study's multivariate selection.

    Parameters
    ----------
    df : DataFrame
        One row per member (``PopulationScores.table``).
    x : str
        The performance column.
    y : str
        The consistency column.
    tolerance : float
        Percentage points below the best ``x`` still counted as accurate.

    Returns
    -------
    Series or None
        The chosen row; None when no member has both numbers.
    """
    front = pareto_front(df, x, y)
    if front.empty:
        return None
    near = front[front[x] >= front[x].max() - tolerance]
    return near.sort_values([y, x], ascending=False, kind="stable").iloc[0]
