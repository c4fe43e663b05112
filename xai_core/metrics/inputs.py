"""Build ``MetricInputs`` from a ``Dataset``, a model context and attributions (what the runner and tests share)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..batching import BATCH
from ..data import Dataset
from ..explainers.base import explain
from ..explainers.context import ExplainContext
from .metric_inputs import MetricInputs


def class_feature_sets(ds: Dataset) -> dict[int, np.ndarray] | None:
    """Ground-truth feature sets keyed by class index (sub-class sets such as "c / sub 1" are left out).

    Parameters
    ----------
    ds : Dataset
        The dataset; its ``ground_truth.feature_sets`` are keyed by class name.

    Returns
    -------
    dict of int to ndarray or None
        None when the dataset has no feature sets (or none named after a class).
    """
    gt = ds.ground_truth
    if gt is None or not gt.feature_sets:
        return None
    out = {c: np.asarray(gt.feature_sets[name], dtype=np.int64)
           for c, name in enumerate(ds.class_names) if name in gt.feature_sets}
    return out or None


def make_explain_fn(ctx: ExplainContext, method: str, params: dict[str, Any],
                    explain_batch: int = BATCH.explain_batch):
    """``fn(x, target, ctx=None)`` re-explaining with the same method and parameters (robustness metrics).

    Parameters
    ----------
    ctx : ExplainContext
        The context used when ``fn`` gets none.
    method : str
        The method.
    params : dict
        Its parameters.
    explain_batch : int
        Samples per call of the method.

    Returns
    -------
    callable
        ``fn(x, target, ctx=None) -> Tensor``, the attributions.
    """

    def fn(x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext | None = None) -> torch.Tensor:
        return explain(ctx or base_ctx, x, target, method, explain_batch=explain_batch, **params).attributions

    base_ctx = ctx
    return fn


def build_inputs(ds: Dataset, ctx: ExplainContext, idx: np.ndarray, attributions: torch.Tensor | np.ndarray,
                 method: str = "", method_params: dict[str, Any] | None = None, *, targets: np.ndarray | None = None,
                 forward_batch: int = BATCH.forward_batch, explain_batch: int = BATCH.explain_batch,
                 population: list | None = None, seed: int = 0) -> MetricInputs:
    """Inputs for samples ``idx`` of ``ds`` with their ``attributions`` (same order).

    Parameters
    ----------
    ds : Dataset
        The data (inputs, labels, ground truth, feature groups, sample ids).
    ctx : ExplainContext
        The model and its training statistics.
    idx : ndarray
        Row indices into ``ds``.
    attributions : Tensor or ndarray
        One map per sample of ``idx``, of the input's shape.
    method : str
        The method that made them; with it, metrics can re-explain (``make_explain_fn``).
    method_params : dict, optional
        Its parameters.
    targets : ndarray, optional
        The explained classes; default the true labels. For single-logit models the explained output is 0.
    forward_batch : int
        Inputs per forward pass; 0 = auto.
    explain_batch : int
        Samples per call of the method when re-explaining.
    population : list, optional
        The same samples' maps from other models (training seeds).
    seed : int
        Seeds the metrics' random draws.

    Returns
    -------
    MetricInputs
        On the model's device.
    """
    idx = np.asarray(idx, dtype=np.int64)
    dev = ctx.device
    x = torch.as_tensor(ds.X[idx], device=dev)
    label = torch.as_tensor(ds.y[idx], device=dev)
    tgt = ctx.resolve_target(label if targets is None else torch.as_tensor(np.asarray(targets), device=dev))
    a = torch.as_tensor(np.asarray(attributions) if not isinstance(attributions, torch.Tensor) else attributions,
                        dtype=torch.float32, device=dev)
    gt = ds.ground_truth
    masks = torch.as_tensor(gt.masks[idx], device=dev) if gt is not None and gt.masks is not None else None
    pwm = torch.as_tensor(gt.pwm[idx], device=dev) if gt is not None and gt.pwm is not None else None
    params = dict(method_params or {})
    pop = None if population is None else [torch.as_tensor(np.asarray(p), dtype=torch.float32, device=dev)
                                           for p in population]
    return MetricInputs(
        ctx=ctx, x=x, a=a, target=tgt, label=label, method=method, method_params=params,
        explain_fn=make_explain_fn(ctx, method, params, explain_batch) if method else None,
        sample_ids=[ds.sample_ids[i] for i in idx], masks=masks, pwm=pwm, feature_sets=class_feature_sets(ds),
        feature_groups=ds.feature_groups, class_names=list(ds.class_names), population=pop,
        forward_batch=forward_batch, seed=seed)
