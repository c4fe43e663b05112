"""Command line for a user's own models: the model flags of ``explain``/``evaluate`` and ``import-model``/``models``.

``--model PATH`` takes any supported file (safetensors + architecture, ``.pt2``, TorchScript, ``.pt`` state
dict); ``--model-meta FILE`` gives the architecture for a bare state dict; ``--model-code FILE.py:Class
--weights W`` builds your own class (Python only, never from the browser: it runs code); ``--model-output
probabilities`` says the model ends in a softmax/sigmoid. ``import-model`` checks a file once (input shape,
output size, test accuracy, chance level) and keeps a copy in the cache folder, so every command and the
dashboard's model list know it by name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .cli_common import parse_sets
from .errors import XaiError


def add_model_flags(p) -> None:
    p.add_argument("--model-meta",
                   help="JSON with the architecture of a state-dict file: {\"arch\": ..., \"arch_kwargs\": ...}")
    p.add_argument("--model-code", metavar="FILE.py:Class", help="build your own class from a Python file (runs it)")
    p.add_argument("--weights", help="the weights for --model-code (safetensors or a .pt state dict)")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="keyword argument of --model-code's class")
    p.add_argument("--model-output", choices=["logits", "probabilities"],
                   help="what your model returns (default logits); probabilities are turned into log-probabilities")


MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".pt2", ".ts", ".ckpt", ".bin")


def _must_exist(value: str | None, flag: str, what: str) -> None:
    if value and not Path(value).is_file():
        why = "is a folder" if Path(value).is_dir() else "does not exist"
        raise XaiError(f"{flag} {value}: {why}; give the path of an existing {what} file")


def check_model_paths(args) -> None:
    """Before any work: ``--weights``, ``--model-meta``, ``--model-code``'s file and a ``--model`` that looks like
    a file path must be existing files; one line naming the flag."""
    _must_exist(getattr(args, "weights", None), "--weights", "weights (.safetensors or .pt)")
    _must_exist(getattr(args, "model_meta", None), "--model-meta", "JSON")
    code = getattr(args, "model_code", None)
    if code:
        file, sep, _ = code.rpartition(":")
        if sep and file:  # the form FILE.py:Class itself is checked by the loader
            _must_exist(file, "--model-code", "Python (FILE.py:Class)")
    model = getattr(args, "model", None)
    if model and (model.lower().endswith(MODEL_SUFFIXES) or "/" in model or "\\" in model):
        _must_exist(model, "--model", "model")


def model_options(args) -> dict[str, Any]:
    """The loader options the flags give (empty when none is set: the plain ``--model`` behaviour)."""
    check_model_paths(args)
    if args.weights and not args.model_code:
        raise XaiError("--weights goes with --model-code FILE.py:Class; for a weights file alone use --model PATH")
    if args.model_code and not args.weights:
        raise XaiError("--model-code needs --weights (a safetensors or .pt state dict of that class)")
    if args.model_arg and not args.model_code:
        raise XaiError("--model-arg goes with --model-code")
    opts = {"meta": args.model_meta, "code": args.model_code,
            "model_args": parse_sets(args.model_arg, "--model-arg") or None, "output": args.model_output}
    return {k: v for k, v in opts.items() if v is not None}


def resolve_for_evaluation(args) -> str | None:
    """``evaluate`` names its model in the config: register a file loaded with extra options under a name."""
    opts = model_options(args)
    if not opts:
        return args.model
    from xai_core.models import register_model_file  # noqa: PLC0415 - torch (xai_core.models): kept out of the CLI's start-up

    path = args.weights or args.model
    name = "cli-" + (opts.get("code", "").rpartition(":")[2] or (path and Path(path).stem) or "model")
    register_model_file(name, path, args.dataset, **opts)
    return name


def cmd_import_model(args) -> int:
    from xai_core.models import import_model  # noqa: PLC0415 - torch (xai_core.models): kept out of the CLI's start-up

    if args.path and args.model_code:
        raise XaiError(f"import-model {args.path}: with --model-code the weights come from --weights; "
                       f"leave out the model path")
    if not args.path and not args.model_code:
        raise XaiError("import-model needs the model file: python -m xai_core import-model FILE --name NAME "
                       "--dataset DATASET (or --model-code FILE.py:Class --weights W)")
    _must_exist(args.path, "import-model", "model")
    opts = model_options(args)
    entry = import_model(args.weights or args.path, args.name, args.dataset, **opts)
    checks = entry.get("checks", {})
    acc = checks.get("test_accuracy")
    eager = ("eager" if entry.get("eager") else
             "not eager (TorchScript/exported: LRP, GradCAM and the other hook-based methods are left out)")
    print(f"{args.name}: {entry.get('format')} model for {args.dataset} [hash {entry.get('hash')}], {eager}")
    if acc is not None:
        print(f"test accuracy {acc:.3f}" + (f", balanced {checks['test_balanced_accuracy']:.3f}"
                                            if checks.get("test_balanced_accuracy") is not None else ""))
    if checks.get("warning"):
        print(f"warning: {checks['warning']}")
    print(f"use it with --dataset {args.dataset} --model {args.name}")
    return 0


def cmd_models(args) -> int:
    from xai_core.models import remove_model, user_models  # noqa: PLC0415 - torch (xai_core.models): kept out of the CLI's start-up

    if args.remove:
        remove_model(args.remove)
        print(f"removed your model '{args.remove}'")
        return 0
    rows = user_models(args.dataset)
    if not rows:
        print("no models of yours" + (f" for {args.dataset}" if args.dataset else "")
              + "; add one with python -m xai_core import-model FILE --name NAME --dataset DATASET")
        return 0
    for r in rows:
        acc = (r.get("checks") or {}).get("test_accuracy")
        print(f"{r['name']:<24} {r.get('dataset', ''):<20} {r.get('format', ''):<12} "
              f"{'' if acc is None else f'accuracy {acc:.3f}'}")
    return 0


def add_parsers(sub) -> None:
    i = sub.add_parser("import-model", help="check your own model file once and keep it under a name")
    i.add_argument("path", nargs="?", help="the model file (not needed with --model-code ... --weights)")
    i.add_argument("--name", required=True)
    i.add_argument("--dataset", required=True, help="the dataset it classifies (bundled or imported)")
    add_model_flags(i)
    i.set_defaults(fn=cmd_import_model)
    m = sub.add_parser("models", help="list your imported models; --remove NAME removes one")
    m.add_argument("--dataset")
    m.add_argument("--remove", metavar="NAME")
    m.set_defaults(fn=cmd_models)
