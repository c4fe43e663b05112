"""Add your model: a model file (upload or path) for a dataset, checked, kept in the cache, then in the sidebar."""
from __future__ import annotations

import streamlit as st

from dashboard import add_model_view as view

st.title("Add your model")
st.markdown("Bring a **trained model** for a bundled dataset or one of yours: it is checked against the data (input "
            "shape, one output per class, test accuracy), kept in the cache folder, and then listed in the sidebar's "
            "model list like a shipped one, so **Explanations**, **Metrics** and **Method ranking** audit it.")
with st.expander("Supported files"):
    st.markdown(view.formats_text())
    st.markdown("Pickled Python objects (a whole `torch.save(model)`) are refused: loading them could run code. "
                "A model defined by **Python code** is not taken here either, since loading it runs that code; use "
                f"the command line:\n\n`{view.CLI_CODE}`")
view.notice()

dataset = view.target_dataset()
path = view.source_file()
if path is not None and dataset:
    view.import_form(path, dataset)

last = st.session_state.get(view.LAST)
if last:
    st.divider()
    with view.shown_as_error(f"Showing {last}"):
        view.show_checks(last)

st.divider()
view.your_models()
