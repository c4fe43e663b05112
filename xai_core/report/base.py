"""What a report is made of: the selection it is drawn for (``Selection``), its blocks (``Part``), the collected
report (``Report``), and the names shared by the modules that collect and draw it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..errors import XaiError
from ..explainers import EXPLAINERS
from ..explainers.postprocess import NO_NORMALISATION, NORMALISATIONS, POOLINGS
from ..metrics import METRICS

SECTIONS = ("data", "explanations", "genes", "metrics", "ranking", "provenance")
SECTION_TITLES = {"data": "Data and model", "explanations": "Explanations", "genes": "Gene rankings",
                  "metrics": "Metric distributions", "ranking": "Method ranking",
                  "provenance": "Provenance and how to reproduce"}
# The views of a sequence map that ``xai_core.explainers.postprocess.for_display`` draws (its ``dna_view``)
DNA_VIEWS = {"observed": "observed nucleotide (attribution × input)",
             "corrected": "all four nucleotides (gradient-corrected)"}
# The Explanations page's choices and their ranges (its widgets' defaults and slider bounds)
POOLING, NORMALISATION, DNA_VIEW, GENES_PER_MAP, OPACITY = "sum", "per_map_p99", "observed", 15, 0.7
GENES_RANGE, OPACITY_RANGE = (5, 40), (0.2, 1.0)
MAX_EXPLAINED = 8  # samples drawn in the explanations section (the Explanations page's limit)


@dataclass
class Selection:
    """What to report and how to draw its maps; None means "whatever the store holds" (methods, metrics) or "the
    first scored" (samples). The drawing choices are the Explanations page's, with its defaults.

    Attributes
    ----------
    methods : list of str, optional
        Explanation methods (the columns of the explanations, in this order).
    metrics : list of str, optional
        Metrics.
    samples : list of str, optional
        Sample ids drawn in the explanations section (the rows, in this order; at most ``MAX_EXPLAINED``).
    sections : tuple of str
        Which of ``SECTIONS``, in that order.
    pooling : str
        Channel pooling of image maps (a name of ``POOLINGS``).
    normalisation : str
        A name of ``NORMALISATIONS``, or ``"none"`` for the maps as stored.
    dna_view : str
        A key of ``DNA_VIEWS``: what a sequence logo shows.
    genes_per_map : int
        Expression data: the genes with the largest |attribution| drawn per map.
    aggregate : bool
        Add the aggregated explanation: the mean of the normalised maps of the chosen methods, controls left out.
    opacity : float
        Image data: the heatmap's opacity over the grey image.
    """
    methods: list[str] | None = None
    metrics: list[str] | None = None
    samples: list[str] | None = None
    sections: tuple[str, ...] = SECTIONS
    pooling: str = POOLING
    normalisation: str = NORMALISATION
    dna_view: str = DNA_VIEW
    genes_per_map: int = GENES_PER_MAP
    aggregate: bool = False
    opacity: float = OPACITY

    def check(self) -> None:
        """Raise ``XaiError`` (one line naming the choice and the valid values) for a choice out of range."""
        bad = [s for s in self.sections if s not in SECTIONS]
        if bad:
            raise XaiError(f"unknown section(s) {', '.join(bad)}; valid choices: {', '.join(SECTIONS)}")
        if self.pooling not in POOLINGS.names():
            raise XaiError(f"unknown pooling '{self.pooling}'; valid choices: {', '.join(POOLINGS.names())}")
        norms = [NO_NORMALISATION, *NORMALISATIONS.names()]
        if self.normalisation not in norms:
            raise XaiError(f"unknown normalisation '{self.normalisation}'; valid choices: {', '.join(norms)}")
        if self.dna_view not in DNA_VIEWS:
            raise XaiError(f"unknown DNA view '{self.dna_view}'; valid choices: {', '.join(DNA_VIEWS)}")
        lo, hi = GENES_RANGE
        if isinstance(self.genes_per_map, bool) or not isinstance(self.genes_per_map, (int, np.integer)) \
                or not lo <= self.genes_per_map <= hi:
            raise XaiError(f"genes per map must be a whole number in [{lo}, {hi}], got {self.genes_per_map!r}")
        lo, hi = OPACITY_RANGE
        if isinstance(self.opacity, bool) or not isinstance(self.opacity, (int, float)) \
                or not lo <= float(self.opacity) <= hi:
            raise XaiError(f"opacity must be a number in [{lo}, {hi}], got {self.opacity!r}")

    def view_flags(self) -> list[str]:
        """The ``report`` command-line flags of the drawing choices that differ from the defaults."""
        out = []
        for flag, value, default in (("--pooling", self.pooling, POOLING),
                                     ("--normalisation", self.normalisation, NORMALISATION),
                                     ("--dna-view", self.dna_view, DNA_VIEW),
                                     ("--genes-per-map", self.genes_per_map, GENES_PER_MAP),
                                     ("--opacity", self.opacity, OPACITY)):
            if value != default:
                out.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
        return out + (["--aggregate"] if self.aggregate else [])


@dataclass
class Part:
    """One block of a section: a heading, sentences, a table and/or a figure."""
    title: str = ""
    text: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None
    figure: go.Figure | None = None
    command: str | None = None  # the command line that reproduces this part
    warn: bool = False  # the text is a caveat (drawn as a warning)


@dataclass
class Report:
    """A collected report: what ``render_html`` draws."""
    title: str
    subtitle: str
    sections: dict[str, list[Part]]  # section name -> its parts, in ``SECTIONS`` order
    data: dict[str, Any]  # every number shown, JSON-able (embedded as ``report-data``)
    missing: list[str]  # what was not computed and why (one sentence each)
    warnings: list[str] = field(default_factory=list)  # shown under the title: the model near chance

    def has_results(self) -> bool:
        """Whether the store held anything for the selection (scores or maps)."""
        return bool(self.data.get("scored_cells") or self.data.get("explanations", {}).get("drawn"))


def label(method: str) -> str:
    """A method's display name (its registered label), the identifier itself when unknown."""
    return EXPLAINERS.get(method).label if method in EXPLAINERS else method


def metric_label(metric: str) -> str:
    """A metric's display name with its direction arrow."""
    if metric not in METRICS:
        return metric
    spec = METRICS.get(metric)
    return f"{spec.label} ({'↑' if spec.direction == 'higher' else '↓'})"


def finite(v) -> float | None:
    """``v`` as a float, None when it is not a finite number."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def model_arg(ev) -> str:
    """What ``--model`` names for the evaluation's model."""
    return ev.config.model or ev.model_meta.get("arch") or ev.model_name
