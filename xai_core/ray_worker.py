"""The Ray executor's worker (``xai_core.ray_executor`` runs it as an actor): what runs on each Ray worker.

A ``GridWorker`` builds its own ``Evaluation`` for each configuration it is sent (dataset, model and explain context,
loaded once per worker from the same ``$XAI_CORE_CACHE``; never the results store), refuses to compute when its
dataset or model differs from the driver's, and returns the arrays of the chunks it computes: the driver stores them.
It runs the same per-chunk functions of ``Evaluation`` as the in-process executor, so both store the same numbers.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import warnings

import numpy as np
import torch

from .errors import XaiError
from .runner import EvalConfig, Evaluation


def _config_key(config: EvalConfig) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)


class GridWorker:
    """One Ray worker: builds each evaluation once (dataset, model, context; never the store) and computes chunks.

    Runs as a Ray actor (``ray.remote(GridWorker)``) with one CPU and one torch thread.
    """

    def __init__(self):
        torch.set_num_threads(1)
        warnings.filterwarnings("ignore")  # captum/zennit chatter, as the CLI; real problems raise to the driver
        self._evals: dict[str, Evaluation] = {}

    def pid(self) -> int:
        """This worker's process id.

        Returns
        -------
        int
        """
        return os.getpid()

    def evaluation(self, config: EvalConfig, expect: tuple[str, str]) -> Evaluation:
        """The evaluation of ``config``, built on first use (without a store: the driver stores).

        Parameters
        ----------
        config : EvalConfig
            The settings.
        expect : tuple of str
            The driver's (dataset fingerprint, model checkpoint hash): results are stored under them, so a worker
            that loads other data or another model refuses to compute.

        Returns
        -------
        Evaluation

        Raises
        ------
        XaiError
            When this worker's dataset or model differs from the driver's.
        """
        key = _config_key(config)
        if key not in self._evals:
            ev = Evaluation(config, None)
            if (ev.dataset_fp, ev.model_hash) != tuple(expect):
                raise XaiError(f"a Ray worker on {socket.gethostname()} loaded {config.dataset} with fingerprint "
                               f"{ev.dataset_fp} and model {ev.model_hash[:12]}, the driver {expect[0]} and "
                               f"{expect[1][:12]}; give every node the same xai_core version and $XAI_CORE_CACHE "
                               "(docs/ray.md)")
            self._evals[key] = ev
        return self._evals[key]

    def attribution_chunk(self, config: EvalConfig, expect: tuple[str, str], method: str, bidx: np.ndarray,
                          parts: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple:
        """Explain one chunk; a composite's component maps come from ``parts`` or are computed (and returned).

        Parameters
        ----------
        config : EvalConfig
            The settings.
        expect : tuple of str
            As ``evaluation``.
        method : str
            The method.
        bidx : ndarray
            Row indices of the chunk.
        parts : dict
            {component: (positions in ``bidx`` with a stored map, those maps)}.

        Returns
        -------
        tuple
            (maps, seconds, {component: (positions computed here, their maps, seconds)}).
        """
        ev, bidx = self.evaluation(config, expect), np.array(bidx)  # arguments arrive read-only
        computed: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}

        def maps_of(cm: str, rows: np.ndarray) -> torch.Tensor:
            have, maps = parts.get(cm, (np.zeros(0, dtype=np.int64), None))
            out = np.zeros((len(rows), *ev.ds.input_shape), dtype=np.float32)
            if len(have):
                out[have] = maps
            need = np.setdiff1d(np.arange(len(rows)), have)
            if len(need):  # as the in-process run: the component's missing rows of this chunk in one call
                arr, secs = ev.compute_attribution_chunk(cm, rows[need], maps_of=maps_of)
                out[need] = arr
                computed[cm] = (need, arr, secs)
            return torch.as_tensor(out, device=ev.ctx.device)

        maps, secs = ev.compute_attribution_chunk(method, bidx, maps_of=maps_of)
        return maps, secs, computed

    def score_chunk(self, config: EvalConfig, expect: tuple[str, str], method: str, metric: str, idx: np.ndarray,
                    a_all: np.ndarray, sel: np.ndarray):
        """Score one chunk of a cell.

        Parameters
        ----------
        config : EvalConfig
            The settings.
        expect : tuple of str
            As ``evaluation``.
        method : str
            The method.
        metric : str
            The metric.
        idx : ndarray
            Row indices of every evaluated sample.
        a_all : ndarray
            The method's maps of ``idx``.
        sel : ndarray
            Positions of the chunk in ``idx``.

        Returns
        -------
        MetricResult
        """
        ev = self.evaluation(config, expect)
        a = torch.as_tensor(np.array(a_all), device=ev.ctx.device)  # writable copies: arguments arrive read-only
        return ev.compute_score_chunk(method, metric, np.array(idx), a, np.array(sel))
