"""The one-click report: what the results store holds for one dataset and model, as one self-contained HTML file
(and a PDF of it). Read from the store only; it never runs a model, an explainer or a metric.

``collect(ev, Selection(...))`` gathers it (``collect.py``), ``render_html`` draws it (``render.py``),
``write_pdf`` prints it with Debian's chromium (``pdf.py``); ``build_report`` does the first two.
``python -m xai_core report`` (``xai_core/cli_report.py``) and the dashboard's Report action call these.
"""
from __future__ import annotations

from .collect import SECTIONS, Report, Selection, collect
from .pdf import chromium, missing_message, write_pdf
from .render import DATA_ID, render_html, report_data

__all__ = ["DATA_ID", "SECTIONS", "Report", "Selection", "build_report", "chromium", "collect", "missing_message",
           "render_html", "report_data", "write_pdf"]


def build_report(ev, selection: Selection | None = None) -> tuple[Report, str]:
    """Collect and render: (the report, its HTML).

    Parameters
    ----------
    ev : xai_core.runner.Evaluation
        The dataset, model and results store.
    selection : Selection, optional
        Methods, metrics, samples and sections (default: everything stored).

    Returns
    -------
    tuple of (Report, str)
    """
    report = collect(ev, selection)
    return report, render_html(report)
