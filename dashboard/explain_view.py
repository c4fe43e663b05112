"""What the Explanations page draws, from stored maps: post-processing per modality and the grid figure.

Kept out of the page so the page stays thin and the same figure can be rebuilt by the benchmark.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from xai_core.data import GroundTruth
from xai_core.explainers import AGGREGATE, EXPLAINERS, component_params, plain_methods
from xai_core.explainers.postprocess import NO_NORMALISATION, for_display

from . import state
from xai_core.figures.explanations import gene_bars, image_grid, map_scale, scale_caption
from xai_core.figures.sequence import sequence_logos

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


def row_label(ev, i: int, preds: dict) -> str:
    """A grid row's label on three lines: the sample id, its true class, the model's prediction and probability."""
    ds = ev.ds
    p = preds["pred"][i]
    mark = "" if p == ds.y[i] else " ✗"
    return (f"{ds.sample_ids[i]}<br>true: {ds.class_names[ds.y[i]]}<br>model: {ds.class_names[p]} "
            f"({preds['proba'][i, p]:.2f}){mark}")


def column_label(method: str, components: list[str] | tuple[str, ...] = ()) -> str:
    """A grid column's title: the method's label; the aggregate names the methods it averages."""
    if method in EXPLAINERS.names() and EXPLAINERS.get(method).components_param and components:
        return f"Aggregate: mean of {', '.join(state.method_label(c) for c in components)}"
    return state.method_label(method)


def aggregate_cost(method: str, components: list[str] | tuple[str, ...]) -> dict[str, float] | None:
    """The aggregate's own cost on this page: no pass at all, since it only averages its components' maps,
    which are stored or computed (and costed) in their own rows. ``None`` for any other method."""
    if components and method in EXPLAINERS.names() and EXPLAINERS.get(method).components_param:
        return {"forward": 0.0, "backward": 0.0}
    return None


# how many samples the page shows before the user picks: a sequence sample is a full-width logo figure of its own
# (two fill a screen, and each costs the browser about as much to draw as a whole grid of another modality)
DEFAULT_SAMPLE_LIMIT = {"sequence": 2}


def default_samples(ev, preds: dict, per_class: int = 1, limit: int | None = None) -> list[str]:
    """First correctly classified test sample of each class (motif class only for sequences), at most ``limit``
    (4, or ``DEFAULT_SAMPLE_LIMIT`` of the modality)."""
    ds = ev.ds
    limit = limit or DEFAULT_SAMPLE_LIMIT.get(ds.modality, 4)
    classes = [1] if ds.modality == "sequence" and ds.ground_truth is not None else range(ds.n_classes)
    out = []
    for c in classes:
        take = per_class if len(classes) > 1 else limit
        hits = [i for i in ds.test_idx if ds.y[i] == c and preds["pred"][i] == c][:take]
        out.extend(ds.sample_ids[i] for i in hits)
    return out[:limit]


def process(ev, maps: np.ndarray, idx: np.ndarray, *, pooling: str, normalisation: str, dna_view: str) -> np.ndarray:
    """Stored maps (input shape) -> what a view draws (``xai_core.explainers.postprocess.for_display``)."""
    return for_display(maps, ev.ds.X[idx], ev.ds.modality, pooling=pooling, normalisation=normalisation,
                       dna_view=dna_view)


@st.cache_resource(show_spinner=False, max_entries=32)
def grid_figure(dataset: str, model: str, seed: int, ids: tuple[str, ...], methods: tuple[str, ...],
                aggregate_of: tuple[str, ...], pooling: str, normalisation: str, dna_view: str, k: int,
                labels: tuple[str, ...], opacity: float = 0.7, content: tuple[str, str] = ("", "")):
    """(the side-by-side figure(s), the caption saying how to read their shared scale), built from the store;
    ``None`` when a map is missing. Cached per choice (maps are immutable once stored); ``labels`` are the rows'.
    A resource cache, not a data cache: the figures are never changed by the page, and a copy unpickled on every
    rerun would be validated anew by plotly (0.1-0.5 s for a page of DNA logos).

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
        processed[column_label(m, aggregate_of)] = process(ev, arr, idx, pooling=pooling,
                                                           normalisation=normalisation, dna_view=dna_view)
    ds = ev.ds
    gt = ds.ground_truth
    if ds.modality == "image":
        masks = gt.masks[idx] if gt is not None and gt.masks is not None else None
        signed, top = map_scale(list(processed.values()), quantile=0.99)
        return [image_grid(ds.X[idx], processed, list(labels), masks=masks, opacity=opacity,
                           colour_label="attribution" if normalisation == NO_NORMALISATION else "normalised")], \
            scale_caption(signed, top, normalisation=normalisation, pooling=pooling)
    if ds.modality == "expression":
        markers = set()
        if gt is not None and gt.feature_sets:
            for v in gt.feature_sets.values():
                markers.update(int(g) for g in v)
        label = "true biomarker (simulated)" if gt is not None and gt.strength == "exact" else "literature marker"
        signed, top = map_scale(list(processed.values()))
        return [gene_bars(processed, ds.feature_names, list(labels), k=k, markers=markers, marker_label=label)], \
            scale_caption(signed, top, what="bar length", normalisation=normalisation)
    ics = GroundTruth(pwm=gt.pwm[idx]).information_content() if gt is not None and gt.pwm is not None else None
    figs = []
    for j, (_, lab) in enumerate(zip(ids, labels)):
        ic = None if ics is None else ics[j]
        figs.append(sequence_logos([(m, v[j]) for m, v in processed.items()], ic=ic,
                                   title=lab.replace("<br>", " · "),
                                   y_label="attribution" if normalisation == NO_NORMALISATION else "normalised"))
    signed, top = map_scale(list(processed.values()))
    return figs, scale_caption(signed, top, what="letter height", normalisation=normalisation)
