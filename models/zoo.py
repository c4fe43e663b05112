"""Which model a dataset uses: shipped checkpoints, a named architecture, or a user's file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from xai_core.data import DATASETS, cache_dir, load_dataset
from xai_core.errors import XaiError

from .architectures import ARCHS
from .checkpoints import SHIPPED_DIR, embedded_metadata, load_checkpoint, read_metadata, verify_shipped
from .model_formats import FORMATS
from .user_models import load_model_file, load_user_model


def shipped_path(dataset: str, arch: str) -> Path:
    """Where the shipped checkpoint of ``arch`` for ``dataset`` is: ``models/checkpoints/DATASET__ARCH.safetensors``."""
    return SHIPPED_DIR / f"{dataset}__{arch}.safetensors"


def available_models(dataset: str) -> list[str]:
    """Architectures with a shipped checkpoint for ``dataset``, default first.

    Parameters
    ----------
    dataset : str
        The dataset's name.

    Returns
    -------
    list of str

    Raises
    ------
    UnknownChoice
        For an unknown dataset.
    """
    default = DATASETS.get(dataset).default_arch
    found = sorted(p.name.split("__", 1)[1].removesuffix(".safetensors")
                   for p in SHIPPED_DIR.glob(f"{dataset}__*.safetensors"))
    return sorted(found, key=lambda a: a != default)


def trained_dir() -> Path:
    """Checkpoints trained by the user (``train`` on their own data, the dashboard's training panel)."""
    return cache_dir() / "app_models"


def trained_path(dataset: str, arch: str, seed: int, epochs: int | None = None) -> Path:
    """Where a model trained for ``dataset`` is saved (``train`` on the user's data, the dashboard's training
    panels): ``DATASET__ARCH-seedS[-eE].safetensors`` under ``trained_dir()``, the names the model picker
    and ``load_model`` look for.

    Parameters
    ----------
    dataset : str
        The dataset's name.
    arch : str
        The architecture's name.
    seed : int
        The training seed.
    epochs : int, optional
        An epoch budget other than the recipe's (the dashboard's choice), recorded in the name.
    """
    return trained_dir() / f"{dataset}__{arch}-seed{seed}{f'-e{epochs}' if epochs else ''}.safetensors"


def trained_checkpoints(dataset: str, fingerprint: str | None = None) -> list[Path]:
    """Checkpoints trained for ``dataset`` by the user (under ``trained_dir()``), newest last.

    With ``fingerprint``, only those trained on exactly that data (a re-imported, changed file under the same
    name makes older ones inapplicable); unreadable checkpoints are then left out.

    Parameters
    ----------
    dataset : str
        The dataset's name.
    fingerprint : str, optional
        ``Dataset.fingerprint()`` of the data the checkpoints must have been trained on (a checkpoint that
        records none is kept).

    Returns
    -------
    list of Path
    """
    d = trained_dir()
    found = sorted(d.glob(f"{dataset}__*.safetensors"), key=lambda p: (p.stat().st_mtime, p.name)) if d.exists() else []
    if fingerprint is None:
        return found
    keep = []
    for p in found:
        try:
            if read_metadata(p).get("dataset_fingerprint") in (None, fingerprint):
                keep.append(p)
        except XaiError:
            continue
    return keep


def load_model(dataset: str, model: str | None = None, device: str = "cpu", *, ds=None,
               meta: dict | str | Path | None = None, code: str | None = None, model_args: dict | None = None,
               output: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Load the model for ``dataset``, with its metadata; ``model`` resolves, in order, to:

    ``None`` = its default shipped checkpoint (for a dataset without one, the newest checkpoint trained on
    exactly this data); a user model registered under that name (``register_model`` in this process, or
    ``import_model`` into the cache folder); an architecture name = the shipped checkpoint of that
    architecture (else the newest trained one); a path to a model file of any supported format
    (``xai_core.models.model_formats``: our ``.safetensors`` checkpoints as before, safetensors or ``.pt`` state
    dicts with an architecture from ``PATH.json`` or ``meta``, ``.pt2`` exported programs, TorchScript).
    A shipped checkpoint is verified against ``models/checkpoints/SHA256SUMS``.

    Parameters
    ----------
    dataset : str
        The dataset's name.
    model : str, optional
        As above.
    device : str
        Where to load the model.
    ds : Dataset, optional
        The dataset if already loaded (user models are checked against it).
    meta : dict or str or Path, optional
        A model file's metadata (architecture, options, output), or a JSON file holding it.
    code : str, optional
        ``"FILE.py:Class"``: builds that class (kwargs ``model_args``) and loads the weights at ``model``.
    model_args : dict, optional
        Keyword arguments for the class of ``code``.
    output : str, optional
        What the model returns (e.g. ``logits``), for a model file.

    Returns
    -------
    tuple of (nn.Module, dict)
        The model in eval mode and its metadata (checkpoint hash, test accuracy ...).

    Raises
    ------
    XaiError
        When no checkpoint of that model exists for the dataset, or a checkpoint was trained on another dataset;
        a model file that does not load or fit the dataset.
    UnknownChoice
        For an unknown dataset.
    """
    spec = DATASETS.get(dataset)
    if code is not None or meta is not None or output is not None:
        return load_model_file(model, dataset, meta=meta, code=code, model_args=model_args, output=output,
                               device=device, ds=ds)
    if model is not None and model not in ARCHS:
        found = load_user_model(model, dataset, device=device, ds=ds)
        if found is not None:
            return found
    if model is not None and model not in ARCHS and (model.endswith(".safetensors") or Path(model).exists()
                                                     or _has_model_suffix(model)):
        path = Path(model)
        if path.suffix != ".safetensors" or _embedded(path) is None:
            return load_model_file(path, dataset, device=device, ds=ds)
    else:
        arch = model or spec.default_arch
        path = shipped_path(dataset, arch)
        if not path.exists():
            trained = _trained_for(dataset, None if model is None else arch)
            if trained is None:
                choices = available_models(dataset)
                hint = f"shipped: {', '.join(choices)}" if choices else "none shipped or trained"
                raise XaiError(f"no checkpoint of model '{arch}' for dataset '{dataset}' ({hint}); train one with "
                               f"`python -m xai_core train --dataset {dataset} --arch {arch}`, or pass a registered "
                               f"model name or a model file")
            path = trained
    verify_shipped(path, SHIPPED_DIR)  # a shipped file must match models/checkpoints/SHA256SUMS
    meta = read_metadata(path)
    if meta.get("dataset") not in (None, dataset):
        raise XaiError(f"checkpoint {path.name} was trained on '{meta['dataset']}', not '{dataset}'")
    return load_checkpoint(path, device=device)


def _has_model_suffix(model: str) -> bool:
    return any(model.lower().endswith(s) for f in FORMATS.values() for s in f.suffixes)


def _embedded(path: Path) -> dict | None:
    """Our metadata in a ``.safetensors`` file; a missing or unreadable file keeps the checkpoint errors."""
    if not path.is_file():
        return {}
    try:
        return embedded_metadata(path)
    except XaiError:
        return {}


def _trained_for(dataset: str, arch: str | None) -> Path | None:
    """The newest checkpoint trained on the current content of ``dataset`` (of ``arch`` if given)."""
    if DATASETS.get(dataset).size == "user":
        found = trained_checkpoints(dataset, load_dataset(dataset).fingerprint())
    else:
        found = trained_checkpoints(dataset)
    if arch is not None:
        found = [p for p in found if p.stem.split("__", 1)[1].split("-seed")[0] == arch]
    return found[-1] if found else None
