"""The evaluation grid: dataset x model x explainer x metric, resumable through the results store.

Attributions are computed once per (dataset, checkpoint, method, parameters, sample) and reused by every
metric; scores are written per batch, so an interrupted run resumes where it stopped and a finished cell
is never recomputed. ``progress(event)`` receives ``xai_core.progress.Progress`` events (stage ``explain``,
``metric`` or ``train``, with ``method``, ``metric``, ``done``, ``total`` and ``cached``) that the CLI turns
into progress bars and the dashboard into ``st.progress``.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .batching import BATCH
from .data import cache_dir, load_dataset
from .errors import XaiError
from .leases import cell_name, for_store, shared
from .explainers import (EXPLAINERS, ExplainContext, combine, components, estimate_cost, explain, make_context,
                         resolve_methods)
from .metrics import METRICS, MetricResult, applicable_metrics, build_inputs, compute_metric, estimate_metric_cost
from .metrics.fastpath import split_linear_head
from .models import load_model, train_cached
from .models.user_models import checks_from_meta
from .progress import Progress, ProgressFn, notify
from .provenance import now, package_versions
from .store import params_key


@dataclass
class EvalConfig:
    """One evaluation's settings: which data, model, methods, metrics and samples, and the batch sizes.

    Attributes
    ----------
    dataset : str
        The dataset's name.
    model : str, optional
        As for ``load_model`` (default: the dataset's default model).
    methods : str or list of str
        ``"all"`` (every applicable method), a comma list or a list.
    metrics : str or list of str
        ``"all"`` (every metric that applies to the data and its ground truth), a comma list or a list.
    n : int
        At most this many samples (positive).
    split : str
        ``"test"``, ``"train"`` or ``"all"``.
    only_correct : bool
        Evaluate correctly classified samples only (as the studies do).
    classes : list of int, optional
        Only samples of these classes; None: all classes (sequence data defaults to the motif class, 1, or
        for the user's sequences to those with a known motif site).
    output : str
        What the explainers explain: ``"logit"`` or ``"probability"``.
    batch_size : int
        Samples per metric call: the memory knob.
    forward_batch : int
        Inputs per forward pass inside a metric; 0 = auto by input size.
    explain_batch : int
        Samples per explainer call.
    seed : int
        Seeds torch, the explain context and the metrics.
    method_params : dict of str to dict
        Parameters per method.
    metric_params : dict of str to dict
        Parameters per metric.
    device : str
        Where the model runs.
    population_seeds : int
        Extra models of the same architecture (seeds 1..K) for ranking stability and consistency metrics.
    population_epochs : int, optional
        Cap their training epochs (None: the architecture's recipe).
    """
    dataset: str
    model: str | None = None
    methods: str | list[str] = "all"
    metrics: str | list[str] = "all"
    n: int = 32
    split: str = "test"
    only_correct: bool = True  # the studies evaluate correctly classified samples only
    classes: list[int] | None = None  # None: all classes; sequence data defaults to the motif class (1)
    output: str = "logit"  # what the explainers explain
    batch_size: int = BATCH.batch_size  # samples per metric call: the memory knob
    forward_batch: int = BATCH.forward_batch  # inputs per forward pass inside a metric; 0 = auto by input size
    explain_batch: int = BATCH.explain_batch  # samples per explainer call
    seed: int = 0
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str = "cpu"
    population_seeds: int = 0  # extra models of the same architecture (seeds 1..K) for ranking stability
    population_epochs: int | None = None  # cap their training epochs (None: the architecture's recipe)


@dataclass
class Plan:
    """What a run will do and what it costs, known before any work starts."""

    config: EvalConfig
    sample_idx: np.ndarray
    methods: list[str]
    metrics: list[str]
    cost: pd.DataFrame  # method, metric ("(explain)" for the attribution itself), forward, backward
    notes: list[str]

    @property
    def total_forward(self) -> float:
        """Forward passes of the whole plan."""
        return float(self.cost["forward"].sum())

    @property
    def total_backward(self) -> float:
        """Backward passes of the whole plan."""
        return float(self.cost["backward"].sum())

    def describe(self) -> str:
        """One paragraph for the user: the grid's size and passes, then the notes."""
        c = self.config
        lines = [f"{len(self.methods)} methods x {len(self.metrics)} metrics on {len(self.sample_idx)} samples of "
                 f"{c.dataset}: about {self.total_forward:,.0f} forward and {self.total_backward:,.0f} backward "
                 f"passes (before reuse of stored results)"]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


class Evaluation:
    """One dataset and model: plan, then run every (method, metric) cell missing from the store.

    Making it loads the dataset, the model (with its checks) and the explain context.

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

    # -- planning ----------------------------------------------------------------------------
    def select_samples(self) -> tuple[np.ndarray, list[str]]:
        """The samples to evaluate, and notes on what was left out.

        Returns
        -------
        idx : ndarray
            At most ``config.n`` row indices of the split, of the classes asked for (and correctly classified with
            ``only_correct``).
        notes : list of str
            What was skipped and why.

        Raises
        ------
        XaiError
            For an unknown split, a non-positive ``n``, or no samples left.
        """
        c, ds, notes = self.config, self.ds, []
        idx = {"test": ds.test_idx, "train": ds.train_idx, "all": np.arange(len(ds))}.get(c.split)
        if idx is None:
            raise XaiError(f"unknown split '{c.split}'; valid choices: test, train, all")
        classes = c.classes
        user_motifs = "format" in ds.params and ds.ground_truth is not None and ds.ground_truth.pwm is not None
        if classes is None and ds.modality == "sequence" and user_motifs:  # your data: where sites are known
            has_site = ds.ground_truth.information_content()[idx].max(axis=1) > 0.1
            notes.append(f"sequence data: only the {int(has_site.sum())} of {len(idx)} sequences with a known motif "
                         f"site are evaluated")
            idx = idx[has_site]
        elif classes is None and ds.modality == "sequence" and ds.ground_truth is not None:
            classes = [1]
            notes.append("sequence data: only sequences with planted motifs (class 1) are evaluated, as in the study")
        if classes is not None:
            idx = idx[np.isin(ds.y[idx], classes)]
        if c.only_correct:
            pred = self._predict(idx)
            keep = pred == ds.y[idx]
            if (~keep).any():
                notes.append(f"{int((~keep).sum())} of {len(idx)} candidate samples are misclassified and skipped "
                             f"(pass --include-misclassified to keep them)")
            idx = idx[keep]
        if c.n <= 0:
            raise XaiError("--n must be a positive number of samples")
        if len(idx) == 0:
            raise XaiError(f"no samples left to evaluate on {ds.name} (split {c.split}, classes {classes}); "
                           f"try --include-misclassified or another split")
        return idx[: c.n], notes

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(idx), 512):
                z = self.model(torch.as_tensor(self.ds.X[idx[i:i + 512]], device=self.ctx.device))
                out.append(((z[:, 0] > 0).long() if z.shape[1] == 1 else z.argmax(1)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def resolve_metrics(self) -> list[str]:
        """The metrics of ``config.metrics``; ``"all"`` resolved to those that fit the data, ground truth and model.

        Population metrics are skipped (with a note) unless ``population_seeds`` is set.

        Returns
        -------
        list of str

        Raises
        ------
        UnknownChoice
            For an unknown metric.
        """
        spec = self.config.metrics
        if spec == "all" or spec == ["all"]:
            gt = self.ds.ground_truth
            have = set()
            if gt is not None:
                have |= {k for k, v in (("masks", gt.masks), ("pwm", gt.pwm), ("feature_sets", gt.feature_sets))
                         if v is not None and (k != "feature_sets" or len(v))}
            names = applicable_metrics(self.ds.modality, have)
            names = [m for m in names if not (METRICS.get(m).needs_conv and not self.ctx.has_conv)]
            if self.config.population_seeds <= 0:
                skipped = [m for m in names if METRICS.get(m).population]
                if skipped:
                    self._notes.append(f"{', '.join(skipped)} skipped: it needs models of other training seeds "
                                       f"(pass --population-seeds K)")
                names = [m for m in names if m not in skipped]
            return names
        names = [m.strip() for m in (spec.split(",") if isinstance(spec, str) else spec) if m.strip()]
        for m in names:
            METRICS.get(m)  # unknown names fail now, listing the valid ones
        return names

    def plan(self) -> Plan:
        """What a run will do and what it costs, known before any work starts.

        Every method, metric and parameter is checked here.

        Returns
        -------
        Plan
            The samples, methods, metrics, the forward and backward passes per (method, metric) cell, and notes.

        Raises
        ------
        XaiError
            As ``select_samples``, or for a parameter of the wrong type or out of range.
        UnknownChoice
            For an unknown method, metric or parameter.
        NotApplicable
            For a method that does not fit the data or model.
        """
        idx, notes = self.select_samples()
        self._notes = notes
        methods = resolve_methods(self.config.methods, self.ctx)
        metrics = self.resolve_metrics()
        for m, p in self.config.method_params.items():
            EXPLAINERS.get(m).params_for(self.ds.modality, p)
        for m, p in self.config.metric_params.items():
            METRICS.get(m).params_for(self.ds.modality, p)
        # one-sample inputs so cost functions see the real input size and model (genes, layers)
        probe = build_inputs(self.ds, self.ctx, idx[:1], np.zeros((1, *self.ds.input_shape), dtype=np.float32))
        if split_linear_head(self.model) is not None:
            notes.append("the model's first layer is linear: cumulative-removal metrics (pixel flipping, IROF, "
                         "prediction gaps) update it by cumulative sums and skip most of the forwards counted above")
        rows = []
        for method in methods:
            ec = estimate_cost(method, self.ctx, 1, **self.config.method_params.get(method, {}))
            per = (ec["forward"], ec["backward"])
            rows.append({"method": method, "metric": "(explain)", "forward": per[0] * len(idx),
                         "backward": per[1] * len(idx)})
            for metric in metrics:
                mc = estimate_metric_cost(metric, probe, self.ds.modality, len(idx), per,
                                          **self.config.metric_params.get(metric, {}))
                rows.append({"method": method, "metric": metric, "forward": mc["forward"], "backward": mc["backward"]})
        return Plan(self.config, idx, methods, metrics, pd.DataFrame(rows), notes)

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

    # -- running -----------------------------------------------------------------------------
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
            The parameters (with ``_version`` when the method's version is above 1).
        """
        spec = EXPLAINERS.get(method)
        params = self._method_params(method)
        if self.config.seed != 0 and spec.depends_on_seed(params):  # seed 0 unmarked: older stores keep their maps
            params = {**params, "_seed": self.config.seed}
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
        return p if spec.version == 1 else {**p, "_version": spec.version}

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

    def _leases(self):
        """This process's leases on the store's file (None for a store without a file)."""
        path = getattr(self.store, "path", None)
        return None if path is None else for_store(path)

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
        return self.scores(plan)

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
