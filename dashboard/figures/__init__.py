"""Plotly figures for the dashboard: pure functions from arrays and frames to ``go.Figure``.

No streamlit here. Every figure uses ``theme.style`` (fonts legible on a projector, labelled axes) and,
for signed attributions, one symmetric colour scale centred at zero (``theme.DIVERGING``).
"""
