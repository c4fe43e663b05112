"""Checkpoints as safetensors: tensors plus a JSON metadata record. Loading never unpickles."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
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


def embedded_metadata(path: str | Path) -> dict[str, Any] | None:
    """Our metadata record of a safetensors file, or None for a plain safetensors file (corrupt: XaiError)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as e:  # noqa: BLE001 - corrupt or not a safetensors file
        raise XaiError(f"{path.name} is not a readable safetensors file ({e})") from None
    try:
        return json.loads(raw) if raw is not None else None
    except json.JSONDecodeError:
        raise XaiError(f"{path.name} has damaged xai_core metadata (not JSON)") from None


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


def state_dict_hash(model: nn.Module) -> str:
    """Key of an in-memory model: its state dict (sorted names; each tensor's dtype, shape and bytes) and its
    class name. The same weights in a new object of the same class give the same key, in any process."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, t in sorted(model.state_dict().items()):
        if not isinstance(t, torch.Tensor):  # a module's extra state
            h.update(f"|{name}|{t!r}|".encode())
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]
