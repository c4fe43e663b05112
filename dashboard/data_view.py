"""The Data & model page's parts: quality figures, the modality's sample viewer, the training panel."""
from __future__ import annotations

import numpy as np
import streamlit as st
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score

from xai_core.data import GroundTruth, load_dataset
from xai_core.data.embedding import embed, top_variance_features
from xai_core.models import ARCHS

from . import state, ui
from xai_core.figures import data as figs
from xai_core.figures.sequence import sequence_logos
from .progress import progress_bar, training_text
from .training import train_and_save

SHAPE_HELP = {"expression": "genes per sample", "image": "channels × height × width (pixels)",
              "sequence": "one-hot nucleotides (A, C, G, T) × positions (bp)"}


def ground_truth_text(ds) -> str:
    gt = ds.ground_truth
    if gt is None:
        return "none known for this dataset."
    if gt.masks is not None:
        return f"expert lesion masks for {int(gt.masks.reshape(len(gt.masks), -1).any(1).sum()):,} images."
    if gt.pwm is not None:
        return "the position weight matrix each sequence was drawn from (planted JASPAR motifs)."
    if gt.feature_sets:
        n = sum(len(v) for v in gt.feature_sets.values())
        kind = "true biomarkers (simulated)" if gt.strength == "exact" else "literature markers (weak ground truth)"
        return f"{n} {kind} over {len(gt.feature_sets)} classes. {gt.note}".strip()
    return gt.note or "none."


def split_labels(ds) -> np.ndarray:
    out = np.full(len(ds), "train", dtype=object)
    out[ds.test_idx] = "test"
    return out


@st.cache_data(show_spinner=False, max_entries=16)
def _quality(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, n_classes: int) -> dict:
    auroc = None
    try:
        auroc = float(roc_auc_score(y, proba[:, 1]) if n_classes == 2 else
                      roc_auc_score(y, proba, multi_class="ovr", labels=list(range(n_classes))))
    except ValueError:  # a class absent from the test split
        pass
    return {"accuracy": float((pred == y).mean()), "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "auroc": auroc, "confusion": confusion_matrix(y, pred, labels=list(range(n_classes)))}


def test_quality(ds, pred: np.ndarray, proba: np.ndarray) -> dict:
    t = ds.test_idx
    return _quality(ds.y[t], pred[t], proba[t], ds.n_classes)


def _balanced(ds, per_class: int) -> np.ndarray:
    return np.concatenate([ds.test_idx[ds.y[ds.test_idx] == c][:per_class] for c in range(ds.n_classes)])


@st.cache_data(show_spinner="Computing the embedding…", max_entries=8)
def _embedding(dataset: str, method: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    ds = load_dataset(dataset)
    idx = np.random.default_rng(0).permutation(len(ds))[:n]
    return idx, embed(ds.X[idx], method)


def _expression_heatmap(ds):
    """The 40 most variable genes over up to 40 test samples per class (the viewer's heatmap)."""
    genes = top_variance_features(ds.X[ds.train_idx], 40)
    sub = _balanced(ds, 40)
    return figs.expression_heatmap(ds.X[sub][:, genes], [ds.feature_names[g] for g in genes], ds.y[sub],
                                   ds.class_names)


def sample_viewer(ev, preds: dict) -> None:
    ds = ev.ds
    name = lambda i: f"{ds.sample_ids[i]} · {ds.class_names[ds.y[i]]}"  # noqa: E731
    if ds.modality == "image":
        c1, c2 = st.columns([1, 3])
        per = c1.slider("Images per class", 1, 8, 4, key="dm_per_class")
        show = c2.toggle("Show lesion masks", True, key="dm_masks",
                         disabled=ds.ground_truth is None or ds.ground_truth.masks is None)
        idx = _balanced(ds, per)
        masks = ds.ground_truth.masks[idx] if show and ds.ground_truth is not None else None
        ui.figure(ui.cached_figure("image_samples", (ds.name, ev.dataset_fp, per, masks is not None),
                                   lambda: figs.image_samples(ds.X[idx], [name(i) for i in idx], masks,
                                                              cols=min(6, max(3, per)))),
                  "samples", key="dm_images")
    elif ds.modality == "expression":
        c1, c2 = st.columns(2)
        method = c1.radio("Embedding", ["pca", "umap"], horizontal=True, key="dm_embed",
                          format_func=lambda m: {"pca": "PCA (instant)", "umap": "UMAP (a few seconds)"}[m])
        n = c2.slider("Samples shown", 200, min(5000, len(ds)), min(2000, len(ds)), step=100, key="dm_n")
        idx, coords = _embedding(ds.name, method, n)
        ui.figure(ui.cached_figure("embedding", (ds.name, ev.dataset_fp, method, n),
                                   lambda: figs.embedding_scatter(coords, ds.y[idx], ds.class_names, method,
                                                                  [name(i) for i in idx])),
                  f"{method}_embedding", key="dm_embedding")
        ui.figure(ui.cached_figure("expression_heatmap", (ds.name, ev.dataset_fp), lambda: _expression_heatmap(ds)),
                  "expression_heatmap", key="dm_heatmap", scale="standardised expression")
    else:
        ids = [ds.sample_ids[i] for i in _balanced(ds, 20)]
        pos = {s: i for i, s in enumerate(ds.sample_ids)}
        sid = st.selectbox("Sequence", ids, key="dm_seq", format_func=lambda s: name(pos[s]))
        i = pos[sid]
        gt = ds.ground_truth
        ic = (GroundTruth(pwm=gt.pwm[i:i + 1]).information_content()[0] if gt is not None and gt.pwm is not None
              else None)
        st.caption("The sequence itself (one letter per position) above the planted motifs' information content: "
                   "background positions carry 0 bits, motif positions up to 2.")
        ui.figure(ui.cached_figure("sequence_logo", (ds.name, ev.dataset_fp, sid),
                                   lambda: sequence_logos([("sequence", ds.X[i])], ic=ic, title=name(i),
                                                          y_label="nucleotide")),
                  f"sequence_{sid}", key="dm_logo", scale="information content (bits)")


def train_panel(ds) -> None:
    archs = [a for a in ARCHS.values() if a.modality == ds.modality]
    with st.expander("Train another model on this dataset (saved and added to the model list)"):
        c1, c2, c3 = st.columns(3)
        arch = c1.selectbox("Architecture", [a.name for a in archs], key="tr_arch",
                            help="\n".join(f"{a.name}: {a.description}" for a in archs))
        seed = c2.number_input("Training seed", 0, 10_000, 1, key="tr_seed")
        full = ARCHS.get(arch).train_defaults.get("epochs", 20)
        epochs = c3.number_input("Epochs", 1, 200, min(full, 10), key="tr_epochs",
                                 help=f"The architecture's recipe uses {full}; early stopping keeps the best epoch.")
        if st.button("Train", key="tr_go"):
            _, progress = progress_bar("Training…", training_text)
            with ui.friendly("Training"):
                path, report = train_and_save(ds.name, arch, int(seed), int(epochs), progress=progress)
                st.success(f"Trained {arch}: test accuracy {report['test_accuracy'] * 100:.1f} % "
                           f"({report['seconds']:.0f} s). Selected it in the sidebar.")
                state.choose(model=str(path))
                st.rerun()
