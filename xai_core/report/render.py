"""A collected ``Report`` as one self-contained HTML file.

plotly.js is embedded once, inline (``plotly.offline.get_plotlyjs()``); each figure is its JSON plus one
``Plotly.newPlot`` call; images inside figures are already data URIs (``xai_core.figures``); no font, script or
style is fetched from anywhere, so the file opens offline and without this tool. The report's numbers are embedded
as ``<script type="application/json" id="report-data">`` so tests and scripts can read them back
(``report_data``).
"""
from __future__ import annotations

import html
import json
import re

import plotly.io as pio
from plotly.offline import get_plotlyjs

from .base import SECTION_TITLES, Report

DATA_ID = "report-data"
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png", "scale": 2}}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;color:#1f2933;
background:#fff;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:1.7rem;margin:0 0 4px}h2{font-size:1.35rem;margin:36px 0 8px;border-bottom:2px solid #e4e7eb;
padding-bottom:4px}h3{font-size:1.05rem;margin:22px 0 6px}
.sub{color:#52606d;margin:0 0 14px}.toc a{margin-right:14px;color:#2563eb;text-decoration:none}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.86rem;max-width:100%}
th,td{border:1px solid #d9e2ec;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f7fa}td code,p code{font-size:.82rem;word-break:break-all}
.warn{background:#fff8e1;border-left:4px solid #f0b429;padding:8px 12px;margin:8px 0}
.cmd{background:#f5f7fa;border:1px solid #d9e2ec;padding:6px 10px;font-family:ui-monospace,monospace;
font-size:.8rem;white-space:pre-wrap;word-break:break-all}
.figure{width:100%;margin:6px 0 18px}
.missing li{margin:3px 0}
footer{margin-top:40px;color:#7b8794;font-size:.8rem}
@page{size:A4;margin:12mm}
@media print{html{zoom:0.72}main{max-width:none;padding:0 4px}h2{break-before:auto;break-after:avoid}
h3{break-after:avoid}.figure{break-inside:avoid}tr{break-inside:avoid}.modebar-container{display:none}
.toc{display:none}.warn,.cmd{break-inside:avoid}}
"""
# The PDF: A4 portrait, 12 mm margins, printed at 72 %: the page is then 186 mm / 0.72 = 976 CSS px wide, the width
# ``pdf.py`` lays the figures out at (plotly draws at the window's width and does not redraw for print).
PRINT_WIDTH_PX = 976


def _table(df) -> str:
    cells = df.copy()
    for c in cells.columns:
        if c == "command":
            cells[c] = [f"<code>{html.escape(str(v))}</code>" for v in cells[c]]
        else:
            cells[c] = [html.escape(_fmt(v)) for v in cells[c]]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cells.columns)
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for row in cells.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:.4g}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return "" if v is None else str(v)


def _safe_json(text: str) -> str:
    """JSON placed inside a <script> element: every "<" escaped (valid JSON), so nothing can close it."""
    return text.replace("<", "\\u003c")


def render_html(report: Report) -> str:
    """The report as one HTML document (str).

    Parameters
    ----------
    report : Report
        From ``collect``.

    Returns
    -------
    str
        A complete, self-contained HTML page.
    """
    body, scripts, k = [], [], 0
    toc = " ".join(f'<a href="#{s}">{html.escape(SECTION_TITLES[s])}</a>' for s in report.sections)
    toc += ' <a href="#not-computed">What was not computed</a>'
    for name, parts in report.sections.items():
        if name == "provenance":
            body.append(_missing(report))
        body.append(f'<section id="{name}"><h2>{html.escape(SECTION_TITLES[name])}</h2>')
        for p in parts:
            if p.title:
                body.append(f"<h3>{html.escape(p.title)}</h3>")
            for t in p.text:
                body.append(f'<div class="warn">{html.escape(t)}</div>' if p.warn else f"<p>{html.escape(t)}</p>")
            if p.table is not None and len(p.table):
                body.append(_table(p.table))
            if p.figure is not None:
                k += 1
                fid = f"figure-{k}"
                body.append(f'<div class="figure" id="{fid}"></div>')
                spec = _safe_json(pio.to_json(p.figure, validate=False, remove_uids=True))
                scripts.append(f'<script type="application/json" id="{fid}-spec">{spec}</script>')
            if p.command:
                body.append(f'<p>Reproduce:</p><div class="cmd">{html.escape(p.command)}</div>')
        body.append("</section>")
    if "provenance" not in report.sections:
        body.append(_missing(report))
    warnings = "".join(f'<div class="warn top">{html.escape(w)}</div>' for w in report.warnings)
    data = _safe_json(json.dumps(report.data, allow_nan=False, default=str))
    draw = ("document.querySelectorAll('div.figure').forEach(function(d){"
            "var s=JSON.parse(document.getElementById(d.id+'-spec').textContent);"
            f"Plotly.newPlot(d,s.data,s.layout||{{}},{json.dumps(PLOT_CONFIG)});}});")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(report.title)}</title><style>{CSS}</style>"
            f"<script>{get_plotlyjs()}</script></head><body><main>"
            f"<h1>{html.escape(report.title)}</h1><p class=\"sub\">{html.escape(report.subtitle)}</p>"
            f"{warnings}<p class=\"toc\">{toc}</p>{''.join(body)}"
            f"<footer>Written by xai_core from its results store on {html.escape(_created(report))}; "
            f"no explanation or score was computed for it, and it needs no network.</footer></main>"
            f"<script type=\"application/json\" id=\"{DATA_ID}\">{data}</script>{''.join(scripts)}"
            f"<script>{draw}</script></body></html>\n")


def _created(report: Report) -> str:
    return str((report.data.get("provenance") or {}).get("created", ""))


def _missing(report: Report) -> str:
    items = "".join(f"<li>{html.escape(m)}</li>" for m in report.missing) or "<li>Nothing: every part asked for " \
                                                                               "is in the store.</li>"
    return (f'<section id="not-computed"><h2>What was not computed, and why</h2><ul class="missing">{items}</ul>'
            "</section>")


def report_data(text: str) -> dict:
    """The numbers embedded in a rendered report (the ``report-data`` JSON block).

    Parameters
    ----------
    text : str
        The HTML of a report.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        When the text holds no report data.
    """
    m = re.search(rf'<script type="application/json" id="{DATA_ID}">(.*?)</script>', text, re.S)
    if m is None:
        raise ValueError("no report-data block in this HTML")
    return json.loads(m.group(1))
