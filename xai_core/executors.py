"""Where the evaluation grid is computed: in this process (``local``), or as Ray tasks (``ray``).

Both executors run the same per-chunk functions of ``Evaluation`` (``compute_attribution_chunk``,
``compute_score_chunk``) on the same chunks (``explain_batch`` samples of a method's missing maps,
``batch_size`` samples of a cell's missing scores, a whole set-level cell), so they store the same numbers.

This module holds the options, the ``EXECUTORS`` registry, ``prepare`` and the in-process executor; the Ray
executor (docs/ray.md) lives in ``xai_core.ray_executor`` (its driver) and ``xai_core.ray_worker`` (its worker
actor) and is registered here; the names they export are importable from here too. Ray is optional: it is
imported when the ``ray`` executor is chosen.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .errors import XaiError
from .executor_options import ExecutorOptions
from .progress import ProgressFn
from .ray_executor import IN_FLIGHT, RAY_PIN, RETRIES, ROOT, RayRunner, check_ray, import_ray
from .ray_worker import GridWorker
from .registry import Registry
from .runner import Evaluation, Plan

__all__ = ["EXECUTORS", "IN_FLIGHT", "RAY_PIN", "RETRIES", "ROOT", "Executor", "ExecutorOptions", "GridWorker",
           "LocalRunner", "RayRunner", "import_ray", "prepare"]


@dataclass(frozen=True)
class Executor:
    """A registered executor.

    Attributes
    ----------
    name : str
        Its name (``--executor NAME``).
    description : str
        One line for the help.
    open : callable
        ``open(options) -> runner``: a context manager whose ``run(ev, plan, progress)`` computes a plan's
        missing cells and returns its tidy scores (as ``Evaluation.run``).
    check : callable
        ``check(options, adaptive, population_seeds, device)``: refuses what it cannot run, before any work.
    """

    name: str
    description: str
    open: Callable[[ExecutorOptions], Any]
    check: Callable[..., None]


EXECUTORS: Registry[Executor] = Registry("executor")


def prepare(options: ExecutorOptions, *, adaptive: bool = False, population_seeds: int = 0,
            device: str = "cpu") -> Any:
    """Check the executor's options against the run, before any work, and return its runner (not yet started).

    Parameters
    ----------
    options : ExecutorOptions
        The executor and its settings.
    adaptive : bool
        The run is ``--until decided``.
    population_seeds : int
        ``--population-seeds``.
    device : str
        Where the model runs.

    Returns
    -------
    runner
        A context manager with ``run(ev, plan, progress=None) -> DataFrame``.

    Raises
    ------
    UnknownChoice
        For an unknown executor.
    XaiError
        For settings the executor does not take, Ray missing, or a cluster address that cannot be reached.
    """
    spec = EXECUTORS.get(options.name)
    spec.check(options, adaptive=adaptive, population_seeds=population_seeds, device=device)
    return spec.open(options)


# -- local ---------------------------------------------------------------------------------------------
class LocalRunner:
    """The in-process executor: ``Evaluation.run``."""

    parallel = False  # one step at a time: the adaptive loop checks its budget before each

    def run(self, ev: Evaluation, plan: Plan, progress: ProgressFn | None = None) -> pd.DataFrame:
        """Compute the plan's missing cells in this process.

        Parameters
        ----------
        ev : Evaluation
            The evaluation.
        plan : Plan
            Its plan.
        progress : ProgressFn, optional
            As ``Evaluation.run``.

        Returns
        -------
        DataFrame
        """
        return ev.run(plan, progress=progress)

    def __enter__(self) -> LocalRunner:
        """The runner itself."""
        return self

    def __exit__(self, *exc) -> None:
        """Nothing to release."""


def _check_local(options: ExecutorOptions, **_run) -> None:
    given = [flag for flag, v in (("--address", options.address), ("--workers", options.workers)) if v is not None]
    if given:
        two = len(given) > 1
        raise XaiError(f"{' and '.join(given)} only appl{'y' if two else 'ies'} with --executor ray; add --executor "
                       f"ray or leave {'them' if two else 'it'} out")


EXECUTORS.add("local", Executor("local", "in this process (the default)", lambda options: LocalRunner(),
                                _check_local))
EXECUTORS.add("ray", Executor("ray", "chunks of the grid as tasks on a local or existing Ray cluster (docs/ray.md)",
                              RayRunner, check_ray))
