"""Streamlit entry: navigation and the shared sidebar (dataset, model, seed). Pages live in views/ (not pages/: a
``pages/`` folder switches Streamlit into its old multipage mode for deep links such as /explanations).

Run with ``streamlit run app.py``. All science is in ``xai_core``; pages only read state and draw.
"""
from __future__ import annotations

import streamlit as st

from dashboard import state

st.set_page_config(page_title="Bio-XAI audit", page_icon=":material/genetics:", layout="wide")

PAGES = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/add_data.py", title="Add your data", icon=":material/upload_file:"),
    st.Page("views/add_model.py", title="Add your model", icon=":material/model_training:"),
    st.Page("views/data_model.py", title="Data & model", icon=":material/dataset:"),
    st.Page("views/explanations.py", title="Explanations", icon=":material/local_fire_department:"),
    st.Page("views/gene_rankings.py", title="Gene rankings", icon=":material/genetics:"),
    st.Page("views/metrics.py", title="Metrics", icon=":material/straighten:"),
    st.Page("views/method_ranking.py", title="Method ranking", icon=":material/leaderboard:"),
    st.Page("views/model_selection.py", title="Model selection", icon=":material/scatter_plot:"),
    st.Page("views/studies.py", title="Studies", icon=":material/science:"),
]


def sidebar() -> None:
    state.apply_pending()
    catalogue = state.dataset_catalogue()
    names = [r["name"] for r in catalogue]
    label = {r["name"]: f"{r['name']} ({r['modality']}{', yours' if r['size'] == state.USER_SIZE else ''})"
             for r in catalogue}
    if st.session_state.get(state.DATASET) not in names:
        st.session_state[state.DATASET] = state.DEFAULT_DATASET
    st.sidebar.selectbox("Dataset", names, key=state.DATASET, format_func=lambda n: label.get(n, n),
                         help="Bundled data with known ground truth ('small' ones are quick; paper-size ones take "
                              "longer to build the first time), then yours, added on the Add your data page.")
    choices = state.model_choices(st.session_state[state.DATASET])
    if not choices:
        mine = next((r["size"] == state.USER_SIZE for r in catalogue if r["name"] == st.session_state[state.DATASET]),
                    False)
        st.sidebar.warning("No model for this dataset yet: train one on the "
                           + ("Add your data page." if mine else "Data & model page."))
        st.session_state.pop(state.MODEL, None)
    else:
        if st.session_state.get(state.MODEL) not in choices:
            st.session_state[state.MODEL] = choices[0]
        st.sidebar.selectbox("Model", choices, key=state.MODEL, format_func=state.model_label,
                             help="A shipped checkpoint, one trained on the Data & model page, or your own "
                                  "(added on the Add your model page).")
    devices = state.device_choices()
    if len(devices) > 1:  # only with CUDA; on a CPU-only machine everything runs on the CPU
        if st.session_state.get(state.DEVICE) not in devices:
            st.session_state[state.DEVICE] = devices[0]
        st.sidebar.selectbox("Device", devices, key=state.DEVICE,
                             help="Where models run (explanations, metrics, training). Results are stored and "
                                  "reused whichever device computed them.")
    st.sidebar.number_input("Seed", 0, 10_000, key=state.SEED, step=1,
                            help="Seeds the stochastic explainers (SmoothGrad noise, LIME samples, baselines).")
    st.sidebar.caption("Results are stored and reused: a run computed once (here or with "
                       "`python -m xai_core evaluate`) shows instantly next time.")


def from_link() -> None:
    """A link like ``/explanations?dataset=grain&methods=saliency,gradcam&samples=grain:31`` opens with those
    choices (once per session), so a view can be shared or scripted."""
    if st.session_state.get("_link_read"):
        return
    st.session_state["_link_read"] = True
    q = st.query_params
    if q.get("dataset") in state.dataset_names():
        st.session_state[state.DATASET] = q["dataset"]
        if q.get("model"):
            st.session_state[state.MODEL] = q["model"]
    for key in (state.METHODS, state.SAMPLES, state.METRICS):
        if q.get(key):
            st.session_state[key] = [v for v in q[key].split(",") if v]


nav = st.navigation(PAGES)
from_link()
sidebar()
nav.run()
