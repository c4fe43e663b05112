"""Checkpoints as safetensors: tensors plus a JSON metadata record. Loading never unpickles."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from xai_core.errors import XaiError

from .architectures import build_model

META_KEY = "xai_core"


def save_checkpoint(model: nn.Module, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write the model's state dict and ``meta`` (must hold arch, arch_kwargs, input_shape, n_classes)."""
    for key in ("arch", "arch_kwargs", "input_shape", "n_classes"):
        if key not in meta:
            raise ValueError(f"checkpoint metadata needs '{key}'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={META_KEY: json.dumps(meta, default=str)})
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise XaiError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as e:  # corrupt or not a safetensors file
        raise XaiError(f"{path} is not a readable safetensors checkpoint ({e}); re-train or re-download it") from None
    if raw is None:
        raise XaiError(f"{path} has no xai_core metadata; save it with models.save_checkpoint")
    return json.loads(raw)


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the architecture from the metadata and load the weights (strict), in eval mode."""
    meta = read_metadata(path)
    model = build_model(meta["arch"], tuple(meta["input_shape"]), meta["n_classes"], **meta["arch_kwargs"])
    model.load_state_dict(load_file(str(path), device=device), strict=True)
    meta["checkpoint_hash"] = checkpoint_hash(path)
    meta["path"] = str(path)
    return model.to(device).eval(), meta


def checkpoint_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
