"""Which model a dataset uses: shipped checkpoints, a named architecture, or a user's file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from xai_core.errors import XaiError

from .checkpoints import load_checkpoint, read_metadata

SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"


def shipped_path(dataset: str, arch: str) -> Path:
    return SHIPPED_DIR / f"{dataset}__{arch}.safetensors"


def available_models(dataset: str) -> list[str]:
    """Architectures with a shipped checkpoint for ``dataset``, default first."""
    from xai_core.data import DATASETS

    default = DATASETS.get(dataset).default_arch
    found = sorted(p.name.split("__", 1)[1].removesuffix(".safetensors")
                   for p in SHIPPED_DIR.glob(f"{dataset}__*.safetensors"))
    return sorted(found, key=lambda a: a != default)


def trained_dir() -> Path:
    """Checkpoints trained by the user (``train`` on their own data, the dashboard's training panel)."""
    from xai_core.data import cache_dir

    return cache_dir() / "app_models"


def trained_checkpoints(dataset: str, fingerprint: str | None = None) -> list[Path]:
    """Checkpoints trained for ``dataset``, newest last; with ``fingerprint``, only those trained on exactly
    that data (a re-imported, changed file under the same name makes older ones inapplicable)."""
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


def load_model(dataset: str, model: str | None = None, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Load the model for ``dataset``: ``None`` = its default shipped checkpoint (for a dataset without one,
    the newest checkpoint trained on exactly this data), an architecture name = the shipped checkpoint of
    that architecture (else the newest trained one), or a path to a ``.safetensors`` file."""
    from xai_core.data import DATASETS

    spec = DATASETS.get(dataset)
    if model is not None and (model.endswith(".safetensors") or Path(model).exists()):
        path = Path(model)
    else:
        arch = model or spec.default_arch
        path = shipped_path(dataset, arch)
        if not path.exists():
            trained = _trained_for(dataset, None if model is None else arch)
            if trained is None:
                choices = available_models(dataset)
                hint = f"shipped: {', '.join(choices)}" if choices else "none shipped or trained"
                raise XaiError(f"no checkpoint of model '{arch}' for dataset '{dataset}' ({hint}); train one with "
                               f"`python -m xai_core train --dataset {dataset} --arch {arch}`")
            path = trained
    meta = read_metadata(path)
    if meta.get("dataset") not in (None, dataset):
        raise XaiError(f"checkpoint {path.name} was trained on '{meta['dataset']}', not '{dataset}'")
    return load_checkpoint(path, device=device)


def _trained_for(dataset: str, arch: str | None) -> Path | None:
    """The newest checkpoint trained on the current content of ``dataset`` (of ``arch`` if given)."""
    from xai_core.data import DATASETS, load_dataset

    if DATASETS.get(dataset).size == "user":
        found = trained_checkpoints(dataset, load_dataset(dataset).fingerprint())
    else:
        found = trained_checkpoints(dataset)
    if arch is not None:
        found = [p for p in found if p.stem.split("__", 1)[1].split("-seed")[0] == arch]
    return found[-1] if found else None
