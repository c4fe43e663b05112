"""Plotly figures for the dashboard and the report: pure functions from arrays and frames to ``go.Figure``.

The drawing layer of the engine: the dashboard pages and the headless report (``python -m xai_core report``)
draw with the same builders, so a figure in a report is the figure on screen. No streamlit here.
Every figure uses ``theme.style`` (fonts legible on a projector, labelled axes) and, for signed attributions,
one symmetric colour scale centred at zero (``theme.DIVERGING``).
"""
