"""Cached resources (datasets, models, the results store) and the selections that survive page switches.

Heavy objects are ``st.cache_resource`` (one per process, shared by sessions); selections live in
``st.session_state`` under the keys below, set by the shared sidebar in ``app.py``.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

DATASET, MODEL, SEED = "dataset", "model", "seed"
DEFAULT_DATASET = "simu-small"


@st.cache_data(show_spinner=False)
def dataset_names() -> list[str]:
    from xai_core.data import DATASETS

    return list(DATASETS.names())


@st.cache_data(show_spinner=False)
def dataset_catalogue() -> list[dict[str, Any]]:
    from models import available_models
    from xai_core.data import list_datasets

    rows = list_datasets()
    for r in rows:
        r["shipped models"] = ", ".join(available_models(r["name"])) or "none yet"
    return rows


def model_choices(dataset: str) -> list[str]:
    """Shipped architectures first, then checkpoints trained in the app (paths)."""
    from models import available_models

    from .training import trained_checkpoints

    return list(available_models(dataset)) + [str(p) for p in trained_checkpoints(dataset)]


def model_label(choice: str) -> str:
    return Path(choice).stem.split("__", 1)[-1] + " (trained here)" if choice.endswith(".safetensors") else choice


@st.cache_resource(show_spinner="Loading the dataset and model…", max_entries=8)
def evaluation(dataset: str, model: str, seed: int = 0):
    """The engine's ``Evaluation`` for one dataset and model: dataset, model, explain context, store."""
    from xai_core.runner import EvalConfig, Evaluation

    return Evaluation(EvalConfig(dataset=dataset, model=model, seed=seed), store())


def evaluation_for(dataset: str, model: str, seed: int = 0, **config: Any):
    """A copy of the cached ``Evaluation`` with other settings (methods, metrics, n); shares the loaded parts."""
    ev = copy.copy(evaluation(dataset, model, seed))
    ev.config = dataclasses.replace(ev.config, **config)
    ev._notes = []
    return ev


@st.cache_resource(show_spinner=False)
def store():
    from xai_core.cli_evaluate import default_store_path
    from xai_core.store import ResultStore

    return ResultStore(default_store_path())


@st.cache_data(show_spinner=False, max_entries=16)
def predictions(dataset: str, model: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Predicted class and probabilities for every sample (one batched pass, cached)."""
    from models import predict_proba

    ev = evaluation(dataset, model, seed)
    proba = predict_proba(ev.model, ev.ds.X, device=str(ev.ctx.device))
    return {"proba": proba, "pred": proba.argmax(1)}


PENDING = "_pending_choice"


def choose(dataset: str | None = None, model: str | None = None) -> None:
    """Ask the sidebar to select ``dataset``/``model`` on the next run (a widget's key cannot be written after
    the widget is drawn in the same run). Follow with ``st.rerun()`` or ``st.switch_page(...)``."""
    st.session_state[PENDING] = {"dataset": dataset, "model": model}


def apply_pending() -> None:
    """Called by the sidebar before its widgets are drawn."""
    pending = st.session_state.pop(PENDING, None)
    if pending:
        if pending.get("dataset"):
            st.session_state[DATASET] = pending["dataset"]
            st.session_state.pop(MODEL, None)
        if pending.get("model"):
            st.session_state[MODEL] = pending["model"]


def current() -> tuple[str, str, int]:
    """(dataset, model, seed) chosen in the sidebar."""
    ds = st.session_state.get(DATASET) or DEFAULT_DATASET
    choices = model_choices(ds)
    model = st.session_state.get(MODEL)
    if model not in choices:
        model = choices[0] if choices else None
    return ds, model, int(st.session_state.get(SEED, 0))


# -- selections shared by the pages (kept in plain session keys, so they survive page switches) ----------
METHODS, SAMPLES, METRICS = "methods", "samples", "metrics"
DEFAULT_METHODS = ("saliency", "integrated_gradients", "smoothgrad", "deeplift", "gradcam", "random")


def applicable_methods(ev) -> list[str]:
    from xai_core.explainers import applicable_methods as _applicable

    return _applicable(ev.ctx)


def method_label(name: str) -> str:
    from xai_core.explainers import EXPLAINERS

    return EXPLAINERS.get(name).label if name in EXPLAINERS.names() else name


def remembered(key: str, options: list, default: list) -> list:
    """The remembered selection for ``key`` restricted to ``options``; ``default`` when it was never set or
    none of it applies here (another dataset). A selection the user emptied stays empty."""
    if key not in st.session_state:
        return [o for o in default if o in options]
    chosen = st.session_state[key]
    kept = [o for o in chosen if o in options]
    return kept if kept or not chosen else [o for o in default if o in options]


def _copy(src: str, dst: str) -> None:
    st.session_state[dst] = list(st.session_state[src])


def multiselect(label: str, options: list, key: str, default: list, **kwargs) -> list:
    """A multiselect whose choice survives page switches and dataset changes (stored under ``key``).

    Streamlit ties a widget's state to the page that drew it, so the choice lives in a plain session key:
    a change callback copies it there (callbacks run before the script), and every run restores the
    widget from it.
    """
    wkey = f"_w_{key}"
    st.session_state[wkey] = remembered(key, options, default)
    if key not in st.session_state:
        st.session_state[key] = list(st.session_state[wkey])
    return st.multiselect(label, options, key=wkey, on_change=_copy, args=(wkey, key), **kwargs)
