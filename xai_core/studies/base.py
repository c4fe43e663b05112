"""What a study is, how it runs and what it leaves behind.

A study is a registered function ``run(ctx: StudyContext) -> None`` that fills ``ctx.result`` (a
``StudyResult``) with its protocol, tables, comparisons with the paper, claims and figure data. The
runner adds the command, the duration and the machine, then writes ``results.json`` and a Markdown
report (``README.md``) to the output folder. Everything is plain JSON: the dashboard's Studies page
draws the figures from the data, and no pickles are involved.

Figure kinds (``StudyResult.figure(kind=...)``) and their data:
- ``bar``: {"x": [...], "series": {name: [...]}, "error": {name: [...]}(optional), "x_title", "y_title"}
- ``scatter``: {"x": [...], "y": [...], "label": [...], "group": [...](optional), "highlight": [...](optional),
  "x_title", "y_title", "line": [[x0, y0], [x1, y1], ...](optional)}
- ``line``: {"x": [...], "series": {name: [...]}, "band": {name: [low, high]}(optional), "x_title", "y_title"}
- ``heatmap``: {"x": [...], "y": [...], "z": [[...]], "title"}
- ``images``: {"panels": [{"title", "z": 2-D list, "kind": "image"|"map", "outline": 2-D 0/1 list(optional)}]}
- ``logos``: {"sequence": "ACGT...", "pwm_ic": [...], "maps": {title: (L, 4) list}}
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..devices import resolve_device
from ..errors import XaiError
from ..progress import ProgressFn, notify
from ..provenance import package_versions
from ..registry import Registry

VERDICTS = ("agrees", "partly", "differs", "not comparable", "not tested")
FIGURE_KINDS = ("bar", "scatter", "line", "heatmap", "images", "logos")
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "studies"


@dataclass(frozen=True)
class StudySpec:
    """A registered study: its name, title, protocol section, source paper and ``run`` function."""
    name: str
    title: str
    section: str  # the study's section number (§1-§3); its protocol is written out in the report
    paper: str  # citation of the source study
    run: Callable[[StudyContext], None]
    quick_budget_s: float = 120.0


STUDIES: Registry[StudySpec] = Registry("study")


def register_study(name: str, *, title: str, section: str, paper: str):
    """Decorator adding ``run(ctx: StudyContext)`` to ``STUDIES`` as study ``name`` (``fn`` is returned unchanged).

    Parameters
    ----------
    name : str
        The study's name (``python -m xai_core study NAME``).
    title : str
        Its title in the report and on the Studies page.
    section : str
        The study's section number (§1-§3); its protocol is written out in the report.
    paper : str
        Citation of the source study.

    Returns
    -------
    callable
        The decorator.

    Raises
    ------
    ValueError
        When ``name`` is registered already.
    """
    return STUDIES.decorator(name, lambda fn: StudySpec(name, title, section, paper, fn))


def json_safe(v: Any) -> Any:
    """JSON-safe: numpy scalars/arrays to Python, NaN/inf to None."""
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, np.ndarray):
        return json_safe(v.tolist())
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, Path):
        return str(v)
    return v


@dataclass
class StudyResult:
    """What a study leaves behind: protocol, tables, comparisons with the paper, claims, figure data (plain JSON)."""
    study: str
    title: str
    section: str
    paper: str
    mode: str  # "quick" | "full"
    command: str = ""
    started: str = ""
    duration_s: float | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)  # sentences, in order
    tables: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # what decided the numbers beyond the code: seed, threads, kernels, versions (``determinism.record``), and
    # the study's own (e.g. the trained weights' hashes)
    provenance: dict[str, Any] = field(default_factory=dict)
    # paths of entries that measure time or the cache's state, not the science, e.g. "tables/timing": a re-run
    # is not expected to reproduce them (``determinism.compare_results`` leaves them out)
    volatile: list[str] = field(default_factory=list)
    # path -> {"rel", "abs", "why"}: numbers another machine may move by more than ``determinism.REL_TOL``, with
    # the tolerance a re-run is held to and the reason (``tolerate``)
    tolerances: dict[str, dict[str, Any]] = field(default_factory=dict)

    def table(self, name: str, title: str, columns: list[str], rows: list[list[Any]], note: str = "") -> None:
        """A result table; cells are numbers or strings (numbers are shown rounded in the report)."""
        bad = [r for r in rows if len(r) != len(columns)]
        if bad:
            raise ValueError(f"table {name}: row {bad[0]} does not have {len(columns)} cells")
        self.tables.append({"name": name, "title": title, "columns": list(columns), "rows": json_safe(rows),
                            "note": note})

    def compare(self, quantity: str, ours: float | None, paper: float | None, *, ours_sd: float | None = None,
                paper_sd: float | None = None, unit: str = "", verdict: str, explanation: str,
                group: str = "") -> None:
        """Our number beside the paper's, with a verdict and a sentence on the difference."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict '{verdict}' is not one of {VERDICTS}")
        self.comparisons.append(json_safe({"group": group, "quantity": quantity, "ours": ours, "ours_sd": ours_sd,
                                        "paper": paper, "paper_sd": paper_sd, "unit": unit, "verdict": verdict,
                                        "explanation": explanation}))

    def claim(self, claim: str, verdict: str, evidence: str) -> None:
        """One of the study's qualitative claims and whether our run agrees."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict '{verdict}' is not one of {VERDICTS}")
        self.claims.append({"claim": claim, "verdict": verdict, "evidence": evidence})

    def figure(self, name: str, title: str, kind: str, data: dict[str, Any], caption: str = "") -> None:
        """Figure data for the report and the Studies page; ``kind`` is one of ``FIGURE_KINDS`` (see the module doc)."""
        if kind not in FIGURE_KINDS:
            raise ValueError(f"figure kind '{kind}' is not one of {FIGURE_KINDS}")
        self.figures.append({"name": name, "title": title, "kind": kind, "caption": caption, "data": json_safe(data)})

    def tolerate(self, path: str, rel: float, abs_tol: float, why: str) -> None:
        """State that the numbers under ``path`` (a ``determinism.leaves`` path, e.g. ``tables/scores/rows/random``)
        may move on another machine by ``rel`` / ``abs_tol``, and why; the report lists it."""
        self.tolerances[path] = {"rel": rel, "abs": abs_tol, "why": why}

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-safe data (``results.json``)."""
        return json_safe(dict(vars(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyResult:
        """A result read back from ``to_dict``'s data (unknown keys are ignored)."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class StudyContext:
    """What a study's ``run`` gets: the mode, a progress callback, the result to fill and a timer."""

    quick: bool
    result: StudyResult
    progress: ProgressFn  # gets Progress(fraction, 1, "study", message) events (``step``)
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # CLI overrides, e.g. {"seeds": 3}

    def step(self, fraction: float, message: str) -> None:
        """Report ``fraction`` (clipped to [0, 1]) of the study done, and what runs now."""
        notify(self.progress, max(0.0, min(1.0, fraction)), 1.0, "study", message)

    def timed(self, stage: str):
        """``with ctx.timed("train"):`` adds the block's seconds to ``result.timings[stage]``."""
        timings = self.result.timings

        class _T:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - self.t0

        return _T()


def machine_info() -> dict[str, Any]:
    """Platform, processor, CPUs, torch threads and device, memory and package versions of this machine."""
    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                            "cpus": os.cpu_count()}
    try:
        import torch  # noqa: PLC0415 - torch (about 4 s): the Studies page reads results without it

        info["torch_threads"] = torch.get_num_threads()
        info["device"] = "cuda: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - best effort: a broken CUDA setup must not fail a study  # pragma: no cover
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["memory_gib"] = round(kb / 2**20, 1)
    except OSError:
        pass
    info["versions"] = package_versions()
    return info


def default_out(name: str, quick: bool) -> Path:
    """Where study ``name`` writes by default: ``docs/studies/NAME`` (``/quick`` for the quick mode)."""
    return DOCS / name / ("quick" if quick else "")


def load_result(path: Path) -> StudyResult:
    """Read back a study's results from its ``results.json``.

    Parameters
    ----------
    path : Path
        The ``results.json`` file.

    Returns
    -------
    StudyResult
    """
    return StudyResult.from_dict(json.loads(Path(path).read_text()))


def study_device(value: Any) -> str:
    """A study's ``device`` option (``--set device=...``): ``cpu``, ``cuda``, ``cuda:N`` or ``auto``, resolved as
    ``--device`` is; CUDA asked for on a machine without it, or an unknown value, is one ``XaiError`` naming the
    option.

    Parameters
    ----------
    value : Any
        The option's value.

    Returns
    -------
    str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """
    try:
        return resolve_device(str(value))
    except XaiError as e:  # its words name the CLI's --device; the studies take --set device=...
        why = re.sub(r"^--device (\S+: )?", "", str(e)).replace("--device ", "device=")
        raise XaiError(f"study option device={value}: {why}") from None
