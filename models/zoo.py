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


def load_model(dataset: str, model: str | None = None, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Load the model for ``dataset``: ``None`` = its default shipped checkpoint, an architecture
    name = the shipped checkpoint of that architecture, or a path to a ``.safetensors`` file."""
    from xai_core.data import DATASETS

    spec = DATASETS.get(dataset)
    if model is not None and (model.endswith(".safetensors") or Path(model).exists()):
        path = Path(model)
    else:
        arch = model or spec.default_arch
        path = shipped_path(dataset, arch)
        if not path.exists():
            choices = available_models(dataset)
            hint = f"shipped: {', '.join(choices)}" if choices else "none shipped"
            raise XaiError(f"no checkpoint of model '{arch}' for dataset '{dataset}' ({hint}); train one with "
                           f"`python -m xai_core train --dataset {dataset} --arch {arch}` and pass its path")
    meta = read_metadata(path)
    if meta.get("dataset") not in (None, dataset):
        raise XaiError(f"checkpoint {path.name} was trained on '{meta['dataset']}', not '{dataset}'")
    return load_checkpoint(path, device=device)
