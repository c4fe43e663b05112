"""The report's explanations section: the stored maps of the chosen samples and methods, drawn as the Explanations
page draws them (its figure builders, post-processing and scale caption) with the choices of a ``Selection``, and
the ``python -m xai_core explain`` line that computes exactly those maps again.

Nothing is explained here: maps missing from the store are listed under "not computed". The rows name each
sample's true class and the model's prediction, as on the page; those predictions are one forward pass over the
drawn samples (at most ``MAX_EXPLAINED``).
"""
from __future__ import annotations

import shlex
from typing import Any

import numpy as np

from ..data import GroundTruth
from ..explainers import AGGREGATE, EXPLAINERS, component_params, plain_methods
from ..explainers.postprocess import NO_NORMALISATION, for_display
from ..figures.explanations import gene_bars, image_grid, map_scale, scale_caption
from ..figures.sequence import sequence_logos
from ..models import predict_proba
from .base import DNA_VIEWS, Part, Selection, label, model_arg


def explain_command(ev, methods: list[str], samples: list[str], aggregate_of: list[str] | None = None) -> str:
    """The ``python -m xai_core explain`` line that computes the maps of ``methods`` for exactly ``samples`` (in
    that order), explaining each sample's true class at the report's seed and output, as the store holds them.

    ``aggregate_of``: the methods the aggregate averages when it is among ``methods`` (its ``--param``)."""
    c = ev.config
    cmd = (f"python -m xai_core explain --dataset {shlex.quote(ev.ds.name)} --model {shlex.quote(model_arg(ev))} "
           f"--methods {','.join(methods)} --samples {shlex.quote(','.join(samples))} --target label "
           f"--seed {c.seed} --output {c.output}")
    if aggregate_of and AGGREGATE in methods:
        param = "aggregate.methods=" + ",".join(aggregate_of)
        cmd += f" --param {shlex.quote(param)}"
    return cmd + f" --out runs/{ev.ds.name}-maps"


def column_label(method: str, aggregate_of: list[str]) -> str:
    """A column's title: the method's label; the aggregate names the methods it averages (as on the page)."""
    if method in EXPLAINERS and EXPLAINERS.get(method).components_param and aggregate_of:
        return f"Aggregate: mean of {', '.join(label(c) for c in aggregate_of)}"
    return label(method)


def row_labels(ev, idx: np.ndarray) -> tuple[list[str], list[int], list[float]]:
    """The rows' labels as the page writes them (id, true class, the model's prediction and its probability, ✗ when
    wrong), and the predictions; one forward pass over ``idx``."""
    ds = ev.ds
    proba = predict_proba(ev.model, ds.X[idx], device=str(ev.ctx.device))
    pred = proba.argmax(1)
    rows = []
    for j, i in enumerate(idx):
        p = int(pred[j])
        mark = "" if p == ds.y[i] else " ✗"
        rows.append(f"{ds.sample_ids[i]}<br>true: {ds.class_names[ds.y[i]]}<br>model: {ds.class_names[p]} "
                    f"({proba[j, p]:.2f}){mark}")
    return rows, [int(p) for p in pred], [float(proba[j, p]) for j, p in enumerate(pred)]


def _markers(gt) -> set[int]:
    out: set[int] = set()
    if gt is not None and gt.feature_sets:
        for v in gt.feature_sets.values():
            out.update(int(g) for g in v)
    return out


def _missing_line(ev, m: str, miss: list[str], n: int, samples: list[str], aggregate_of: list[str]) -> str:
    cmd = explain_command(ev, [m], samples, aggregate_of)
    return (f"Explanations: {column_label(m, aggregate_of)} has no stored map for {len(miss)} of the {n} chosen "
            f"sample(s) ({', '.join(miss[:3])}{'…' if len(miss) > 3 else ''}). Store them from the Explanations page "
            f"(these samples and methods, then Explain); `{cmd}` computes the same maps into files.")


def explanations_section(ev, sel: Selection, methods: list[str], samples: list[str], data: dict,
                         missing: list[str]) -> list[Part]:
    """The explanations section for ``methods`` (columns) x ``samples`` (rows), drawn with ``sel``'s choices; fills
    ``data["explanations"]`` and appends what is not stored to ``missing``."""
    ds = ev.ds
    comps = plain_methods(methods)
    agg = sel.aggregate and len(comps) >= 2
    aggregate_of = comps if agg else []
    columns = list(methods) + ([AGGREGATE] if agg and AGGREGATE not in methods else [])
    out: dict[str, Any] = {"methods": [], "samples": samples, "drawn": False, "explained_class": "true class",
                           "output": ev.config.output, "pooling": sel.pooling if ds.modality == "image" else None,
                           "normalisation": sel.normalisation,
                           "dna_view": sel.dna_view if ds.modality == "sequence" else None,
                           "genes_per_map": sel.genes_per_map if ds.modality == "expression" else None,
                           "opacity": sel.opacity if ds.modality == "image" else None,
                           "aggregate_of": aggregate_of, "maps": {}, "drawn_abs_sum": {}}
    data["explanations"] = out
    if sel.aggregate and not agg:
        missing.append("Explanations: the aggregated explanation needs at least two chosen methods that are not "
                       "controls; it is not drawn.")
    if not samples:
        return [Part(text=["No samples were chosen and none are scored in the store, so no maps are drawn."])]
    if not columns:
        return [Part(text=["No explanation method was chosen, so no maps are drawn."])]
    pos = {sid: i for i, sid in enumerate(ds.sample_ids)}
    idx = np.array([pos[s] for s in samples], dtype=np.int64)
    ev_run = ev.with_config(method_params={AGGREGATE: component_params(AGGREGATE, comps)}) if agg else ev
    pooling = sel.pooling if ds.modality == "image" else "sum"
    processed: dict[str, np.ndarray] = {}
    for m in columns:
        arr, miss = ev_run.stored_attributions(m, idx)
        if arr is None:
            missing.append(_missing_line(ev, m, miss, len(samples), samples, aggregate_of))
            continue
        shown = for_display(arr, ds.X[idx], ds.modality, pooling=pooling, normalisation=sel.normalisation,
                            dna_view=sel.dna_view)
        processed[column_label(m, aggregate_of)] = shown
        out["methods"].append(m)
        flat = np.abs(arr.reshape(len(arr), -1).astype(np.float64))
        out["maps"][m] = {"abs_sum": [float(v) for v in flat.sum(1)], "abs_max": [float(v) for v in flat.max(1)]}
        out["drawn_abs_sum"][m] = [float(v) for v in np.abs(shown.reshape(len(shown), -1)).sum(1)]
    if not processed:
        return [Part(text=["None of the chosen methods has stored maps for the chosen samples (see 'What was not "
                           "computed')."])]
    out["drawn"] = True
    rows, pred, prob = row_labels(ev, idx)
    out["rows"] = [r.replace("<br>", " · ") for r in rows]
    out["predictions"], out["prediction_probability"] = pred, prob
    gt = ds.ground_truth
    cmd = explain_command(ev, out["methods"], samples, aggregate_of)
    colour = "attribution" if sel.normalisation == NO_NORMALISATION else "normalised"
    how = []  # pooling and normalisation are in the scale caption
    if ds.modality == "sequence":
        how.append(f"logo shows: {DNA_VIEWS[sel.dna_view]}")
    if agg:
        how.append(f"aggregate: the mean of the normalised maps of {', '.join(label(c) for c in aggregate_of)}, "
                   "controls left out")
    how_text = f" ({'; '.join(how)})" if how else ""
    intro = (f"{len(out['methods'])} method(s) × {len(samples)} sample(s), read from the results store and drawn as on "
             f"the Explanations page{how_text}. Rows: the sample, its true class, "
             f"and the model's prediction with its probability (✗ when wrong). Output explained: {ev.config.output}.")
    repro = ("The command below computes exactly these raw maps (input shape, before pooling and normalisation) "
             "into attributions.npz; deterministic methods give the same numbers, and methods that draw seeded "
             "noise per batch give them when the samples are explained in the same batch as when they were stored.")
    if ds.modality == "image":
        masks = gt.masks[idx] if gt is not None and gt.masks is not None else None
        signed, top = map_scale(list(processed.values()), quantile=0.99)
        caption = scale_caption(signed, top, normalisation=sel.normalisation, pooling=pooling)
        fig = image_grid(ds.X[idx], processed, rows, masks=masks, opacity=sel.opacity, colour_label=colour)
        what = "Heatmaps over the grey image." + (" Outline: the expert lesion mask (ground truth)."
                                                  if masks is not None else "")
        parts = [Part(text=[intro, f"{what} {_plain(caption)}"], figure=fig), Part(text=[repro], command=cmd)]
    elif ds.modality == "expression":
        marker = "true biomarker (simulated)" if gt is not None and gt.strength == "exact" else "literature marker"
        signed, top = map_scale(list(processed.values()))
        caption = scale_caption(signed, top, what="bar length", normalisation=sel.normalisation)
        markers = _markers(gt)
        fig = gene_bars(processed, ds.feature_names, rows, k=sel.genes_per_map, markers=markers, marker_label=marker)
        what = f"The {sel.genes_per_map} genes with the largest |attribution| in each map" + (
            f"; ★ {marker}." if markers else ".")
        parts = [Part(text=[intro, f"{what} {_plain(caption)}"], figure=fig), Part(text=[repro], command=cmd)]
    else:
        ics = GroundTruth(pwm=gt.pwm[idx]).information_content() if gt is not None and gt.pwm is not None else None
        signed, top = map_scale(list(processed.values()))
        caption = scale_caption(signed, top, what="letter height", normalisation=sel.normalisation)
        what = "Sequence logos of the attributions, one figure per sample" + (
            "; the grey track below marks the planted motifs (information content in bits)." if ics is not None
            else ".")
        parts = [Part(text=[intro, f"{what} {_plain(caption)}"])]
        for j, row in enumerate(rows):  # the row's label as the heading (a figure title runs into the legend)
            parts.append(Part(title=row.replace("<br>", " · "),
                              figure=sequence_logos([(m, v[j]) for m, v in processed.items()],
                                                    ic=None if ics is None else ics[j], y_label=colour)))
        parts.append(Part(text=[repro], command=cmd))
    out["caption"] = _plain(caption)
    return parts


def _plain(text: str) -> str:
    """A page caption (markdown) as plain text."""
    return text.replace("**", "")
