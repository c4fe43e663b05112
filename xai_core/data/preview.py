"""What a dataset holds, in a few numbers a person can check before using it (no streamlit here).

``summarize(ds)`` returns a JSON-friendly dict: shape and modality, classes with their train/test counts,
split sizes, a few example rows (expression: the first genes of a few samples; sequence: the first bases
of a few sequences; image: which samples to draw), the import choices recorded in ``ds.params``
(orientation, length policy, split, ...) and which ground truth is present. It reads only a handful of
rows, so a lazy ``SparseRows`` matrix is never densified whole.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .dataset import NUCLEOTIDES, Dataset
from .lazy import is_lazy

N_GENES = 8  # genes (columns) shown in the example rows
N_ROWS = 6  # example rows / sequences
PER_CLASS = 2  # example images per class
SEQ_CHARS = 80  # bases of each example sequence


def _plain(v: Any, depth: int = 0) -> Any:
    """``v`` as JSON-friendly scalars/lists/dicts (numpy types converted); long lists shortened."""
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, dict):
        return {str(k): _plain(x, depth + 1) for k, x in list(v.items())[:50]} if depth < 3 else f"{len(v)} items"
    if isinstance(v, (list, tuple)):
        if len(v) > 20:
            return f"{len(v)} values"
        return [_plain(x, depth + 1) for x in v] if depth < 3 else f"{len(v)} values"
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def example_indices(ds: Dataset, per_class: int = PER_CLASS, limit: int = 12) -> list[int]:
    """Up to ``per_class`` samples of each class (the first ones in the file), at most ``limit`` in all."""
    out: list[int] = []
    for c in range(ds.n_classes):
        out.extend(int(i) for i in np.flatnonzero(ds.y == c)[:per_class])
    return sorted(out[:limit])


def ground_truth_summary(ds: Dataset) -> dict[str, Any]:
    gt = ds.ground_truth
    if gt is None:
        return {"present": False, "kinds": [], "text": "none given: explanations can be compared between methods, "
                                                       "but not scored against known truth"}
    kinds, parts = [], []
    if gt.feature_sets:
        n = sum(len(v) for v in gt.feature_sets.values())
        kinds.append("feature_sets")
        parts.append(f"{n} marker features over {len(gt.feature_sets)} class(es)")
    if gt.masks is not None:
        masks = np.asarray(gt.masks)
        n = int(masks.reshape(len(masks), -1).any(1).sum())
        kinds.append("masks")
        parts.append(f"masks for {n:,} of {len(masks):,} images")
    if gt.pwm is not None:
        kinds.append("pwm")
        parts.append("motif sites (a position weight matrix per sequence)")
    text = "; ".join(parts) or (gt.note or "none")
    if gt.note and parts:
        text += f" ({gt.note})"
    return {"present": bool(kinds), "kinds": kinds, "strength": gt.strength, "text": text}


def _expression_rows(ds: Dataset, idx: list[int]) -> dict[str, Any]:
    g = min(N_GENES, ds.X.shape[1])
    block = np.asarray(ds.X[np.asarray(idx, dtype=np.int64)], dtype=np.float32)[:, :g]  # only these rows
    return {"genes": list(ds.feature_names[:g]) if ds.feature_names else [f"feature {j}" for j in range(g)],
            "samples": [ds.sample_ids[i] for i in idx], "labels": [ds.class_names[ds.y[i]] for i in idx],
            "values": block.round(4).tolist(), "n_genes": int(ds.X.shape[1])}


def _sequence_text(x: np.ndarray, n: int = SEQ_CHARS) -> str:
    x = np.asarray(x)[:, :n]
    letters = np.array(list(NUCLEOTIDES))[x.argmax(0)]
    letters[x.max(0) <= 0] = "N"  # padding or unknown bases are all-zero columns
    return "".join(letters)


def summarize(ds: Dataset) -> dict[str, Any]:
    """Shape, classes and counts, split sizes, example rows, import choices and ground truth of ``ds``."""
    n = len(ds)
    is_test = np.zeros(n, dtype=bool)
    is_test[ds.test_idx] = True
    total = np.bincount(ds.y, minlength=ds.n_classes)
    test = np.bincount(ds.y[is_test], minlength=ds.n_classes)
    classes = [{"name": name, "count": int(total[c]), "train": int(total[c] - test[c]), "test": int(test[c])}
               for c, name in enumerate(ds.class_names)]
    params = {k: _plain(v) for k, v in (ds.params or {}).items()}
    out: dict[str, Any] = {
        "name": ds.name, "modality": ds.modality, "n_samples": n, "input_shape": [int(s) for s in ds.input_shape],
        "shape": [n, *[int(s) for s in ds.input_shape]], "n_classes": ds.n_classes, "classes": classes,
        "split": {"train": int(len(ds.train_idx)), "test": int(len(ds.test_idx)),
                  "how": params.get("split", "given by the dataset")},
        "majority_fraction": float(total.max() / max(n, 1)),
        "lazy": is_lazy(ds.X), "params": params,
        "orientation": params.get("orientation"), "ground_truth": ground_truth_summary(ds),
        "examples": example_indices(ds),
    }
    if ds.modality == "expression":
        first = [int(i) for i in range(min(N_ROWS, n))]
        out["rows"] = _expression_rows(ds, first)
    elif ds.modality == "sequence":
        idx = example_indices(ds, per_class=max(1, N_ROWS // max(ds.n_classes, 1)), limit=N_ROWS)
        out["sequences"] = [{"id": ds.sample_ids[i], "label": ds.class_names[ds.y[i]],
                             "sequence": _sequence_text(ds.X[i])} for i in idx]
        out["length"] = int(ds.input_shape[-1])
    else:
        out["image_size"] = [int(s) for s in ds.input_shape[1:]]
        out["channels"] = int(ds.input_shape[0])
    warnings = []
    if n < 40:
        warnings.append(f"only {n} samples: a model trained on so few is unlikely to be reliable")
    small = [c["name"] for c in classes if c["test"] < 2]
    if small:
        warnings.append(f"class(es) with fewer than 2 test samples ({', '.join(small[:5])}): "
                        "per-class test scores will be noisy")
    if out["majority_fraction"] > 0.8 and ds.n_classes > 1:
        warnings.append(f"one class holds {out['majority_fraction']:.0%} of the samples: accuracy alone will look "
                        "good; read the balanced accuracy")
    out["warnings"] = warnings
    return out
