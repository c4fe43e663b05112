"""Streamlit glue shared by the pages: cached resources, session state, layout helpers.

Science stays in ``xai_core``; this package only loads, caches and draws. The plotly figure builders live in
``xai_core.figures`` (no streamlit), shared with the headless report.
"""
