"""The sidebar's Report action: one self-contained HTML report (and a PDF of it) of the current dataset and model,
for the selections held in the session (methods, metrics, samples, and the Explanations page's drawing choices),
offered as downloads.

It never computes: ``xai_core.report`` reads the results store only; what is not there is listed in the report and,
when nothing is, said here with the page or command that computes it. The same engine call writes
``python -m xai_core report``, so the two hold the same numbers.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import streamlit as st

from xai_core.errors import XaiError

from . import state

# xai_core.report (the runner, the figure builders, plotly.js) is imported by the functions below, on the first click:
# the sidebar is drawn on every run of every page and stays light.

RESULT = "_report_result"  # session key: the last report built (file name stem, HTML, what was not computed, key)
VIEW = "_report_view"  # session key: the Explanations page's drawing choices, as last seen
# The Explanations page's widget keys (views/explanations.py) -> the report's Selection fields, and their types
VIEW_KEYS = {"pooling": (state.X_POOLING, str), "normalisation": (state.X_NORMALISATION, str),
             "aggregate": (state.X_AGGREGATE, bool), "dna_view": (state.X_DNA_VIEW, str),
             "genes_per_map": (state.X_GENES_PER_MAP, int), "opacity": (state.X_OPACITY, float)}


def _typed(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def remember_view() -> None:
    """Keep the Explanations page's drawing choices (pooling, normalisation, aggregate, logo view, genes per map,
    opacity) in a plain session key. Streamlit drops a widget's key on a run of a page that does not draw it; the
    sidebar runs before the page, so on every run it still sees the choices of the run before, and a report built
    from any page draws the maps as they were last drawn on the Explanations page."""
    seen = dict(st.session_state.get(VIEW) or {})
    for name, (key, kind) in VIEW_KEYS.items():
        value = st.session_state.get(key)
        if _typed(value, kind):
            seen[name] = value
    st.session_state[VIEW] = seen


def view_choices() -> dict[str, Any]:
    """The remembered drawing choices as ``Selection`` fields (empty: the page's defaults)."""
    return dict(st.session_state.get(VIEW) or {})


def selection():
    """The methods, metrics and samples chosen on the pages (None where a page never set them: all stored) and the
    Explanations page's drawing choices, as an ``xai_core.report.Selection``; a choice the report refuses (out of
    range) falls back to the page's default."""
    from xai_core.report import Selection  # noqa: PLC0415 - torch, plotly (xai_core.report): the sidebar stays light

    def chosen(key: str) -> list[str] | None:
        return state.clean_list(st.session_state[key], state.SELECTION_LIMITS[key]) or None \
            if key in st.session_state else None

    view = view_choices()
    for name in list(view):
        try:
            Selection(**{name: view[name]}).check()
        except (XaiError, TypeError):
            view.pop(name)
    return Selection(methods=chosen(state.METHODS), metrics=chosen(state.METRICS), samples=chosen(state.SAMPLES),
                     **view)


def file_stem(dataset: str, model: str, day: date | None = None) -> str:
    """``report_DATASET_MODEL_YYYY-MM-DD``, with anything but letters, digits, ``-``, ``_`` and ``.`` replaced."""
    name = Path(model).stem.split("__", 1)[-1] if str(model).endswith(".safetensors") else str(model)
    raw = f"report_{dataset}_{name}_{(day or date.today()).isoformat()}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw)


def build(dataset: str, model: str, seed: int, sel):
    """(report, HTML) of the cached Evaluation of ``dataset`` and ``model`` for the ``Selection`` ``sel``, read from
    the store only."""
    from xai_core.report import build_report  # noqa: PLC0415 - torch, plotly (xai_core.report): the sidebar stays light

    ev = state.evaluation(dataset, model, seed)
    if sel.samples:  # the session may still hold samples chosen on another dataset
        ids = set(ev.ds.sample_ids)
        sel.samples = [s for s in sel.samples if s in ids] or None
    return build_report(ev, sel)


def pdf_of(html: str) -> bytes:
    """The HTML printed to PDF by Debian's chromium (raises ``XaiError`` when it is missing or fails)."""
    from xai_core.report import write_pdf  # noqa: PLC0415 - torch, plotly (xai_core.report): the sidebar stays light

    with tempfile.TemporaryDirectory(prefix="xai-report-") as d:
        src = Path(d) / "report.html"
        src.write_text(html, encoding="utf-8")
        return write_pdf(src, Path(d) / "report.pdf").read_bytes()


def sidebar_action() -> None:
    """The Report block of the sidebar: build, then download HTML (and PDF when chromium is there)."""
    remember_view()
    dataset, model, seed = state.current()
    if model is None:
        return
    key = (dataset, model, seed, *(tuple(st.session_state.get(k) or ()) for k in (state.METHODS, state.METRICS,
                                                                                   state.SAMPLES)),
           tuple(sorted(view_choices().items())))
    with st.sidebar.expander("Report", icon=":material/description:"):
        st.caption("One HTML file with the data, the explanations as drawn on the Explanations page (samples, "
                   "methods, pooling, normalisation, aggregate), metrics, ranking and provenance of this dataset and "
                   "model, read from the stored results (nothing is explained or scored).")
        if st.button("Build report", key="report_build", width="stretch"):
            with st.spinner("Reading the stored results…"):
                try:
                    report, html = build(dataset, model, seed, selection())
                except XaiError as e:
                    st.error(str(e))
                    return
            st.session_state[RESULT] = {"key": key, "stem": file_stem(dataset, model), "html": html,
                                        "missing": report.missing, "empty": not report.has_results()}
        res = st.session_state.get(RESULT)
        if not res or res["key"] != key:
            return
        if res["empty"]:
            st.warning("Nothing of this selection is stored yet: compute explanations on the Explanations page and "
                       "scores on the Metrics page (or `python -m xai_core evaluate`), then build the report.")
            return
        if res["missing"]:
            st.caption(f"{len(res['missing'])} part(s) not computed; the report lists them and the command for each.")
        st.download_button("Download HTML", res["html"].encode("utf-8"), f"{res['stem']}.html", "text/html",
                           key="report_html", width="stretch")
        if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
            st.caption("PDF: needs Debian's chromium (not installed); print the HTML from a browser instead.")
        elif st.button("Make PDF", key="report_pdf_make", width="stretch"):
            with st.spinner("Printing to PDF…"):
                try:
                    res["pdf"] = pdf_of(res["html"])
                except XaiError as e:
                    st.error(str(e))
        if res.get("pdf"):
            st.download_button("Download PDF", res["pdf"], f"{res['stem']}.pdf", "application/pdf",
                               key="report_pdf", width="stretch")
