"""Drive dashboard pages with streamlit's AppTest (no browser): open a page with a given sidebar state."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


def open_page(page: str | None = None, *, dataset: str | None = "simu-small", model: str | None = None,
              timeout: float = 180, **session) -> AppTest:
    """Run app.py, then switch to ``views/<page>.py`` with ``dataset``/``model`` chosen in the sidebar.

    Extra keyword arguments are put in ``st.session_state`` before the first run. AppTest re-applies these on
    every run, so pass ``dataset=None`` to test what the page itself selects (it starts on simu-small).
    """
    at = AppTest.from_file(APP, default_timeout=timeout)
    if dataset is not None:
        at.session_state["dataset"] = dataset
    if model is not None:
        at.session_state["model"] = model
    for k, v in session.items():
        at.session_state[k] = v
    at.run()
    if page is not None:
        at.switch_page(f"views/{page}.py").run()
    return at


def no_exception(at: AppTest) -> None:
    """No exception element and no error box (a friendly warning or info is fine)."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def plotly_figures(at: AppTest) -> list[dict]:
    """The plotly figures on the page, as dicts (``{"data": [...traces], "layout": {...}}``)."""
    import json

    out = []
    for el in at.get("plotly_chart"):
        spec = el.proto.spec if hasattr(el, "proto") else el.spec
        out.append(json.loads(spec))
    return out
