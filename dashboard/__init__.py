"""Streamlit glue shared by the pages: cached resources, session state, layout helpers, plotly figures.

Science stays in ``xai_core``; this package only loads, caches and draws. ``dashboard.figures`` never
imports streamlit, so figures are testable (and exportable) on their own.
"""
