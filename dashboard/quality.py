"""The model-quality banner every page shows when the chosen model is near chance.

The rule (also in docs/platform.md): a model is *weak* when its test balanced accuracy is below chance
(1 / number of classes) + ``BALANCED_MARGIN`` (0.2), or its test AUROC is below ``AUROC_FLOOR`` (0.8), or its
load check found it at chance level (a user's model: ``checks.chance_level``). The numbers are the ones recorded
in the checkpoint's metadata when it was trained (read from the file's header, without loading the model), so
the banner costs no model pass.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from . import state

BALANCED_MARGIN = 0.2  # balanced accuracy below chance + this is "near chance"
AUROC_FLOOR = 0.8  # a test AUROC below this is "near chance"


def assess(meta: dict[str, Any]) -> str | None:
    """Why a model with metadata ``meta`` is weak, in one sentence; None when it is not (or nothing is known).

    Reads ``test_balanced_accuracy`` (else ``test_accuracy``), ``n_classes``, ``test_auroc`` and
    ``checks.chance_level``."""
    why: list[str] = []
    n = meta.get("n_classes") or len(meta.get("class_names") or []) or None
    bal = meta.get("test_balanced_accuracy")
    bal = meta.get("test_accuracy") if bal is None else bal
    if n and bal is not None and n >= 2:
        chance = 1.0 / float(n)
        if float(bal) < chance + BALANCED_MARGIN:
            why.append(f"test balanced accuracy {float(bal):.2f}, where chance is {chance:.2f} (the warning shows "
                       f"below chance + {BALANCED_MARGIN:.2f})")
    auroc = meta.get("test_auroc")
    if auroc is not None and float(auroc) < AUROC_FLOOR:
        why.append(f"test AUROC {float(auroc):.2f} (the warning shows below {AUROC_FLOOR:.2f})")
    if not why and (meta.get("checks") or {}).get("chance_level"):
        why.append("its test accuracy is not above the majority-class share")
    return "; ".join(why) or None


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
    """Why the model is near chance (``assess`` of its recorded metadata), or None."""
    if not model:
        return None
    return _weakness(dataset, model, state.model_version(model, dataset))


def banner() -> None:
    """The warning drawn on every page (called by app.py after the sidebar) when the chosen model is weak."""
    ds, model, _ = state.current()
    why = weakness(ds, model)
    if why:
        st.warning(f"**This model is close to chance on {ds}** ({why}). The explanations of a weak model explain "
                   "a weak model: they show what it picked up, not necessarily the biology. Read them with care, "
                   "or train a better one on the Data & model page.", icon=":material/report:")
