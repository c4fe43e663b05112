"""Failures on the dashboard's pages shown as one error line, so a page keeps working after one."""
from __future__ import annotations

from contextlib import contextmanager

import streamlit as st

from xai_core.errors import XaiError


@contextmanager
def shown_as_error(what: str):
    """Any failure inside becomes one ``st.error`` line (the engine's messages name the problem and the fix);
    Streamlit's own control flow (rerun, stop, switch page) passes through. The page keeps working."""
    try:
        yield
    except XaiError as e:
        st.error(str(e))
    except Exception as e:
        if type(e).__module__.startswith("streamlit"):
            raise
        st.error(f"{what} failed: {type(e).__name__}: {e}")
