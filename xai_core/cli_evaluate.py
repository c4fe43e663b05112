"""``python -m xai_core evaluate`` and ``rank``: the evaluation grid and the ranking of explainers.

``evaluate`` prints the cost estimate before it starts, shows progress, stores every attribution and
score in the results store (resumable), and writes ``DIR/scores.csv`` (tidy, one row per dataset,
model, method, metric and sample) and ``DIR/ranking.csv`` (per method: expected MRR, its 95% interval,
rank probabilities and, when the random control was ranked, ``p_above_control`` and
``not_better_than_random``). It prints the headline worded by the evidence (``ranking_words.headline``) and the
controls floor (``ranking_words.floor_sentence``). ``rank`` re-ranks stored or exported scores with other options.

``evaluate --until decided`` adds samples in rounds until the ranking is decided, the ``--budget`` is spent or the
cap (``--n``, default 64) is reached (``xai_core.adaptive``; the rules in ``xai_core.racing`` and
docs/adaptive.md), prints one line per round, and also writes ``DIR/decision.json``.

``evaluate --executor ray [--address auto|HOST:PORT] [--workers N]`` computes the grid's chunks as Ray tasks
(``xai_core.executors``, docs/ray.md); the results go to the same store.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from . import costs
from .batching import BATCH
from .cli_common import (add_device_flag, add_yes_flag, check_cost, check_out_path, float_range, int_range,
                         name_list, parse_sets, positive_int, seed_int)
from .cli_models import add_model_flags, model_options, resolve_for_evaluation
from .devices import resolve_device
from .errors import XaiError
from .progress import Progress

RANK_COLUMNS = ["dataset", "model", "method", "metric", "sample", "score"]  # what rank needs of a scores.csv
FIXED_N, ADAPTIVE_CAP = 32, 64  # --n when not given: a fixed run's samples; the cap of --until decided
ADAPTIVE_FLAGS = {"confidence": "--confidence", "top_k": "--top-k", "budget": "--budget", "round": "--round",
                  "min_samples": "--min-samples", "race_alpha": "--race-alpha"}


def _dotted(items: list[str] | None, flag: str, registry=None, modalities=()) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` items -> {name: {key: value}}; with ``registry``, names, parameter names, types and
    ranges are checked for every modality in ``modalities`` (an error naming ``flag``, before any work)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, _ = item.partition("=")
        if not sep or "." not in key:
            raise XaiError(f"{flag} '{item}' must look like name.key=value (e.g. {flag} pixel_flipping.fraction=1.0)")
        name, rest = item.split(".", 1)
        if registry is not None and name.strip() not in registry:
            raise XaiError(f"{flag}: unknown {registry.kind} '{name.strip()}'; valid choices: "
                           f"{', '.join(sorted(registry.names()))}")
        out.setdefault(name.strip(), {}).update(parse_sets([rest], flag))
    for name, p in out.items():
        for modality in modalities if registry is not None else ():
            try:
                registry.get(name).params_for(modality, p)
            except XaiError as e:
                raise XaiError(f"{flag} {e}") from None
    return out


def _weights(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        try:
            out[k.strip()] = float(v)
        except ValueError:
            sep = ""
        if not sep or not k.strip():
            raise XaiError(f"--weight '{item}' must look like family=number, e.g. --weight robustness=0.5")
        if not (out[k.strip()] >= 0 and out[k.strip()] < float("inf")):
            raise XaiError(f"--weight {item}: a weight must be a finite number >= 0")
    return out


class _Bars:
    """One progress bar over the plan's cells (each method's attributions, then each of its metrics)."""

    def __init__(self, n_cells: int, label: str):
        self.bar = tqdm(total=n_cells, desc=label, unit="cell", file=sys.stderr, dynamic_ncols=True)
        self.finished: set = set()

    def __call__(self, ev: Progress) -> None:
        key = (ev.method, ev.metric or "(explain)")
        self.bar.set_postfix_str(f"{key[0]} / {key[1]} {ev.done}/{ev.total}"
                                 + (" (stored)" if ev.cached else ""), refresh=False)
        if ev.finished and key not in self.finished and ev.stage != "train":
            self.finished.add(key)
            self.bar.update(1)
        else:
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _per_pass(ev) -> costs.PassCost:
    """The measured per-pass cost of the evaluation's model on this machine (cached in the cache folder)."""
    from .data import cache_dir  # noqa: PLC0415 - scipy (xai_core.data): kept out of the CLI's start-up

    idx = ev.ds.test_idx[:32] if len(ev.ds.test_idx) else ev.ds.train_idx[:32]
    return costs.model_pass_cost(ev.model, ev.ds.X[idx], ev.model_hash, cache_dir())


def _seconds(ev, plan) -> float:
    """The plan's estimated seconds on this machine (``costs.seconds`` at the measured per-pass cost)."""
    return costs.seconds(plan.total_forward, plan.total_backward, _per_pass(ev))


def _rank_and_write(scores, out: Path, args) -> None:
    from .ranking import get_ranker, kendalls_w  # noqa: PLC0415 - torch (through the models): kept out of the CLI's start-up
    from .runner import ranking_input  # noqa: PLC0415 - torch (through the models): kept out of the CLI's start-up
    from .ranking_words import floor_sentence, headline  # noqa: PLC0415 - torch (through the explainers): kept out of the CLI's start-up

    ranked = ranking_input(scores)
    groups = list(ranked.groupby(["dataset", "model"])) if len(ranked) else []
    rows, agreement, headlines = [], {}, {}
    for (dataset, model), frame in groups:
        if frame["method"].nunique() < 2:
            print(f"{dataset}/{model}: fewer than two methods, nothing to rank", file=sys.stderr)
            continue
        opts = dict(weights=_weights(args.weight), per_family=args.per_family)
        if args.ranker == "mrr":
            res = get_ranker("mrr")(frame, n_draws=args.draws, dist=args.dist, seed=args.seed, missing=args.missing,
                                    **opts)
            t = res.table.copy()
            for r in res.rank_probabilities.columns:
                t[f"p_rank_{r}"] = res.rank_probabilities[r]
            for m, why in res.dropped.items():
                print(f"{dataset}/{model}: metric {m} left out of the ranking: {why}", file=sys.stderr)
            headlines[f"{dataset}/{model}"] = [s for s in (headline(res), floor_sentence(res)) if s]
        else:
            t = get_ranker(args.ranker)(frame, missing=args.missing, **opts)
        t.insert(0, "model", model)
        t.insert(0, "dataset", dataset)
        t = t.reset_index().rename(columns={"index": "method"})
        rows.append(t[["dataset", "model", "method"]
                      + [c for c in t.columns if c not in ("dataset", "model", "method")]])
        try:  # methods with no finite score at all (e.g. an all-zero map) cannot be judged by any metric
            scored = frame.groupby("method")["score"].apply(lambda v: np.isfinite(v).any())
            agreement[f"{dataset}/{model}"] = kendalls_w(frame[frame["method"].isin(scored[scored].index)])
        except XaiError as e:
            agreement[f"{dataset}/{model}"] = {"note": str(e)}
    import pandas as pd  # noqa: PLC0415 - pandas: kept out of the CLI's start-up

    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "ranking.csv", index=False)
    (out / "agreement.json").write_text(json.dumps(agreement, indent=2, default=float))
    if len(table):
        show = [c for c in ("dataset", "model", "method", "mrr", "mrr_lo", "mrr_hi", "mean_rank", "borda", "rank")
                if c in table.columns]
        print(table[show].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        for k, w in agreement.items():
            if "W" in w:
                print(f"{k}: Kendall's W = {w['W']:.3f} over {w['n_metrics']} metrics (p = {w['p_value']:.3g})")
        for k, lines in headlines.items():
            for line in lines:
                print(f"{k}: {line}")
    print(f"wrote {out / 'ranking.csv'}", file=sys.stderr)


def _rule(args, datasets: list[str]):
    """The adaptive run's ``DecisionRule`` from the flags, checked before any work (None without --until)."""
    given = [flag for key, flag in ADAPTIVE_FLAGS.items() if getattr(args, key) is not None]
    if args.until is None:
        if given:
            raise XaiError(f"{', '.join(given)} only apply with --until decided; add --until decided or leave "
                           f"{'them' if len(given) > 1 else 'it'} out")
        return None
    from .racing import DecisionRule, parse_budget  # noqa: PLC0415 - torch (through the explainers): kept out of the CLI's start-up

    if len(datasets) != 1:
        raise XaiError(f"--until decided adapts to one dataset's ranking; give a single --dataset (got "
                       f"{', '.join(datasets)})")
    if args.ranker != "mrr":
        raise XaiError(f"--until decided decides on the Monte Carlo ranking; drop --ranker {args.ranker} (use "
                       "`rank --ranker ...` on the result afterwards)")
    secs, passes = parse_budget(args.budget) if args.budget is not None else (None, None)
    cap = args.n if args.n is not None else ADAPTIVE_CAP
    opt = {k: getattr(args, k) for k in ("confidence", "top_k", "race_alpha") if getattr(args, k) is not None}
    if args.round is not None:
        opt["round_size"] = args.round
    if args.min_samples is not None:
        opt["min_samples"] = args.min_samples
    elif cap < DecisionRule.min_samples:
        opt["min_samples"] = cap
    if opt.get("min_samples", DecisionRule.min_samples) > cap:
        raise XaiError(f"--min-samples {opt['min_samples']} is above the cap --n {cap}; raise --n or lower "
                       "--min-samples")
    return DecisionRule(max_samples=cap, budget_s=secs, budget_passes=passes, n_draws=args.draws, dist=args.dist,
                        missing=args.missing, seed=args.seed, weights=_weights(args.weight),
                        per_family=args.per_family, **opt).check()


class _RoundBar:
    """A terminal bar over the cells an adaptive run computes, and one printed line per round."""

    def __init__(self, label: str):
        self.bar = tqdm(desc=label, unit="cell", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, ev: Progress) -> None:
        if ev.stage == "round":
            self.bar.set_description_str(ev.message, refresh=True)
            return
        self.bar.set_postfix_str(f"{ev.method} / {ev.metric or '(explain)'} {ev.done}/{ev.total}"
                                 + (" (stored)" if ev.cached else ""), refresh=False)
        if ev.finished and ev.stage != "train":
            self.bar.update(1)

    def write(self, line: str) -> None:
        self.bar.write(line)

    def close(self) -> None:
        self.bar.close()


def _run_adaptive(ev, plan, rule, out: Path, per_pass, started: float, runner=None) -> tuple:
    """Run ``ev`` in rounds until decided (the budget counts from ``started``, the command's start); print a line
    per round; write decision.json. Returns (all scores of the samples used, the scores ranked)."""
    from .adaptive import AdaptiveRun, EvaluationGrid  # noqa: PLC0415 - torch (through the runner): kept out of the CLI's start-up

    run = AdaptiveRun(EvaluationGrid(ev, rule.max_samples, per_pass, plan=plan, runner=runner), rule,
                      started=started)
    bar = _RoundBar(ev.ds.name)
    run.progress = bar
    try:
        for rec in run.rounds():
            bar.write(f"{ev.ds.name}: {rec.line()}")
    finally:
        bar.close()
    print(f"{ev.ds.name}: {run.sentence}")
    decision = {"dataset": ev.ds.name, "model": ev.model_name, **run.decision()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "decision.json").write_text(json.dumps(decision, indent=2, default=_json_value))
    print(f"wrote {out / 'decision.json'} (stopped because: {run.stopped_because})", file=sys.stderr)
    return run.scores, run.ranked_scores


def _json_value(v):
    """numpy numbers and other odd values in decision.json: as plain numbers, else as text."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def cmd_evaluate(args) -> int:
    started = time.perf_counter()  # an adaptive run's time budget counts from here: loading and planning count
    import pandas as pd  # noqa: PLC0415 - pandas: kept out of the CLI's start-up

    from .data import DATASETS  # noqa: PLC0415 - scipy (xai_core.data): kept out of the CLI's start-up
    from .runner import EvalConfig, Evaluation  # noqa: PLC0415 - torch (through the models): kept out of the CLI's start-up
    from .store import SCORE_COLUMNS, ResultStore, default_store_path  # noqa: PLC0415 - pandas (xai_core.store): kept out of the CLI's start-up

    from .explainers import EXPLAINERS  # noqa: PLC0415 - torch, captum (xai_core.explainers): kept out of the CLI's start-up
    from .executors import ExecutorOptions, prepare  # noqa: PLC0415 - torch (through the runner): kept out of the CLI's start-up
    from .metrics import METRICS  # noqa: PLC0415 - torch (xai_core.metrics): kept out of the CLI's start-up

    datasets = ([n for n in DATASETS.names() if DATASETS.get(n).size != "user"] if args.dataset == "all"
                else list(dict.fromkeys(d.strip() for d in args.dataset.split(",") if d.strip())))  # "all": bundled
    if not datasets:
        raise XaiError("--dataset names no dataset; give a dataset, a comma list, or 'all'")
    for d in datasets:
        DATASETS.get(d)
    # before any work: lists, parameters (names, types, ranges), output paths
    methods = name_list(args.methods, "--methods", EXPLAINERS.names(), "method")
    metrics = name_list(args.metrics, "--metrics", METRICS.names(), "metric")
    modalities = sorted({DATASETS.get(d).modality for d in datasets})
    method_params = _dotted(args.param, "--param", EXPLAINERS, modalities)
    metric_params = _dotted(args.metric_param, "--metric-param", METRICS, modalities)
    _weights(args.weight)
    rule = _rule(args, datasets)
    n = (rule.max_samples if rule else args.n) or FIXED_N
    check_out_path(args.out, "--out", kind="dir")
    check_out_path(args.store, "--store", kind="file")
    device = resolve_device(args.device)
    if model_options(args) and len(datasets) > 1:
        raise XaiError("--model-code/--weights/--model-meta/--model-output name one model of one dataset; "
                       "give a single --dataset")
    runner = prepare(ExecutorOptions(args.executor, args.address, args.workers), adaptive=rule is not None,
                     population_seeds=args.population_seeds, device=device)
    model = resolve_for_evaluation(args) if model_options(args) else args.model
    store_path = Path(args.store) if args.store else default_store_path()
    out = Path(args.out)
    frames, ranked = [], []
    with ResultStore(store_path) as store, runner:
        planned = []  # every dataset is planned (and its cost checked) before any is computed
        for d in datasets:
            cfg = EvalConfig(dataset=d, model=model, methods=methods, metrics=metrics, n=n,
                             split=args.split, only_correct=not args.include_misclassified, output=args.output,
                             batch_size=args.batch_size, forward_batch=args.forward_batch, seed=args.seed,
                             method_params=method_params, metric_params=metric_params,
                             population_seeds=args.population_seeds, population_epochs=args.population_epochs,
                             device=device)
            ev = Evaluation(cfg, store)
            if (ev.model_meta.get("checks") or {}).get("warning"):
                print(f"warning: {d}: {ev.model_meta['checks']['warning']}", file=sys.stderr)
            plan = ev.plan()
            took = _seconds(ev, plan)
            passes = plan.total_forward + plan.total_backward
            if rule is not None:  # at most the cap's grid, at most the budget
                bound = min([passes, rule.budget_passes or passes]
                            + ([passes * rule.budget_s / took] if rule.budget_s and took > 0 else []))
                took, passes = took * bound / passes if passes else took, bound
            if not args.dry_run:  # before any plan is printed or run: a refusal is one line
                check_cost(passes, f"evaluating {d} ({costs.format_seconds(took)} on this machine)", args.yes)
            planned.append((d, ev, plan, took))
        total = sum(p.total_forward + p.total_backward for _, _, p, _ in planned)
        if not args.dry_run and len(planned) > 1:  # (never adaptive: --until takes one dataset)
            took = sum(t for *_, t in planned)
            check_cost(total, f"evaluating {len(planned)} datasets ({', '.join(datasets)}; "
                              f"{costs.format_seconds(took)} on this machine)", args.yes)
        for d, ev, plan, _took in planned:
            if len(plan.sample_idx) < n:  # not silent: fewer samples than asked for
                print(f"note: {d}: --n {n}: only {len(plan.sample_idx)} {args.split} samples (of those "
                      f"eligible) are available; using {len(plan.sample_idx)}", file=sys.stderr)
            print(plan.describe(), file=sys.stderr)
            if rule is not None:
                print(f"{d}: adaptive, at most the grid above: {rule.describe()}", file=sys.stderr)
            print(f"{d}: {costs.describe(plan.total_forward, plan.total_backward, _per_pass(ev))} on this machine, "
                  "before reuse of stored results", file=sys.stderr)
            if args.dry_run:
                per = plan.cost.groupby("metric")[["forward", "backward"]].sum().sort_values("forward", ascending=False)
                print(per.to_string(float_format=lambda v: f"{v:,.0f}"), file=sys.stderr)
                continue
            t0 = time.perf_counter()
            if rule is not None:
                done, used = _run_adaptive(ev, plan, rule, out, _per_pass(ev), started, runner)
                frames.append(done)
                ranked.append(used)
            else:
                bars = _Bars(len(plan.methods) * (1 + len(plan.metrics)), d)
                try:
                    frames.append(runner.run(ev, plan, progress=bars))
                finally:
                    bars.close()
                ranked.append(frames[-1])
            print(f"{d}: done in {time.perf_counter() - t0:.1f} s (store: {store_path})", file=sys.stderr)
    if args.dry_run:
        return 0
    scores = pd.concat(frames, ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    scores[[c for c in SCORE_COLUMNS if c in scores.columns]].to_csv(out / "scores.csv", index=False)
    n_nan = int(scores["score"].isna().sum())
    print(f"wrote {out / 'scores.csv'} ({len(scores)} rows, {n_nan} NaN with reasons)", file=sys.stderr)
    _rank_and_write(pd.concat(ranked, ignore_index=True), out, args)
    return 0


def cmd_rank(args) -> int:
    import pandas as pd  # noqa: PLC0415 - pandas: kept out of the CLI's start-up

    from .store import ResultStore, default_store_path  # noqa: PLC0415 - pandas (xai_core.store): kept out of the CLI's start-up

    check_out_path(args.out, "--out", kind="dir")
    _weights(args.weight)
    wanted = None
    if args.metrics is not None:
        wanted = list(dict.fromkeys(m.strip() for m in args.metrics.split(",") if m.strip()))
        if not wanted:
            raise XaiError("--metrics names no metric; give a comma list of metrics in the scores, or leave it out")
    if args.scores:
        path = Path(args.scores)
        if not path.is_file():
            raise XaiError(f"--scores {path}: no such file; write one with `python -m xai_core evaluate --out DIR`")
        try:
            scores = pd.read_csv(path, dtype={"sample": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise XaiError(f"--scores {path} is not a readable CSV ({type(e).__name__}); give the scores.csv "
                           f"written by evaluate") from None
        absent = [c for c in RANK_COLUMNS if c not in scores.columns]
        if absent:
            raise XaiError(f"--scores {path} lacks column(s) {', '.join(absent)}; it needs "
                           f"{', '.join(RANK_COLUMNS)} (the scores.csv written by evaluate)")
    else:
        store_path = Path(args.store) if args.store else default_store_path()
        if not store_path.is_file():
            raise XaiError(f"--store {store_path}: no results store there; run `python -m xai_core evaluate` first "
                           f"or pass --store FILE")
        with ResultStore(store_path) as store:
            scores = store.scores_frame(dataset=args.dataset, model=args.model)
    if args.dataset:
        if len(scores) and args.dataset not in set(scores["dataset"]):
            raise XaiError(f"--dataset {args.dataset}: no scores for it; the scores hold: "
                           f"{', '.join(sorted(map(str, scores['dataset'].unique())))}")
        scores = scores[scores["dataset"] == args.dataset]
    if args.model and args.scores:
        if args.model not in set(scores["model"].astype(str)):
            raise XaiError(f"--model {args.model}: no scores for it; the scores hold: "
                           f"{', '.join(sorted(map(str, scores['model'].unique())))}")
        scores = scores[scores["model"].astype(str) == args.model]
    if wanted:
        unknown = [m for m in wanted if m not in set(scores["metric"])]
        if unknown and len(scores):
            raise XaiError(f"--metrics: no scores for metric(s) {', '.join(unknown)}; the scores hold: "
                           f"{', '.join(sorted(map(str, scores['metric'].unique())))}")
        scores = scores[scores["metric"].isin(wanted)]
    if len(scores):
        values = pd.to_numeric(scores["score"], errors="coerce")
        n_inf = int(np.isinf(values.to_numpy(float)).sum())
        if n_inf:
            print(f"note: {n_inf} infinite score(s) treated as missing (not ranked on)", file=sys.stderr)
    if not len(scores):
        raise XaiError("no scores to rank for this selection; check --dataset / --metrics or run evaluate first")
    keys = [c for c in ("dataset", "model", "method", "metric") if c in scores.columns]
    if {"method_key", "metric_key"} <= set(scores.columns):
        n_keys = scores.groupby(keys)[["method_key", "metric_key"]].nunique().max(axis=1)
        clash = n_keys[n_keys > 1]
        if len(clash):
            d, m, meth, met = clash.index[0]
            raise XaiError(f"the store holds several parameter settings of {meth} / {met} on {d}/{m}; rank the "
                           f"scores.csv of one evaluate run instead (--scores DIR/scores.csv)")
    _rank_and_write(scores, Path(args.out), args)
    return 0


def add_parsers(sub) -> None:
    def ranking_options(p):
        p.add_argument("--ranker", choices=["mrr", "mean_rank", "borda"], default="mrr")
        p.add_argument("--draws", type=int_range(1, 1_000_000), default=10_000,
                       help="Monte Carlo draws (mrr), 1 to 1,000,000")
        p.add_argument("--dist", choices=["normal", "bootstrap"], default="normal",
                       help="per-metric score distribution: normal with the standard error, or paired bootstrap")
        p.add_argument("--weight", action="append", metavar="FAMILY=W", help="family weight, e.g. robustness=0.5")
        p.add_argument("--per-family", action="store_true", help="split a family's weight among its metrics")
        p.add_argument("--missing", choices=["drop", "worst"], default="worst",
                       help="a method with no score on a metric (e.g. a constant map, whose similarity is undefined): "
                            "rank it last on that metric (default), or leave the metric out for every method")

    e = sub.add_parser("evaluate", help="score explanations with every applicable metric and rank the methods")
    e.add_argument("--dataset", required=True, help="a bundled dataset, a comma list, or 'all'")
    e.add_argument("--model", help="an architecture with a checkpoint, a model name of yours, or a model file")
    e.add_argument("--methods", default="all")
    e.add_argument("--metrics", default="all", help="'all' (every applicable metric) or a comma list")
    e.add_argument("--n", type=positive_int, help=f"samples per dataset (default {FIXED_N}); with --until decided the "
                                                  f"cap (default {ADAPTIVE_CAP})")
    e.add_argument("--split", choices=["test", "train", "all"], default="test")
    e.add_argument("--include-misclassified", action="store_true",
                   help="also evaluate samples the model gets wrong (default: correct ones only, as the studies)")
    e.add_argument("--output", choices=["logit", "probability"], default="logit", help="model output explained")
    e.add_argument("--batch-size", type=positive_int, default=BATCH.batch_size,
                   help="samples per metric call (memory knob)")
    e.add_argument("--forward-batch", type=int_range(0, 1 << 20), default=BATCH.forward_batch,
                   help="inputs per forward pass inside metrics (default: by input size, e.g. 64 for 64x64 images)")
    e.add_argument("--seed", type=seed_int, default=0)
    e.add_argument("--param", action="append", metavar="METHOD.KEY=VALUE")
    e.add_argument("--metric-param", action="append", metavar="METRIC.KEY=VALUE")
    e.add_argument("--population-seeds", type=int_range(0, 100), default=0, metavar="K",
                   help="train K more models (seeds 1..K, cached) for the ranking-stability metric")
    e.add_argument("--population-epochs", type=int_range(1, 100_000), help="cap the population models' training epochs")
    e.add_argument("--store", help="results database (default: $XAI_CORE_STORE or ~/.cache/xai_core/results.sqlite)")
    e.add_argument("--dry-run", action="store_true", help="print the plan and its cost, compute nothing")
    e.add_argument("--out", required=True)
    a = e.add_argument_group("adaptive evaluation (docs/adaptive.md)")
    a.add_argument("--until", choices=["decided"],
                   help="add samples in rounds until the ranking is decided, the budget is spent or the cap --n is "
                        "reached; writes decision.json")
    a.add_argument("--confidence", type=float_range(0.5, 1, lo_open=True, hi_open=True),
                   help="stop when the leader's P(rank 1) or P(top-k set) reaches this (default 0.9)")
    a.add_argument("--top-k", type=int_range(1, 1000), help="the k of the top-k rule and of racing (default 3)")
    a.add_argument("--budget", metavar="10m|600s|5000passes",
                   help="stop when this is spent: a time (s, m, h) and/or forward+backward passes, comma-separated")
    a.add_argument("--round", type=int_range(1, 10_000), help="samples added per round (default 4)")
    a.add_argument("--min-samples", type=int_range(1, 100_000),
                   help="no decision and no racing before this many samples (default 8)")
    a.add_argument("--race-alpha", type=float_range(0, 0.5, hi_open=True),
                   help="racing: a method whose P(rank <= k) is below this / rounds loses the re-explaining "
                        "metrics (default 0.01; 0 turns racing off)")
    x = e.add_argument_group("executor (docs/ray.md)")
    x.add_argument("--executor", default="local",
                   help="where the grid is computed: local (this process, the default) or ray (Ray tasks)")
    x.add_argument("--address", metavar="auto|HOST:PORT",
                   help="ray: join this cluster (auto: the one `ray start` runs here); default: start a local one")
    x.add_argument("--workers", type=positive_int, metavar="N",
                   help="ray: workers, one CPU each (default: this machine's CPUs, or the cluster's)")
    add_device_flag(e)
    add_model_flags(e)
    ranking_options(e)
    add_yes_flag(e)
    e.set_defaults(fn=cmd_evaluate)

    r = sub.add_parser("rank", help="re-rank stored scores with other options")
    r.add_argument("--scores", help="a scores.csv written by evaluate (default: read the results store)")
    r.add_argument("--store")
    r.add_argument("--dataset")
    r.add_argument("--model")
    r.add_argument("--metrics", help="comma list of metrics to rank on")
    r.add_argument("--seed", type=seed_int, default=0)
    r.add_argument("--out", required=True)
    ranking_options(r)
    r.set_defaults(fn=cmd_rank)
