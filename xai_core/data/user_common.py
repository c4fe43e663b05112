"""What every importer of a user's files shares: one-line errors, labels, the split, content hashes.

Policies stated once here (and in ``docs/user_data.md``):
- **Labels** are taken as strings; classes are ordered naturally (numbers numerically, else
  alphabetically). Empty or missing labels, a single class, or a class with one sample are errors:
  a stratified split and a per-class evaluation both need two or more samples per class.
- **Split:** a column/field whose values are ``train``/``test`` when the user gives one; otherwise a
  stratified split (scikit-learn ``train_test_split``) with ``test_size`` (default 0.25) and ``seed``
  (default 0), both recorded in ``Dataset.params``.
- **Identity:** a user dataset is keyed by the SHA-256 of its files' bytes (streamed, never copied) and
  of the import options, so an edited file or a different option is a new dataset.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import XaiError

DEFAULT_TEST_SIZE = 0.25
DEFAULT_SEED = 0
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class UserDataError(XaiError):
    """A problem with a user's file: names the file, the problem and the fix, on one line.

    The message is ``"{source}: {problem}; {fix}"`` (without the source when there is none).

    Parameters
    ----------
    source : str or Path, optional
        The file (or other input) at fault.
    problem : str
        What is wrong.
    fix : str
        What the user can do about it.
    """

    def __init__(self, source: str | Path | None, problem: str, fix: str):
        self.source, self.problem, self.fix = (str(source) if source is not None else None), problem, fix
        where = f"{self.source}: " if self.source else ""
        super().__init__(f"{where}{problem}; {fix}")


def check_name(name: str) -> str:
    """A dataset name usable as a CLI value, a file name and a URL parameter."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise XaiError(f"dataset name {name!r} is not usable; use 1-64 letters, digits, '-', '_' or '.', "
                       f"starting with a letter or digit (e.g. --name my-cells)")
    return name


def _natural_key(c: str):
    try:
        return (0, float(c), c)
    except ValueError:
        return (1, 0.0, c.lower())


def encode_labels(values: Iterable[Any], source: str | Path | None, what: str = "label",
                  min_per_class: int = 2) -> tuple[np.ndarray, list[str]]:
    """Labels as int codes plus class names, refusing what cannot be trained and evaluated."""
    raw = list(values)
    labels: list[str] = []
    for i, v in enumerate(raw):
        missing = v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() in ("", "nan", "NaN", "None")
        if missing:
            raise UserDataError(source, f"{what} of sample {i + 1} is missing",
                                "give every sample a label, or remove the unlabelled samples")
        labels.append(str(v).strip())
    if not labels:
        raise UserDataError(source, "no samples", "check that the file holds data and labels")
    classes = sorted(set(labels), key=_natural_key)
    if len(classes) < 2:
        raise UserDataError(source, f"{what} has one class only ({classes[0]!r})",
                            "a classifier needs two or more classes: pick another label column or add samples")
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[c] for c in labels], dtype=np.int64)
    counts = np.bincount(y, minlength=len(classes))
    small = [f"{classes[i]!r} ({counts[i]})" for i in np.flatnonzero(counts < min_per_class)]
    if small:
        raise UserDataError(source, f"class(es) with fewer than {min_per_class} samples: {', '.join(small[:5])}",
                            "each class needs samples in both the training and the test set: "
                            "merge or drop those classes")
    return y, classes


def make_split(y: np.ndarray, split: Sequence[Any] | None = None, test_size: float = DEFAULT_TEST_SIZE,
               seed: int = DEFAULT_SEED, source: str | Path | None = None
               ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Train/test indices: from ``split`` values (``train``/``test``) if given, else stratified."""
    n = len(y)
    if split is not None:
        vals = [str(v).strip().lower() for v in split]
        bad = sorted({v for v in vals if v not in ("train", "test")})
        if bad:
            raise UserDataError(source, f"split values must be 'train' or 'test', found {bad[:5]}",
                                "fix the split column, or leave it out for a stratified split")
        is_test = np.array([v == "test" for v in vals])
        tr, te = np.flatnonzero(~is_test), np.flatnonzero(is_test)
        if len(tr) == 0 or len(te) == 0:
            raise UserDataError(source, "the split column puts every sample on one side",
                                "mark some samples 'train' and some 'test'")
        return tr, te, {"split": "given by the user's split column"}
    if not 0.0 < float(test_size) < 1.0:
        raise XaiError(f"test_size must be between 0 and 1 (exclusive), got {test_size}")
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 - sklearn: slow import (seconds), only a split

    n_classes = int(y.max()) + 1
    n_test = max(int(round(test_size * n)), n_classes)
    if n - n_test < n_classes:
        raise UserDataError(source, f"{n} samples are too few to split {n_classes} classes into train and test",
                            "add samples or give a split column")
    tr, te = train_test_split(np.arange(n), test_size=n_test, stratify=y, random_state=int(seed))
    return np.sort(tr), np.sort(te), {"split": "stratified (scikit-learn train_test_split)",
                                      "test_size": float(test_size), "split_seed": int(seed)}


def content_hash(paths: Iterable[str | Path], options: dict[str, Any], chunk: int = 1 << 20) -> str:
    """SHA-256 over the bytes of ``paths`` (files, or every file under a folder, in sorted order) and the
    import options; streamed in 1 MiB chunks, so a 10 GB file costs no memory."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
            with open(f, "rb") as fh:
                while True:
                    block = fh.read(chunk)
                    if not block:
                        break
                    h.update(block)
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def check_finite(X: np.ndarray, source: str | Path | None, names: Sequence[str] | None = None,
                 what: str = "value") -> None:
    """Refuse NaN and infinite inputs, naming the first sample and feature where one sits."""
    bad = ~np.isfinite(X)
    if bad.any():
        where = np.argwhere(bad)[0]
        feat = f", feature {names[where[1]]!r}" if names is not None and len(where) > 1 else ""
        raise UserDataError(source,
                            f"{int(bad.sum())} {what}(s) are NaN or infinite (first: sample {where[0] + 1}{feat})",
                            "impute or drop them before importing")


def check_unique(names: Sequence[str], source: str | Path | None, what: str = "gene name") -> None:
    """Refuse duplicated names (genes by default), naming the first few and how to fix them."""
    seen: set[str] = set()
    dups = []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    if dups:
        raise UserDataError(source, f"duplicated {what}s: {', '.join(map(repr, dups[:5]))}"
                            + (f" and {len(dups) - 5} more" if len(dups) > 5 else ""),
                            f"make the {what}s unique (e.g. anndata's var_names_make_unique) or sum the duplicates")
