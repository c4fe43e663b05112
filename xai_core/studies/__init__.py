"""Reproductions of the three source studies (docs/protocols/ §1–§3), run as
``python -m xai_core study NAME [--quick]``; see ``base`` for what a study leaves behind."""
from __future__ import annotations

import importlib
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from ..determinism import DEFAULT_THREADS, reproducible
from ..errors import XaiError
from ..progress import ProgressFn, as_progress_fn
from ..provenance import now
from .base import (DOCS, STUDIES, StudyContext, StudyResult, StudySpec, default_out, load_result,
                   machine_info, register_study)
from .report import render_markdown

_MODULES = ("ig_expression", "grain_explainers", "dna_consistency")

__all__ = ["DOCS", "STUDIES", "StudyContext", "StudyResult", "StudySpec", "default_out", "load_result",
           "register_study", "render_markdown", "run_study", "study_names", "write_result"]


def _load() -> None:
    for mod in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod}":
                raise


def study_names() -> list[str]:
    """The registered studies, in registration order.

    Returns
    -------
    list of str
    """
    _load()
    return list(STUDIES.names())


def write_result(result: StudyResult, out_dir: Path) -> Path:
    """``results.json`` and ``README.md`` (the Markdown report) in ``out_dir``, written atomically.

    Parameters
    ----------
    result : StudyResult
        The study's results.
    out_dir : Path
        The folder (created if missing).

    Returns
    -------
    Path
        The ``results.json`` written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.json", json.dumps(result.to_dict(), indent=1, allow_nan=False)),
                       ("README.md", render_markdown(result))):
        tmp = out_dir / f".{name}.{time.time_ns()}.tmp"
        tmp.write_text(text)
        tmp.replace(out_dir / name)
    return out_dir / "results.json"


# options a study reads beyond its QUICK / FULL / COMMON / CONFIGS settings (``cfg.get(...)`` with a fallback)
_EXTRA_OPTIONS: dict[str, dict[str, Any]] = {
    "ig-expression": {"epochs": 25},
    "dna-consistency": {"store": None, "preset": "full", "device": "cpu", "lr_exp_nobn": 1e-3, "accuracy_window": 1.0,
                        "tolerance": 1.0},
}
# options of every study, taken by the runner (``threads``: torch threads of the run, ``determinism.reproducible``)
_RUNNER_OPTIONS: dict[str, Any] = {"threads": DEFAULT_THREADS}
# whole-number options that count something (so must be >= 1); other whole numbers must be >= 0
_COUNTS = {"seeds", "patience", "diffuse_seeds", "real_seeds", "n", "n_robust", "n_values", "nr_samples", "draws",
           "n_boot", "epochs", "batch_size", "compare_n", "pgr_samples", "n_random", "start_steps", "threads"}


def study_options(name: str) -> dict[str, Any]:
    """Every option ``study NAME --set KEY=VALUE`` takes, with an example value (its quick or full default).

    Parameters
    ----------
    name : str
        A registered study.

    Returns
    -------
    dict

    Raises
    ------
    UnknownChoice
        For an unknown study.
    """
    _load()
    mod = sys.modules[STUDIES.get(name).run.__module__]
    out: dict[str, Any] = {**_RUNNER_OPTIONS, **_EXTRA_OPTIONS.get(name, {})}
    for attr in ("COMMON", "FULL", "QUICK"):
        out.update(getattr(mod, attr, None) or {})
    for cfg in (getattr(mod, "CONFIGS", None) or {}).values():
        out.update(cfg)
    return out


def check_study_options(name: str, options: dict[str, Any]) -> None:
    """Unknown option names, and numbers of the wrong kind or range, end with one ``XaiError`` before any work."""
    valid = study_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise XaiError(f"unknown option(s) of study {name}: {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    for k, v in options.items():
        d = valid[k]
        if isinstance(d, bool) or d is None:
            continue
        if isinstance(d, int):
            lo = 1 if k in _COUNTS else 0
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= lo) and not (
                    k == "seeds" and isinstance(v, list)):
                raise XaiError(f"study option {k} must be a whole number >= {lo}, got {v!r}")
        elif isinstance(d, float):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or v < 0 or (v == 0 and k.startswith("lr")):
                raise XaiError(f"study option {k} must be a finite number {'> 0' if k.startswith('lr') else '>= 0'}, "
                               f"got {v!r}")
        elif isinstance(d, list) and not isinstance(v, (list, str)):
            raise XaiError(f"study option {k} must be a list like {json.dumps(d)}, got {v!r}")
        elif isinstance(d, str) and not isinstance(v, (str, list)):
            raise XaiError(f"study option {k} must be a string like {d!r}, got {v!r}")


def run_study(name: str, quick: bool = False, out_dir: Path | str | None = None, progress: ProgressFn | None = None,
              seed: int = 0, command: str | None = None, **options: Any) -> StudyResult:
    """Run study ``name`` and write its results to ``out_dir`` (default ``docs/studies/NAME[/quick]``).

    The options are checked before any work; ``results.json`` and ``README.md`` are written (``write_result``).

    Parameters
    ----------
    name : str
        A registered study (``study_names``).
    quick : bool
        The quick settings (minutes) instead of the full reproduction.
    out_dir : Path or str, optional
        Where to write the results.
    progress : ProgressFn, optional
        Gets ``Progress`` events of stage ``study`` (``done`` a fraction of ``total`` = 1, and a message); a
        callback of the older ``(fraction, message)`` form still works.
    seed : int
        The study's seed.
    command : str, optional
        The command line recorded in the results (default one rebuilt from the arguments).
    **options
        Study options (``study_options``), as ``--set KEY=VALUE`` gives them.

    Returns
    -------
    StudyResult

    Raises
    ------
    UnknownChoice
        For an unknown study.
    XaiError
        For an unknown option, or a value of the wrong kind or range.
    """
    _load()
    spec = STUDIES.get(name)
    check_study_options(name, options)
    mode = "quick" if quick else "full"
    result = StudyResult(spec.name, spec.title, spec.section, spec.paper, mode)
    result.command = command or ("python -m xai_core study " + " ".join(
        [name] + (["--quick"] if quick else []) + [f"--set {k}={json.dumps(v)}" for k, v in options.items()]))
    result.started = now()
    threads = int(options.pop("threads", DEFAULT_THREADS))
    ctx = StudyContext(quick=quick, result=result, progress=as_progress_fn(progress) or (lambda e: None), seed=seed,
                       options=dict(options))
    t0 = time.perf_counter()
    with reproducible(seed, threads) as settings:  # seeds, threads and deterministic kernels, recorded
        result.machine = machine_info()
        result.provenance = {"determinism": settings, **result.provenance}
        spec.run(ctx)
    result.duration_s = round(time.perf_counter() - t0, 1)
    result.timings = {k: round(v, 1) for k, v in result.timings.items()}
    write_result(result, Path(out_dir) if out_dir is not None else default_out(name, quick))
    return result


def cli_command(argv: list[str] | None = None) -> str:
    """The command line of this process (or of ``argv``) as ``python -m xai_core ...``, shell-quoted."""
    return "python -m xai_core " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
