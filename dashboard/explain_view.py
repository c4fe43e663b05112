"""What the Explanations page draws, from stored maps: post-processing per modality and the grid figure.

Kept out of the page so the page stays thin and the same figure can be rebuilt by the benchmark.
"""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from xai_core.data import GroundTruth
from xai_core.explainers import (
    AGGREGATE,
    component_params,
    dna_gradient_correction,
    dna_project,
    normalise,
    plain_methods,
    pool_channels,
)

from . import state
from xai_core.figures.explanations import gene_bars, image_grid
from xai_core.figures.sequence import sequence_logos

NO_NORMALISATION = "none"
DNA_VIEWS = {"observed": "observed nucleotide (attribution × input)",
             "corrected": "all four nucleotides (gradient-corrected)"}


def aggregate_components(methods: list[str]) -> list[str]:
    """The chosen methods the aggregate may average: controls and composites left out."""
    return plain_methods(methods)


def evaluation_with(dataset: str, model: str, seed: int, methods: list[str], aggregate: bool):
    """The cached Evaluation, or a copy whose aggregate averages the chosen methods (reusing their maps)."""
    comps = aggregate_components(methods)
    if aggregate and len(comps) >= 2:
        return state.evaluation_for(dataset, model, seed, method_params={AGGREGATE: component_params(AGGREGATE, comps)})
    return state.evaluation(dataset, model, seed)


def sample_label(ev, i: int, preds: dict) -> str:
    ds = ev.ds
    p = preds["pred"][i]
    return (f"{ds.sample_ids[i]} · {ds.class_names[ds.y[i]]} (model: {ds.class_names[p]}, "
            f"{preds['proba'][i, p]:.2f})")


def default_samples(ev, preds: dict, per_class: int = 1, limit: int = 4) -> list[str]:
    """First correctly classified test sample of each class (motif class only for sequences)."""
    ds = ev.ds
    classes = [1] if ds.modality == "sequence" and ds.ground_truth is not None else range(ds.n_classes)
    out = []
    for c in classes:
        take = per_class if len(classes) > 1 else limit
        hits = [i for i in ds.test_idx if ds.y[i] == c and preds["pred"][i] == c][:take]
        out.extend(ds.sample_ids[i] for i in hits)
    return out[:limit]


def process(ev, maps: np.ndarray, idx: np.ndarray, *, pooling: str, normalisation: str, dna_view: str) -> np.ndarray:
    """Stored maps (input shape) -> what a view draws: (N,H,W) pixels, (N,G) genes or (N,4,L) logo heights."""
    a = torch.as_tensor(maps)
    if ev.ds.modality == "image":
        a = pool_channels(a, pooling)
    elif ev.ds.modality == "sequence":
        x = torch.as_tensor(ev.ds.X[idx])
        a = dna_project(a, x) if dna_view == "observed" else dna_gradient_correction(a)
    if normalisation != NO_NORMALISATION:
        a = normalise(a, normalisation)
    return a.numpy()


@st.cache_data(show_spinner=False, max_entries=32)
def grid_figure(dataset: str, model: str, seed: int, ids: tuple[str, ...], methods: tuple[str, ...],
                aggregate_of: tuple[str, ...], pooling: str, normalisation: str, dna_view: str, k: int,
                labels: tuple[str, ...], opacity: float = 0.7, content: tuple[str, str] = ("", "")):
    """The side-by-side figure(s), built from the store; cached per choice (maps are immutable once stored).

    ``content`` (dataset fingerprint, model hash) is only part of the cache key: a re-imported, changed dataset
    or a retrained model under the same name draws anew."""
    ev = evaluation_with(dataset, model, seed, list(aggregate_of), bool(aggregate_of))
    pos = {sid: i for i, sid in enumerate(ev.ds.sample_ids)}
    idx = np.array([pos[s] for s in ids])
    processed = {}
    for m in methods:
        arr, missing = ev.stored_attributions(m, idx)
        if arr is None:
            return None
        processed[state.method_label(m)] = process(ev, arr, idx, pooling=pooling, normalisation=normalisation,
                                                   dna_view=dna_view)
    ds = ev.ds
    gt = ds.ground_truth
    if ds.modality == "image":
        masks = gt.masks[idx] if gt is not None and gt.masks is not None else None
        return [image_grid(ds.X[idx], processed, list(ids), masks=masks, opacity=opacity,
                           colour_label="attribution" if normalisation == NO_NORMALISATION else "normalised")]
    if ds.modality == "expression":
        markers = set()
        if gt is not None and gt.feature_sets:
            for v in gt.feature_sets.values():
                markers.update(int(g) for g in v)
        label = "true biomarker" if gt is not None and gt.strength == "exact" else "known marker gene"
        return [gene_bars(processed, ds.feature_names, list(ids), k=k, markers=markers, marker_label=label)]
    ics = GroundTruth(pwm=gt.pwm[idx]).information_content() if gt is not None and gt.pwm is not None else None
    figs = []
    for j, (_, lab) in enumerate(zip(ids, labels)):
        ic = None if ics is None else ics[j]
        figs.append(sequence_logos([(m, v[j]) for m, v in processed.items()], ic=ic, title=lab,
                                   y_label="attribution" if normalisation == NO_NORMALISATION else "normalised"))
    return figs
