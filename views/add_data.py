"""Add your data: upload or point at a file or folder, check how it was read, use it, train a first model."""
from __future__ import annotations

import streamlit as st

from dashboard import add_data_view as view
from dashboard import state

st.title("Add your data")
st.markdown("Bring your own **expression table** (CSV/TSV, .h5ad), **images** (one folder per class) or **DNA "
            "sequences** (FASTA). Once imported, the dataset works on every page like a bundled one; train a "
            "model on it below, then open **Explanations**, **Metrics** and **Method ranking**.")
view.notice()

path = view.source_path()
if path is not None:
    view.import_form(path)

current = st.session_state.get(view.CURRENT)
if current and state.fingerprint(current) is not None:
    st.divider()
    with view.shown_as_error(f"Previewing {current}"):
        view.preview(current)

st.divider()
view.your_datasets()
