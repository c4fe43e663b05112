"""The evaluation as the adaptive loop (``xai_core.adaptive``) sees it: the ``Grid`` interface and ``EvaluationGrid``.

``EvaluationGrid`` drives a real ``Evaluation``: the plan of the cap (its first n samples are those of ``--n n``),
the plan's per-sample pass estimates for each (method, metric) step, what is still missing in the store, computing
a step through ``Evaluation.run`` and reading the stored scores back. The loop itself only needs the ``Grid``
interface, so the tests drive it with synthetic grids whose answer is known.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import pandas as pd

from . import costs
from .metrics import METRICS
from .progress import ProgressFn
from .runner import Evaluation, Plan


class Grid(Protocol):
    """What the adaptive loop needs of an evaluation (``EvaluationGrid``; the tests give synthetic ones)."""

    methods: list[str]
    metrics: list[str]
    cap: int

    def cost_class(self, metric: str) -> str:
        """``explanation``, ``model`` or ``reexplain`` (what the metric needs beyond the attributions)."""

    def explain_cost(self, method: str) -> float:
        """Passes per sample of explaining with ``method``."""

    def metric_cost(self, metric: str) -> float:
        """Passes per sample of ``metric`` over all methods."""

    def step_cost(self, method: str, metrics: list[str], n: int) -> tuple[float, float, int]:
        """(passes, predicted seconds, missing scores) of ``method`` x ``metrics`` on the first n samples."""

    def compute(self, method: str, metrics: list[str], n: int, progress: ProgressFn | None) -> None:
        """Compute what is missing of ``method`` x ``metrics`` on the first n samples."""

    def compute_many(self, methods: list[str], metrics: list[str], n: int, progress: ProgressFn | None) -> None:
        """Compute what is missing of ``methods`` x ``metrics`` at once (a grid whose ``parallel`` is true)."""

    def scores(self, n: int) -> pd.DataFrame:
        """The tidy scores of the grid's cells on the first n samples."""


class EvaluationGrid:
    """An ``Evaluation`` as the adaptive loop sees it: the cap's plan, per-step costs, computing, scores.

    Parameters
    ----------
    ev : Evaluation
        The evaluation (its ``config.n`` is replaced by the cap).
    cap : int
        At most this many samples.
    per_pass : PassCost, optional
        The model's measured per-pass cost, to predict seconds (None: seconds are learned from the run itself).
    plan : Plan, optional
        ``ev.plan()`` when already made with ``n=cap`` (else it is made here).
    runner : object, optional
        An executor's runner (``xai_core.executors``: ``run(ev, plan, progress)``, ``parallel``); default: this
        process (``Evaluation.run``). A parallel runner (Ray) makes the grid ``parallel``: the loop then hands it
        every method of a step at once, so that the workers share them.
    """

    def __init__(self, ev: Evaluation, cap: int, per_pass: costs.PassCost | None = None, plan: Plan | None = None,
                 runner: Any = None):
        self.runner = runner
        self.parallel = bool(getattr(runner, "parallel", False))
        self.ev = ev.with_config(n=cap)
        self.plan = plan if plan is not None and len(plan.sample_idx) <= cap else self.ev.plan()
        self.plan = dataclasses.replace(self.plan, sample_idx=self.plan.sample_idx[:cap])
        self.notes = list(self.plan.notes)
        self.skipped = [m for m in self.plan.metrics if not METRICS.get(m).in_ranking]
        self.methods = list(self.plan.methods)
        self.metrics = [m for m in self.plan.metrics if m not in self.skipped]
        self.cap = len(self.plan.sample_idx)
        self.per_pass = per_pass
        c = self.plan.cost.set_index(["method", "metric"])
        self._per_sample = {k: (float(r["forward"]) / self.cap, float(r["backward"]) / self.cap)
                            for k, r in c.iterrows()}

    def cost_class(self, metric: str) -> str:
        """The metric's cost class: its ``needs`` (``explanation``, ``model``, ``reexplain``).

        Parameters
        ----------
        metric : str
            A metric of the grid.

        Returns
        -------
        str
        """
        return METRICS.get(metric).needs

    def explain_cost(self, method: str) -> float:
        """Forward + backward passes per sample of explaining with ``method`` (the plan's estimate).

        Parameters
        ----------
        method : str
            A method of the grid.

        Returns
        -------
        float
        """
        return self._passes(method, "(explain)")

    def metric_cost(self, metric: str) -> float:
        """Forward + backward passes per sample of ``metric``, summed over the methods (the plan's estimates).

        Parameters
        ----------
        metric : str
            A metric of the grid.

        Returns
        -------
        float
        """
        return sum(self._passes(m, metric) for m in self.methods)

    def _passes(self, method: str, step: str) -> float:
        """Forward + backward passes per sample of one cell of the plan (``step``: a metric or ``(explain)``; 0
        when the plan has no such cell)."""
        return sum(self._per_sample.get((method, step), (0.0, 0.0)))

    def _sub(self, n: int, methods: list[str], metrics: list[str]):
        return dataclasses.replace(self.plan, sample_idx=self.plan.sample_idx[:n], methods=methods, metrics=metrics)

    def step_cost(self, method: str, metrics: list[str], n: int) -> tuple[float, float, int]:
        """(passes, predicted seconds, missing scores) of what is missing of ``method`` x ``metrics`` on the first n.

        Seconds are 0 without a measured per-pass cost; a metric that needs no model pass still counts as missing.

        Parameters
        ----------
        method : str
            A method of the grid.
        metrics : list of str
            Metrics of the grid.
        n : int
            The first n samples of the sample order.

        Returns
        -------
        tuple of (float, float, int)
            The passes (the attributions' too, where missing), seconds, and missing scores.
        """
        idx = self.plan.sample_idx[:n]
        todo = [("(explain)", len(self.ev.stored_attributions(method, idx)[1]))]
        missing = 0
        for m in metrics:
            miss = self.ev.missing_scores(method, m, idx)
            missing += len(miss)
            todo.append((m, n if miss and METRICS.get(m).scope == "set" else len(miss)))
        fwd = sum(self._per_sample[(method, m)][0] * k for m, k in todo)
        bwd = sum(self._per_sample[(method, m)][1] * k for m, k in todo)
        secs = costs.seconds(fwd, bwd, self.per_pass) if self.per_pass else 0.0
        return fwd + bwd, secs, missing

    def compute(self, method: str, metrics: list[str], n: int, progress: ProgressFn | None) -> None:
        """Compute the missing cells of ``method`` x ``metrics`` on the first n samples (``Evaluation.compute``).

        Parameters
        ----------
        method : str
            A method of the grid.
        metrics : list of str
            Metrics of the grid.
        n : int
            The first n samples of the sample order.
        progress : ProgressFn or None
            Gets the runner's events.
        """
        self.compute_many([method], metrics, n, progress)

    def compute_many(self, methods: list[str], metrics: list[str], n: int, progress: ProgressFn | None) -> None:
        """Compute the missing cells of ``methods`` x ``metrics`` on the first n samples, through the runner.

        Parameters
        ----------
        methods : list of str
            Methods of the grid.
        metrics : list of str
            Metrics of the grid.
        n : int
            The first n samples of the sample order.
        progress : ProgressFn or None
            Gets the runner's events.
        """
        sub = self._sub(n, list(methods), list(metrics))
        if self.runner is None:
            self.ev.compute(sub, progress=progress)  # the loop reads the scores once per round (``scores``)
        else:
            self.runner.run(self.ev, sub, progress=progress)

    def scores(self, n: int) -> pd.DataFrame:
        """The stored scores of the grid's cells on the first n samples (what ``Evaluation.scores`` reads).

        Parameters
        ----------
        n : int
            The first n samples of the sample order.

        Returns
        -------
        DataFrame
        """
        return self.ev.scores(self._sub(n, self.methods, self.metrics))
