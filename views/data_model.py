"""Data & model: what the dataset holds, how good the model is, a viewer fitting the modality, training."""
from __future__ import annotations

import streamlit as st

from dashboard import data_view, state, ui
from xai_core.figures import data as figs

st.title("Data & model")
_name, _model, _ = state.current()
if _model is None:  # e.g. your own imported data: train its first model here
    st.info(f"**{_name}** has no model yet. Train one of the built-in architectures on it below; it then "
            f"appears in the sidebar's model list and every page opens with it.")
    with ui.friendly(f"Loading {_name}"):
        from xai_core.data import load_dataset

        data_view.train_panel(load_dataset(_name))
    st.stop()
ds_name, model, seed, ev = ui.current_evaluation()
ds, meta = ev.ds, ev.model_meta
preds = state.predictions(ds_name, model, seed)

gt = ds.ground_truth
truth = data_view.ground_truth_text(ds)
c1, c2, c3, c4 = st.columns(4)
c1.metric("Samples", f"{len(ds):,}", help=f"{len(ds.train_idx):,} train, {len(ds.test_idx):,} test")
c2.metric("Input", " × ".join(str(s) for s in ds.input_shape), help=data_view.SHAPE_HELP[ds.modality])
c3.metric("Classes", ds.n_classes, help=", ".join(ds.class_names))
quality = data_view.test_quality(ds, preds["pred"], preds["proba"])
c4.metric("Test accuracy", f"{quality['accuracy'] * 100:.1f} %",
          help=f"Balanced accuracy {quality['balanced_accuracy'] * 100:.1f} %"
               + (f", AUROC {quality['auroc']:.3f}" if quality.get("auroc") is not None else ""))
st.caption(f"Ground truth: {truth}")
if (_chance := state.chance_warning(ev)):
    st.warning(_chance, icon=":material/warning:")

_counts = ui.cached_figure("class_counts", (ds.name, ev.dataset_fp),
                           lambda: figs.class_counts(ds.y, ds.class_names, data_view.split_labels(ds)))
_cm = ui.cached_figure("confusion_matrix", (ds.name, ev.dataset_fp, ev.model_hash, str(ev.ctx.device)),
                       lambda: figs.confusion_matrix(quality["confusion"], ds.class_names))
if ds.n_classes > 6:  # many classes: each figure gets the full width, so every label and count stays legible
    ui.figure(_cm, "confusion_matrix", key="dm_cm", scale="% of the true class (colour), count (number)")
    ui.figure(_counts, "class_counts", key="dm_counts", scale="samples")
else:
    left, right = st.columns(2)
    with left:
        ui.figure(_counts, "class_counts", key="dm_counts", scale="samples")
    with right:
        ui.figure(_cm, "confusion_matrix", key="dm_cm", scale="% of the true class (colour), count (number)")
with st.expander("Model card"):
    st.json({k: meta.get(k) for k in ("arch", "arch_kwargs", "recipe", "seed", "test_accuracy",
                                      "test_balanced_accuracy", "test_auroc", "epochs_run", "best_epoch", "created",
                                      "checkpoint_hash", "path")})

st.subheader("Samples")
with ui.friendly("Drawing the samples"):
    data_view.sample_viewer(ev, preds)

st.subheader("Train a model")
data_view.train_panel(ds)
