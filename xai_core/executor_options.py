"""The options of an executor (``--executor``, ``--address``, ``--workers``): their own module, so that both the
executor registry (``xai_core.executors``) and the Ray driver (``xai_core.ray_executor``) import them without
importing each other."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ExecutorOptions"]


@dataclass(frozen=True)
class ExecutorOptions:
    """How to run the grid: the executor and its settings.

    Attributes
    ----------
    name : str
        ``local`` (in this process, the default) or ``ray``.
    address : str, optional
        ray: ``auto`` (the cluster started on this machine with ``ray start``) or ``HOST:PORT`` (the head's GCS
        port); None starts a local cluster for this run.
    workers : int, optional
        ray: the number of workers (one CPU each); default: this machine's CPUs, or the cluster's.
    """

    name: str = "local"
    address: str | None = None
    workers: int | None = None
