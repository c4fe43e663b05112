"""What a report holds, read from the results store: it never runs an explainer or a metric.

``collect(ev, selection)`` takes a loaded ``Evaluation`` (dataset, model, store) and returns a ``Report``: sections
of text, tables and plotly figures drawn with the same builders as the dashboard's pages (``xai_core.figures``),
the numbers as one JSON-able dict (``Report.data``, embedded in the HTML so tests and scripts can compare reports),
what was not computed and why, and the provenance with the command line that reproduces each part. The ranking is
drawn from the stored scores as the Method ranking page draws it (same draws, same seed). The model runs only for
two small things the store does not hold: the per-class test quality (one pass over the test split, cached per
checkpoint and dataset, ``xai_core.model_quality``) and the drawn rows' predictions (at most 8 samples).
"""
from __future__ import annotations

import shlex
from typing import Any

import numpy as np
import pandas as pd

from .. import genes
from ..errors import XaiError
from ..explainers import EXPLAINERS, applicable_methods, is_control
from ..figures.genes import top_genes
from ..figures.metrics import score_distribution
from ..figures.ranking import mrr_intervals, rank_probability_heatmap
from ..metrics import METRICS, applicable_metrics
from ..model_quality import (CLASS_AUROC_FLOOR, RECALL_MARGIN, cached_class_quality, class_warning, model_weakness,
                             weak_classes)
from ..provenance import now, package_versions
from ..ranking import mc_mrr
from ..ranking_words import floor_sentence, headline
from ..runner import Plan, ranking_input
from ..store import params_key
from .base import (MAX_EXPLAINED, SECTION_TITLES, SECTIONS, Part, Report, Selection, label, metric_label,
                   model_arg)
from .base import finite as _finite
from .maps import explain_command, explanations_section

__all__ = ["SECTIONS", "SECTION_TITLES", "Part", "Report", "Selection", "collect", "evaluate_command",
           "explain_command", "label", "metric_label", "report_command", "stored_frame"]

DEFAULT_EXPLAINED = 3  # samples drawn when none are chosen: the first scored (or stored) ones
RANK_DRAWS = 10_000  # the Method ranking page's and ``evaluate``'s default number of Monte Carlo draws
GENES_K = 10  # top genes per method and class
SEARCH = 3000  # samples per split looked up for stored maps when none are chosen or scored


def evaluate_command(ev, methods: list[str], metrics: list[str], n: int) -> str:
    """The ``python -m xai_core evaluate`` line that computes (or finds stored) these cells."""
    c = ev.config
    return (f"python -m xai_core evaluate --dataset {shlex.quote(ev.ds.name)} --model {shlex.quote(model_arg(ev))} "
            f"--methods {','.join(methods)} --metrics {','.join(metrics)} --n {max(n, 1)} --seed {c.seed}"
            + (f" --output {c.output}" if c.output != "logit" else "")
            + f" --out runs/{ev.ds.name}-eval")


def report_command(ev, selection: Selection) -> str:
    """The ``python -m xai_core report`` line that writes this report again."""
    parts = [f"python -m xai_core report --dataset {shlex.quote(ev.ds.name)} --model {shlex.quote(model_arg(ev))}"]
    if selection.methods:
        parts.append(f"--methods {','.join(selection.methods)}")
    if selection.metrics:
        parts.append(f"--metrics {','.join(selection.metrics)}")
    if selection.samples:
        parts.append(f"--samples {shlex.quote(','.join(selection.samples))}")
    if tuple(selection.sections) != SECTIONS:
        parts.append(f"--sections {','.join(selection.sections)}")
    parts += selection.view_flags()
    if ev.config.seed:
        parts.append(f"--seed {ev.config.seed}")
    if ev.config.output != "logit":
        parts.append(f"--output {ev.config.output}")
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


def quality(ev) -> dict[str, Any]:
    """The model's quality as the report shows it: the whole-model rule on its recorded numbers and the per-class
    test recall / one-vs-rest AUROC (``xai_core.model_quality``; one pass over the test split, cached per
    checkpoint and dataset)."""
    per_class = cached_class_quality(ev.model, ev.ds, ev.model_hash, device=str(ev.ctx.device),
                                     dataset_fp=ev.dataset_fp)
    meta = {**ev.model_meta, "n_classes": ev.model_meta.get("n_classes") or ev.ds.n_classes}
    return {"model_warning": model_weakness(meta), "per_class": per_class, "weak_classes": weak_classes(per_class),
            "class_warning": class_warning(per_class)}


def _data_section(ev, data: dict, q: dict[str, Any]) -> list[Part]:
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
         "chance_level": bool((meta.get("checks") or {}).get("chance_level")), **q}
    data["data"] = d
    rows = [("Dataset", f"{ds.name} ({ds.modality})"),
            ("Samples", f"{len(ds):,} ({len(ds.train_idx):,} train, {len(ds.test_idx):,} test)"),
            ("Input", " × ".join(str(s) for s in ds.input_shape)),
            ("Classes", "; ".join(f"{c} ({n:,})" for c, n in zip(ds.class_names, counts))),
            ("Model", f"{ev.model_name} (architecture {meta.get('arch', '?')}, checkpoint {ev.model_hash})")]
    for key, name in (("test_accuracy", "Test accuracy"), ("test_balanced_accuracy", "Test balanced accuracy"),
                      ("test_auroc", "Test AUROC")):
        if d[key] is not None:
            rows.append((name, f"{d[key]:.3f}"))
    parts = [Part(table=pd.DataFrame(rows, columns=["", "value"]))]
    if d["chance_level"]:
        parts.append(Part(text=["This model predicts at chance level on its test set: its explanations describe "
                                "noise, and so do the metrics and the ranking below."], warn=True))
    if q["model_warning"]:
        parts.append(Part(text=[f"This model is close to chance as a whole: {q['model_warning']}."], warn=True))
    pc = q["per_class"]
    weak = {w["index"] for w in q["weak_classes"]}
    table = pd.DataFrame({"class": pc["classes"], "test samples": pc["n"], "recall": pc["recall"],
                          "one-vs-rest AUROC": pc["auroc"],
                          "at or near chance": ["yes" if c in weak else "" for c in range(len(pc["classes"]))]})
    text = [f"Per class, on the {pc['n_test']:,} test samples: recall (the share of the class's samples the model "
            f"predicts as it; chance is {pc['chance']:.2f}) and one-vs-rest AUROC. A class is at or near chance when "
            f"its recall is below chance + {RECALL_MARGIN:.2f} or its AUROC below {CLASS_AUROC_FLOOR:.2f}."]
    parts.append(Part(title="Quality per class", text=text, table=table.round(3)))
    if q["class_warning"]:
        parts.append(Part(text=[q["class_warning"]], warn=True))
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
    empty = []
    for c, cname in enumerate(ds.class_names):
        heading = cname if cname.lower().startswith("class") else f"class {cname}"
        present = {m: s[c] for m, s in scores.items() if np.isfinite(s[c]).all()}
        if not present:
            empty.append(cname)
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
    if empty:
        line = (f"{len(empty)} of {ds.n_classes} classes have no evaluated sample, so no gene ranking: "
                f"{'; '.join(empty)}. The scored samples are of other classes; evaluate more samples (--n) for them.")
        missing.append(f"Gene rankings: {line}")
        parts.append(Part(text=[line]))
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
def stored_map_methods(ev) -> list[str]:
    """The methods with maps in the store for this dataset, model and output, at their default parameters."""
    recs = ev.store.provenance(kind="attributions", dataset_fp=ev.dataset_fp, model_hash=ev.model_hash,
                               output=ev.config.output)
    found = []
    for r in recs:
        m = r["method"]
        if m in EXPLAINERS and m not in found and r["method_key"] == params_key(ev.method_key(m)):
            found.append(m)
    return found


def stored_map_samples(ev, methods: list[str], limit: int) -> list[str]:
    """The first ``limit`` test samples (then training samples) whose maps of every one of ``methods`` are stored;
    only the first ``SEARCH`` samples of each split are looked up (the Explanations page offers the first 3,000)."""
    ds = ev.ds
    out: list[str] = []
    for split in (ds.test_idx[:SEARCH], ds.train_idx[:SEARCH]):
        ids = [ds.sample_ids[i] for i in split]
        have = set(ids)
        for m in methods:
            _, miss = ev.stored_attributions(m, np.asarray(split))
            have -= set(miss)
        out += [s for s in ids if s in have][: limit - len(out)]
        if len(out) >= limit:
            break
    return out


def collect(ev, selection: Selection | None = None) -> Report:
    """Everything a report shows, read from ``ev.store``; no explainer, metric or ranking is run.

    The model runs twice, briefly: once over the test split for the per-class quality (cached per checkpoint and
    dataset, ``xai_core.model_quality``), and once over the drawn samples (at most 8) for their rows' predictions.

    Parameters
    ----------
    ev : xai_core.runner.Evaluation
        The dataset, model and results store (its ``config.seed`` and ``config.output`` select the stored cells).
    selection : Selection, optional
        Methods, metrics, samples, sections and how the maps are drawn (default: everything stored, all sections,
        the Explanations page's default drawing).

    Returns
    -------
    Report

    Raises
    ------
    XaiError
        For an unknown section, sample id or drawing choice.
    """
    sel = selection or Selection()
    sel.check()
    ds = ev.ds
    if sel.samples:
        ids = set(ds.sample_ids)
        unknown = [s for s in sel.samples if s not in ids]
        if unknown:
            raise XaiError(f"unknown sample id(s) of {ds.name}: {', '.join(unknown[:5])}; sample ids look like "
                           f"{', '.join(ds.sample_ids[:3])} (list them with python -m xai_core explain --dataset "
                           f"{ds.name} --list-samples)")
    frame = stored_frame(ev, sel.methods, sel.metrics)
    methods = _order(frame["method"], sel.methods) if not frame.empty else []
    metrics = _order(frame["metric"], sel.metrics) if not frame.empty else []
    scored = _scored_samples(ev, frame) if not frame.empty else []
    missing: list[str] = _not_applicable(ev, sel.metrics)
    n = len(scored)
    # what was asked and is not in the store
    applicable = set(applicable_methods(ev.ctx))
    for m in sel.methods or []:
        if m not in applicable:
            missing.append(f"{label(m)}: does not apply to this data or model, so it has no maps or scores.")
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
    explained_methods = [m for m in (sel.methods or methods or stored_map_methods(ev)) if m in applicable]
    samples = list(sel.samples or scored[:DEFAULT_EXPLAINED]
                   or (stored_map_samples(ev, explained_methods, DEFAULT_EXPLAINED) if explained_methods else []))
    if len(samples) > MAX_EXPLAINED:
        missing.append(f"Explanations: {len(samples)} samples were chosen; the first {MAX_EXPLAINED} are drawn (the "
                       f"Explanations page's limit).")
        samples = samples[:MAX_EXPLAINED]
    meta = ev.model_meta
    q = quality(ev)
    data: dict[str, Any] = {"dataset": ds.name, "model": ev.model_name, "checkpoint_hash": ev.model_hash,
                            "dataset_fingerprint": ev.dataset_fp, "sections": list(sel.sections),
                            "methods": methods, "metrics": metrics, "scored_samples": scored,
                            "scored_cells": int(len(frame.groupby(["method", "metric"]))) if not frame.empty else 0,
                            "model_quality": {"model_warning": q["model_warning"], "class_warning": q["class_warning"]}}
    sections: dict[str, list[Part]] = {}
    for s in sel.sections:
        if s == "data":
            sections[s] = _data_section(ev, data, q)
        elif s == "explanations":
            sections[s] = explanations_section(ev, sel, explained_methods, samples, data, missing)
        elif s == "genes":
            parts = _genes_section(ev, methods or explained_methods, scored, data, missing)
            if parts:
                sections[s] = parts
        elif s == "metrics":
            sections[s] = (_metrics_section(ev, frame, methods, metrics, data) if not frame.empty
                           else [Part(text=["No stored scores for this selection: compute them on the Metrics page "
                                            "or with python -m xai_core evaluate (see 'What was not computed')."])])
        elif s == "ranking":
            sections[s] = (_ranking_section(ev, frame, data, missing) if not frame.empty
                           else [Part(text=["No stored scores for this selection, so no ranking: it needs scores of "
                                            "at least two methods (see 'What was not computed')."])])
    commands = {"this report": report_command(ev, sel)}
    if methods and metrics:
        commands["metrics and ranking"] = evaluate_command(ev, methods, metrics, n)
    drawn = (data.get("explanations") or {}).get("methods") or []
    if drawn:
        commands["explanations: exactly the drawn maps (raw, before pooling and normalisation)"] = explain_command(
            ev, drawn, samples, data["explanations"]["aggregate_of"])
    if "provenance" in sel.sections:
        sections["provenance"] = _provenance_section(ev, frame, methods or explained_methods, metrics, sel, data,
                                                     commands)
    data["not_computed"] = missing
    acc = _finite(meta.get("test_accuracy"))
    subtitle = (f"{ds.name} ({ds.modality}) · model {ev.model_name} (checkpoint {ev.model_hash})"
                + (f" · test accuracy {acc:.3f}" if acc is not None else "")
                + (f" · {len(methods)} method(s) × {len(metrics)} metric(s) scored on {n} sample(s)" if n
                   else " · no stored scores")
                + (f" · maps of {len(drawn)} method(s) × {len(samples)} sample(s)" if drawn else ""))
    weak = q["weak_classes"]
    warnings = [w for w in (q["model_warning"] and f"This model is close to chance on {ds.name}: "
                            f"{q['model_warning']}. Its explanations explain a weak model.",
                            weak and f"This model is at or near chance on {len(weak)} of {ds.n_classes} classes "
                            f"({'; '.join(w['class'] for w in weak)}): explanations of their samples describe a model "
                            f"that does not recognise them. See 'Quality per class' under Data and model.") if w]
    return Report(title=f"Explanation report: {ds.name}, {ev.model_name}", subtitle=subtitle, sections=sections,
                  data=data, missing=missing, warnings=warnings)
