"""Reproducible runs: the seeds, the thread count and the deterministic kernels fixed in one place, and recorded.

``reproducible(seed, threads)`` wraps a run (the study runner wraps every study in it): it seeds python's
``random``, numpy's and torch's global generators, runs torch on a fixed number of threads (intra-op and the
oneDNN/MKL pools it drives), asks torch for deterministic algorithms (and cuDNN for deterministic, non-benchmarked
kernels on a GPU), and puts everything back afterwards. What it set, and what it could not set, is returned as a
plain dict (``record``) that a study writes into its ``results.json`` (``provenance``), so a reader can see on
what kernels a number was computed.

What stays machine-dependent, and why (measured in docs/determinism.md): float32 kernels are chosen by the CPU's
instruction set (oneDNN convolutions, ATen's vectorised reductions, MKL's matrix products), and they round
differently on different instruction sets. A computation on fixed weights differs in the last bits only; a
training run amplifies those bits. ``compare_results`` compares a re-run with committed results leaf by leaf,
within a stated tolerance.
"""
from __future__ import annotations

import math
import os
import platform
import random
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# environment variables that change which kernels run (read by torch, oneDNN, MKL, OpenMP and OpenBLAS at start-up)
KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
              "MKL_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
              "NPY_DISABLE_CPU_FEATURES", "CUBLAS_WORKSPACE_CONFIG")
DEFAULT_THREADS = 1  # one thread: no intra-op reduction order that depends on the core count
# a re-run's number agrees with the committed one within this relative or absolute difference: float32 kernels of
# another instruction set moved fixed-weight numbers by up to 8.4e-5 relative (docs/determinism.md), so 1e-3 leaves
# a margin of 12 while any change of the computation moves numbers far more
REL_TOL = 1e-3
ABS_TOL = 1e-6
# top-level keys of a study's results that describe the invocation, not its science (never compared)
VOLATILE = ("started", "duration_s", "machine", "timings", "command", "provenance", "volatile", "tolerances")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string where that is not readable.

    Returns
    -------
    str
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def record(seed: int | None = None) -> dict[str, Any]:
    """What decides the numbers of a run in this process: seed, threads, kernel choices, flags and versions.

    Parameters
    ----------
    seed : int, optional
        The run's seed, recorded as given.

    Returns
    -------
    dict
        ``seed``, ``torch_threads``, ``interop_threads``, ``cpu_capability`` (the instruction set ATen's
        kernels use), ``cpu``, ``mkldnn`` (oneDNN available and enabled), ``deterministic_algorithms``,
        ``cudnn_deterministic``, ``env`` (the kernel-choosing environment variables that are set) and
        ``versions`` (python, torch, numpy).
    """
    return {"seed": seed, "torch_threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu": cpu_model(),
            "mkldnn": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "env": {k: os.environ[k] for k in KERNEL_ENV if k in os.environ},
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}}


@contextmanager
def reproducible(seed: int = 0, threads: int = DEFAULT_THREADS) -> Iterator[dict[str, Any]]:
    """Run the block with fixed seeds, ``threads`` torch threads and deterministic algorithms; restore after.

    Seeds python's ``random``, numpy's global generator and torch's (CPU and every GPU) with ``seed``; code that
    draws random numbers should still use its own seeded generator, and the studies' training does
    (``train_model`` seeds its own). ``torch.use_deterministic_algorithms(True, warn_only=True)``: an operation
    without a deterministic implementation warns instead of failing. On a GPU, cuDNN is made deterministic and
    its benchmark (which picks kernels by timing) is switched off.

    Parameters
    ----------
    seed : int
        The seed of the global generators.
    threads : int
        Torch's intra-op threads (>= 1). One thread makes the order of every reduction independent of the
        machine's core count.

    Yields
    ------
    dict
        ``record(seed)`` taken inside the block: what was set.

    Raises
    ------
    ValueError
        When ``threads`` is below 1.
    """
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark, random.getstate(), np.random.get_state(), torch.random.get_rng_state())
    try:
        torch.set_num_threads(int(threads))
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # also seeds every CUDA device
        yield record(seed)
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[3], saved[4]
        random.setstate(saved[5])
        np.random.set_state(saved[6])
        torch.random.set_rng_state(saved[7])


# -- comparing a re-run with committed results -------------------------------------------------------------------
_NUM = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Difference:
    """One leaf of two results that differs beyond the tolerance.

    Attributes
    ----------
    path : str
        Where it is, e.g. ``tables/population/rows[3][8]`` (list items of a named entry go by its name).
    expected, actual : Any
        The committed value and the re-run's (``None`` when the leaf is missing on that side).
    why : str
        In words: the relative and absolute difference, a changed text, or a missing leaf.
    """

    path: str
    expected: Any
    actual: Any
    why: str

    def __str__(self) -> str:
        return f"{self.path}: {self.expected!r} -> {self.actual!r} ({self.why})"


def _key(item: Any, i: int) -> str:
    """A list item's name in a path: its ``name`` (tables, figures), ``quantity`` (comparisons) or ``claim``, a
    table row's first cell when that is a text (``rows/random``), else [i]."""
    if isinstance(item, dict):
        for k in ("name", "quantity", "claim"):
            if isinstance(item.get(k), str):
                return item[k]
    if isinstance(item, list) and item and isinstance(item[0], str):
        return item[0]
    return f"[{i}]"


def leaves(data: Any, skip: tuple[str, ...] = VOLATILE, volatile: set[str] | None = None) -> dict[str, Any]:
    """Every leaf of JSON data by its path; top-level keys in ``skip`` and the ``volatile`` paths (by default
    those the data lists under its own ``volatile`` key: time, cache state) are left out.

    Parameters
    ----------
    data : dict or list
        A study's results (``results.json``) or any JSON data.
    skip : tuple of str
        Top-level keys to leave out.
    volatile : set of str, optional
        Paths to leave out, with everything under them.

    Returns
    -------
    dict
        path -> leaf value (numbers, strings, booleans, None).
    """
    if volatile is None:
        volatile = set(data.get("volatile") or ()) if isinstance(data, dict) else set()
    out: dict[str, Any] = {}

    def walk(x: Any, path: str) -> None:
        if path in volatile:
            return
        if isinstance(x, dict):
            for k, v in x.items():
                if not path and k in skip:
                    continue
                walk(v, f"{path}/{k}" if path else str(k))
        elif isinstance(x, list):
            named = [_key(v, i) for i, v in enumerate(x)]
            unique = len(set(named)) == len(named)
            for i, v in enumerate(x):
                k = named[i] if unique else f"[{i}]"
                walk(v, f"{path}/{k}" if not k.startswith("[") else f"{path}{k}")
        else:
            out[path] = x

    walk(data, "")
    return out


def _close(a: float, b: float, rel: float, abs_tol: float, slack: float = 0.0) -> bool:
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b or (math.isnan(a) and math.isnan(b))
    return abs(a - b) <= max(abs_tol, rel * max(abs(a), abs(b)), slack)


def _last_digit(s: str) -> float:
    """One unit in the last printed digit of the number ``s`` ("0.226" -> 0.001, "7.9e-17" -> 1e-18); 0 for a
    whole number ("6 of 7", "seed 2": a count, a rank or a name is never a rounding)."""
    if not any(c in s for c in ".eE"):
        return 0.0
    mant, _, exp = s.lower().partition("e")
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    return 10.0 ** (-decimals + (int(exp) if exp else 0))


def _text_differs(a: str, b: str, rel: float, abs_tol: float) -> str | None:
    """Why two texts differ beyond the tolerance: their words, or a number in them (printed numbers may also
    differ by one unit in their last digit, a rounding of numbers that agree within the tolerance)."""
    if _NUM.sub("#", a) != _NUM.sub("#", b):
        return "text differs"
    for x, y in zip(_NUM.findall(a), _NUM.findall(b)):
        if not _close(float(x), float(y), rel, abs_tol, 1.0001 * max(_last_digit(x), _last_digit(y))):
            return f"number in the text: {x} vs {y}"
    return None


def compare_results(expected: Mapping[str, Any], actual: Mapping[str, Any], rel: float = REL_TOL,
                    abs_tol: float = ABS_TOL, tolerances: Mapping[str, tuple[float, float]] | None = None,
                    skip: tuple[str, ...] = VOLATILE) -> list[Difference]:
    """Every leaf where ``actual`` differs from ``expected`` beyond the tolerance.

    Numbers agree when ``|a - b| <= max(abs_tol, rel * max(|a|, |b|))``; texts agree when their words are equal
    and the numbers written in them agree (a printed number may also move by one unit in its last digit);
    other leaves (booleans, None, names) must be equal. A leaf on one side only is a difference.

    Parameters
    ----------
    expected : mapping
        The committed results (``results.json``).
    actual : mapping
        The re-run's.
    rel, abs_tol : float
        The tolerance.
    tolerances : mapping, optional
        A wider ``(rel, abs_tol)`` for the leaves under a path prefix, e.g. ``{"tables/population": (0.05,
        0.01)}`` (the longest matching prefix wins). The ones either result states under its own ``tolerances``
        key (``{path: {"rel", "abs", "why"}}``, a study's statement of what another machine may move) are added.
    skip : tuple of str
        Top-level keys never compared (``VOLATILE``: time, machine, command, provenance).

    Returns
    -------
    list of Difference
        Empty when the two agree.
    """
    volatile = {*(expected.get("volatile") or ()), *(actual.get("volatile") or ())}  # either side's
    a, b = leaves(dict(expected), skip, volatile), leaves(dict(actual), skip, volatile)
    stated = {path: (float(t["rel"]), float(t["abs"])) for d in (expected, actual)
              for path, t in (d.get("tolerances") or {}).items()}
    wide = sorted({**stated, **(tolerances or {})}.items(), key=lambda kv: -len(kv[0]))
    out = []
    for path in list(a) + [p for p in b if p not in a]:
        x, y = a.get(path), b.get(path)
        r, t = next((tol for pre, tol in wide if path == pre or path.startswith(pre + "/")
                     or path.startswith(pre + "[")), (rel, abs_tol))
        if path not in a or path not in b:
            out.append(Difference(path, x, y, "missing in the re-run" if path not in b else "not in the committed"))
        elif isinstance(x, bool) or isinstance(y, bool) or x is None or y is None:
            if x != y:
                out.append(Difference(path, x, y, "differs"))
        elif isinstance(x, (int, float)) and isinstance(y, (int, float)):
            if not _close(float(x), float(y), r, t):
                d = abs(float(x) - float(y))
                out.append(Difference(path, x, y, f"|diff| {d:.3g}, relative {d / max(abs(x), abs(y)):.3g}"))
        elif isinstance(x, str) and isinstance(y, str):
            why = _text_differs(x, y, r, t)
            if why:
                out.append(Difference(path, x, y, why))
        elif x != y:
            out.append(Difference(path, x, y, "differs"))
    return out
