"""Build ``MetricInputs`` from a ``Dataset``, a model context and attributions (what the runner and tests share)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..batching import BATCH
from ..data import Dataset
from ..explainers.base import ExplainContext, explain
from .base import MetricInputs


def class_feature_sets(ds: Dataset) -> dict[int, np.ndarray] | None:
    """Ground-truth feature sets keyed by class index (sub-class sets such as "c / sub 1" are left out)."""
    gt = ds.ground_truth
    if gt is None or not gt.feature_sets:
        return None
    out = {c: np.asarray(gt.feature_sets[name], dtype=np.int64)
           for c, name in enumerate(ds.class_names) if name in gt.feature_sets}
    return out or None


def make_explain_fn(ctx: ExplainContext, method: str, params: dict[str, Any],
                    explain_batch: int = BATCH.explain_batch):
    """``fn(x, target, ctx=None)`` re-explaining with the same method and parameters."""

    def fn(x: torch.Tensor, target: torch.Tensor, ctx: ExplainContext | None = None) -> torch.Tensor:
        return explain(ctx or base_ctx, x, target, method, explain_batch=explain_batch, **params).attributions

    base_ctx = ctx
    return fn


def build_inputs(ds: Dataset, ctx: ExplainContext, idx: np.ndarray, attributions: torch.Tensor | np.ndarray,
                 method: str = "", method_params: dict[str, Any] | None = None, *, targets: np.ndarray | None = None,
                 forward_batch: int = BATCH.forward_batch, explain_batch: int = BATCH.explain_batch,
                 population: list | None = None, seed: int = 0) -> MetricInputs:
    """Inputs for samples ``idx`` of ``ds`` with their ``attributions`` (same order).

    ``targets`` default to the true labels; for single-logit models the explained output is 0.
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
