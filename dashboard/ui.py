"""Layout helpers shared by the pages: friendly errors instead of tracebacks, figures with downloads."""
from __future__ import annotations

import re
from contextlib import contextmanager

import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import (
    FragmentHandledException,
    FragmentStorageKeyError,
    NoSessionContext,
)

from xai_core.errors import XaiError

from . import state

PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


# Streamlit's own signals that must reach its script runner (st.stop/st.rerun are BaseExceptions and pass anyway).
PASS_THROUGH = (FragmentHandledException, FragmentStorageKeyError, NoSessionContext)


def _short(e: BaseException, limit: int = 300) -> str:
    text = str(e)
    return text if len(text) <= limit else text[:limit] + "…"


@contextmanager
def friendly(what: str):
    """Show any failure inside as a message that names it (and the engine's hint), never a traceback.

    The engine's ``XaiError`` messages already name the problem and the fix; anything else is reported
    with its type so it can be filed. A widget that rejects its state (a ``StreamlitAPIException``) is shown
    the same way, and the session is repaired on the next run (``state.repair``) so the page does not stay
    broken. Streamlit's control flow (``st.stop``, ``st.rerun``, fragments) passes through.
    """
    try:
        yield
    except XaiError as e:
        st.warning(f"{what}: {e}")
    except Exception as e:
        if isinstance(e, PASS_THROUGH):
            raise
        state.request_repair()
        st.error(f"{what} failed: {type(e).__name__}: {_short(e)}. Try other choices; if it persists, please "
                 "report it.")


def page_failure(e: Exception) -> None:
    """What a page that raised shows instead of Streamlit's redacted traceback; app.py logs the traceback."""
    st.error(f"This page failed: {type(e).__name__}: {_short(e)}. The choices that may have caused it are "
             "repaired on the next run, and the other pages keep working; if it persists, please report it.",
             icon=":material/error:")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "figure"


def figure(fig: go.Figure, name: str, *, key: str | None = None, downloads: bool = True, **kwargs):
    """Draw ``fig``; below it, PNG and SVG downloads rendered on click (kaleido + Debian chromium)."""
    key = key or _slug(name)
    out = st.plotly_chart(fig, config=PLOTLY_CONFIG, key=f"fig_{key}", **kwargs)
    if downloads:
        cols = st.columns([1, 1, 6])
        for col, fmt in zip(cols, ("png", "svg")):
            col.download_button(f"{fmt.upper()}", data=lambda f=fig, t=fmt: _export(f, t),
                                file_name=f"{_slug(name)}.{fmt}", mime="image/png" if fmt == "png" else "image/svg+xml",
                                key=f"dl_{key}_{fmt}", on_click="ignore", help=f"Download this figure as {fmt.upper()}")
    return out


def _export(fig: go.Figure, fmt: str) -> bytes:
    return fig.to_image(format=fmt, scale=2 if fmt == "png" else 1, width=fig.layout.width or 1100,
                        height=fig.layout.height or 550)


def csv_download(df, name: str, label: str = "Download CSV", key: str | None = None) -> None:
    st.download_button(label, data=df.to_csv(index=False).encode(), file_name=f"{_slug(name)}.csv",
                       mime="text/csv", key=key or f"csv_{_slug(name)}", on_click="ignore")


def need(condition: bool, message: str) -> None:
    """Stop the page with a friendly explanation when a choice is empty or does not apply."""
    if not condition:
        st.info(message)
        st.stop()


def current_evaluation():
    """(dataset, model, seed, Evaluation) chosen in the sidebar; stops the page with a message if it cannot load."""
    ds_name, model, seed = state.current()
    need(model is not None, f"**{ds_name}** has no model yet: train one on the **Data & model** page.")
    ev = None
    with friendly(f"Loading {ds_name} and its model"):
        ev = state.evaluation(ds_name, model, seed)
    if ev is None:
        st.stop()
    return ds_name, model, seed, ev
