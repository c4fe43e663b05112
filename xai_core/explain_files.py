"""The files an explanation run leaves: ``attributions.npz`` (one array per method, each with the inputs'
shape) and ``manifest.json`` (dataset and its fingerprint, model and checkpoint hash, targets, predictions,
every method's parameters, versions). ``explain`` writes them to a folder; the dashboard's Explanations page
offers the same two files as one zip download of the maps it shows (``bundle``).
"""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import XaiError
from .provenance import now, package_versions

MODEL_FIELDS = ("arch", "arch_kwargs", "checkpoint_hash", "path", "metric_name", "metric_value", "seed", "format",
                "name", "checks")


UNSAFE = re.compile(r"[^A-Za-z0-9+._ -]+")  # what a file name part may not hold (slashes, colons, quotes ...)


def safe_part(text: Any) -> str:
    """One part of a download's file name: letters, digits, ``+ . _ -`` and spaces kept (so "CD14+ Monocyte"
    stays readable), every other run of characters (``/``, ``:``, quotes ...) becomes ``-``.

    Parameters
    ----------
    text : Any
        The dataset, model, method, class or content name (``str()`` of it).
    """
    out = UNSAFE.sub("-", str(text)).strip(" .-")
    return re.sub(r"\s+", " ", out)[:80] or "x"


def download_name(*parts: Any, ext: str) -> str:
    """A download's file name: the non-empty ``parts`` (dataset, model, method, class, what it holds) slugged by
    ``safe_part`` and joined by ``__``, e.g. ``pbmc68k__mlp__integrated_gradients__CD14+ Monocyte__top_genes.csv``.

    Parameters
    ----------
    *parts : Any
        The name's parts in order; ``None`` and empty parts are left out.
    ext : str
        The extension, without the dot.
    """
    kept = [safe_part(p) for p in parts if p is not None and str(p).strip()]
    return "__".join(kept or ["download"]) + f".{ext.lstrip('.')}"


def check_out_dir(out: str | Path) -> Path:
    """Refuse an output folder that is a file or cannot be written, before any work starts."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise XaiError(f"--out {out} is a file; give a folder (it is created if missing)")
    parent = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise XaiError(f"--out {out}: cannot write in {parent}; choose a folder you can write to")
    return out


def manifest(ds, model_meta: dict[str, Any], *, idx: np.ndarray, targets, predictions, methods: dict[str, dict],
             output: str, split: str, target: str, seed: int, device: str, command: str,
             seconds_total: float | None = None) -> dict[str, Any]:
    """What produced the maps, in the format ``explain`` writes (``methods``: name -> params, seconds, ...)."""
    return {
        "created": now(), "command": command,
        "dataset": {"name": ds.name, "modality": ds.modality, "fingerprint": ds.fingerprint(), "params": ds.params,
                    "class_names": ds.class_names},
        "model": {k: model_meta.get(k) for k in MODEL_FIELDS if k in model_meta or k in MODEL_FIELDS[:7]},
        "output": output, "split": split, "target": target, "seed": seed, "device": device,
        "sample_indices": np.asarray(idx).tolist(), "sample_ids": [ds.sample_ids[i] for i in idx],
        "targets": np.asarray(targets).tolist(), "labels": ds.y[idx].tolist(),
        "predictions": np.asarray(predictions).tolist(), "methods": methods,
        "seconds_total": None if seconds_total is None else round(seconds_total, 3), "versions": package_versions(),
    }


def write(out: str | Path, arrays: dict[str, np.ndarray], manifest_: dict[str, Any]) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "attributions.npz", **arrays)
    (out / "manifest.json").write_text(json.dumps(manifest_, indent=2, default=str))


def bundle(arrays: dict[str, np.ndarray], manifest_: dict[str, Any]) -> bytes:
    """The two files in one zip (what a browser download can carry)."""
    npz = io.BytesIO()
    np.savez_compressed(npz, **arrays)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("attributions.npz", npz.getvalue())
        z.writestr("manifest.json", json.dumps(manifest_, indent=2, default=str))
    return buf.getvalue()


def stored_bundle(ev, methods: list[str], idx: np.ndarray, predictions) -> bytes:
    """The stored maps of ``methods`` for samples ``idx`` of an ``Evaluation`` as the zip of ``bundle``."""
    # cli.py imports this module, and `python -m xai_core --help` must not load torch and captum
    from .explainers import EXPLAINERS  # noqa: PLC0415 - xai_core.explainers (torch, captum): CLI start-up

    arrays, info = {}, {}
    for m in methods:
        arr, missing = ev.stored_attributions(m, idx)
        if arr is None:
            raise XaiError(f"{len(missing)} map(s) of {m} are not stored yet; explain them first")
        arrays[m] = np.asarray(arr, dtype=np.float32)
        info[m] = {"params": EXPLAINERS.get(m).params_for(ev.ds.modality, ev.config.method_params.get(m, {})),
                   "wraps": EXPLAINERS.get(m).wraps}
    man = manifest(ev.ds, ev.model_meta, idx=idx, targets=ev.ds.y[idx], predictions=np.asarray(predictions)[idx],
                   methods=info, output=ev.config.output, split="test", target="label", seed=ev.config.seed,
                   device=str(ev.config.device), command="dashboard: Explanations page (stored maps)")
    return bundle(arrays, man)
