"""Streamlit entry: the home page. All science lives in xai_core; this file only draws."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from xai_core.data import list_datasets

st.set_page_config(page_title="Bio-XAI audit", layout="wide")


@st.cache_data
def dataset_table() -> pd.DataFrame:
    rows = list_datasets()
    from models import available_models

    for r in rows:
        r["shipped models"] = ", ".join(available_models(r["name"])) or "none yet"
    return pd.DataFrame(rows)[["name", "modality", "size", "description", "default_model", "shipped models"]]


st.title("Explain and audit deep-learning models on biological data")
st.markdown(
    "Pick a dataset and a model, run attribution methods (gradients, Integrated Gradients, SmoothGrad, "
    "LRP, occlusion, LIME, SHAP, DeepLIFT, GradCAM and their aggregate), and judge them against known "
    "ground truth: true biomarker genes, lesion masks, planted DNA motifs. Every number here can be "
    "reproduced with `python -m xai_core`."
)
st.subheader("Bundled datasets")
st.caption("'small' datasets build and train in seconds; 'paper' datasets have the size used in the source studies.")
st.dataframe(dataset_table(), hide_index=True, width="stretch")
st.subheader("From the command line")
st.code("python -m xai_core datasets\n"
        "python -m xai_core explain --dataset simu-small --methods all --n 32 --out runs/simu-small", language="bash")
