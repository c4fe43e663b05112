"""Models trained from the dashboard: saved as safetensors under the cache, listed in the model picker."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from xai_core.models.zoo import trained_checkpoints, trained_dir  # noqa: F401  (the model picker lists these)


def train_and_save(dataset: str, arch: str, seed: int, epochs: int | None = None,
                   progress: Callable[[int, int, dict], None] | None = None,
                   device: str | None = None) -> tuple[Path, dict]:
    """Train ``arch`` on ``dataset`` with the architecture's recipe (optionally fewer epochs) and save it.

    ``device``: ``cpu`` or ``cuda``; the sidebar's choice when not given (``cpu`` without CUDA). The saved
    checkpoint holds CPU tensors either way."""
    from xai_core.models import save_checkpoint, train_model
    from xai_core.models.training import checkpoint_meta
    from xai_core.cli_common import resolve_device
    from xai_core.data import load_dataset

    from .state import current_device

    device = resolve_device(device or current_device())
    ds = load_dataset(dataset)
    overrides = {"epochs": int(epochs)} if epochs else {}
    model, report = train_model(ds, arch, seed=seed, device=device, progress=progress, **overrides)
    path = trained_dir() / f"{dataset}__{arch}-seed{seed}{f'-e{epochs}' if epochs else ''}.safetensors"
    save_checkpoint(model, path, checkpoint_meta(ds, arch, {}, report))
    return path, report.to_dict()
