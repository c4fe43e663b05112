"""Studies: the three source studies reproduced (``python -m xai_core study NAME``): the committed run's facts,
our numbers beside the paper's, the claims, tables and figures; a live quick re-run set beside it."""
from __future__ import annotations

import streamlit as st

from dashboard import studies_view as view

st.title("Studies: the source papers, reproduced")
st.markdown(
    "Each study repeats a published analysis with this tool's engine, following its written-out protocol in "
    "`docs/protocols/`, and sets **our numbers beside the paper's** with a verdict and a sentence on each "
    "difference. What is shown is the committed full run (`docs/studies/NAME/results.json`); the quick "
    "version can be re-run here to check that the engine still gives the same picture.")

names = view.study_names()
name = st.radio("Study", names, format_func=view.title, horizontal=True, key="study_pick")
files = view.paths(name)

committed, which = None, None
for w in ("full", "quick"):
    r, problem = view.load(name, w)
    if problem:
        st.warning(problem)
    if r is not None:
        committed, which = r, w
        break
    if w == "full" and not problem:
        st.info(f"No full run is committed yet: `{view.shown_path(files['full'])}` does not exist. "
                f"Create it with `{view.command(name, 'full')}`" + (" (the quick run is shown meanwhile)."
                                                                   if files["quick"].exists() else "."))
if committed is None and not files["quick"].exists():
    st.info(f"No quick run either (`{view.shown_path(files['quick'])}`); create it with "
            f"`{view.command(name, 'quick')}`, or re-run the quick version live below.")

runnable = name in view.registered()
if st.button("Re-run the quick version live", key=f"study_live_{name}", type="primary", disabled=not runnable,
             help=f"Runs `{view.command(name, 'quick')}` here and writes to `{view.live_dir(name)}`; the "
                  "committed results are not touched." if runnable else
             "This study's module is not available in this installation."):
    view.run_live(name)
if not runnable:
    st.caption(f"The {name} study's module is not in this installation, so it cannot be re-run here.")

live, problem = view.load(name, "live")
if problem:
    st.warning(problem)

parts = ([(f"Committed {which} run", committed, "c")] if committed is not None else []) + \
        ([("Live quick run", live, "l")] if live is not None else [])
if not parts:
    st.stop()
tabs = st.tabs([label for label, _, _ in parts]) if len(parts) > 1 else [st.container()]
for tab, (_label, r, k) in zip(tabs, parts):
    with tab:
        if k == "l" and committed is not None:
            view.compare_runs(committed, live, key=f"{k}_{name}")
        view.show(r, key=f"{k}_{name}")
