"""What an evaluation will do, known before any work: its settings (``EvalConfig``), the samples it evaluates, the
methods and metrics resolved and checked, and the cost of every cell (``Plan``).

``EvaluationPlanning`` is the planning part of ``xai_core.runner.Evaluation`` (a mixin: ``Evaluation`` inherits it and
provides the dataset, model, explain context and settings it reads). Import these names from ``xai_core.runner``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from .batching import BATCH
from .data import Dataset
from .errors import XaiError
from .explainers import EXPLAINERS, ExplainContext, estimate_cost, resolve_methods
from .metrics import METRICS, applicable_metrics, build_inputs, estimate_metric_cost
from .metrics.fastpath import split_linear_head


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


class EvaluationPlanning:
    """The planning part of ``Evaluation``: which samples, methods and metrics, and what they cost.

    A mixin: ``xai_core.runner.Evaluation`` inherits it and sets the attributes it reads (``config``, ``ds``,
    ``model``, ``ctx``) and the planning notes (``_notes``).
    """

    config: EvalConfig
    ds: Dataset
    ctx: ExplainContext
    model: torch.nn.Module
    _notes: list[str]

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
