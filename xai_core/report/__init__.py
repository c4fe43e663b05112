"""The one-click report: what the results store holds for one dataset and model, as one self-contained HTML file
(and a PDF of it). Read from the store: it never runs an explainer or a metric (the model runs only for its
per-class test quality, cached, and the drawn rows' predictions).

``collect(ev, Selection(...))`` gathers it (``collect.py``; the explanations in ``maps.py``, drawn with the
Explanations page's choices held in the ``Selection``, ``base.py``), ``render_html`` draws it (``render.py``),
``write_pdf`` prints it with Debian's chromium (``pdf.py``); ``build_report`` does the first two.
``python -m xai_core report`` (``xai_core/cli_report.py``) and the dashboard's Report action call these.
"""
from __future__ import annotations

from .base import DNA_VIEWS, SECTIONS, Report, Selection
from .collect import collect
from .pdf import chromium, missing_message, write_pdf
from .render import DATA_ID, render_html, report_data

__all__ = ["DATA_ID", "DNA_VIEWS", "SECTIONS", "Report", "Selection", "build_report", "chromium", "collect",
           "missing_message", "render_html", "report_data", "write_pdf"]


def build_report(ev, selection: Selection | None = None) -> tuple[Report, str]:
    """Collect and render: (the report, its HTML).

    Parameters
    ----------
    ev : xai_core.runner.Evaluation
        The dataset, model and results store.
    selection : Selection, optional
        Methods, metrics, samples, sections and how the maps are drawn (default: everything stored, drawn as the
        Explanations page draws by default).

    Returns
    -------
    tuple of (Report, str)
    """
    report = collect(ev, selection)
    return report, render_html(report)
