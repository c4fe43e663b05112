"""The Ray executor (``--executor ray``, docs/ray.md): the grid's chunks as tasks on a local or existing cluster.

The driver (``RayRunner``) joins or starts the cluster and keeps one actor per worker (``GridWorker``,
``xai_core.ray_worker``: its own ``Evaluation``, loaded once per worker, that returns arrays). The driver alone reads
and writes the results store, claims the rows it submits with the store's leases (``xai_core.leases``), and submits
only what the store lacks, so a rerun resumes as the in-process run does. A worker that dies is restarted and its
chunks run again.

Ray is optional: ``import_ray`` imports it when the ``ray`` executor is chosen (``xai_core.executors`` registers
``RayRunner`` and ``check_ray``), never when this module is imported.
"""
from __future__ import annotations

import os
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data import cache_dir
from .errors import XaiError
from .executor_options import ExecutorOptions
from .leases import Leases, cell_name, for_store
from .metrics import METRICS
from .progress import ProgressFn, notify
from .ray_worker import GridWorker
from .runner import Evaluation, Plan


RAY_PIN = "ray==2.60.0"  # as in requirements-test.txt
IN_FLIGHT = 2  # chunks queued per worker: one running, one waiting, so no worker idles while the driver stores
RETRIES = 3  # a dead worker is restarted, and its chunks rerun, this many times
ROOT = Path(__file__).resolve().parent.parent  # the checkout (or site-packages): on the workers' PYTHONPATH
_KEPT: dict[str, list] = {}  # Ray job id -> workers left by finished runs of this process on a Ray it did not start


# -- checks --------------------------------------------------------------------------------------------
def import_ray():
    """The ``ray`` module, or an ``XaiError`` saying how to install it.

    Returns
    -------
    module
    """
    try:
        import ray  # noqa: PLC0415 - optional ray: only --executor ray needs it
    except ImportError as e:
        raise XaiError(f"--executor ray needs Ray, which is not installed here ({e}); install it with "
                       f"`pip install {RAY_PIN}` or use --executor local") from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    if address.startswith("ray://"):
        raise XaiError(f"--address {address}: Ray Client addresses are not supported; give the head's GCS address "
                       "HOST:PORT (e.g. 10.0.0.5:6379) or auto")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise XaiError(f"--address '{address}' must be auto or HOST:PORT (the head's GCS port, e.g. 10.0.0.5:6379)")
    return host.strip("[]"), int(port)


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast for an address nobody listens on (``ray.init`` would retry for minutes)."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise XaiError(f"--address {address}: no Ray cluster reachable there ({e.strerror or e}); start one with "
                       f"`ray start --head --port {port}` on that machine, check the host and firewall, or drop "
                       f"--address to start a local cluster") from None


def check_ray(options: ExecutorOptions, *, adaptive: bool = False, population_seeds: int = 0,
              device: str = "cpu") -> None:
    """Refuse what the Ray executor cannot run, before any work: the executor's ``check``.

    Parameters
    ----------
    options : ExecutorOptions
        ``address`` and ``workers``.
    adaptive : bool
        The run is ``--until decided``: accepted (each round's steps are handed to the workers together).
    population_seeds : int
        ``--population-seeds`` (the population is trained in this process: refused unless 0).
    device : str
        Where the model runs (the workers are CPU workers: only ``cpu``).

    Raises
    ------
    XaiError
        For any of those, ``--workers`` below 1, Ray not installed, or an ``--address`` nobody listens on.
    """
    if population_seeds:
        raise XaiError("--population-seeds trains and explains the population models in this process; use "
                       "--executor local with it (or --population-seeds 0)")
    if not str(device).startswith("cpu"):
        raise XaiError(f"--executor ray runs on CPU workers (one CPU each); drop --device {device} or use "
                       "--executor local on the GPU")
    if options.workers is not None and options.workers < 1:
        raise XaiError("--workers must be a positive number of workers")
    import_ray()
    if options.address not in (None, "auto"):
        _reachable(options.address)


# -- the driver ---------------------------------------------------------------------------------------
@dataclass
class _Cell:
    """One attribution cell (``metric`` None) or score cell of a plan, as the driver tracks it."""

    method: str
    metric: str | None
    key: dict[str, Any]
    want: list[str]  # its rows: sample ids, or ["*"]
    step: int  # rows per chunk (0: all at once)
    after: list[str] = field(default_factory=list)  # methods whose attributions must be complete first
    started: bool = False
    todo: list[str] = field(default_factory=list)  # rows neither handed out nor computed (held by another run)
    pending: int = 0  # chunks queued or in flight
    tried: set[str] = field(default_factory=set)  # rows computed once in this run (not again, even if failed)
    done_rows: int = 0

    @property
    def name(self) -> str:
        return cell_name(kind="scores" if self.metric else "attributions", **self.key)

    @property
    def complete(self) -> bool:
        return self.started and not self.todo and not self.pending


class RayRunner:
    """The Ray executor's driver: joins (or starts) a cluster on first use, runs plans, stops what it started.

    Parameters
    ----------
    options : ExecutorOptions
        ``address`` and ``workers``.
    """

    parallel = True  # the adaptive loop hands it every method of a step at once

    def __init__(self, options: ExecutorOptions):
        self.options = options
        self.ray = None
        self.actors: list = []
        self._started = False  # this runner called ray.init (and shuts the cluster down)

    def _env(self) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        return {"XAI_CORE_CACHE": str(cache_dir()), "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}

    def new_worker(self):
        """A fresh worker actor (one CPU; restarted, with its chunks rerun, up to ``RETRIES`` times).

        Returns
        -------
        ray.actor.ActorHandle
        """
        remote = self.ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)(GridWorker)
        return remote.options(runtime_env={"env_vars": self._env()}).remote()

    def start(self) -> None:
        """Join the cluster (or start a local one) and create the workers, once.

        Raises
        ------
        XaiError
            When the cluster cannot be joined or has fewer CPUs than ``--workers``.
        """
        if self.actors:
            return
        ray = self.ray = import_ray()
        opts = self.options
        if not ray.is_initialized():
            kw: dict[str, Any] = dict(include_dashboard=False, logging_level="WARNING", log_to_driver=False,
                                      runtime_env={"env_vars": self._env()})
            if opts.address is None:
                kw["num_cpus"] = opts.workers or os.cpu_count() or 1
            else:
                kw["address"] = opts.address
            try:
                ray.init(**kw)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise XaiError(f"--executor ray: cannot join a Ray cluster at {opts.address}: {e}; start one with "
                               "`ray start --head`, or, when the cluster uses token authentication, set "
                               "RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN) here (docs/ray.md), or drop "
                               "--address to start a local one") from None
            self._started = True
        elif opts.address not in (None, "auto") and _host_port(opts.address)[1] != _host_port(
                ray.get_runtime_context().gcs_address)[1]:  # the port: a host may be named by another address
            raise XaiError(f"--address {opts.address}: this process is already connected to the Ray cluster at "
                           f"{ray.get_runtime_context().gcs_address}; drop --address or use that one")
        cpus = int(ray.cluster_resources().get("CPU", 0))
        n = opts.workers or cpus
        if not 1 <= n <= cpus:
            raise XaiError(f"--workers {n}: the Ray cluster has {cpus} CPU(s); ask for at most {cpus} workers or "
                           "add nodes")
        kept = _KEPT.setdefault(ray.get_runtime_context().get_job_id(), [])  # left by earlier runs of this process
        self.actors = [kept.pop(0) for _ in range(min(n, len(kept)))]
        self.actors += [self.new_worker() for _ in range(n - len(self.actors))]
        where = "a local cluster" if opts.address is None and self._started else (opts.address or "the cluster")
        print(f"ray: {n} worker(s) on {where}", file=sys.stderr)

    def worker_pids(self) -> list[int]:
        """The process ids of the workers (started if needed).

        Returns
        -------
        list of int
        """
        self.start()
        return self.ray.get([a.pid.remote() for a in self.actors])

    def close(self) -> None:
        """Stop the cluster when this runner started it; else keep the workers (dataset and model loaded) for the
        next run of this process on the same Ray session (they end with the process)."""
        if self.ray is None or not self.actors:
            return
        if self._started:
            self.ray.shutdown()
            self._started = False
        elif self.ray.is_initialized():
            _KEPT.setdefault(self.ray.get_runtime_context().get_job_id(), []).extend(self.actors)
        self.actors = []

    def __enter__(self) -> RayRunner:
        """The runner (the cluster is joined on the first ``run``)."""
        return self

    def __exit__(self, *exc) -> None:
        """``close()``."""
        self.close()

    def run(self, ev: Evaluation, plan: Plan, progress: ProgressFn | None = None) -> pd.DataFrame:
        """Compute the plan's missing cells as Ray tasks; the driver stores every result.

        Parameters
        ----------
        ev : Evaluation
            The evaluation (its store is written here, on the driver).
        plan : Plan
            Its plan.
        progress : ProgressFn, optional
            As ``Evaluation.run``.

        Returns
        -------
        DataFrame
            As ``Evaluation.run``.
        """
        self.start()
        _Run(self, ev, plan, progress).go()
        return ev.scores(plan)


class _Run:
    """The driver's loop over one plan: open cells whose inputs are stored, hand their chunks to the least loaded
    workers, store results as they arrive."""

    def __init__(self, runner: RayRunner, ev: Evaluation, plan: Plan, progress: ProgressFn | None):
        self.runner, self.ray, self.ev, self.progress = runner, runner.ray, ev, progress
        self.idx, self.expect = plan.sample_idx, (ev.dataset_fp, ev.model_hash)
        path = getattr(ev.store, "path", None)
        self.leases: Leases | None = None if path is None else for_store(path)
        ids = [ev.ds.sample_ids[i] for i in self.idx]
        self.cells = [_Cell(m, None, ev.attribution_key(m), ids, ev.config.explain_batch,
                            after=[c for c in ev.composite_parts(m) if c in plan.methods and c != m])
                      for m in plan.methods]
        for m in plan.methods:
            for metric in plan.metrics:
                whole = METRICS.get(metric).scope == "set"
                self.cells.append(_Cell(m, metric, ev.score_key(m, metric, self.idx), ["*"] if whole else ids,
                                        0 if whole else ev.config.batch_size, after=[m]))
        self.explained = {c.method: c for c in self.cells if c.metric is None}
        self.maps: dict[str, Any] = {}  # method -> object ref of its maps of every sample
        self.queue: deque = deque()  # (cell, rows) ready to hand out
        self.flight: dict[Any, tuple] = {}  # object ref -> (cell, rows, worker, attempt)
        self.load: dict[int, int] = {id(a): 0 for a in runner.actors}

    def _missing(self, cell: _Cell, rows: list[str]) -> list[str]:
        if cell.metric is None:
            return self.ev.store.missing_attributions(sample_ids=rows, **cell.key)
        return self.ev.store.missing_scores(sample_ids=rows, **cell.key)

    def _open(self, cell: _Cell) -> None:
        """A cell whose inputs are complete: find its missing rows and queue what this run can claim."""
        cell.started = True
        cell.todo = self._missing(cell, cell.want)
        cell.done_rows = len(cell.want) - len(cell.todo)
        stage = "explain" if cell.metric is None else "metric"
        if not cell.todo:
            notify(self.progress, len(cell.want), len(cell.want), stage, method=cell.method, metric=cell.metric,
                   cached=True)
            return
        if cell.metric is not None and cell.method not in self.maps:
            arr, missing = self.ev.stored_attributions(cell.method, self.idx)
            if arr is None:
                raise RuntimeError(f"attributions of {cell.method} missing after computing them: {missing[:3]}")
            self.maps[cell.method] = self.ray.put(arr)  # once per method, shared by its chunks
        self._claim(cell)

    def _claim(self, cell: _Cell) -> None:
        """Queue the rows this run can claim, in chunks as the in-process run cuts them; rows another live run
        on the store holds stay in ``todo`` until stored or their lease expires."""
        todo = [s for s in cell.todo if s not in cell.tried]
        mine = todo
        if self.leases is not None and todo:
            busy = self.leases.held_elsewhere(cell.name, todo)
            mine = self.leases.claim(cell.name, [s for s in todo if s not in busy]) if len(busy) < len(todo) else []
            if mine:  # look again under the lease: another run may have stored rows and released them meanwhile
                fresh = set(self._missing(cell, mine))
                self.leases.release(cell.name, [s for s in mine if s not in fresh])
                mine = [s for s in mine if s in fresh]
        step = cell.step or max(len(mine), 1)
        for i in range(0, len(mine), step):
            self.queue.append((cell, mine[i:i + step], 0))
            cell.pending += 1
        taken = set(mine)
        cell.todo = [s for s in todo if s not in taken]

    def _submit(self, cell: _Cell, rows: list[str], attempt: int) -> None:
        worker = min(self.runner.actors, key=lambda a: self.load[id(a)])
        sel = self.ev.positions(self.idx, rows)
        if cell.metric is None:
            bidx = self.idx[sel]
            ref = worker.attribution_chunk.remote(self.ev.config, self.expect, cell.method, bidx,
                                                  self._parts(cell.method, bidx))
        else:
            ref = worker.score_chunk.remote(self.ev.config, self.expect, cell.method, cell.metric, self.idx,
                                            self.maps[cell.method], sel)
        self.load[id(worker)] += 1
        self.flight[ref] = (cell, rows, worker, attempt)

    def _parts(self, method: str, bidx: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """A composite's stored component maps of the chunk; the worker computes the others (and returns them)."""
        ids = [self.ev.ds.sample_ids[i] for i in bidx]
        out = {}
        for cm in self.ev.composite_parts(method):
            key = self.ev.attribution_key(cm)
            missing = set(self.ev.store.missing_attributions(sample_ids=ids, **key))
            have = [k for k, s in enumerate(ids) if s not in missing]
            arr = self.ev.store.get_attributions(sample_ids=[ids[k] for k in have], **key)[0] if have else None
            if arr is not None:
                out[cm] = (np.asarray(have, dtype=np.int64), arr)
        return out

    def _store(self, cell: _Cell, rows: list[str], result) -> None:
        ev, sel = self.ev, self.ev.positions(self.idx, rows)
        if cell.metric is None:
            maps, secs, computed = result
            for cm, (need, arr, csecs) in computed.items():  # components computed on the way, as in-process
                ev.store_attribution_chunk(cm, self.idx[sel][need], arr, csecs)
            ev.store_attribution_chunk(cell.method, self.idx[sel], maps, secs)
        else:
            ev.store_score_chunk(cell.method, cell.metric, self.idx, sel, result)
        cell.tried.update(rows)
        cell.done_rows += len(rows)
        notify(self.progress, min(cell.done_rows, len(cell.want)), len(cell.want),
               "explain" if cell.metric is None else "metric", method=cell.method, metric=cell.metric)

    def _schedule(self) -> None:
        for cell in self.cells:
            if not cell.started and all(self.explained[m].complete for m in cell.after):
                self._open(cell)
        while self.queue and min(self.load.values()) < IN_FLIGHT:
            self._submit(*self.queue.popleft())

    def _look_again(self) -> None:
        """Rows held by another run: stored since (done), or their lease expired (claimed now)."""
        for cell in self.cells:
            if cell.started and cell.todo:
                cell.todo = self._missing(cell, cell.todo)
                self._claim(cell)

    def _finish(self, ref) -> None:
        cell, rows, worker, attempt = self.flight.pop(ref)
        self.load[id(worker)] -= 1
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as e:  # restarts spent: a fresh worker reruns the chunk
            self._replace(worker, cell, rows, attempt, e)
            return
        self._store(cell, rows, result)
        cell.pending -= 1
        if self.leases is not None:
            self.leases.release(cell.name, rows)

    def _replace(self, worker, cell: _Cell, rows: list[str], attempt: int, err: Exception) -> None:
        if attempt >= RETRIES:
            raise XaiError(f"--executor ray: a worker died {attempt + 1} times on {cell.method}"
                           f"{' / ' + cell.metric if cell.metric else ''} ({type(err).__name__}); see the Ray logs "
                           "(/tmp/ray/session_latest/logs) or run with --executor local") from None
        if worker in self.runner.actors:
            fresh = self.runner.new_worker()
            self.runner.actors[self.runner.actors.index(worker)] = fresh
            self.load[id(fresh)] = self.load.pop(id(worker))
        self.queue.appendleft((cell, rows, attempt + 1))

    def go(self) -> None:
        """Run until every cell is complete; on an error, cancel what is in flight and release its leases."""
        try:
            while True:
                self._schedule()
                if not self.flight:
                    if all(c.complete for c in self.cells):
                        return
                    time.sleep(0.5)  # rows another run on this store is computing
                    self._look_again()
                    continue
                ready, _ = self.ray.wait(list(self.flight), num_returns=1, timeout=1.0)
                for ref in ready:
                    self._finish(ref)
                if not ready:
                    self._look_again()
        finally:  # an error: nothing more is stored, so no row stays claimed by this (still living) process
            for ref in self.flight:
                self.ray.cancel(ref)
            if self.leases is not None:
                for cell, rows, *_ in [*self.flight.values(), *self.queue]:
                    self.leases.release(cell.name, rows)

