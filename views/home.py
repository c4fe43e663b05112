"""Home: what the tool answers, the three kinds of data, a 30-second tour, dataset cards."""
from __future__ import annotations

import streamlit as st

from dashboard import state

st.title("Explain and audit deep-learning models on biological data")
st.markdown(
    "**Which parts of the input did the model use, and can you trust that explanation?** Pick a dataset "
    "and a model, run attribution methods (gradients, Integrated Gradients, SmoothGrad, LRP, occlusion, "
    "LIME, SHAP, DeepLIFT, GradCAM and their aggregate), and judge them against known ground truth: "
    "true biomarker genes, lesion masks, planted DNA motifs. Every number here can be reproduced with "
    "`python -m xai_core`."
)

MODALITIES = {
    "expression": ("Gene expression", "Cells × genes tables. Attributions rank genes; simulated data know their "
                   "true biomarkers, real data (PBMC, breast cancer) are checked against literature markers."),
    "image": ("Biological images", "Grain-like kernels with disease lesions. Heatmaps are compared with the "
              "expert lesion masks and tested for robustness to flips, rotations and noise."),
    "sequence": ("DNA sequences", "One-hot sequences with planted JASPAR motifs. Attributions become sequence "
                 "logos; consistency across a population of models helps select the model to trust."),
}
cols = st.columns(3)
for col, (title, text) in zip(cols, MODALITIES.values()):
    with col.container(border=True):
        st.markdown(f"#### {title}")
        st.write(text)

st.subheader("30-second tour")
st.markdown(
    "1. **Data & model**: choose a dataset and a model in the sidebar; check its accuracy and look at samples.\n"
    "2. **Explanations**: choose samples and methods, see the cost, run, and compare maps side by side.\n"
    "3. **Gene rankings** (expression): top genes per class, local vs global, overlap with true biomarkers.\n"
    "4. **Metrics**: faithfulness, robustness, complexity, localisation and consistency, per method.\n"
    "5. **Method ranking**: which explainer to trust here, with Monte Carlo uncertainty.\n"
    "6. **Model selection**: a population of models, accuracy against consistency, the Pareto front.\n"
    "7. **Studies**: the three source studies reproduced, our numbers beside the papers', re-run live."
)


def dataset_cards(rows: list[dict]) -> None:
    for start in range(0, len(rows), 4):
        for col, r in zip(st.columns(4), rows[start:start + 4]):
            with col.container(border=True):
                st.markdown(f"**{r['name']}** · {r['modality']} · {r['size']}")
                st.caption(r["description"])
                st.caption(f"models: {r['shipped models']}")
                if st.button("Open", key=f"open_{r['name']}"):  # no model yet: Data & model offers training
                    state.choose(dataset=r["name"])
                    st.switch_page("views/data_model.py")


rows = state.dataset_catalogue()
yours = [r for r in rows if r["size"] == "user"]
st.subheader("Your datasets")
if yours:
    dataset_cards(yours)
else:
    st.caption("None yet: bring an h5ad, a CSV/TSV table, a folder of images or a FASTA file on the "
               "**Add your data** page.")
st.subheader("Bundled datasets")
st.caption("'small' datasets build and train in seconds; 'paper' datasets have the size used in the source studies.")
dataset_cards([r for r in rows if r["size"] != "user"])

with st.expander("The same from the command line"):
    st.code("python -m xai_core datasets\n"
            "python -m xai_core explain --dataset simu-small --methods all --n 32 --out runs/simu-small\n"
            "python -m xai_core evaluate --dataset simu-small --methods all --metrics all --n 16 --out runs/eval",
            language="bash")
