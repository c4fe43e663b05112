"""Resuming an interrupted training run where it stopped, epoch by epoch.

``train_model(..., resume=PATH)`` writes the whole state of the run to ``PATH`` after every epoch: the weights,
the optimiser's and scheduler's state, the best epoch's weights, the early-stopping counters, the history, and
every random generator the next epoch draws from (the batch order's, torch's global one for dropout and the
regularisers' noise, numpy's, CUDA's when training there). A run started again with the same ``PATH`` continues
after the last finished epoch and, on the same machine, ends with the same weights as one that was never stopped
(``tests/test_training_resume.py``). A member of the DNA paper population at 1e-3 without BatchNorm, with 10-step
PGD, needs hours of CPU: more than a session, which is why this exists.

The state is checked when read: written by ``torch.save`` and read with ``weights_only=True`` (tensors and plain
containers only, never arbitrary pickled objects), and it records the run it belongs to (dataset content,
architecture and options, seed, the exact recipe, validation share, device kind). A state of another run, or one
that cannot be read, is named in a warning and the run starts from its first epoch.
"""
from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_VERSION = 1


def identity(ds, arch: str, arch_kwargs: dict | None, seed: int, recipe: dict[str, Any], val_fraction: float,
             device: str) -> str:
    """What a saved state must record to continue this run (JSON, compared as a string)."""
    return json.dumps({"version": STATE_VERSION, "dataset_fingerprint": ds.fingerprint(), "arch": arch,
                       "arch_kwargs": arch_kwargs or {}, "seed": int(seed), "recipe": recipe,
                       "val_fraction": float(val_fraction), "device": torch.device(device).type},
                      sort_keys=True, default=str)


def save(path: str | Path, ident: str, model: torch.nn.Module, opt: torch.optim.Optimizer, sched, gen: torch.Generator,
         loop: dict[str, Any]) -> None:
    """Write the run's state after an epoch (atomically: a reader sees the previous state or this one)."""
    path = Path(path)
    np_state = np.random.get_state()
    payload = {
        "identity": ident, "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": json.dumps(sched.state_dict()) if sched is not None else "",
        "batch_order": gen.get_state(), "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized()
        else [],
        "numpy_rng": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "loop": {**loop, "best": float(loop["best"]), "history": json.loads(json.dumps(loop["history"]))},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load(path: str | Path, ident: str) -> dict[str, Any] | None:
    """The saved state of this run, or None (no state, another run's, or unreadable: named in a warning)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        ok = isinstance(payload, dict) and {"identity", "model", "optimizer", "loop"} <= set(payload)
    except Exception as e:  # noqa: BLE001 - a damaged file of any kind: train from the start
        warnings.warn(f"the saved training state {path} cannot be read ({type(e).__name__}); training starts "
                      f"from its first epoch", stacklevel=3)
        return None
    if not ok:
        warnings.warn(f"the saved training state {path} is incomplete; training starts from its first epoch",
                      stacklevel=3)
        return None
    if payload["identity"] != ident:
        warnings.warn(f"the saved training state {path} belongs to another run (dataset, model, seed or recipe "
                      f"differ); training starts from its first epoch", stacklevel=3)
        return None
    return payload


def restore(payload: dict[str, Any], model: torch.nn.Module, opt: torch.optim.Optimizer, sched,
            gen: torch.Generator) -> dict[str, Any]:
    """Put a loaded state back into the run's objects and generators; returns the loop's variables."""
    device = next(model.parameters()).device
    model.load_state_dict(payload["model"])
    opt.load_state_dict(payload["optimizer"])
    if sched is not None and payload.get("scheduler"):
        state = json.loads(payload["scheduler"])
        if "milestones" in state:  # a Counter of epochs, whose keys JSON made strings
            state["milestones"] = Counter({int(k): v for k, v in state["milestones"].items()})
        sched.load_state_dict(state)
    gen.set_state(payload["batch_order"])
    torch.set_rng_state(payload["torch_rng"])
    if payload.get("cuda_rng") and device.type == "cuda":
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    n = payload["numpy_rng"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    loop = dict(payload["loop"])
    if loop.get("best_state") is not None:
        loop["best_state"] = {k: v.to(device) for k, v in loop["best_state"].items()}
    return loop
