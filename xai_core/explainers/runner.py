"""Run several methods on the same inputs; a composite (the aggregate) reuses component maps already computed."""
from __future__ import annotations

import time

import torch

from ..progress import ProgressFn, notify
from .base import BATCH, EXPLAINERS, Explanation, explain, is_composite
from .context import ExplainContext
from .control import combine


def explain_many(ctx: ExplainContext, x: torch.Tensor, target, methods: list[str],
                 explain_batch: int = BATCH.explain_batch, progress: ProgressFn | None = None,
                 params: dict[str, dict] | None = None, *, batch_size: int | None = None) -> dict[str, Explanation]:
    """``{method: Explanation}`` for every method, on the same inputs.

    Composites run last, so that components computed here at their default parameters are combined rather than
    computed again.

    Parameters
    ----------
    ctx : ExplainContext
        The model and its data.
    x : Tensor
        Inputs (N, ...).
    target : Tensor or ndarray or int
        The class explained, as for ``explain``.
    methods : list of str
        Registered methods; the result keeps this order.
    explain_batch : int
        Samples per call of a method.
    progress : ProgressFn, optional
        Gets ``Progress(n_done, n, "explain", method=...)`` after each batch.
    params : dict of str to dict, optional
        Parameters per method.
    batch_size : int, optional
        The old name of ``explain_batch``; when given, wins.

    Returns
    -------
    dict of str to Explanation
    """
    step = explain_batch if batch_size is None else batch_size
    params = params or {}
    out: dict[str, Explanation] = {}
    ordered = [m for m in methods if not is_composite(m)] + [m for m in methods if is_composite(m)]
    for m in ordered:
        agg_params = params.get(m, {})
        if is_composite(m):
            spec = EXPLAINERS.get(m)
            p = spec.params_for(ctx.modality, agg_params)
            comps = spec.components(p)
            if all(c in out and not params.get(c) for c in comps):  # default-parameter components at hand
                t0 = time.perf_counter()
                attr = combine([out[c].attributions for c in comps], p["normalisation"])
                secs = time.perf_counter() - t0 + sum(out[c].seconds for c in comps)
                out[m] = Explanation(m, attr, p, secs, {"reused_components": comps})
                notify(progress, len(x), len(x), "explain", method=m)
                continue
        out[m] = explain(ctx, x, target, m, explain_batch=step, progress=progress, **agg_params)
    return {m: out[m] for m in methods}
