"""Layout helpers shared by the pages: friendly errors instead of tracebacks, figures with downloads."""
from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import (
    FragmentHandledException,
    FragmentStorageKeyError,
    NoSessionContext,
)

from xai_core.errors import XaiError
from xai_core.explain_files import download_name

from . import state

# A short toolbar (no lasso/select/autoscale buttons) covers less of a figure's top edge.
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2},
                 "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "zoomIn2d", "zoomOut2d"]}
EXPORTS = (("png", "PNG image", ":material/image:"), ("svg", "SVG (vector)", ":material/draw:"))
PRESENT = "present"  # session key of the presentation view, and its link parameter (?present=1)
PRESENT_SCALE = 1.4  # fonts and figure heights in the presentation view


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


def model_short(model: str | None) -> str | None:
    """A model choice as it appears in file names: the architecture, or a trained checkpoint's file stem."""
    if model and str(model).endswith(".safetensors"):
        return Path(model).stem.split("__", 1)[-1]
    return model


def file_name(what: str, ext: str, *, method: str | None = None, cls: str | None = None) -> str:
    """A download's name from the sidebar's dataset and model, the method and class shown, and what it holds:
    ``pbmc68k__mlp__integrated_gradients__CD14+ Monocyte__top_genes.csv``."""
    ds, model, _ = state.current()
    return download_name(ds, model_short(model), method, cls, what, ext=ext)


def export_caption(*, method: str | None = None, cls: str | None = None, scale: str | None = None) -> str:
    """What an exported figure says about itself: dataset, model, method(s), class and colour/axis scale."""
    ds, model, _ = state.current()
    parts = [f"dataset {ds}", f"model {state.model_label(model) if model else 'none'}"]
    parts += [f"method {method}" if method else "", f"class {cls}" if cls else "", f"scale: {scale}" if scale else ""]
    return " · ".join(p for p in parts if p)


def presenting() -> bool:
    """Whether the presentation view is on (sidebar toggle, or a link with ``?present=1``)."""
    return bool(st.session_state.get(PRESENT))


PRESENT_CSS = """<style>
[data-testid="stMain"] [data-testid="stExpander"], [data-testid="stMain"] [data-testid="stSelectbox"],
[data-testid="stMain"] [data-testid="stMultiSelect"], [data-testid="stMain"] [data-testid="stSlider"],
[data-testid="stMain"] [data-testid="stRadio"], [data-testid="stMain"] [data-testid="stCheckbox"],
[data-testid="stMain"] [data-testid="stNumberInput"], [data-testid="stMain"] [data-testid="stTextInput"],
[data-testid="stMain"] [data-testid="stDownloadButton"], [data-testid="stMain"] [data-testid="stButton"],
[data-testid="stMain"] [data-testid="stCaptionContainer"], [data-testid="stMain"] [data-testid="stTooltipIcon"],
[data-testid="stMain"] [data-testid="stSelectSlider"], [data-testid="stMain"] .modebar-container {display: none;}
[data-testid="stMain"] [class*="st-key-figcap"] [data-testid="stCaptionContainer"] {display: block;}
[data-testid="stMain"] [class*="st-key-figcap"] p {font-size: 1.35rem; color: #222;}
[data-testid="stMain"] p, [data-testid="stMain"] li {font-size: 1.35rem;}
[data-testid="stMain"] h1 {font-size: 3rem;}
[data-testid="stMain"] [data-testid="stMetricValue"] {font-size: 3rem;}
[data-testid="stMain"] .block-container, [data-testid="stMainBlockContainer"] {max-width: 100%;
    padding-left: 1.5rem; padding-right: 1.5rem;}
</style>"""


def presentation_toggle() -> None:
    """The sidebar's presentation-view toggle: hides the controls, expanders and help captions, enlarges
    figures and fonts for a projector. Kept in the session and in the link (``?present=1``)."""
    if PRESENT not in st.session_state:
        st.session_state[PRESENT] = str(st.query_params.get(PRESENT, "")).lower() in ("1", "true", "yes", "on")
    on = st.sidebar.toggle("Presentation view", key=PRESENT,
                           help="For a projector: hides the controls and help texts, enlarges figures and fonts. "
                                "Turn it off to change the choices again. The link keeps it (?present=1).")
    if on:
        st.query_params[PRESENT] = "1"
        st.html(PRESENT_CSS)
    elif PRESENT in st.query_params:
        del st.query_params[PRESENT]


PRELOADED = "_charts_preloaded"  # session key: the browser was given Plotly's code already


def preload_charts() -> None:
    """Once per browser session, an empty plotly chart in a hidden container: the browser fetches and compiles
    Plotly's JavaScript (Streamlit loads it, 4.7 MB, only when a page first draws a chart: 1-3 s on a 2-core
    machine) while the first page is read, instead of after the first click that draws a figure (see
    docs/benchmarks.md, "Dashboard latency")."""
    if st.session_state.get(PRELOADED):
        return
    st.session_state[PRELOADED] = True
    with st.sidebar.container(key="plotly_preload"):
        st.html("<style>.st-key-plotly_preload {display: none;}</style>")
        st.plotly_chart(go.Figure(), key="fig_plotly_preload", config={"displayModeBar": False})


def enlarged(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` with larger fonts and height, for the presentation view."""
    big = go.Figure(fig)
    font = big.layout.font.size or 15
    big.update_layout(font_size=round(font * PRESENT_SCALE),
                      height=round((big.layout.height or 450) * PRESENT_SCALE))
    for ann in big.layout.annotations or ():
        ann.font.size = round((ann.font.size or font) * PRESENT_SCALE)
    if big.layout.title and big.layout.title.font and big.layout.title.font.size:
        big.layout.title.font.size = round(big.layout.title.font.size * PRESENT_SCALE)
    return big


def figure(fig: go.Figure, name: str, *, key: str | None = None, downloads: bool = True, method: str | None = None,
           cls: str | None = None, scale: str | None = None, **kwargs):
    """Draw ``fig``; below it, PNG and SVG downloads rendered on click (kaleido + Debian chromium).

    ``name`` says what the figure shows ("confusion_matrix"); the file is named by the sidebar's dataset and
    model, ``method`` and ``cls`` (``file_name``), and the exported picture carries a caption with the same and
    the ``scale`` its colours or axis use (``export_caption``). The buttons wrap under a narrow figure instead of
    being cut. In the presentation view the figure is drawn larger and without the downloads."""
    key = key or _slug(name)
    if presenting():
        return st.plotly_chart(enlarged(fig), config={**PLOTLY_CONFIG, "displayModeBar": False}, key=f"fig_{key}",
                               **kwargs)
    out = st.plotly_chart(fig, config=PLOTLY_CONFIG, key=f"fig_{key}", **kwargs)
    if downloads:
        caption = export_caption(method=method, cls=cls, scale=scale)
        with st.container(horizontal=True, key=f"dlrow_{key}", gap="small"):
            for fmt, label, icon in EXPORTS:
                fname = file_name(name, fmt, method=method, cls=cls)
                st.download_button(label, data=lambda f=fig, t=fmt, c=caption: _export(f, t, c), file_name=fname,
                                   mime="image/png" if fmt == "png" else "image/svg+xml", key=f"dl_{key}_{fmt}",
                                   on_click="ignore", icon=icon, width="content",
                                   help=f"Download this figure as {fmt.upper()} ({fname}), captioned: {caption}")
    return out


@st.cache_resource(show_spinner=False, max_entries=64)
def _cached_figure(kind: str, key: tuple, _build) -> go.Figure:
    return _build()


def cached_figure(kind: str, key: tuple, build) -> go.Figure:
    """``build()`` once per (``kind``, ``key``) in this process, then the same figure object on every rerun.

    ``key`` must name everything the figure depends on (the dataset's fingerprint, the model's hash, the
    widgets' values). Building a plotly figure, or unpickling one from a data cache, validates every property
    again (0.05-0.5 s a figure); the pages never change a figure they draw, so one object is shared."""
    return _cached_figure(kind, key, build)


def figure_caption(text: str, key: str) -> None:
    """A caption that says how to read a figure: unlike help captions, it stays in the presentation view."""
    with st.container(key=f"figcap_{key}"):
        st.caption(text)


def captioned(fig: go.Figure, caption: str) -> go.Figure:
    """A copy of ``fig`` whose title carries ``caption`` (dataset, model, method, scale) on a second line."""
    out = go.Figure(fig)
    title = out.layout.title.text if out.layout.title and out.layout.title.text else ""
    line = f"<span style='font-size:12px;color:#444'>{caption}</span>"
    top = (out.layout.margin.t if out.layout.margin and out.layout.margin.t is not None else 60) + 30
    out.update_layout(title=dict(text=f"{title}<br>{line}" if title else line, x=0.01, xanchor="left"),
                      margin=dict(t=top), height=(out.layout.height or 550) + 30)
    return out


def _export(fig: go.Figure, fmt: str, caption: str | None = None) -> bytes:
    out = captioned(fig, caption) if caption else fig
    return out.to_image(format=fmt, scale=2 if fmt == "png" else 1, width=out.layout.width or 1100,
                        height=out.layout.height or 550)


def labelled(df, dataset: str, model: str | None, *, method: str | None = None, cls: str | None = None):
    """A copy of ``df`` with ``dataset``, ``model``, ``method`` and ``class`` columns in front (those given and
    not already there), so a CSV still says what it holds once it is renamed or merged with others."""
    extra = {"dataset": dataset, "model": model, "method": method, "class": cls}
    df = df.copy()
    for col, value in reversed(list(extra.items())):
        if value is not None and col not in df.columns:
            df.insert(0, col, value)
    return df


def csv_download(df, name: str, label: str = "Download CSV", key: str | None = None, *, method: str | None = None,
                 cls: str | None = None) -> None:
    """A CSV download named by dataset, model, ``method`` and ``cls`` (``file_name``); the table gets the same
    as columns (``dataset``, ``model``, and ``method``/``class`` where given and not already there)."""
    ds, model, _ = state.current()
    df = labelled(df, ds, model_short(model), method=method, cls=cls)
    fname = file_name(name, "csv", method=method, cls=cls)
    st.download_button(label, data=df.to_csv(index=False).encode(), file_name=fname, mime="text/csv",
                       key=key or f"csv_{_slug(name)}", on_click="ignore", icon=":material/download:",
                       help=f"Saved as {fname}")


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
