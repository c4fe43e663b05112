"""Reproductions of the three source studies (seeds_spec.md §1–§3), run as
``python -m xai_core study NAME [--quick]``; see ``base`` for what a study leaves behind."""
from __future__ import annotations

import importlib
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from ..provenance import now
from .base import (DOCS, STUDIES, Progress, StudyContext, StudyResult, StudySpec, default_out, load_result,
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
    _load()
    return list(STUDIES.names())


def write_result(result: StudyResult, out_dir: Path) -> Path:
    """``results.json`` and ``README.md`` (the Markdown report) in ``out_dir``, written atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.json", json.dumps(result.to_dict(), indent=1, allow_nan=False)),
                       ("README.md", render_markdown(result))):
        tmp = out_dir / f".{name}.{time.time_ns()}.tmp"
        tmp.write_text(text)
        tmp.replace(out_dir / name)
    return out_dir / "results.json"


def run_study(name: str, quick: bool = False, out_dir: Path | str | None = None, progress: Progress | None = None,
              seed: int = 0, command: str | None = None, **options: Any) -> StudyResult:
    """Run study ``name`` and write its results to ``out_dir`` (default ``docs/studies/NAME[/quick]``)."""
    _load()
    spec = STUDIES.get(name)
    mode = "quick" if quick else "full"
    result = StudyResult(spec.name, spec.title, spec.section, spec.paper, mode)
    result.command = command or ("python -m xai_core study " + " ".join(
        [name] + (["--quick"] if quick else []) + [f"--{k.replace('_', '-')} {v}" for k, v in options.items()]))
    result.started = now()
    result.machine = machine_info()
    ctx = StudyContext(quick=quick, result=result, progress=progress or (lambda f, m: None), seed=seed,
                       options=dict(options))
    t0 = time.perf_counter()
    spec.run(ctx)
    result.duration_s = round(time.perf_counter() - t0, 1)
    result.timings = {k: round(v, 1) for k, v in result.timings.items()}
    write_result(result, Path(out_dir) if out_dir is not None else default_out(name, quick))
    return result


def cli_command(argv: list[str] | None = None) -> str:
    return "python -m xai_core " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
