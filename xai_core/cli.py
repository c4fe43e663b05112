"""Command line: ``python -m xai_core {datasets,import,train,explain,evaluate,rank,metrics,study}``
(datasets/import: ``cli_data``; evaluate/rank: ``cli_evaluate``; metrics: ``cli_metrics``; study: ``cli_study``).

User mistakes (unknown dataset / model / method, a method that does not fit the data) end with one
line naming the valid choices and exit code 2; nothing prints a traceback unless ``--debug``.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .batching import BATCH
from .cli_common import (OneLineParser, add_device_flag, add_yes_flag, check_cost, check_out_path, int_range,
                         name_list, parse_sets, positive_int, seed_int)
from .cli_data import add_parsers as add_data
from .cli_evaluate import add_parsers as add_evaluate
from .cli_export import add_parser as add_export
from .cli_methods import add_parser as add_methods
from .cli_metrics import add_parser as add_metrics
from .cli_models import add_model_flags, model_options
from .cli_models import add_parsers as add_models
from .cli_report import add_parser as add_report
from .cli_store import add_parser as add_store
from .cli_study import add_parser as add_study
from . import explain_files
from .devices import resolve_device
from .progress import epoch_bar
from .errors import XaiError


def cmd_train(args) -> int:
    # late imports: torch, through the models, loads only when a command needs it
    from xai_core.models import ARCHS, shipped_path, train_cached, trained_path  # noqa: PLC0415 - torch (xai_core.models): kept out of the CLI's start-up
    from xai_core.models.checkpoints import checkpoint_hash  # noqa: PLC0415 - torch (xai_core.models): kept out of the CLI's start-up
    from xai_core.models.training import check_recipe  # noqa: PLC0415 - torch (xai_core.models): kept out of the CLI's start-up

    from .data import DATASETS, load_dataset  # noqa: PLC0415 - scipy (xai_core.data): kept out of the CLI's start-up

    spec = DATASETS.get(args.dataset)
    device = resolve_device(args.device)
    arch = args.arch or spec.default_arch
    ARCHS.get(arch)
    recipe = parse_sets(args.set, "--set")
    if args.epochs is not None:
        recipe["epochs"] = args.epochs
    check_recipe(arch, recipe)  # before any work: types and ranges of lr, epochs, batch_size, ...
    arch_kwargs = parse_sets(args.arch_option, "--arch-option")
    _check_arch_options(arch, arch_kwargs)
    check_out_path(args.out, "--out", kind="file")
    ds = load_dataset(args.dataset)
    _check_model_size(arch, arch_kwargs, ds)
    if args.out:
        out = Path(args.out)
    elif args.ship:
        out = shipped_path(args.dataset, arch)
    elif spec.size == "user":  # where explain/evaluate and the dashboard look for a model of your data
        out = trained_path(args.dataset, arch, args.seed)
    else:
        out = Path("runs") / f"{args.dataset}__{arch}__seed{args.seed}.safetensors"
    with epoch_bar(f"train {arch} on {args.dataset}") as progress:
        report = train_cached(ds, arch, out, seed=args.seed, arch_kwargs=arch_kwargs, recipe=recipe, device=device,
                              progress=progress, reuse=False).report
    print(f"{report.metric_name} {report.metric_value:.4f} (accuracy {report.test_accuracy:.4f}, "
          f"best epoch {report.best_epoch}/{report.epochs_run}, {report.seconds:.1f} s) -> {out} "
          f"[sha256 {checkpoint_hash(out)}]")
    return 0


def cmd_explain(args) -> int:
    import torch  # noqa: PLC0415 - torch: kept out of the CLI's start-up

    from xai_core.models import load_model  # noqa: PLC0415 - torch (xai_core.models): kept out of the CLI's start-up

    from .data import DATASETS, load_dataset  # noqa: PLC0415 - scipy (xai_core.data): kept out of the CLI's start-up
    from .explainers import EXPLAINERS, estimate_cost, explain_many, make_context, resolve_methods  # noqa: PLC0415 - torch, captum (xai_core.explainers): kept out of the CLI's start-up

    torch.manual_seed(args.seed)
    modality = DATASETS.get(args.dataset).modality
    if args.samples is not None and (args.n is not None or args.split is not None):
        raise XaiError("--samples names the samples itself; give it without --n and --split (or drop --samples to "
                       "explain the first --n samples of --split)")
    if args.list_samples:
        return _list_samples(load_dataset(args.dataset), args.split or "test", args.n)
    if not args.out:
        raise XaiError("explain needs --out DIR: the folder where attributions.npz and manifest.json are written")
    out = explain_files.check_out_dir(args.out)  # before any work: a file or an unwritable folder is refused
    wanted_ids = _sample_list(args.samples) if args.samples is not None else None
    wanted = name_list(args.methods, "--methods", EXPLAINERS.names(), "method")
    params = parse_method_params(args.param, wanted, modality)  # names, types and ranges: before any work
    device = resolve_device(args.device)
    model_options(args)  # before any work: --weights / --model-meta / --model-code files exist, flags combine
    ds = load_dataset(args.dataset)
    idx, split = (_samples_idx(ds, wanted_ids) if wanted_ids is not None  # before the model: ids are checked
                  else _split_idx(ds, args.split or "test", args.n or DEFAULT_N))
    model, meta = load_model(args.dataset, args.weights or args.model, device=device, ds=ds, **model_options(args))
    if (meta.get("checks") or {}).get("warning"):
        print(f"warning: {meta['checks']['warning']}", file=sys.stderr)
    ctx = make_context(model, ds, seed=args.seed, output=args.output)
    methods = resolve_methods(wanted, ctx)
    for m in params:
        if m not in methods:
            raise XaiError(f"--param names method '{m}', which is not among the methods run: {', '.join(methods)}")
    x = torch.as_tensor(ds.X[idx], device=device)
    with torch.no_grad():
        z = model(x)
        pred = (z.argmax(1) if z.shape[1] > 1 else (z[:, 0] > 0).long()).cpu().numpy()
    targets = ds.y[idx] if args.target == "label" else pred
    costs = {m: estimate_cost(m, ctx, len(idx), **params.get(m, {})) for m in methods}
    total_fwd = sum(c["forward"] for c in costs.values())
    total_bwd = sum(c["backward"] for c in costs.values())
    check_cost(total_fwd + total_bwd, f"explaining {len(idx)} samples with {len(methods)} method(s)", args.yes)
    print(f"{len(methods)} methods x {len(idx)} samples of {args.dataset}: about {total_fwd:,.0f} forward and "
          f"{total_bwd:,.0f} backward passes", file=sys.stderr)
    bar = tqdm(total=len(idx) * len(methods), desc="explain", unit="sample", file=sys.stderr)
    done: dict[str, int] = {}

    def progress(e) -> None:  # a Progress of stage "explain"
        bar.set_postfix_str(e.method)
        bar.update(e.done - done.get(e.method, 0))
        done[e.method] = e.done

    t0 = time.perf_counter()
    results = explain_many(ctx, x, targets, methods, explain_batch=args.batch_size, progress=progress, params=params)
    bar.close()
    arrays = {m: e.attributions.cpu().numpy() for m, e in results.items()}
    info = {m: {"params": e.params, "seconds": round(e.seconds, 4), "cost": costs[m], "wraps": EXPLAINERS.get(m).wraps,
                **_summarise(e.extras)} for m, e in results.items()}
    manifest = explain_files.manifest(ds, meta, idx=idx, targets=targets, predictions=pred, methods=info,
                                      output=args.output, split=split, target=args.target, seed=args.seed,
                                      device=device, command=" ".join(sys.argv),
                                      seconds_total=time.perf_counter() - t0)
    explain_files.write(out, arrays, manifest)
    print(f"wrote {out / 'attributions.npz'} and {out / 'manifest.json'} ({manifest['seconds_total']:.1f} s)")
    return 0


DEFAULT_N = 32  # explain: samples when neither --n nor --samples is given


def _split_idx(ds, split: str, n: int) -> tuple[np.ndarray, str]:
    """The first ``n`` samples of ``split`` (a note when fewer are available)."""
    idx = {"test": ds.test_idx, "train": ds.train_idx}[split][:n]
    if not len(idx):
        raise XaiError(f"--split {split}: {ds.name} has no {split} samples; use the other split")
    if len(idx) < n:  # not silent: say that fewer samples than asked for are explained
        print(f"note: --n {n}: only {len(idx)} {split} samples are available; using {len(idx)}", file=sys.stderr)
    return idx, split


def _sample_list(value: str) -> list[str]:
    """``--samples``: a comma list of ids, empty items dropped, duplicates removed, order kept."""
    names = list(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
    if not names:
        raise XaiError("--samples names no sample; give a comma list of sample ids, e.g. --samples grain:1,grain:8 "
                       "(list them with --list-samples)")
    return names


def _samples_idx(ds, names: list[str]) -> tuple[np.ndarray, str]:
    """``--samples``: the row of each id, in the order given, and the split(s) they belong to; an unknown id is one
    error naming it and how to list the valid ones."""
    pos = {sid: i for i, sid in enumerate(ds.sample_ids)}
    unknown = [s for s in names if s not in pos]
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise XaiError(f"--samples: unknown sample id(s) of {ds.name}: {', '.join(unknown[:5])}{more}; its ids look "
                       f"like {', '.join(ds.sample_ids[:3])}; list them with python -m xai_core explain --dataset "
                       f"{ds.name} --list-samples [--split train]")
    idx = np.array([pos[s] for s in names], dtype=np.int64)
    test = np.isin(idx, ds.test_idx)
    split = "test" if test.all() else "train" if np.isin(idx, ds.train_idx).all() else "test+train"
    return idx, split


def _list_samples(ds, split: str, n: int | None) -> int:
    """``--list-samples``: one line per sample of ``split`` (the first ``n``): id, class, split."""
    idx = {"test": ds.test_idx, "train": ds.train_idx}[split][:n]
    print("sample_id\tclass\tsplit")
    for i in idx:
        print(f"{ds.sample_ids[i]}\t{ds.class_names[ds.y[i]]}\t{split}")
    print(f"{len(idx)} {split} sample(s) of {ds.name}; explain some with --samples ID,ID,...", file=sys.stderr)
    return 0


def parse_method_params(items: list[str] | None, methods, modality: str) -> dict[str, dict]:
    """``--param METHOD.KEY=VALUE`` -> {method: {key: value}}, names, types and ranges checked for ``modality``."""
    from .explainers import EXPLAINERS  # noqa: PLC0415 - torch, captum (xai_core.explainers): kept out of the CLI's start-up

    params: dict[str, dict] = {}
    for item in items or []:
        key, sep, _ = item.partition("=")
        if not sep or "." not in key:
            raise XaiError(f"--param '{item}' must look like method.key=value (e.g. integrated_gradients.n_steps=100)")
        method = key.split(".", 1)[0].strip()
        if method not in EXPLAINERS:
            raise XaiError(f"--param: unknown method '{method}'; "
                           f"valid choices: {', '.join(sorted(EXPLAINERS.names()))}")
        if methods != "all" and method not in methods:
            raise XaiError(f"--param names method '{method}', which is not among the methods run: {', '.join(methods)}")
        params.setdefault(method, {}).update(parse_sets([item.split(".", 1)[1]], "--param"))
    for m, p in params.items():
        try:
            EXPLAINERS.get(m).params_for(modality, p)
        except XaiError as e:
            raise XaiError(f"--param {e}") from None
    return params


def _check_arch_options(arch: str, options: dict) -> None:
    """``--arch-option``: known names, and whole-number sizes / dropout rates in range."""
    from xai_core.models import ARCHS  # noqa: PLC0415 - torch (xai_core.models): kept out of the CLI's start-up

    defaults = ARCHS.get(arch).defaults
    unknown = set(options) - set(defaults)
    if unknown:
        raise XaiError(f"--arch-option: unknown option(s) of {arch}: {', '.join(sorted(unknown))}; valid: "
                       f"{', '.join(sorted(defaults)) or 'none'}")
    for k, v in options.items():
        d = defaults[k]
        if isinstance(d, bool):
            if not isinstance(v, bool):
                raise XaiError(f"--arch-option {k} must be true or false, got {v!r}")
        elif isinstance(d, int):
            if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1_000_000):
                raise XaiError(f"--arch-option {k} must be a whole number in [1, 1_000_000], got {v!r}")
        elif isinstance(d, float):
            lo, hi = (0.0, 1.0) if "dropout" in k or "momentum" in k else (0.0, float("inf"))
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v < hi
            if not ok:
                raise XaiError(f"--arch-option {k} must be a number in [{lo:g}, {hi:g}), got {v!r}")


def _check_model_size(arch: str, options: dict, ds) -> None:
    """Count the model's parameters without allocating them (meta device); refuse a runaway size."""
    from xai_core.models.architectures import MAX_PARAMETERS, parameter_count  # noqa: PLC0415 - torch (xai_core.models): kept out of the CLI's start-up

    try:
        n = parameter_count(arch, ds.input_shape, ds.n_classes, **options)
    except (TypeError, ValueError, RuntimeError) as e:
        raise XaiError(f"--arch-option: {arch} cannot be built with {options}: {e}") from None
    if n > MAX_PARAMETERS:
        raise XaiError(f"--arch-option: {arch} with {options} would have {n:,} parameters "
                       f"(at most {MAX_PARAMETERS:,}); choose smaller sizes")


def _summarise(extras: dict) -> dict:
    out = {}
    for k, v in extras.items():
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            out[k] = {"mean": float(np.mean(np.abs(v))), "max": float(np.max(np.abs(v))), "per_sample": v.tolist()}
        elif isinstance(v, list) and v and isinstance(v[0], list):
            out[k] = v[0]
    return out


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m xai_core", description="Explain and audit models on biological data.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    add_data(sub)
    t = sub.add_parser("train", help="train a built-in model on a bundled or imported dataset")
    t.add_argument("--dataset", required=True)
    t.add_argument("--arch", help="architecture (default: the dataset's default)")
    t.add_argument("--seed", type=seed_int, default=0)
    t.add_argument("--epochs", type=int_range(1, 100_000))
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="training option, e.g. lr=0.01")
    t.add_argument("--arch-option", action="append", metavar="KEY=VALUE",
                   help="architecture option, e.g. batchnorm=false")
    t.add_argument("--out", help="checkpoint path (.safetensors)")
    t.add_argument("--ship", action="store_true", help="write to models/checkpoints as the shipped checkpoint")
    add_device_flag(t)
    t.set_defaults(fn=cmd_train)
    e = sub.add_parser("explain", help="attribute a model's predictions with one or more methods")
    e.add_argument("--dataset", required=True)
    e.add_argument("--model", help="an architecture with a checkpoint, a model name of yours, or a model file "
                                    "(.safetensors, .pt2, TorchScript, .pt)")
    e.add_argument("--methods", default="all", help="'all' or a comma list")
    e.add_argument("--n", type=positive_int, help=f"explain the first N samples of --split (default {DEFAULT_N})")
    e.add_argument("--split", choices=["test", "train"], help="the split --n counts from (default test)")
    e.add_argument("--samples", metavar="ID[,ID...]",
                   help="explain exactly these samples, in this order (any split; instead of --n and --split)")
    e.add_argument("--list-samples", action="store_true", dest="list_samples",
                   help="print the sample ids of --split (id, class, split; the first --n with --n) and exit")
    e.add_argument("--target", choices=["label", "pred"], default="label", help="explain the true or predicted class")
    e.add_argument("--output", choices=["logit", "probability"], default="logit", help="model output explained")
    e.add_argument("--batch-size", type=positive_int, default=BATCH.explain_batch)
    e.add_argument("--seed", type=seed_int, default=0)
    e.add_argument("--param", action="append", metavar="METHOD.KEY=VALUE", help="e.g. integrated_gradients.n_steps=100")
    e.add_argument("--out", help="the folder for attributions.npz and manifest.json (required unless --list-samples)")
    add_device_flag(e)
    add_model_flags(e)
    add_yes_flag(e)
    e.set_defaults(fn=cmd_explain)
    add_metrics(sub)
    add_evaluate(sub)
    add_methods(sub)
    add_study(sub)
    add_export(sub)
    add_models(sub)
    add_store(sub)
    add_report(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # a bad flag (one line already printed, exit 2) or --help (exit 0)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    warnings.filterwarnings("ignore")  # captum/zennit chatter; real problems raise
    try:
        return args.fn(args)
    except XaiError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (TypeError, ValueError) as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        if args.debug:
            raise
        print("error: out of memory; lower --n, --batch-size or the method/metric parameters "
              "(the cost estimate printed above says what the run needs)", file=sys.stderr)
        return 2
    except Exception as e:  # pragma: no cover - last resort for real bugs, still one line
        if args.debug:
            raise
        print(f"internal error (a bug in xai_core): {type(e).__name__}: {e}; please report it with the command "
              f"you ran and the traceback from rerunning it with --debug (python -m xai_core --debug ...)",
              file=sys.stderr)
        return 1
