"""The model-quality banners every page shows when the chosen model is near chance, as a whole or for some classes.

The rules live in the engine (``xai_core.model_quality``; stated in docs/report.md):

* whole model (``assess``): test balanced accuracy below chance (1 / number of classes) + 0.2, or test AUROC below
  0.8, or the load check of a user's model found it at chance level. Read from the checkpoint's recorded
  metadata (the file's header, without loading the model), so it costs no model pass.
* per class (``class_weakness``): a class whose test recall is below chance + 0.1, or whose one-vs-rest AUROC is
  below 0.6. This needs one pass of the model over the test split, made once per model and dataset and kept in
  the cache folder (``xai_core.model_quality.cached_class_quality``) and in this process.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from xai_core.model_quality import cached_class_quality, class_warning, model_weakness

from . import state


def assess(meta: dict[str, Any]) -> str | None:
    """Why a model with metadata ``meta`` is weak as a whole, in one sentence; None when it is not (or nothing is
    known). ``xai_core.model_quality.model_weakness``."""
    return model_weakness(meta)


def _metadata(dataset: str, model: str) -> dict[str, Any]:
    from xai_core.models import ARCHS, shipped_path  # noqa: PLC0415 - torch: dashboard pages stay light until needed
    from xai_core.models.checkpoints import read_metadata  # noqa: PLC0415 - torch: as above

    if model in ARCHS:
        path = shipped_path(dataset, model)
    elif Path(model).suffix == ".safetensors":
        path = Path(model)
    else:  # a user's own model: its load check (accuracy against the majority share)
        entry = state.user_model_entries(dataset).get(model) or {}
        return {"checks": entry.get("checks") or {}, **{k: entry[k] for k in ("test_accuracy", "n_classes")
                                                         if k in entry}}
    return read_metadata(path) if path.exists() else {}


@st.cache_data(show_spinner=False, max_entries=64)
def _weakness(dataset: str, model: str, version: str | None) -> str | None:
    try:
        return assess(_metadata(dataset, model))
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is reported by the page that loads it
        return None


def weakness(dataset: str, model: str | None) -> str | None:
    """Why the model is near chance as a whole (``assess`` of its recorded metadata), or None."""
    if not model:
        return None
    return _weakness(dataset, model, state.model_version(model, dataset))


@st.cache_data(show_spinner="Checking the model on each class of the test set…", max_entries=64)
def _class_weakness(dataset: str, model: str, version: str | None, fp: str | None) -> str | None:
    from xai_core.data import load_dataset  # noqa: PLC0415 - scipy: dashboard pages stay light until needed
    from xai_core.models import load_model  # noqa: PLC0415 - torch: as above

    try:
        ds = load_dataset(dataset)
        net, meta = load_model(dataset, model, ds=ds)
        return class_warning(cached_class_quality(net, ds, meta["checkpoint_hash"]))
    except Exception:  # noqa: BLE001 - a model that does not load is reported by the page that loads it
        return None


def class_weakness(dataset: str, model: str | None) -> str | None:
    """The classes the model is at or near chance on, with their test recall and one-vs-rest AUROC
    (``xai_core.model_quality.class_warning``), or None. One pass over the test split per model, then cached."""
    if not model:
        return None
    return _class_weakness(dataset, model, state.model_version(model, dataset), state.fingerprint(dataset))


def banner() -> None:
    """The warnings drawn on every page (called by app.py after the sidebar) when the chosen model is weak, as a
    whole or on some classes."""
    ds, model, _ = state.current()
    why = weakness(ds, model)
    if why:
        st.warning(f"**This model is close to chance on {ds}** ({why}). The explanations of a weak model explain "
                   "a weak model: they show what it picked up, not necessarily the biology. Read them with care, "
                   "or train a better one on the Data & model page.", icon=":material/report:")
    per_class = class_weakness(ds, model)
    if per_class:
        st.warning(f"**Model quality per class on {ds}**: {per_class}",
                   icon=":material/report:")
