"""The evaluation grid: dataset x model x explainer x metric, resumable through the results store.

Attributions are computed once per (dataset, checkpoint, method, parameters, sample) and reused by every
metric; scores are written per batch, so an interrupted run resumes where it stopped and a finished cell
is never recomputed. ``progress(event)`` receives ``xai_core.progress.Progress`` events (stage ``explain``,
``metric`` or ``train``, with ``method``, ``metric``, ``done``, ``total`` and ``cached``) that the CLI turns
into progress bars and the dashboard into ``st.progress``.

``Evaluation`` is assembled from its parts: planning (``EvalConfig``, ``Plan`` and the sample selection, in
``xai_core.runner_plan``), the cells (store keys, stored lookups, one chunk's compute and store, in
``xai_core.runner_cells``) and, here, loading, the population of models of other training seeds, and the run in
this process. Import every name from here.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .data import cache_dir, load_dataset
from .errors import XaiError
from .explainers import make_context
from .leases import cell_name, for_store, shared
from .metrics import METRICS
from .models import load_model, train_cached
from .models.user_models import checks_from_meta
from .progress import Progress, ProgressFn, notify
from .runner_cells import EvaluationCells
from .runner_plan import EvalConfig, EvaluationPlanning, Plan
from .store import params_key

__all__ = ["EvalConfig", "Evaluation", "Plan", "ranking_input"]


class Evaluation(EvaluationPlanning, EvaluationCells):
    """One dataset and model: plan, then run every (method, metric) cell missing from the store.

    Making it loads the dataset, the model (with its checks) and the explain context. Its planning
    (``select_samples``, ``resolve_metrics``, ``plan``) is inherited from ``xai_core.runner_plan.EvaluationPlanning``,
    its cells' keys, stored lookups and per-chunk compute and store from ``xai_core.runner_cells.EvaluationCells``.

    Parameters
    ----------
    config : EvalConfig
        The settings.
    store : ResultStore
        Where attributions and scores are kept (and found again).

    Raises
    ------
    XaiError
        For ``population_seeds`` with a user model that is not a built-in architecture, or as ``load_model``
        raises.
    UnknownChoice
        For an unknown dataset or ``output``.
    """

    def __init__(self, config: EvalConfig, store):
        self.config, self.store = config, store
        torch.manual_seed(config.seed)
        self.ds = load_dataset(config.dataset)
        self.model, self.model_meta = load_model(config.dataset, config.model, device=config.device, ds=self.ds)
        self.model_name = self.model_meta.get("model_name") or (  # a user model: its registered name / file stem
            Path(config.model).stem if config.model and config.model.endswith(".safetensors")
            else config.model or self.model_meta.get("arch", "model"))
        if "checks" not in self.model_meta:  # shipped / trained checkpoints: from their recorded test accuracy
            self.model_meta["checks"] = checks_from_meta(self.model_meta, self.ds)
        meta = self.model_meta
        if config.population_seeds > 0 and meta.get("user_model") and not meta.get("builtin_arch"):
            raise XaiError(f"--population-seeds retrains the model's architecture with other seeds; "
                           f"'{self.model_name}' is your own model, not a built-in architecture "
                           f"(use --population-seeds 0)")
        self.ctx = make_context(self.model, self.ds, seed=config.seed, output=config.output)
        self.dataset_fp = self.ds.fingerprint()
        self.model_hash = self.model_meta["checkpoint_hash"]
        self._notes: list[str] = []
        self._versions: dict[str, str] | None = None  # package versions, read once (0.1 s per read)

    def with_config(self, **changes: Any) -> Evaluation:
        """A shallow copy with other settings that shares the loaded dataset, model, context and store.

        Parameters
        ----------
        **changes
            ``EvalConfig`` fields to replace (``methods``, ``metrics``, ``n``, ...).

        Returns
        -------
        Evaluation
            The copy, with its own config and no planning notes yet; this evaluation is unchanged.
        """
        ev = copy.copy(self)
        ev.config = dataclasses.replace(self.config, **changes)
        ev._notes = []
        return ev

    # -- a population of models (training seeds) ------------------------------------------------
    def population_paths(self) -> list[Path]:
        """Where the seed 1..K models of the population are (or will be) cached.

        Returns
        -------
        list of Path
        """
        c, arch = self.config, self.model_meta["arch"]
        tag = f"e{c.population_epochs}" if c.population_epochs else "full"
        return [cache_dir() / "models" / f"{self.ds.name}-{self.dataset_fp}__{arch}__seed{seed}__{tag}.safetensors"
                for seed in range(1, c.population_seeds + 1)]

    def population_models(self, progress: ProgressFn | None = None) -> list[tuple[str, torch.nn.Module, str]]:
        """(name, model, checkpoint hash) of seeds 1..K, trained once (on the CPU) and cached as safetensors.

        A checkpoint that is there but unreadable is refused (``XaiError``), not trained again.

        Parameters
        ----------
        progress : ProgressFn, optional
            Gets one ``Progress(0, 1, "train", method="ARCH seed K")`` before a member is trained.

        Returns
        -------
        list of tuple
        """
        c = self.config
        arch, kwargs = self.model_meta["arch"], self.model_meta.get("arch_kwargs") or {}
        recipe = {"epochs": c.population_epochs} if c.population_epochs else {}
        out = []
        for seed, path in enumerate(self.population_paths(), start=1):
            def starts(e: Progress, name: str = f"{arch} seed {seed}") -> None:  # not the epochs
                if not e.done:
                    notify(progress, 0, 1, "train", method=name)

            member = train_cached(self.ds, arch, path, seed=seed, arch_kwargs=kwargs, recipe=recipe, device="cpu",
                                  progress=starts, reuse=True, damaged="raise", load=c.device)
            out.append((f"{arch}-seed{seed}", member.model, member.meta["checkpoint_hash"]))
        return out

    def population_attributions(self, method: str, idx: np.ndarray, progress: ProgressFn | None = None
                                ) -> list[torch.Tensor] | None:
        """The same samples explained by ``method`` on every population model (stored like any attribution).

        Parameters
        ----------
        method : str
            The method.
        idx : ndarray
            Row indices of the dataset.
        progress : ProgressFn, optional
            Gets the training and explain events.

        Returns
        -------
        list of Tensor or None
            One map tensor per population model; None without ``population_seeds``.
        """
        if self.config.population_seeds <= 0:
            return None
        if not hasattr(self, "_population"):
            self._population = self.population_models(progress)
        return [self.attributions(method, idx, progress, member=m) for m in self._population]

    # -- running in this process --------------------------------------------------------------
    def _leases(self):
        """This process's leases on the store's file (None for a store without a file)."""
        path = getattr(self.store, "path", None)
        return None if path is None else for_store(path)

    def attributions(self, method: str, idx: np.ndarray, progress: ProgressFn | None = None,
                     member: tuple[str, torch.nn.Module, str] | None = None) -> torch.Tensor:
        """The stored maps of ``method`` for ``idx``; missing ones are computed per batch and stored.

        A composite reuses (and stores) its components' maps when they run at their default parameters.

        Parameters
        ----------
        method : str
            The method.
        idx : ndarray
            Row indices of the dataset.
        progress : ProgressFn, optional
            Gets ``"explain"`` events (``cached=True`` when every map was stored).
        member : tuple, optional
            (name, model, checkpoint hash): explains with another model of the population instead.

        Returns
        -------
        Tensor
            (len(idx), ...) on the model's device.
        """
        ctx = self._member_context(member)
        ids = [self.ds.sample_ids[i] for i in idx]
        key = self.attribution_key(method, member)
        arr, missing = self.store.get_attributions(sample_ids=ids, **key)
        if arr is not None:
            notify(progress, len(ids), len(ids), "explain", method=method, cached=True)
            return torch.as_tensor(arr, device=ctx.device)
        row_of = dict(zip(ids, idx))
        done = len(ids) - len(missing)
        bs = self.config.explain_batch
        # rows another run on this store is computing are waited for, not computed twice (xai_core/leases.py)
        for claimed in shared(self._leases(), cell_name(kind="attributions", **key), missing,
                              lambda rows: self.store.missing_attributions(sample_ids=rows, **key), chunk=bs):
            bidx = np.asarray([row_of[sid] for sid in claimed])
            attr, secs = self.compute_attribution_chunk(method, bidx, member=member)
            self.store_attribution_chunk(method, bidx, attr, secs, member=member)
            done += len(bidx)
            notify(progress, done, len(ids), "explain", method=method)
        arr, missing = self.store.get_attributions(sample_ids=ids, **key)
        if arr is None:
            raise RuntimeError(f"attributions of {method} missing after computing them: {missing[:3]}")
        return torch.as_tensor(arr, device=ctx.device)

    def run(self, plan: Plan | None = None, progress: ProgressFn | None = None) -> pd.DataFrame:
        """Compute every missing cell of the plan; returns the tidy scores of the plan's cells.

        Parameters
        ----------
        plan : Plan, optional
            From ``plan()``; made here when not given.
        progress : ProgressFn, optional
            Gets ``"explain"``, ``"metric"`` and ``"train"`` events (``cached=True`` for cells already stored).

        Returns
        -------
        DataFrame
            As ``scores``.
        """
        plan = plan or self.plan()
        self.compute(plan, progress)
        return self.scores(plan)

    def compute(self, plan: Plan, progress: ProgressFn | None = None) -> None:
        """``run`` without reading the scores back: for callers that compute many small plans and read the
        store once afterwards (the adaptive loop: 576 steps on an all-method grid, each read-back ~10 ms).

        Parameters
        ----------
        plan : Plan
            From ``plan()``.
        progress : ProgressFn, optional
            As ``run``.
        """
        idx = plan.sample_idx
        ids = [self.ds.sample_ids[i] for i in idx]
        for method in plan.methods:
            a_all = self.attributions(method, idx, progress)
            extras = self.method_extras(a_all, idx)
            population = self.population_attributions(method, idx, progress)
            for metric in plan.metrics:
                spec = METRICS.get(metric)
                key = self.score_key(method, metric, idx)
                want = ["*"] if spec.scope == "set" else ids
                missing = set(self.store.missing_scores(sample_ids=want, **key))
                if not missing:
                    notify(progress, len(want), len(want), "metric", method=method, metric=metric, cached=True)
                    continue
                step = None if spec.scope == "set" else self.config.batch_size
                n_todo, n_done = len(missing), 0
                todo = [s for s in want if s in missing]
                for claimed in shared(self._leases(), cell_name(kind="scores", **key), todo,
                                      lambda rows, key=key: self.store.missing_scores(sample_ids=rows, **key),
                                      chunk=step):
                    sel = self.positions(idx, claimed)
                    res = self.compute_score_chunk(method, metric, idx, a_all, sel, population, extras)
                    self.store_score_chunk(method, metric, idx, sel, res)
                    n_done += len(claimed)
                    notify(progress, min(n_done, n_todo), n_todo, "metric", method=method, metric=metric)

    def scores(self, plan: Plan) -> pd.DataFrame:
        """The tidy scores of the plan's cells, read back from the store (one row per sample or '*').

        Parameters
        ----------
        plan : Plan
            The plan whose cells to read.

        Returns
        -------
        DataFrame
            As ``ResultStore.scores_frame``, with ``model`` set to this evaluation's model name.
        """
        frame = self.store.scores_frame(dataset=self.ds.name, methods=plan.methods, metrics=plan.metrics)
        frame = frame[frame["model_hash"] == self.model_hash]
        ids = set(self.ds.sample_ids[i] for i in plan.sample_idx) | {"*"}
        frame = frame[frame["sample"].isin(ids)]
        keep = []
        for method in plan.methods:
            mk = params_key(self.method_key(method))
            for metric in plan.metrics:
                xk = params_key(self._metric_params(METRICS.get(metric), plan.sample_idx))
                keep.append((method, mk, metric, xk))
        keys = pd.MultiIndex.from_tuples(keep, names=["method", "method_key", "metric", "metric_key"])
        sel = pd.MultiIndex.from_frame(frame[["method", "method_key", "metric", "metric_key"]]).isin(keys)
        out = frame[sel].copy()
        out["model"] = self.model_name
        return out.reset_index(drop=True)


def ranking_input(scores: pd.DataFrame) -> pd.DataFrame:
    """Scores restricted to metrics that take part in rankings (not e.g. PGR's random reference).

    Parameters
    ----------
    scores : DataFrame
        Tidy scores (``Evaluation.run``).

    Returns
    -------
    DataFrame
    """
    ranked = [m for m in scores["metric"].unique() if m in METRICS and METRICS.get(m).in_ranking]
    return scores[scores["metric"].isin(ranked)]
