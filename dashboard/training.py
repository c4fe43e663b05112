"""Models trained from the dashboard: saved as safetensors under the cache, listed in the model picker."""
from __future__ import annotations

from pathlib import Path

from xai_core.devices import resolve_device
from xai_core.data import load_dataset
from xai_core.models import train_cached, trained_path
from xai_core.models.zoo import trained_checkpoints, trained_dir  # noqa: F401  (the model picker lists these)
from xai_core.progress import ProgressFn

from .state import current_device


def train_and_save(dataset: str, arch: str, seed: int, epochs: int | None = None,
                   progress: ProgressFn | None = None, device: str | None = None) -> tuple[Path, dict]:
    """Train ``arch`` on ``dataset`` with the architecture's recipe (optionally fewer epochs) and save it.

    ``device``: ``cpu`` or ``cuda``; the sidebar's choice when not given (``cpu`` without CUDA). The saved
    checkpoint holds CPU tensors either way. ``progress``: ``train_cached``'s training events."""
    device = resolve_device(device or current_device())
    ds = load_dataset(dataset)
    done = train_cached(ds, arch, trained_path(dataset, arch, seed, epochs), seed=seed,
                        recipe={"epochs": int(epochs)} if epochs else {}, device=device, progress=progress,
                        reuse=False)
    return done.path, done.report.to_dict()
