"""What a report holds, read from the results store only: it never runs a model, an explainer or a metric.

``collect(ev, selection)`` takes a loaded ``Evaluation`` (dataset, model metadata, store; loading the model is the
only model work, and nothing is predicted) and returns a ``Report``: sections of text, tables and plotly figures
drawn with the same builders as the dashboard's pages (``xai_core.figures``), the numbers as one JSON-able dict
(``Report.data``, embedded in the HTML so tests and scripts can compare reports), what was not computed and why,
and the provenance with the command line that reproduces each part.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .. import genes
from ..data import GroundTruth
from ..errors import XaiError
from ..explainers import EXPLAINERS, applicable_methods, is_control
from ..explainers.postprocess import for_display
from ..figures.explanations import gene_bars, image_grid
from ..figures.genes import top_genes
from ..figures.metrics import score_distribution
from ..figures.ranking import mrr_intervals, rank_probability_heatmap
from ..figures.sequence import sequence_logos
from ..metrics import METRICS, applicable_metrics
from ..provenance import now, package_versions
from ..ranking import mc_mrr
from ..ranking_words import floor_sentence, headline
from ..runner import Plan, ranking_input
from ..store import params_key

SECTIONS = ("data", "explanations", "genes", "metrics", "ranking", "provenance")
SECTION_TITLES = {"data": "Data and model", "explanations": "Explanations", "genes": "Gene rankings",
                  "metrics": "Metric distributions", "ranking": "Method ranking",
                  "provenance": "Provenance and how to reproduce"}
# How the maps are drawn: the Explanations page's defaults (channel sum, each map over its 99th percentile |value|)
POOLING, NORMALISATION, DNA_VIEW, TOP_K = "sum", "per_map_p99", "observed", 15
MAX_EXPLAINED = 8  # samples drawn in the explanations section (the Explanations page's limit)
DEFAULT_EXPLAINED = 3  # samples drawn when none are chosen: the first scored (or stored) ones
RANK_DRAWS = 10_000  # the Method ranking page's and ``evaluate``'s default number of Monte Carlo draws
GENES_K = 10  # top genes per method and class


@dataclass
class Selection:
    """What to report; None means "whatever the store holds" (methods, metrics) or "the first scored" (samples).

    Attributes
    ----------
    methods : list of str, optional
        Explanation methods.
    metrics : list of str, optional
        Metrics.
    samples : list of str, optional
        Sample ids drawn in the explanations section.
    sections : tuple of str
        Which of ``SECTIONS``, in that order.
    """
    methods: list[str] | None = None
    metrics: list[str] | None = None
    samples: list[str] | None = None
    sections: tuple[str, ...] = SECTIONS


@dataclass
class Part:
    """One block of a section: a heading, sentences, a table and/or a figure."""
    title: str = ""
    text: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None
    figure: go.Figure | None = None
    command: str | None = None  # the command line that reproduces this part
    warn: bool = False  # the text is a caveat (drawn as a warning)


@dataclass
class Report:
    """A collected report: what ``render_html`` draws."""
    title: str
    subtitle: str
    sections: dict[str, list[Part]]  # section name -> its parts, in ``SECTIONS`` order
    data: dict[str, Any]  # every number shown, JSON-able (embedded as ``report-data``)
    missing: list[str]  # what was not computed and why (one sentence each)

    def has_results(self) -> bool:
        """Whether the store held anything for the selection (scores or maps)."""
        return bool(self.data.get("scored_cells") or self.data.get("explanations", {}).get("drawn"))


def label(method: str) -> str:
    """A method's display name (its registered label), the identifier itself when unknown."""
    return EXPLAINERS.get(method).label if method in EXPLAINERS else method


def metric_label(metric: str) -> str:
    """A metric's display name with its direction arrow."""
    if metric not in METRICS:
        return metric
    spec = METRICS.get(metric)
    return f"{spec.label} ({'↑' if spec.direction == 'higher' else '↓'})"


def _finite(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _model_arg(ev) -> str:
    return ev.config.model or ev.model_meta.get("arch") or ev.model_name


def evaluate_command(ev, methods: list[str], metrics: list[str], n: int) -> str:
    """The ``python -m xai_core evaluate`` line that computes (or finds stored) these cells."""
    c = ev.config
    return (f"python -m xai_core evaluate --dataset {shlex.quote(ev.ds.name)} --model {shlex.quote(_model_arg(ev))} "
            f"--methods {','.join(methods)} --metrics {','.join(metrics)} --n {max(n, 1)} --seed {c.seed}"
            + (f" --output {c.output}" if c.output != "logit" else "")
            + f" --out runs/{ev.ds.name}-eval")


def explain_command(ev, methods: list[str], n: int) -> str:
    """The ``python -m xai_core explain`` line that draws maps of the same methods (first ``n`` test samples)."""
    c = ev.config
    return (f"python -m xai_core explain --dataset {shlex.quote(ev.ds.name)} --model {shlex.quote(_model_arg(ev))} "
            f"--methods {','.join(methods)} --n {max(n, 1)} --seed {c.seed} --output {c.output} "
            f"--out runs/{ev.ds.name}-maps")


def report_command(ev, selection: Selection) -> str:
    """The ``python -m xai_core report`` line that writes this report again."""
    parts = [f"python -m xai_core report --dataset {shlex.quote(ev.ds.name)} --model {shlex.quote(_model_arg(ev))}"]
    if selection.methods:
        parts.append(f"--methods {','.join(selection.methods)}")
    if selection.metrics:
        parts.append(f"--metrics {','.join(selection.metrics)}")
    if selection.samples:
        parts.append(f"--samples {shlex.quote(','.join(selection.samples))}")
    if tuple(selection.sections) != SECTIONS:
        parts.append(f"--sections {','.join(selection.sections)}")
    if ev.config.seed:
        parts.append(f"--seed {ev.config.seed}")
    return " ".join(parts + ["--out report.html"])


# -- reading the store ---------------------------------------------------------------------------------------
def stored_frame(ev, methods: list[str] | None, metrics: list[str] | None) -> pd.DataFrame:
    """Every stored score of this dataset (fingerprint), model (hash) and output for the methods and metrics
    (all when None), restricted to the cells computed with the default parameters (as ``Evaluation.scores``)."""
    frame = ev.store.scores_frame(dataset=ev.ds.name, methods=methods, metrics=metrics)
    frame = frame[(frame["model_hash"] == ev.model_hash) & (frame["dataset_fp"] == ev.dataset_fp)
                  & (frame["output"] == ev.config.output)]
    if frame.empty:
        return frame
    have = [m for m in dict.fromkeys(frame["method"]) if m in EXPLAINERS]
    have_metrics = [m for m in dict.fromkeys(frame["metric"]) if m in METRICS]
    pos = {sid: i for i, sid in enumerate(ev.ds.sample_ids)}
    idx = np.array(sorted({pos[s] for s in frame["sample"] if s in pos}), dtype=np.int64)
    plan = Plan(ev.config, idx, have, have_metrics, pd.DataFrame(columns=["method", "metric", "forward", "backward"]),
                [])
    return ev.scores(plan)  # the default-parameter cells only, as the pages read them


def _order(names, wanted: list[str] | None) -> list[str]:
    names = list(dict.fromkeys(names))
    if wanted:
        return [m for m in wanted if m in names]
    return names


def _scored_samples(ev, frame: pd.DataFrame) -> list[str]:
    pos = {sid: i for i, sid in enumerate(ev.ds.sample_ids)}
    return sorted({s for s in frame["sample"] if s in pos}, key=pos.get)


def process(ev, maps: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Stored maps (input shape) -> what the Explanations page draws at its defaults: (N,H,W) channel-summed
    pixels, (N,G) genes or (N,4,L) logo heights (nucleotide observed), each map over its 99th percentile."""
    return for_display(maps, ev.ds.X[idx], ev.ds.modality, pooling=POOLING, normalisation=NORMALISATION,
                       dna_view=DNA_VIEW)


def _row_label(ds, i: int) -> str:
    return f"{ds.sample_ids[i]} · {ds.class_names[ds.y[i]]}"


# -- sections -------------------------------------------------------------------------------------------------
def _data_section(ev, data: dict) -> list[Part]:
    ds, meta = ev.ds, ev.model_meta
    counts = np.bincount(ds.y, minlength=ds.n_classes)
    d = {"dataset": ds.name, "modality": ds.modality, "samples": int(len(ds)),
         "train": int(len(ds.train_idx)), "test": int(len(ds.test_idx)), "input_shape": list(ds.input_shape),
         "features": int(np.prod(ds.input_shape)), "classes": list(ds.class_names),
         "class_counts": [int(c) for c in counts], "fingerprint": ev.dataset_fp,
         "model": ev.model_name, "arch": meta.get("arch"), "checkpoint_hash": ev.model_hash,
         "test_accuracy": _finite(meta.get("test_accuracy")),
         "test_balanced_accuracy": _finite(meta.get("test_balanced_accuracy")),
         "test_auroc": _finite(meta.get("test_auroc")), "model_seed": meta.get("seed"),
         "chance_level": bool((meta.get("checks") or {}).get("chance_level"))}
    data["data"] = d
    rows = [("Dataset", f"{ds.name} ({ds.modality})"),
            ("Samples", f"{len(ds):,} ({len(ds.train_idx):,} train, {len(ds.test_idx):,} test)"),
            ("Input", " × ".join(str(s) for s in ds.input_shape)),
            ("Classes", ", ".join(f"{c} ({n:,})" for c, n in zip(ds.class_names, counts))),
            ("Model", f"{ev.model_name} (architecture {meta.get('arch', '?')}, checkpoint {ev.model_hash})")]
    for key, name in (("test_accuracy", "Test accuracy"), ("test_balanced_accuracy", "Test balanced accuracy"),
                      ("test_auroc", "Test AUROC")):
        if d[key] is not None:
            rows.append((name, f"{d[key]:.3f}"))
    parts = [Part(table=pd.DataFrame(rows, columns=["", "value"]))]
    if d["chance_level"]:
        parts.append(Part(text=["This model predicts at chance level on its test set: its explanations describe "
                                "noise, and so do the metrics and the ranking below."], warn=True))
    return parts


def _explanations_section(ev, methods: list[str], samples: list[str], data: dict, missing: list[str]) -> list[Part]:
    ds = ev.ds
    out = {"methods": [], "samples": samples, "drawn": False, "pooling": POOLING if ds.modality == "image" else None,
           "normalisation": NORMALISATION, "maps": {}}
    data["explanations"] = out
    if not samples:
        return [Part(text=["No samples were chosen and none are scored in the store, so no maps are drawn."])]
    pos = {sid: i for i, sid in enumerate(ds.sample_ids)}
    idx = np.array([pos[s] for s in samples], dtype=np.int64)
    processed: dict[str, np.ndarray] = {}
    for m in methods:
        arr, miss = ev.stored_attributions(m, idx)
        if arr is None:
            missing.append(f"Explanations: {label(m)} has no stored map for {len(miss)} of the {len(samples)} chosen "
                           f"sample(s) ({', '.join(miss[:3])}{'…' if len(miss) > 3 else ''}); compute them on the "
                           f"Explanations page or with `{explain_command(ev, [m], len(ds.test_idx))}`.")
            continue
        processed[label(m)] = process(ev, arr, idx)
        out["methods"].append(m)
        flat = np.abs(arr.reshape(len(arr), -1).astype(np.float64))
        out["maps"][m] = {"abs_sum": [float(v) for v in flat.sum(1)], "abs_max": [float(v) for v in flat.max(1)]}
    if not processed:
        return [Part(text=["None of the chosen methods has stored maps for the chosen samples (see 'What was not "
                           "computed')."])]
    out["drawn"] = True
    rows = [_row_label(ds, i) for i in idx]
    gt = ds.ground_truth
    cmd = explain_command(ev, out["methods"], len(samples))
    note = ("Maps are read from the results store and drawn as on the Explanations page: "
            + ("channels summed, " if ds.modality == "image" else "")
            + "each map divided by its 99th percentile |value| (so methods share one scale from −1 to 1); "
              "red pushes towards the sample's true class (the explained class), blue against it.")
    if ds.modality == "image":
        masks = gt.masks[idx] if gt is not None and gt.masks is not None else None
        fig = image_grid(ds.X[idx], processed, rows, masks=masks, colour_label="normalised")
        return [Part(text=[note + (" Outline: the expert lesion mask." if masks is not None else "")], figure=fig,
                     command=cmd)]
    if ds.modality == "expression":
        markers: set[int] = set()
        if gt is not None and gt.feature_sets:
            for v in gt.feature_sets.values():
                markers.update(int(g) for g in v)
        marker = "true biomarker" if gt is not None and gt.strength == "exact" else "literature marker"
        fig = gene_bars(processed, ds.feature_names, rows, k=TOP_K, markers=markers, marker_label=marker)
        return [Part(text=[note + f" The {TOP_K} genes with the largest |attribution| per map; ★ {marker}."],
                     figure=fig, command=cmd)]
    ics = GroundTruth(pwm=gt.pwm[idx]).information_content() if gt is not None and gt.pwm is not None else None
    parts = [Part(text=[note + " Letters above the line push towards the motif class; the grey track marks the "
                               "planted motifs (information content in bits)."], command=cmd)]
    for j, row in enumerate(rows):
        fig = sequence_logos([(m, v[j]) for m, v in processed.items()], ic=None if ics is None else ics[j],
                             title=row, y_label="normalised")
        parts.append(Part(figure=fig))
    return parts


def _genes_section(ev, methods: list[str], scored: list[str], data: dict, missing: list[str]) -> list[Part]:
    ds = ev.ds
    out: dict[str, Any] = {"k": GENES_K, "samples": len(scored), "classes": {}}
    data["genes"] = out
    if ds.modality != "expression":
        return []
    if not scored:
        return [Part(text=["No scored samples in the store, so no gene rankings (they average the stored maps of the "
                           "evaluated samples)."])]
    pos = {sid: i for i, sid in enumerate(ds.sample_ids)}
    idx = np.array([pos[s] for s in scored], dtype=np.int64)
    scores: dict[str, np.ndarray] = {}
    for m in methods:
        arr, miss = ev.stored_attributions(m, idx)
        if arr is None:
            missing.append(f"Gene rankings: {label(m)} has no stored map for {len(miss)} of the {len(idx)} scored "
                           f"samples.")
            continue
        scores[m] = genes.class_scores(genes.oriented(arr, ds.y[idx], ev.ctx.n_outputs), ds.y[idx], ds.n_classes)
    if not scores:
        return [Part(text=["No method has stored maps for the scored samples."])]
    truth = genes.truth_sets(ds)
    exact = ds.ground_truth is not None and ds.ground_truth.strength == "exact"
    known = "true biomarker" if exact else "literature marker"
    parts = [Part(text=[f"Per class, genes ranked by the mean of the L2-normalised attributions of that class's "
                        f"{len(idx)} evaluated sample(s) (the Gene rankings page's global ranking); the {GENES_K} top "
                        f"genes per method, {known}s highlighted."])]
    for c, cname in enumerate(ds.class_names):
        heading = cname if cname.lower().startswith("class") else f"class {cname}"
        present = {m: s[c] for m, s in scores.items() if np.isfinite(s[c]).all()}
        if not present:
            missing.append(f"Gene rankings: {heading} has no evaluated sample (the scored samples are of other "
                           f"classes; evaluate more samples, --n).")
            continue
        tables = {label(m): genes.top_table(s, GENES_K, ds.feature_names, truth.get(c)) for m, s in present.items()}
        out["classes"][cname] = {m: {"genes": t["gene"].tolist(), "scores": [float(v) for v in t["score"]]}
                                 for m, t in zip(present, tables.values())}
        fig = top_genes(tables, known_label=known, title=f"Top {GENES_K} genes for {heading}")
        part = Part(title=heading[:1].upper() + heading[1:], figure=fig)
        if truth.get(c) is not None:
            ov = genes.overlap_table({label(m): s for m, s in present.items()}, truth[c], GENES_K,
                                     len(ds.feature_names))
            out["classes"][cname]["overlap"] = {r["ranking"]: {k: _finite(v) for k, v in r.items() if k != "ranking"}
                                                for r in ov.to_dict("records")}
            part.table = ov.round(4)
        parts.append(part)
    return parts


def _metrics_section(ev, frame: pd.DataFrame, methods: list[str], metrics: list[str], data: dict) -> list[Part]:
    out: dict[str, Any] = {}
    data["metric_scores"] = out
    parts = []
    labelled = frame.assign(method=frame["method"].map(label))
    for metric in metrics:
        sub = labelled[labelled["metric"] == metric]
        spec = METRICS.get(metric)
        stats = frame[frame["metric"] == metric].groupby("method")["score"]
        out[metric] = {m: {"n": int(s.notna().sum()), "mean": _finite(s.mean()), "median": _finite(s.median()),
                           "std": _finite(s.std()), "scores": [_finite(v) for v in s]} for m, s in stats}
        fig = score_distribution(sub, metric, direction=spec.direction, label=spec.label,
                                 methods=[label(m) for m in methods])
        parts.append(Part(title=metric_label(metric), text=[spec.description], figure=fig))
    return parts


def _ranking_section(ev, frame: pd.DataFrame, data: dict, missing: list[str]) -> list[Part]:
    ranked = ranking_input(frame)
    left_out = sorted(set(frame["metric"]) - set(ranked["metric"]))
    if left_out:
        missing.append(f"Ranking: {', '.join(left_out)} take(s) no part in rankings (a reference, not a score of the "
                       f"method).")
    if ranked["method"].nunique() < 2:
        data["ranking"] = None
        return [Part(text=["The ranking needs at least two methods with stored scores."])]
    try:
        res = mc_mrr(ranked, n_draws=RANK_DRAWS, seed=ev.config.seed, missing="worst")
    except XaiError as e:
        data["ranking"] = None
        missing.append(f"Ranking: {e}")
        return [Part(text=[f"No ranking: {e}"])]
    t = res.to_frame()
    data["ranking"] = {"methods": t.index.tolist(), "metrics_used": res.metrics_used, "dropped": res.dropped,
                       "draws": RANK_DRAWS, "seed": ev.config.seed,
                       "table": {m: {k: (_finite(v) if not isinstance(v, (bool, np.bool_)) else bool(v))
                                     for k, v in row.items()} for m, row in t.iterrows()}}
    for m, why in res.dropped.items():
        missing.append(f"Ranking: {m} was left out: {why}")
    head = headline(res, label)
    floor = floor_sentence(res, label)
    data["ranking"]["headline"], data["ranking"]["floor"] = head, floor
    table = t.copy()
    if "not_better_than_random" in table.columns:  # a control is the floor itself: no verdict on it
        table["not_better_than_random"] = [None if is_control(m) else bool(v)
                                           for m, v in table["not_better_than_random"].items()]
    table = table.rename(index=label).reset_index()
    table = table.rename(columns={"method": "method", "mrr": "expected MRR", "mrr_lo": "2.5 %", "mrr_hi": "97.5 %",
                                  "mean_rank": "mean rank", "rank": "rank",
                                  "p_above_control": "P(above random)",
                                  "not_better_than_random": "not better than random"})
    table = table.rename(columns=lambda c: f"P(rank {c[7:]})" if str(c).startswith("p_rank_") else c)
    used = ", ".join(metric_label(m) for m in res.metrics_used)
    text = [head, f"Ranked on {len(res.metrics_used)} metric(s): {used}; "
                  f"{RANK_DRAWS:,} Monte Carlo draws of each method's mean score within its standard error "
                  f"(seed {ev.config.seed}); the mean reciprocal rank (MRR) is 1 for a method best on every metric."]
    parts = [Part(text=text, table=table.round(3))]
    if floor:
        parts.append(Part(text=[f"Controls floor: {floor}"], warn=True))
    elif "p_above_control" in t.columns:
        parts.append(Part(text=["Controls floor: every method is above the random control in at least 95 % of the "
                                "draws."]))
    else:
        parts.append(Part(text=["Controls floor: no control (random) was scored, so whether the methods beat random "
                                "maps is not known; add random to the methods."], warn=True))
    parts.append(Part(figure=mrr_intervals(t.rename(index=label))))
    parts.append(Part(figure=rank_probability_heatmap(res.rank_probabilities.rename(index=label))))
    return parts


def _not_applicable(ev, wanted: list[str] | None) -> list[str]:
    if not wanted:
        return []
    gt = ev.ds.ground_truth
    have = set()
    if gt is not None:
        have = {k for k, v in (("masks", gt.masks), ("pwm", gt.pwm), ("feature_sets", gt.feature_sets))
                if v is not None and (k != "feature_sets" or len(v))}
    ok = set(applicable_metrics(ev.ds.modality, have))
    out = []
    for m in wanted:
        if m in METRICS and m not in ok:
            out.append(f"{m}: does not apply to {ev.ds.modality} data of {ev.ds.name} "
                       f"(needs {', '.join(METRICS.get(m).info()['needs'] or ['another modality'])}).")
    return out


def _provenance_section(ev, frame: pd.DataFrame, methods: list[str], metrics: list[str], selection: Selection,
                        data: dict, commands: dict[str, str]) -> list[Part]:
    ds, meta = ev.ds, ev.model_meta
    cells = []
    for (me, mk, mt, xk), g in frame.groupby(["method", "method_key", "metric", "metric_key"], sort=False):
        recs = ev.store.provenance(kind="scores", dataset_fp=ev.dataset_fp, model_hash=ev.model_hash, method=me,
                                   method_key=mk, metric=mt, metric_key=xk, output=ev.config.output)
        first = recs[0] if recs else {}
        prov = first.get("provenance", {})
        cells.append({"method": me, "method_key": mk, "metric": mt, "metric_key": xk, "rows": int(len(g)),
                      "created": first.get("created"), "seconds": _finite(sum(r["seconds"] or 0 for r in recs)),
                      "seed": prov.get("seed"), "method_params": first.get("method_params"),
                      "metric_params": first.get("metric_params"),
                      "versions": prov.get("versions")})
    attr_cells = []
    for m in methods:
        recs = ev.store.provenance(kind="attributions", dataset_fp=ev.dataset_fp, model_hash=ev.model_hash, method=m,
                                   method_key=params_key(ev.method_key(m)), output=ev.config.output)
        if recs:
            attr_cells.append({"method": m, "method_key": recs[0]["method_key"],
                               "rows": int(sum(r["rows"] for r in recs)),
                               "created": recs[0]["created"], "method_params": recs[0]["method_params"],
                               "seed": recs[0]["provenance"].get("seed")})
    prov = {"created": now(), "versions": package_versions(), "store": str(ev.store.path),
            "dataset": {"name": ds.name, "fingerprint": ev.dataset_fp, "params": _jsonable(ds.params)},
            "model": {"name": ev.model_name, "checkpoint_hash": ev.model_hash, "arch": meta.get("arch"),
                      "arch_kwargs": _jsonable(meta.get("arch_kwargs")), "seed": meta.get("seed"),
                      "recipe": _jsonable(meta.get("recipe"))},
            "seed": ev.config.seed, "output": ev.config.output, "score_cells": cells, "attribution_cells": attr_cells,
            "commands": commands}
    data["provenance"] = prov
    rows = [("Report written", prov["created"]), ("Results store", prov["store"]),
            ("Dataset fingerprint", ev.dataset_fp), ("Model checkpoint hash", ev.model_hash),
            ("Seed (explainers, metrics, ranking)", str(ev.config.seed)), ("Output explained", ev.config.output),
            ("Package versions", ", ".join(f"{k} {v}" for k, v in prov["versions"].items()))]
    parts = [Part(table=pd.DataFrame(rows, columns=["", "value"]))]
    parts.append(Part(title="Command lines", text=["Each part of this report is reproduced by:"],
                      table=pd.DataFrame(list(commands.items()), columns=["part", "command"])))
    if cells:
        t = pd.DataFrame(cells)[["method", "metric", "rows", "method_key", "metric_key", "created", "seconds", "seed"]]
        parts.append(Part(title="Stored score cells", table=t))
    if attr_cells:
        t = pd.DataFrame(attr_cells)[["method", "method_key", "rows", "created", "seed"]]
        parts.append(Part(title="Stored map cells", table=t))
    return parts


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return _finite(v)
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    return v if isinstance(v, (str, int, bool, type(None))) else str(v)


# -- the whole report --------------------------------------------------------------------------------------------
def collect(ev, selection: Selection | None = None) -> Report:
    """Everything a report shows, read from ``ev.store``; nothing is computed.

    Parameters
    ----------
    ev : xai_core.runner.Evaluation
        The dataset, model and results store (its ``config.seed`` and ``config.output`` select the stored cells).
    selection : Selection, optional
        Methods, metrics, samples and sections (default: everything stored, all sections).

    Returns
    -------
    Report

    Raises
    ------
    XaiError
        For an unknown section or sample id.
    """
    sel = selection or Selection()
    bad = [s for s in sel.sections if s not in SECTIONS]
    if bad:
        raise XaiError(f"unknown section(s) {', '.join(bad)}; valid choices: {', '.join(SECTIONS)}")
    ds = ev.ds
    if sel.samples:
        unknown = [s for s in sel.samples if s not in set(ds.sample_ids)]
        if unknown:
            raise XaiError(f"unknown sample id(s) of {ds.name}: {', '.join(unknown[:5])}; sample ids look like "
                           f"{', '.join(ds.sample_ids[:3])}")
    frame = stored_frame(ev, sel.methods, sel.metrics)
    methods = _order(frame["method"], sel.methods) if not frame.empty else []
    metrics = _order(frame["metric"], sel.metrics) if not frame.empty else []
    scored = _scored_samples(ev, frame) if not frame.empty else []
    missing: list[str] = _not_applicable(ev, sel.metrics)
    n = len(scored)
    # what was asked and is not in the store
    if sel.methods:
        applicable = set(applicable_methods(ev.ctx))
        for m in sel.methods:
            if m not in applicable:
                missing.append(f"{label(m)}: does not apply to this data or model.")
    want_methods = sel.methods or methods
    want_metrics = [m for m in (sel.metrics or metrics) if m in METRICS]
    counts = frame.groupby(["method", "metric"]).size() if not frame.empty else pd.Series(dtype=int)
    absent = [(me, mt) for me in want_methods for mt in want_metrics
              if counts.get((me, mt), 0) < (1 if METRICS.get(mt).scope == "set" else max(n, 1))]
    if absent and want_metrics:
        todo = evaluate_command(ev, list(dict.fromkeys(me for me, _ in absent)),
                                list(dict.fromkeys(mt for _, mt in absent)), max(n, 1))
        shown = ", ".join(f"{label(me)} × {mt}" for me, mt in absent[:8]) + (" …" if len(absent) > 8 else "")
        missing.append(f"{len(absent)} method × metric cell(s) are not (fully) in the store for the "
                       f"{max(n, 1)} scored sample(s): {shown}. Compute them on the Metrics page or with "
                       f"`{todo}`.")
    if not frame.empty:
        bad = frame[frame["score"].isna()]
        for (me, mt, why), g in bad.assign(reason=bad["reason"].fillna("no reason recorded")).groupby(
                ["method", "metric", "reason"]):
            missing.append(f"{label(me)} × {mt}: {len(g)} score(s) not finite: {why}")
    explained_methods = [m for m in (sel.methods or methods) if m in EXPLAINERS]
    samples = list(sel.samples or scored[:DEFAULT_EXPLAINED])[:MAX_EXPLAINED]
    commands = {"this report": report_command(ev, sel)}
    if methods and metrics:
        commands["metrics and ranking"] = evaluate_command(ev, methods, metrics, n)
    if explained_methods:
        commands["explanations (maps of the first --n test samples; the report's maps are read from the store)"] = \
            explain_command(ev, explained_methods, max(len(samples), 1))
    meta = ev.model_meta
    data: dict[str, Any] = {"dataset": ds.name, "model": ev.model_name, "checkpoint_hash": ev.model_hash,
                            "dataset_fingerprint": ev.dataset_fp, "sections": list(sel.sections),
                            "methods": methods, "metrics": metrics, "scored_samples": scored,
                            "scored_cells": int(len(frame.groupby(["method", "metric"]))) if not frame.empty else 0}
    sections: dict[str, list[Part]] = {}
    for s in sel.sections:
        if s == "data":
            sections[s] = _data_section(ev, data)
        elif s == "explanations":
            sections[s] = _explanations_section(ev, explained_methods, samples, data, missing)
        elif s == "genes":
            parts = _genes_section(ev, methods or explained_methods, scored, data, missing)
            if parts:
                sections[s] = parts
        elif s == "metrics":
            sections[s] = (_metrics_section(ev, frame, methods, metrics, data) if not frame.empty
                           else [Part(text=["No stored scores for this selection."])])
        elif s == "ranking":
            sections[s] = (_ranking_section(ev, frame, data, missing) if not frame.empty
                           else [Part(text=["No stored scores for this selection."])])
    if "provenance" in sel.sections:
        sections["provenance"] = _provenance_section(ev, frame, methods or explained_methods, metrics, sel, data,
                                                     commands)
    data["not_computed"] = missing
    acc = _finite(meta.get("test_accuracy"))
    subtitle = (f"{ds.name} ({ds.modality}) · model {ev.model_name} (checkpoint {ev.model_hash})"
                + (f" · test accuracy {acc:.3f}" if acc is not None else "")
                + f" · {len(methods)} method(s), {len(metrics)} metric(s), {n} scored sample(s)")
    return Report(title=f"Explanation report: {ds.name}, {ev.model_name}", subtitle=subtitle, sections=sections,
                  data=data, missing=missing)
