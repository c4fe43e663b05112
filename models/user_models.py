"""Your own models: any ``nn.Module`` registered in Python, or a model file imported into the cache folder.

``register_model(name, module, dataset=...)`` makes ``Evaluation(EvalConfig(dataset=..., model=name), store)``
work for the life of the process; ``import_model(path, name, dataset)`` copies a model file (see
``xai_core.models.model_formats``) into ``$XAI_CORE_CACHE/user_models/NAME/`` with an ``entry.json`` so the CLI and the
dashboard find it after a restart. Both run ``check_model`` first: the model must take the dataset's inputs and
give one output per class (or one for a binary task); test accuracy and a chance-level flag are recorded.

Store keys: an in-memory module is keyed by ``state_dict_hash`` (its weights and class name), a file by its
bytes and how it is read (``model_formats.file_digest``), so the same model gets the same key in every run.
``output="probabilities"``: the module returns class probabilities; the engine sees ``log(clamp(p))``, whose
softmax is p again (``ProbabilitiesAsLogits``); that choice is part of the key.
"""
from __future__ import annotations

import json
import math
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xai_core.data import cache_dir, load_dataset
from xai_core.data.user_common import check_name
from xai_core.errors import XaiError
from xai_core.fsutil import swap_in

from .architectures import ARCHS
from .checkpoints import state_dict_hash
from .model_formats import (
    FORMATS,
    OUTPUTS,
    ExportedModule,
    LoadRequest,
    ModelCheckError,
    ModelFileError,
    PickleRefused,
    ProbabilitiesAsLogits,
    file_digest,
    is_eager,
    load_file,
    parse_code,
)

__all__ = [
    "CHANCE_MIN_MARGIN",
    "CHANCE_Z",
    "ModelCheckError",
    "ModelFileError",
    "PickleRefused",
    "check_model",
    "checks_from_meta",
    "find_model",
    "import_model",
    "load_model_file",
    "load_user_model",
    "register_model",
    "register_model_file",
    "remove_model",
    "user_models",
]

CHANCE_Z = 2.0  # chance-level margin: this many binomial standard errors of the majority share ...
CHANCE_MIN_MARGIN = 0.02  # ... and at least this much accuracy
CHECK_MAX_SAMPLES = 20_000  # test samples used for the recorded accuracy (the first ones of the test split)

_LOCK = threading.Lock()
_REGISTERED: dict[str, tuple[nn.Module, dict[str, Any]]] = {}  # name -> (module, model_meta); this process


def user_models_dir() -> Path:
    return cache_dir() / "user_models"


# -- checks ------------------------------------------------------------------------------------------
def _device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _expects(model: nn.Module, err: Exception) -> str:
    """What input the model wants, from its first layer (or the traced shape), else torch's own words."""
    traced = next((m.input_shape for m in model.modules() if isinstance(m, ExportedModule) and m.input_shape), None)
    if traced:
        return "inputs of shape (N, " + ", ".join("?" if s < 0 else str(s) for s in traced) + ")"
    dims = {"Linear": "", "Conv1d": ", L", "Conv2d": ", H, W"}
    for m in model.modules():  # TorchScript submodules keep their class as ``original_name``
        kind = type(m).__name__ if type(m).__name__ in dims else getattr(m, "original_name", "")
        w = getattr(m, "weight", None)
        if kind in dims and isinstance(w, torch.Tensor) and w.ndim >= 2:
            return f"inputs of shape (N, {w.shape[1]}{dims[kind]}) (its first {kind} layer)"
    first = (str(err).strip().splitlines() or [type(err).__name__])[-1][:160]
    first = first.removeprefix(f"{type(err).__name__}: ")
    return f"other inputs ({type(err).__name__}: {first})"


def _shape(ds) -> str:
    return "(N, " + ", ".join(str(s) for s in ds.input_shape) + ")"


def _chance(acc: float | None, y: np.ndarray, name: str) -> dict[str, Any]:
    n = len(y)
    share = float(np.bincount(y).max() / n) if n else float("nan")
    margin = max(CHANCE_MIN_MARGIN, CHANCE_Z * math.sqrt(share * (1 - share) / n)) if n else float("nan")
    chance = None if acc is None or not n else bool(acc <= share + margin)
    warning = None
    if chance:
        warning = (f"test accuracy {acc:.3f} is not above the majority-class share {share:.3f} + margin {margin:.3f} "
                   f"on '{name}': the model predicts at chance level, so its explanations describe noise")
    return {"majority_share": share, "chance_margin": margin, "chance_level": chance, "warning": warning,
            "margin_rule": f"max({CHANCE_MIN_MARGIN}, {CHANCE_Z} x binomial standard error of the majority share)"}


@torch.no_grad()
def check_model(model: nn.Module, ds, max_samples: int = CHECK_MAX_SAMPLES) -> dict[str, Any]:
    """Does ``model`` fit ``ds``? Checks the input shape and output size, then the test accuracy.

    Returns the test accuracy and a chance-level flag (accuracy not above the majority share + margin, see
    ``CHANCE_Z`` and ``CHANCE_MIN_MARGIN``).

    Parameters
    ----------
    model : nn.Module
        The model (put in eval mode).
    ds : Dataset
        The data it must fit.
    max_samples : int
        Test samples used for the recorded accuracy (the first ones of the test split); 0 checks the shapes only.

    Returns
    -------
    dict
        ``input_ok``, ``input_shape``, ``output_ok``, ``n_outputs``, ``n_classes``, ``test_accuracy``, ``n_test``,
        ``dataset_fingerprint``, ``majority_share``, ``chance_margin``, ``chance_level``, ``warning`` (also for
        NaN or infinite outputs) and ``margin_rule``.

    Raises
    ------
    ModelCheckError
        (one line, an ``XaiError``) for a wrong input shape or output size.
    """
    model.eval()
    dev = _device(model)
    idx = ds.test_idx if len(ds.test_idx) else np.arange(len(ds))
    x2 = torch.as_tensor(np.asarray(ds.X[idx[:2]], dtype=np.float32), device=dev)
    try:
        z = model(x2)
    except Exception as e:  # noqa: BLE001 - shape errors come as RuntimeError, AssertionError (guards), ...
        raise ModelCheckError(f"model expects {_expects(model, e)}, dataset '{ds.name}' gives inputs of shape "
                              f"{_shape(ds)}") from None
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[0] != len(x2):
        got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ModelCheckError(f"model returns {got} for a batch of {len(x2)}; it must return (N, outputs) "
                              f"logits or probabilities for dataset '{ds.name}'")
    k, c = int(z.shape[1]), ds.n_classes
    if not (k == c or (k == 1 and c == 2)):
        raise ModelCheckError(f"model gives {k} output(s) per sample; dataset '{ds.name}' has {c} classes, so it "
                              f"needs {c} outputs" + (" (or 1 for a binary task)" if c == 2 else ""))
    use = idx[:max_samples]
    correct, finite = 0, True
    for i in range(0, len(use), 256):
        b = use[i:i + 256]
        out = model(torch.as_tensor(np.asarray(ds.X[b], dtype=np.float32), device=dev)).float()
        finite &= bool(torch.isfinite(out).all())
        pred = (out[:, 0] > 0).long() if k == 1 else out.argmax(1)
        correct += int((pred.cpu().numpy() == ds.y[b]).sum())
    acc = correct / len(use) if len(use) else None
    out = {"source": "check_model", "input_ok": True, "input_shape": list(ds.input_shape), "output_ok": True,
           "n_outputs": k, "n_classes": c, "test_accuracy": acc, "n_test": len(use),
           "dataset_fingerprint": ds.fingerprint(), **_chance(acc, ds.y[use], ds.name)}
    if not finite:
        out["warning"] = "; ".join(w for w in (out["warning"], "the model gives NaN or infinite outputs") if w)
    return out


def checks_from_meta(meta: dict[str, Any], ds) -> dict[str, Any]:
    """The same record for a shipped or trained checkpoint, from the test accuracy stored at training (its
    architecture was built for this dataset's shape, so the shape checks hold by construction)."""
    acc = meta.get("test_accuracy")
    out = {"source": "checkpoint metadata", "input_ok": True, "input_shape": list(ds.input_shape), "output_ok": True,
           "n_classes": ds.n_classes, "test_accuracy": acc, "n_test": len(ds.test_idx),
           "dataset_fingerprint": meta.get("dataset_fingerprint")}
    return {**out, **_chance(acc, ds.y[ds.test_idx], ds.name)}


# -- names, outputs, metadata ----------------------------------------------------------------------------
def _output(output: str | None) -> str:
    o = {"logit": "logits", "probability": "probabilities"}.get(output or "logits", output or "logits")
    if o not in OUTPUTS:
        raise XaiError(f"model output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    return o


def _check_name(name: str) -> str:
    try:
        check_name(name)
    except XaiError:
        raise XaiError(f"model name {name!r} is not usable; use 1-64 letters, digits, '-', '_' or '.', "
                       f"starting with a letter or digit") from None
    if name in ARCHS:
        raise XaiError(f"'{name}' is a built-in architecture; choose another model name")
    if any(name.lower().endswith(s) for f in FORMATS.values() for s in f.suffixes):
        raise XaiError(f"model name '{name}' looks like a file name; choose a name without a model suffix")
    return name


def _wrap(module: nn.Module, output: str) -> nn.Module:
    return ProbabilitiesAsLogits(module) if output == "probabilities" else module


def _meta(name: str, kind: str, ds, model: nn.Module, key: str, output: str, checks: dict, **extra) -> dict:
    arch = extra.pop("arch", None)
    builtin = arch in ARCHS if arch else False
    return {"model_name": name, "user_model": True, "kind": kind, "arch": arch or extra.get("class_name"),
            "builtin_arch": builtin, "arch_kwargs": extra.pop("arch_kwargs", None) if builtin else None,
            "checkpoint_hash": key, "dataset": ds.name,
            "dataset_fingerprint": checks.get("dataset_fingerprint") or ds.fingerprint(), "output": output,
            "eager": is_eager(model), "checks": checks, "test_accuracy": checks.get("test_accuracy"),
            "input_shape": list(ds.input_shape), "n_classes": ds.n_classes, "seed": None, **extra}


def _read_meta_arg(meta: dict | str | Path | None) -> dict | None:
    if meta is None or isinstance(meta, dict):
        return meta
    try:
        out = json.loads(Path(meta).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelFileError(f"--model-meta {meta} is not readable JSON ({e})") from None
    if not isinstance(out, dict):
        raise ModelFileError(f"--model-meta {meta} must hold an object like "
                             f"{{\"arch\": \"mlp\", \"arch_kwargs\": {{}}}}")
    return out


# -- in-process registration -----------------------------------------------------------------------------
def register_model(name: str, module: nn.Module, *, dataset: str, output: str = "logits") -> dict[str, Any]:
    """Register any ``nn.Module`` for ``dataset`` (bundled or imported) under ``name`` for this process.

    Checks run now (a wrong shape fails here); ``Evaluation(EvalConfig(dataset=..., model=name), store)`` then
    works for the life of the process.

    Parameters
    ----------
    name : str
        1-64 letters, digits, ``-``, ``_`` or ``.``; not an architecture's name.
    module : nn.Module
        The model.
    dataset : str
        The dataset it was trained for.
    output : str
        ``"logits"``, or ``"probabilities"`` when it returns class probabilities (the engine explains ``log p``,
        see the module doc).

    Returns
    -------
    dict
        The model's metadata incl. ``checks``.

    Raises
    ------
    XaiError
        For an unusable name, a ``module`` that is not an ``nn.Module``, or an unknown ``output``.
    ModelCheckError
        When the model does not fit the dataset.
    """
    name, output = _check_name(name), _output(output)
    if not isinstance(module, nn.Module):
        raise XaiError(f"register_model needs a torch.nn.Module, got {type(module).__name__}")
    ds = load_dataset(dataset)
    model = _wrap(module, output)
    checks = check_model(model, ds)
    key = state_dict_hash(module)
    if output != "logits":
        key = file_digest([], {"state_dict_hash": key, "output": output})
    meta = _meta(name, "registered", ds, model, key, output, checks, class_name=type(module).__qualname__,
                 format="python")
    with _LOCK:
        _REGISTERED[name] = (model, meta)
    return dict(meta)


def load_model_file(path: str | Path | None, dataset: str, *, meta: dict | str | Path | None = None,
                    code: str | None = None, model_args: dict[str, Any] | None = None, output: str | None = None,
                    device: str = "cpu", ds=None, name: str | None = None, known_checks: dict | None = None
                    ) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model file of any supported format for ``dataset`` and check it.

    The input and output shapes are checked always; the accuracy pass unless ``known_checks`` are given.

    Parameters
    ----------
    path : str or Path, optional
        The model file; with ``code``, its weights file (None is refused with a ``ModelFileError``).
    dataset : str
        The dataset it must fit.
    meta : dict or str or Path, optional
        The architecture, its options and the output, or a JSON file holding them (for state dicts).
    code : str, optional
        ``"FILE.py:Class"``: the class to build.
    model_args : dict, optional
        Keyword arguments for the class of ``code``.
    output : str, optional
        ``"logits"`` or ``"probabilities"``; default from ``meta`` or the file, else logits.
    device : str
        Where to load the model.
    ds : Dataset, optional
        The dataset if already loaded.
    name : str, optional
        The name recorded in the metadata (default from the file or class).
    known_checks : dict, optional
        Checks from an import, for the same data: they skip the accuracy pass.

    Returns
    -------
    tuple of (nn.Module, dict)
        ``(model, model_meta)`` like ``load_model``.

    Raises
    ------
    ModelFileError
        A file that cannot be read (corrupt, unknown format, missing architecture, mismatched weights, or content
        that would have to be unpickled: ``PickleRefused``); ``--model-meta`` that is not a JSON object.
    ModelCheckError
        When the model does not fit the dataset.
    XaiError
        For an unknown ``output``.
    """
    ds = ds if ds is not None else load_dataset(dataset)
    meta_d = _read_meta_arg(meta)
    path = Path(path) if path is not None else None
    req = LoadRequest(path, tuple(ds.input_shape), ds.n_classes, meta=meta_d, code=code, model_args=model_args,
                      device=device)
    module, info = load_file(req)
    side = meta_d or {}
    output = _output(output or side.get("output") or info.get("output"))
    model = _wrap(module, output)
    checks = check_model(model, ds, max_samples=0) if known_checks else check_model(model, ds)
    checks = {**checks, **known_checks} if known_checks else checks
    files = [p for p in (path, parse_code(code)[0] if code else None) if p is not None]
    config = {"format": info["format"], "arch": info.get("arch"), "arch_kwargs": info.get("arch_kwargs"),
              "class_name": info.get("class_name"), "model_args": info.get("model_args"), "output": output}
    key = file_digest(files, config)
    extra = {k: v for k, v in info.items() if k not in ("eager",)}
    if info["format"] in ("pt2", "torchscript"):
        extra.setdefault("class_name", getattr(module, "original_name", None) or info["format"])
    default_name = (Path(code.rpartition(":")[2]).name if code else path.stem) if (code or path) else "model"
    out_meta = _meta(name or default_name, "file", ds, model, key, output, checks, path=str(path) if path else None,
                     **extra)
    return model, out_meta


def register_model_file(name: str, path: str | Path | None, dataset: str, **kwargs: Any) -> dict[str, Any]:
    """Load and check a model file (same options as ``load_model_file``) and register it for this process."""
    name = _check_name(name)
    model, meta = load_model_file(path, dataset, name=name, **kwargs)
    meta["kind"] = "registered"
    with _LOCK:
        _REGISTERED[name] = (model, meta)
    return dict(meta)


# -- persistent registration (the cache folder) ----------------------------------------------------------
def _entry_path(name: str) -> Path:
    return user_models_dir() / name / "entry.json"


def _read_entry(name: str) -> dict[str, Any] | None:
    p = _entry_path(name)
    try:
        return json.loads(p.read_text()) if p.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def import_model(path: str | Path | None, name: str, dataset: str, *, meta: dict | str | Path | None = None,
                 code: str | None = None, model_args: dict[str, Any] | None = None, output: str | None = None,
                 replace: bool = True) -> dict[str, Any]:
    """Check a model file and keep a copy under ``$XAI_CORE_CACHE/user_models/NAME/`` with an ``entry.json``.

    The entry records the format, key, dataset and its fingerprint, output, eager or not, and the checks. With
    ``code`` ("FILE.py:Class") ``path`` is the weights file and the code file is copied too (it runs on every
    load). The CLI and the dashboard find the model after a restart.

    Parameters
    ----------
    path : str or Path, optional
        The model file (the weights file with ``code``).
    name : str
        1-64 letters, digits, ``-``, ``_`` or ``.``; not an architecture's name.
    dataset : str
        The dataset it must fit.
    meta : dict or str or Path, optional
        As for ``load_model_file``.
    code : str, optional
        ``"FILE.py:Class"``: the class to build.
    model_args : dict, optional
        Keyword arguments for the class of ``code``.
    output : str, optional
        ``"logits"`` or ``"probabilities"``.
    replace : bool
        Replace an imported model of that name; False refuses it.

    Returns
    -------
    dict
        The entry.

    Raises
    ------
    XaiError
        For an unusable name, or an existing one when ``replace`` is False.
    ModelFileError, ModelCheckError
        As for ``load_model_file``.
    """
    name = _check_name(name)
    if not replace and _read_entry(name) is not None:
        raise XaiError(f"a model named '{name}' exists; choose another name or remove it")
    _, m = load_model_file(path, dataset, meta=meta, code=code, model_args=model_args, output=output, name=name)
    root = user_models_dir()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.tmp-{time.time_ns()}"
    tmp.mkdir()
    files = {}
    if path is not None:
        src = Path(path)
        files["model"] = "model" + "".join(src.suffixes[-1:])
        shutil.copyfile(src, tmp / files["model"])
    if code:
        files["code"] = "code.py"
        shutil.copyfile(parse_code(code)[0], tmp / "code.py")
    entry = {"name": name, "format": m["format"], "files": files, "hash": m["checkpoint_hash"],
             "dataset": m["dataset"], "dataset_fingerprint": m["dataset_fingerprint"], "output": m["output"],
             "eager": m["eager"], "arch": m.get("arch"), "arch_kwargs": m.get("arch_kwargs"),
             "meta": _read_meta_arg(meta) or ({"arch": m["arch"], "arch_kwargs": m["arch_kwargs"]}
                                              if m.get("builtin_arch") else None),
             "class_name": m.get("class_name"), "model_args": m.get("model_args"),
             "source": str(Path(path).resolve()) if path else None, "code_source": code,
             "checks": m["checks"], "imported": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (tmp / "entry.json").write_text(json.dumps(entry, indent=2, default=str))
    swap_in(tmp, root / name)
    with _LOCK:
        _REGISTERED.pop(name, None)  # the imported entry replaces an in-process one of that name
    return entry


def remove_model(name: str) -> None:
    """Forget a registered model (this process) and delete an imported one (the cache folder).

    Parameters
    ----------
    name : str
        The model's name.

    Raises
    ------
    XaiError
        When there is no user model of that name.
    """
    with _LOCK:
        had = _REGISTERED.pop(name, None) is not None
    folder = user_models_dir() / name
    if folder.is_dir() and (folder / "entry.json").exists():
        shutil.rmtree(folder)
    elif not had:
        raise XaiError(f"no user model named '{name}'; yours: {', '.join(e['name'] for e in user_models()) or 'none'}")


def user_models(dataset: str | None = None) -> list[dict[str, Any]]:
    """Registered (this process) and imported models, optionally only those for ``dataset``: one summary each.

    Parameters
    ----------
    dataset : str, optional
        Only the models for this dataset.

    Returns
    -------
    list of dict
        ``name``, ``where`` (``process`` or ``imported``), ``dataset``, ``format``, ``hash``, ``output``, ``eager``,
        ``checks`` and, for imports, the rest of the entry.
    """
    with _LOCK:
        reg = {n: m for n, (_, m) in _REGISTERED.items()}
    out = [{"name": n, "where": "process", "dataset": m["dataset"], "format": m.get("format"),
            "hash": m["checkpoint_hash"], "output": m["output"], "eager": m["eager"], "checks": m["checks"]}
           for n, m in reg.items()]
    root = user_models_dir()
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        e = _read_entry(d.name) if d.is_dir() and not d.name.startswith(".") else None
        if e is not None and d.name not in reg:
            out.append({"where": "imported", **e})
    return [e for e in out if dataset is None or e["dataset"] == dataset]


def find_model(name: str) -> dict[str, Any] | None:
    """The summary of user model ``name`` (registered or imported), or None."""
    return next((e for e in user_models() if e["name"] == name), None)


def load_user_model(name: str, dataset: str, device: str = "cpu", ds=None
                    ) -> tuple[nn.Module, dict[str, Any]] | None:
    """``(model, model_meta)`` of user model ``name`` for ``dataset``; None when no such model exists."""
    with _LOCK:
        reg = _REGISTERED.get(name)
    entry = None if reg is not None else _read_entry(name)
    if reg is None and entry is None:
        return None
    reg_ds = reg[1]["dataset"] if reg is not None else entry["dataset"]
    if reg_ds != dataset:
        raise XaiError(f"model '{name}' is registered for dataset '{reg_ds}', not '{dataset}'")

    ds = ds if ds is not None else load_dataset(dataset)
    if reg is not None:
        model, meta = reg
        meta = dict(meta)
        fp = ds.fingerprint()
        if meta["dataset_fingerprint"] != fp:  # the user's data was re-imported: check again
            meta["checks"] = check_model(model, ds)
            meta.update(dataset_fingerprint=fp, test_accuracy=meta["checks"]["test_accuracy"])
        if _device(model) != torch.device(device):
            model = model.to(device)
        return model, meta
    folder = user_models_dir() / name
    files = entry.get("files", {})
    model_file = folder / files["model"] if files.get("model") else None
    code = f"{folder / files['code']}:{entry['class_name']}" if files.get("code") else None
    checks = entry.get("checks") or {}
    known = checks if checks.get("dataset_fingerprint") == ds.fingerprint() else None
    model, meta = load_model_file(model_file, dataset, meta=entry.get("meta"), code=code,
                                  model_args=entry.get("model_args"), output=entry.get("output"), device=device,
                                  ds=ds, name=name, known_checks=known)
    if meta["checkpoint_hash"] != entry["hash"]:
        raise XaiError(f"imported model '{name}' in {folder} changed on disk (its key differs from the one "
                       f"recorded); import it again")
    meta.update(kind="imported", source=entry.get("source"))
    return model, meta
