"""Run several methods on the same inputs; the aggregate reuses component maps already computed."""
from __future__ import annotations

import time
from collections.abc import Callable

import torch

from .base import ExplainContext, Explanation, explain
from .control import combine, components


def explain_many(ctx: ExplainContext, x: torch.Tensor, target, methods: list[str], batch_size: int = 32,
                 progress: Callable[[str, int], None] | None = None,
                 params: dict[str, dict] | None = None) -> dict[str, Explanation]:
    """``{method: Explanation}`` for every method; ``progress(method, n_done)`` after each batch."""
    params = params or {}
    out: dict[str, Explanation] = {}
    ordered = [m for m in methods if m != "aggregate"] + [m for m in methods if m == "aggregate"]
    for m in ordered:
        cb = (lambda n, m=m: progress(m, n)) if progress else None
        agg_params = params.get(m, {})
        if m == "aggregate":
            from .base import EXPLAINERS
            p = EXPLAINERS.get(m).params_for(ctx.modality, agg_params)
            comps = components(p["methods"])
            if all(c in out and not params.get(c) for c in comps):  # default-parameter components at hand
                t0 = time.perf_counter()
                attr = combine([out[c].attributions for c in comps], p["normalisation"])
                secs = time.perf_counter() - t0 + sum(out[c].seconds for c in comps)
                out[m] = Explanation(m, attr, p, secs, {"reused_components": comps})
                if cb:
                    cb(len(x))
                continue
        out[m] = explain(ctx, x, target, m, batch_size=batch_size, progress=cb, **agg_params)
    return {m: out[m] for m in methods}
