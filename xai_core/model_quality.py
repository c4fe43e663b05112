"""Is the model good enough for its explanations to mean something? Whole-model and per-class rules.

A model near chance explains noise. Two rules, one sentence each when they fire (None when they do not):

* **Whole model** (``model_weakness``): from the numbers recorded when the checkpoint was trained (no model pass):
  test balanced accuracy below chance (1 / number of classes) + ``BALANCED_MARGIN``, or test AUROC below
  ``AUROC_FLOOR``, or the load check of a user's model found it at chance level.
* **Per class** (``class_quality``, ``weak_classes``, ``class_warning``): one pass of the model over the test split
  gives each class's recall (the share of its test samples predicted as it) and its one-vs-rest AUROC. A class is
  *at or near chance* when its recall is below chance (1 / number of classes) + ``RECALL_MARGIN``, or its
  one-vs-rest AUROC is below ``CLASS_AUROC_FLOOR``. A good model overall can still be at chance on one class (a
  10-class cell-type model that never predicts two of the T-cell types): the explanations of that class's samples
  then describe a model that does not recognise it.

``cached_class_quality`` keeps the per-class numbers in ``$XAI_CORE_CACHE/model_quality/`` as JSON keyed by the
checkpoint hash and the dataset fingerprint (checked by a checksum when read; a damaged entry is recomputed), so
the dashboard's banner and the report pay the pass once per model.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from .data import cache_dir
from .models import predict_proba

BALANCED_MARGIN = 0.2  # whole model: balanced accuracy below chance + this is "near chance"
AUROC_FLOOR = 0.8  # whole model: a test AUROC below this is "near chance"
RECALL_MARGIN = 0.1  # per class: a recall below 1/k + this is "at or near chance"
CLASS_AUROC_FLOOR = 0.6  # per class: a one-vs-rest AUROC below this is "at or near chance"
FORMAT = 1  # the cached entries' layout; bump when class_quality's output changes


def model_weakness(meta: dict[str, Any]) -> str | None:
    """Why a model with training metadata ``meta`` is near chance as a whole, in one sentence; None when it is not
    (or nothing is known).

    Reads ``test_balanced_accuracy`` (else ``test_accuracy``), ``n_classes`` (else ``class_names``), ``test_auroc``
    and ``checks.chance_level``.

    Parameters
    ----------
    meta : dict
        A checkpoint's metadata (``read_metadata``, ``load_model``) or a user model's entry.

    Returns
    -------
    str or None
    """
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


def class_quality(model, ds, device: str = "cpu") -> dict[str, Any]:
    """Per-class recall and one-vs-rest AUROC of ``model`` on the test split of ``ds`` (one batched pass).

    Parameters
    ----------
    model : torch.nn.Module
        The model (any output layout ``predict_proba`` reads: C logits, or one logit for two classes).
    ds : xai_core.data.Dataset
        Its dataset; the test split (``ds.test_idx``) is used.
    device : str
        Where ``model`` is.

    Returns
    -------
    dict
        JSON-able: ``classes`` (names), ``n`` (test samples per class), ``recall`` and ``auroc`` (per class; None
        for a class absent from the test split, or an AUROC that cannot be computed), ``chance`` (1 / number of
        classes), ``n_test``, and the rule's thresholds ``recall_margin`` and ``auroc_floor``.
    """
    k = int(ds.n_classes)
    idx = np.asarray(ds.test_idx)
    y = np.asarray(ds.y)[idx]
    proba = predict_proba(model, ds.X[idx], device=device) if len(idx) else np.zeros((0, k))
    pred = proba.argmax(1) if len(idx) else np.zeros(0, dtype=np.int64)
    n, recall, auroc = [], [], []
    for c in range(k):
        here = y == c
        n.append(int(here.sum()))
        recall.append(float((pred[here] == c).mean()) if here.any() else None)
        score = proba[:, c] if proba.shape[1] > c else None
        ok = score is not None and here.any() and (~here).any()
        auroc.append(float(roc_auc_score(here, score)) if ok else None)
    return {"format": FORMAT, "classes": [str(c) for c in ds.class_names], "n": n, "recall": recall, "auroc": auroc,
            "chance": 1.0 / k if k else None, "n_test": int(len(idx)), "recall_margin": RECALL_MARGIN,
            "auroc_floor": CLASS_AUROC_FLOOR}


def weak_classes(quality: dict[str, Any]) -> list[dict[str, Any]]:
    """The classes at or near chance under the per-class rule (see the module's docstring), in class order.

    Parameters
    ----------
    quality : dict
        From ``class_quality``.

    Returns
    -------
    list of dict
        One per weak class: ``class``, ``index``, ``n``, ``recall``, ``auroc``, ``chance``, ``why`` (a phrase with
        the numbers).
    """
    chance = quality.get("chance")
    out = []
    for c, name in enumerate(quality.get("classes") or []):
        rec, auc = quality["recall"][c], quality["auroc"][c]
        low_recall = rec is not None and chance is not None and rec < chance + RECALL_MARGIN
        low_auroc = auc is not None and auc < CLASS_AUROC_FLOOR
        if not (low_recall or low_auroc):
            continue
        parts = []
        if rec is not None:
            parts.append(f"recall {rec:.2f} where chance is {chance:.2f}")
        if auc is not None:
            parts.append(f"one-vs-rest AUROC {auc:.2f}")
        out.append({"class": name, "index": c, "n": quality["n"][c], "recall": rec, "auroc": auc, "chance": chance,
                    "why": ", ".join(parts) + f", {quality['n'][c]} test samples"})
    return out


def class_warning(quality: dict[str, Any] | None) -> str | None:
    """One sentence naming the classes at or near chance with their numbers; None when there are none.

    Parameters
    ----------
    quality : dict or None
        From ``class_quality`` (None: nothing known, no warning).

    Returns
    -------
    str or None
    """
    weak = weak_classes(quality) if quality else []
    if not weak:
        return None
    k = len(quality["classes"])
    named = "; ".join(f"{w['class']} ({w['why']})" for w in weak)
    return (f"{len(weak)} of {k} classes at or near chance on the test set: {named}. A class counts when its recall "
            f"is below chance + {RECALL_MARGIN:.2f} or its one-vs-rest AUROC below {CLASS_AUROC_FLOOR:.2f}; "
            f"explanations of its samples describe a model that does not recognise it.")


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def cached_class_quality(model, ds, model_hash: str, device: str = "cpu",
                         dataset_fp: str | None = None) -> dict[str, Any]:
    """``class_quality``, kept once per (checkpoint hash, dataset fingerprint) in ``$XAI_CORE_CACHE/model_quality``.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    ds : xai_core.data.Dataset
        Its dataset.
    model_hash : str
        The checkpoint's hash (``load_model``'s ``meta["checkpoint_hash"]``): part of the key.
    device : str
        Where ``model`` is.
    dataset_fp : str, optional
        ``ds.fingerprint()`` when already known (it is computed otherwise).

    Returns
    -------
    dict
        As ``class_quality``.
    """
    fp = dataset_fp or ds.fingerprint()
    path = quality_file(ds.name, model_hash, fp)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        body = entry["quality"]
        if entry.get("sha256") == _checksum(body) and body.get("format") == FORMAT:
            return body
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # absent or damaged: computed again below
    body = class_quality(model, ds, device=device)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as f:
            json.dump({"quality": body, "sha256": _checksum(body)}, f)
        os.replace(f.name, path)
    except OSError:
        pass  # a read-only cache folder: the numbers are still returned
    return body


def quality_file(ds_name: str, model_hash: str, dataset_fp: str) -> Path:
    """Where ``cached_class_quality`` keeps the numbers of one model and dataset.

    Parameters
    ----------
    ds_name : str
        The dataset's name.
    model_hash : str
        The checkpoint's hash.
    dataset_fp : str
        The dataset's fingerprint.

    Returns
    -------
    Path
    """
    return cache_dir() / "model_quality" / f"{ds_name}-{model_hash}-{dataset_fp}.json"
