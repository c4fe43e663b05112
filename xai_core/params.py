"""Parameter values of methods and metrics: the ranges a value must lie in, and the one check that refuses a value
of the wrong type or out of range before any work, naming ``owner.key``, the valid range and the value given.

Explainers (``explainers.base``) and metrics (``metrics.base``) both check their parameters here; the specs
publish the ranges (``param_range``, ``range_text``) to the CLI's help and the pages.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import XaiError

# -- parameter values ------------------------------------------------------------------------------
# A value given for a parameter must have its default's type (an int default takes a whole number, a float
# default a finite number, a bool default true/false, a string default a string) and lie in its range below
# (by parameter name, or "owner.name" for one method or metric). ``None`` as a default: only the range applies.
# (lo, hi, lo_open): hi None = no upper bound. Upper bounds keep one call within memory and reason; the studies'
# own settings stay well inside them.
PARAM_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    # explainers
    "n_steps": (1, 4096, False),  # Gauss-Legendre nodes come from an n x n eigenproblem
    "internal_batch_size": (1, 1 << 20, False), "nt_samples": (1, 10_000, False),
    "nt_samples_batch_size": (1, 10_000, False), "n_samples": (1, 100_000, False),
    "perturbations_per_eval": (1, 100_000, False), "window": (1, 1_000_000, False), "stride": (1, 1_000_000, False),
    "n_segments": (1, 100_000, False), "n_groups": (1, 1_000_000, False), "noise_level": (0, None, False),
    "stdevs": (0, None, False), "epsilon": (0, None, True), "gamma": (0, None, False),
    # metrics
    "k": (0, 1_000_000, True), "n_boot": (0, 100_000, False), "threshold": (0, 1, False), "buffer": (0, 100_000, False),
    "radius_cutoff": (0, None, True), "box_length": (0, None, True), "prior_range": (0, None, True),
    "features_in_step": (1, None, False), "patch_size": (1, None, False), "regions_evaluation": (1, 100_000, False),
    "subset_size": (1, None, False), "nr_runs": (1, 100_000, False), "gap": (1, None, False),
    "n_random": (1, 10_000, False), "tolerance": (0, None, False), "top_k": (1, 1_000_000, False),
    "n_values": (1, 1_000, False), "nr_samples": (1, 100_000, False), "n_mutations": (1, None, False),
    "lower_bound": (0, None, True), "noise_sd": (0, None, False), "n_draws": (1, 100_000, False),
    "shift": (0, None, False), "probab_drop": (0, 1, False), "fraction": (0, 1, True),
    "step_fraction": (0, 1, True), "max_layers": (1, None, False), "seed": (0, 2**32 - 1, False),
    "compactness": (0, None, True),
}
_INT_WHEN_NONE = {"max_layers", "seed"}  # None-default parameters that take whole numbers


def _show(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v)


def param_range(owner: str, key: str) -> tuple[float | None, float | None, bool] | None:
    """``(lo, hi, lo_open)`` for parameter ``key`` of method or metric ``owner`` (``PARAM_RANGES``), or None."""
    return PARAM_RANGES.get(f"{owner}.{key}", PARAM_RANGES.get(key))


def range_text(lo: float | None, hi: float | None, lo_open: bool) -> str:
    """``"in [1, 4096]"``, ``">= 0"``, ``"> 0 and <= 1"``...; "" when unbounded."""
    if lo is not None and hi is not None and not lo_open:
        return f"in [{_show(lo)}, {_show(hi)}]"
    return "".join([f" {'>' if lo_open else '>='} {_show(lo)}" if lo is not None else "",
                    (" and" if lo is not None and hi is not None else "")
                    + (f" <= {_show(hi)}" if hi is not None else "")]).lstrip(" ")


def check_params(owner: str, defaults: dict[str, Any], overrides: dict[str, Any] | None) -> None:
    """Refuse a parameter value of the wrong type or out of range, naming ``owner.key``, the valid range and
    the value given (an ``XaiError``, before any work)."""
    for key, v in (overrides or {}).items():
        d = defaults.get(key)
        name = f"{owner}.{key}"
        lo, hi, lo_open = PARAM_RANGES.get(name, PARAM_RANGES.get(key, (None, None, False)))
        is_int = isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
        is_num = (is_int or isinstance(v, (float, np.floating))) and np.isfinite(float(v))
        if d is None and v is None:
            continue
        if isinstance(d, (bool, np.bool_)):  # some switches also take a named variant (diffusion='head')
            if not isinstance(v, (bool, np.bool_, str)):
                raise XaiError(f"{name} must be true, false or a named variant, got {_show(v)}")
            continue
        want_int = (isinstance(d, (int, np.integer)) or (d is None and key in _INT_WHEN_NONE))
        want_num = want_int or isinstance(d, (float, np.floating)) or (d is None and key in PARAM_RANGES)
        if not want_num:
            if isinstance(d, str) and not isinstance(v, str) and not (v is None and key == "pooling"):
                raise XaiError(f"{name} must be a string like {d!r}, got {_show(v)}")
            if isinstance(d, (tuple, list)) and not isinstance(v, (tuple, list, str)):  # a str: comma list
                raise XaiError(f"{name} must be a list like {list(d)}, got {_show(v)}")
            continue
        ok = (is_int if want_int else is_num)
        if ok:
            f = float(v)
            ok = ((lo is None or (f > lo if lo_open else f >= lo)) and (hi is None or f <= hi))
        if not ok:
            kind = "an integer" if want_int else "a finite number"
            rng = (" " + range_text(lo, hi, lo_open)) if (lo is not None or hi is not None) else ""
            raise XaiError(f"{name} must be {kind}{rng}{' (or null)' if d is None else ''}, got {_show(v)}")
