"""The cells of an evaluation: how each is keyed in the results store, and one chunk's compute and store.

A cell is a method's maps (keyed by dataset, model, method and its stored parameters, output) or a (method, metric)
cell of scores (the same, with the metric and its stored parameters). ``EvaluationCells`` names them
(``method_key``, ``attribution_key``, ``score_key``, ``composite_parts``), reads what is stored without computing
(``stored_attributions``, ``stored_curves``, ``missing_scores``), and computes and writes one chunk
(``compute_attribution_chunk``, ``store_attribution_chunk``, ``method_extras``, ``compute_score_chunk``,
``store_score_chunk``): what every executor runs, in this process (``Evaluation.run``) or on Ray workers
(``xai_core.ray_worker``), so both store the same numbers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from .data import Dataset
from .explainers import EXPLAINERS, ExplainContext, combine, components, explain
from .metrics import METRICS, MetricResult, build_inputs, compute_metric
from .metrics.perturb import baseline_draws_key
from .provenance import now, package_versions
from .runner_plan import EvalConfig
from .store import ResultStore


class EvaluationCells:
    """The per-cell part of ``Evaluation``: store keys, stored lookups, and one chunk's compute and store.

    A mixin: ``xai_core.runner.Evaluation`` inherits it and sets the attributes it reads (``config``, ``store``,
    ``ds``, ``ctx``, ``model_meta``, ``model_name``, ``dataset_fp``, ``model_hash``, and ``_versions``, the package
    versions read once). A composite computed in this process reads its components' maps through
    ``Evaluation.attributions`` (which stores those it computes).
    """

    config: EvalConfig
    store: ResultStore | None  # None on a Ray worker: the driver stores
    ds: Dataset
    ctx: ExplainContext
    model_meta: dict[str, Any]
    model_name: str
    dataset_fp: str
    model_hash: str
    _versions: dict[str, str] | None

    def _provenance(self, **extra) -> dict[str, Any]:
        c = self.config
        if self._versions is None:
            self._versions = package_versions()
        return {"created": now(), "versions": self._versions, "seed": c.seed, "output": c.output,
                "dataset_params": self.ds.params,
                "model": {k: self.model_meta.get(k)
                          for k in ("arch", "arch_kwargs", "checkpoint_hash", "path", "seed")},
                "config": {k: v for k, v in asdict(c).items() if k not in ("method_params", "metric_params")}, **extra}

    def _method_params(self, method: str) -> dict[str, Any]:
        return EXPLAINERS.get(method).params_for(self.ds.modality, self.config.method_params.get(method, {}))

    def method_key(self, method: str) -> dict[str, Any]:
        """The method's parameters as stored: with its implementation version, so a changed computation
        is never served from results of the old one, and with the run's seed (other than 0) when its maps depend
        on it (``ExplainerSpec.depends_on_seed``), so another seed never reads them back. The report reads stored
        cells by this key.

        Parameters
        ----------
        method : str
            An explainer name.

        Returns
        -------
        dict
            The parameters (with ``_version`` when the method's version is above 1, and for a composite
            ``_parts``: the versions above 1 of the methods it combines).
        """
        spec = EXPLAINERS.get(method)
        params = self._method_params(method)
        if self.config.seed != 0 and spec.depends_on_seed(params):  # seed 0 unmarked: older stores keep their maps
            params = {**params, "_seed": self.config.seed}
        parts = {c: EXPLAINERS.get(c).version for c in components(method, params) or ()}
        if any(v > 1 for v in parts.values()):  # a composite's maps change when a component's computation does
            params = {**params, "_parts": {c: v for c, v in parts.items() if v > 1}}
        return params if spec.version == 1 else {**params, "_version": spec.version}

    def _metric_params(self, spec, idx: np.ndarray) -> dict[str, Any]:
        """The metric's parameters as stored: population metrics also key on the population used, a metric
        whose computation changed (``version`` > 1) on its version, a seeded one on the seed (other than 0), and a
        metric of the whole set (``scope="set"``
        or ``of_set``) on the evaluated samples, so a run on other samples never reuses its score."""
        p = spec.params_for(self.ds.modality, self.config.metric_params.get(spec.name, {}))
        if spec.scope == "set" or spec.of_set:
            ids = sorted(str(self.ds.sample_ids[i]) for i in idx)
            p = {**p, "_samples": f"{len(ids)}:{hashlib.sha256(chr(10).join(ids).encode()).hexdigest()[:16]}"}
        if spec.population:
            p = {**p, "population_seeds": self.config.population_seeds,
                 "population_epochs": self.config.population_epochs}
        if self.config.seed != 0 and spec.depends_on_seed(p):  # a seeded method's maps are keyed by it already
            p = {**p, "_seed": self.config.seed}
        p = baseline_draws_key(p)  # a seeded baseline's draws changed (per sample since version 2)
        return p if spec.version == 1 else {**p, "_version": spec.version}

    def attribution_key(self, method: str, member: tuple | None = None) -> dict[str, Any]:
        """The store's key of ``method``'s maps (of this model, or of a population member's).

        Parameters
        ----------
        method : str
            The method.
        member : tuple, optional
            (name, model, checkpoint hash) of a population member.

        Returns
        -------
        dict
            The keyword arguments ``ResultStore.put_attributions`` and ``get_attributions`` take to name the cell.
        """
        return dict(dataset_fp=self.dataset_fp, model_hash=self.model_hash if member is None else member[2],
                    method=method, method_params=self.method_key(method), output=self.config.output)

    def score_key(self, method: str, metric: str, idx: np.ndarray) -> dict[str, Any]:
        """The store's key of the (``method``, ``metric``) cell on the samples ``idx``.

        Parameters
        ----------
        method : str
            The method.
        metric : str
            The metric.
        idx : ndarray
            Row indices of every evaluated sample (a set-level metric is keyed by them).

        Returns
        -------
        dict
            The keyword arguments ``ResultStore.put_scores`` and ``missing_scores`` take to name the cell.
        """
        return dict(dataset_fp=self.dataset_fp, model_hash=self.model_hash, method=method,
                    method_params=self.method_key(method), output=self.config.output, metric=metric,
                    metric_params=self._metric_params(METRICS.get(metric), idx))

    def composite_parts(self, method: str) -> list[str]:
        """The methods whose maps ``method`` combines, when it reuses them (a composite at its components'
        default parameters); else ``[]`` (the method is explained directly).

        Parameters
        ----------
        method : str
            The method.

        Returns
        -------
        list of str
        """
        comps = components(method, self._method_params(method))
        return list(comps) if comps and not any(self.config.method_params.get(cm) for cm in comps) else []

    def stored_attributions(self, method: str, idx: np.ndarray, member: tuple | None = None
                            ) -> tuple[np.ndarray | None, list[str]]:
        """The stored maps of ``method`` for ``idx`` without computing anything.

        Parameters
        ----------
        method : str
            The method.
        idx : ndarray
            Row indices of the dataset.
        member : tuple, optional
            (name, model, checkpoint hash): looks up a population model's maps instead.

        Returns
        -------
        maps : ndarray or None
            The maps when all are stored, else None.
        missing : list of str
            The sample ids without a stored map.
        """
        ids = [self.ds.sample_ids[i] for i in idx]
        return self.store.get_attributions(dataset_fp=self.dataset_fp,
                                           model_hash=member[2] if member else self.model_hash, method=method,
                                           method_params=self.method_key(method),
                                           output=self.config.output, sample_ids=ids)

    def stored_curves(self, method: str, metric: str, idx: np.ndarray) -> np.ndarray | None:
        """The stored per-sample curves of (``method``, ``metric``) for ``idx`` (None where not stored).

        Parameters
        ----------
        method : str
            The method.
        metric : str
            A curve metric.
        idx : ndarray
            Row indices of the dataset.

        Returns
        -------
        ndarray or None
        """
        return self.store.curves(dataset_fp=self.dataset_fp, model_hash=self.model_hash, method=method,
                                 method_params=self.method_key(method), output=self.config.output, metric=metric,
                                 metric_params=self._metric_params(METRICS.get(metric), idx),
                                 sample_ids=[self.ds.sample_ids[i] for i in idx])

    def missing_scores(self, method: str, metric: str, idx: np.ndarray) -> list[str]:
        """The sample ids of ``idx`` without a stored score of (``method``, ``metric``), without computing anything.

        Parameters
        ----------
        method : str
            The method.
        metric : str
            The metric.
        idx : ndarray
            Row indices of the dataset.

        Returns
        -------
        list of str
            The missing sample ids in ``idx``'s order; for a set-level metric ``["*"]`` or ``[]``.
        """
        spec = METRICS.get(metric)
        want = ["*"] if spec.scope == "set" else [self.ds.sample_ids[i] for i in idx]
        return self.store.missing_scores(dataset_fp=self.dataset_fp, model_hash=self.model_hash, method=method,
                                         method_params=self.method_key(method), output=self.config.output,
                                         metric=metric, metric_params=self._metric_params(spec, idx), sample_ids=want)

    def positions(self, idx: np.ndarray, sample_ids: Sequence[str]) -> np.ndarray:
        """Positions in ``idx`` of the given sample ids; ``["*"]`` (a set-level cell) is every position.

        Parameters
        ----------
        idx : ndarray
            Row indices of every evaluated sample.
        sample_ids : sequence of str
            Ids of samples among ``idx``, or ``["*"]``.

        Returns
        -------
        ndarray
            Integer positions, in the order of ``sample_ids``.
        """
        if list(sample_ids) == ["*"]:
            return np.arange(len(idx))
        pos_of = {self.ds.sample_ids[i]: k for k, i in enumerate(idx)}
        return np.asarray([pos_of[s] for s in sample_ids], dtype=np.int64)

    def _member_context(self, member: tuple | None) -> ExplainContext:
        """The explain context of this evaluation's model, or of a population member's."""
        return self.ctx if member is None else dataclasses.replace(self.ctx, model=member[1], extras={})

    def compute_attribution_chunk(self, method: str, bidx: np.ndarray, member: tuple | None = None,
                                  maps_of: Callable[[str, np.ndarray], torch.Tensor] | None = None
                                  ) -> tuple[np.ndarray, float]:
        """Explain one chunk of samples with ``method``, without storing it: what every executor runs per chunk.

        A composite at its components' default parameters combines their maps, got from ``maps_of``; the
        in-process default, ``attributions``, reads them from the store and stores those it computes.

        Parameters
        ----------
        method : str
            The method.
        bidx : ndarray
            Row indices of the dataset: one chunk (its composition seeds the stochastic methods, so executors
            chunk alike).
        member : tuple, optional
            (name, model, checkpoint hash): explains with another model of the population instead.
        maps_of : callable, optional
            ``maps_of(component, bidx) -> Tensor``: a composite's component maps (default: ``attributions``).

        Returns
        -------
        maps : ndarray
            (len(bidx), ...) float32.
        seconds : float
            The time taken.
        """
        ctx = self._member_context(member)
        params = self._method_params(method)
        t0 = time.perf_counter()
        comps = self.composite_parts(method)
        if comps:
            if maps_of is None:
                def maps_of(cm: str, rows: np.ndarray) -> torch.Tensor:
                    return self.attributions(cm, rows, member=member)  # reuse (and store) the components
            attr = combine([maps_of(cm, bidx) for cm in comps], params["normalisation"])
        else:
            x = torch.as_tensor(self.ds.X[bidx], device=ctx.device)
            y = torch.as_tensor(self.ds.y[bidx], device=ctx.device)
            attr = explain(ctx, x, y, method, explain_batch=self.config.explain_batch,
                           **self.config.method_params.get(method, {})).attributions
        return attr.detach().cpu().numpy().astype(np.float32), time.perf_counter() - t0

    def store_attribution_chunk(self, method: str, bidx: np.ndarray, maps: np.ndarray, seconds: float,
                                member: tuple | None = None) -> None:
        """Write one chunk of maps (``compute_attribution_chunk``'s result) to the store, with its provenance.

        Parameters
        ----------
        method : str
            The method.
        bidx : ndarray
            Row indices of the dataset, in the order of ``maps``.
        maps : ndarray
            (len(bidx), ...) maps.
        seconds : float
            The time they took.
        member : tuple, optional
            (name, model, checkpoint hash): maps of a population member (only its name and hash are read).
        """
        self.store.put_attributions(dataset=self.ds.name, model=self.model_name if member is None else member[0],
                                    sample_ids=[self.ds.sample_ids[i] for i in bidx],
                                    attributions=np.asarray(maps, dtype=np.float32), targets=self.ds.y[bidx],
                                    seconds=seconds, provenance=self._provenance(
                                        kind="attribution", params=self._method_params(method)),
                                    **self.attribution_key(method, member))

    def method_extras(self, a_all: torch.Tensor, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """What every metric of one method sees besides a chunk's maps: the maps' global (set-level) summaries.

        Parameters
        ----------
        a_all : Tensor
            The method's maps of every evaluated sample.
        idx : ndarray
            Their row indices of the dataset.

        Returns
        -------
        dict
            ``global_attr`` (the sum of the unit-norm maps) and, for sequences, ``global_attr_observed`` (per
            position, at the observed nucleotide).
        """
        flat = a_all.reshape(len(a_all), -1)
        norms = flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
        out = {"global_attr": (flat / norms).sum(0).reshape(a_all.shape[1:])}
        if self.ds.modality == "sequence":  # per position, at the observed nucleotide of each sequence
            x_all = torch.as_tensor(self.ds.X[idx], device=a_all.device)
            out["global_attr_observed"] = ((a_all * x_all).sum(1) / norms).sum(0)
        return out

    def compute_score_chunk(self, method: str, metric: str, idx: np.ndarray, a_all: torch.Tensor, sel: np.ndarray,
                            population: list[torch.Tensor] | None = None,
                            extras: dict[str, torch.Tensor] | None = None) -> MetricResult:
        """Score one chunk of samples with ``metric``, without storing it: what every executor runs per chunk.

        Parameters
        ----------
        method : str
            The method whose maps are scored.
        metric : str
            The metric.
        idx : ndarray
            Row indices of every evaluated sample.
        a_all : Tensor
            The method's maps of ``idx``.
        sel : ndarray
            Positions in ``idx`` of the chunk (every position for a set-level metric). The chunk's sample ids seed
            the metric's draws, so executors chunk alike.
        population : list of Tensor, optional
            The maps of ``idx`` by each population model.
        extras : dict, optional
            ``method_extras(a_all, idx)`` when already computed (computed here otherwise).

        Returns
        -------
        MetricResult
        """
        pop = None if population is None else [p[sel] for p in population]
        inp = build_inputs(self.ds, self.ctx, idx[sel], a_all[sel], method, self._method_params(method),
                           population=pop, forward_batch=self.config.forward_batch,
                           explain_batch=self.config.explain_batch, seed=self.config.seed)
        inp.extras.update(extras if extras is not None else self.method_extras(a_all, idx))
        return compute_metric(metric, inp, **self.config.metric_params.get(metric, {}))

    def store_score_chunk(self, method: str, metric: str, idx: np.ndarray, sel: np.ndarray,
                          res: MetricResult) -> None:
        """Write one chunk of scores (``compute_score_chunk``'s result) to the store, with its provenance.

        Parameters
        ----------
        method : str
            The method.
        metric : str
            The metric.
        idx : ndarray
            Row indices of every evaluated sample.
        sel : ndarray
            Positions in ``idx`` of the chunk, in the order of ``res.scores`` (ignored for a set-level metric).
        res : MetricResult
            The chunk's scores.
        """
        spec = METRICS.get(metric)
        sids = ["*"] if spec.scope == "set" else [self.ds.sample_ids[i] for i in idx[sel]]
        self.store.put_scores(dataset=self.ds.name, model=self.model_name, family=spec.family,
                              direction=spec.direction, sample_ids=sids, scores=res.scores, reasons=res.reasons,
                              seconds=res.seconds, se=res.se, curves=res.curves,
                              provenance=self._provenance(kind="score", seconds=res.seconds),
                              **self.score_key(method, metric, idx))
