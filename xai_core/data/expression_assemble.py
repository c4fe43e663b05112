"""The assembly every expression reader shares: option parsing, labels, subsample, split, gene selection,
ground truth, the ``Dataset``; and the guard that turns a reader's low-level errors into ``UserDataError``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import XaiError
from .dataset import Dataset, standardize as standardize_dataset
from .expression_select import highly_variable, subsample
from .expression_truth import gene_groups, marker_truth
from .lazy import SparseRows
from .user_common import (DEFAULT_SEED, DEFAULT_TEST_SIZE, UserDataError, check_finite, check_unique,
                          encode_labels, make_split)


def _as_int(value: Any, what: str, source: Any, low: int = 1) -> int | None:
    if value is None or value == "" or value is False:
        return None
    try:
        out = int(value)
        if out != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise UserDataError(source, f"option {what} must be a whole number, got {value!r}",
                            f"give {what} as a number, e.g. {what}=2000") from None
    if out < low:
        raise UserDataError(source, f"option {what} must be at least {low}, got {out}", f"give {what} >= {low}")
    return out


def as_bool(value: Any, what: str, source: Any) -> bool:
    """An option's value as a bool (``true``/``yes``/``1``/``on`` and their opposites as text)."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "yes", "1", "on"):
            return True
        if v in ("false", "no", "0", "off"):
            return False
        raise UserDataError(source, f"option {what} must be true or false, got {value!r}", f"give {what}=true or false")
    return bool(value)


def _check_values(X: np.ndarray | sp.csr_matrix, source: Any, genes: Sequence[str]) -> None:
    if not sp.issparse(X):
        check_finite(X, source, genes)
        return
    bad = ~np.isfinite(X.data)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        row = int(np.searchsorted(X.indptr, first, side="right") - 1)
        raise UserDataError(source, f"{int(bad.sum())} value(s) are NaN or infinite (first: sample {row + 1}, "
                            f"feature {genes[X.indices[first]]!r})", "impute or drop them before importing")


def assemble(source: Any, name: str, labels: Sequence[Any], genes: Sequence[Any], sample_ids: Sequence[Any],
             split_values: Sequence[Any] | None, read_rows: Callable[[np.ndarray | None], Any], *,
             what_label: str, values: str, markers: str | Path | None = None,
             gene_sets: str | Path | None = None, hvg: Any = None, max_cells: Any = None,
             standardize: Any = True, test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED,
             params: dict[str, Any] | None = None) -> Dataset:
    """Labels -> subsample -> matrix -> split -> hvg -> ground truth -> Dataset (standardised if asked)."""
    hvg, max_cells = _as_int(hvg, "hvg", source), _as_int(max_cells, "max_cells", source)
    seed = int(_as_int(seed, "seed", source, low=0) or 0)
    standardize = as_bool(standardize, "standardize", source)
    try:
        test_size = float(test_size)
    except (TypeError, ValueError):
        raise UserDataError(source, f"option test_size must be a number, got {test_size!r}",
                            "give a fraction such as test_size=0.25") from None
    genes, sample_ids = [str(g) for g in genes], [str(s) for s in sample_ids]
    check_unique(genes, source)
    check_unique(sample_ids, source, what="sample id")
    y, classes = encode_labels(labels, source, what=what_label)
    params = dict(params or {}, values=values)
    rows = subsample(y, max_cells, seed, source) if max_cells else None
    if max_cells:
        params["max_cells"] = {"max_cells": max_cells, "cells_before": len(y), "cells_kept": len(y) if rows is None
                               else len(rows), "policy": "stratified by class (proportional, >= 2 per class), "
                               f"RandomState({seed}), before densifying"}
    X = read_rows(rows)
    if X.shape != (len(y) if rows is None else len(rows), len(genes)):
        raise UserDataError(source, f"the matrix is {X.shape[0]} x {X.shape[1]} but there are "
                            f"{len(y)} cells and {len(genes)} genes", "check that the file is not damaged")
    _check_values(X, source, genes)
    if rows is not None:
        y, sample_ids = y[rows], [sample_ids[i] for i in rows]
        split_values = None if split_values is None else [split_values[i] for i in rows]
    tr, te, split_info = make_split(y, split_values, test_size, seed, source)
    params.update(split_info)
    if hvg:
        keep = highly_variable(X, tr, hvg, source) if hvg < len(genes) else np.arange(len(genes))
        X = X[:, keep]
        genes = [genes[i] for i in keep]
        params["hvg"] = {"n_top_genes": hvg, "genes_kept": len(keep), "flavor": "seurat (scanpy's dispersion)",
                         "computed_on": "training cells"}
    gt, groups = None, None
    if markers:
        gt, params["markers"] = marker_truth(markers, classes, genes)
    if gene_sets:
        groups, params["gene_sets"] = gene_groups(gene_sets, genes)
    sparse = sp.issparse(X)
    X = SparseRows(sp.csr_matrix(X, dtype=np.float32)) if sparse else np.asarray(X, dtype=np.float32)
    params.update(n_cells=len(y), n_genes=len(genes), standardized=False,
                  storage="sparse CSR, densified a batch of rows at a time" if sparse else "dense",
                  standardization="per gene with the training cells' mean and std" if standardize
                  else "none (values as given)")
    desc = (f"your expression data: {len(y)} cells x {len(genes)} genes, {len(classes)} classes "
            f"({what_label}); {'standardised per gene (training statistics)' if standardize else 'values as given'}"
            + ("; your marker genes as weak ground truth" if gt is not None else ""))
    ds = Dataset(name=name, modality="expression", X=X, y=y, class_names=classes, feature_names=genes,
                 train_idx=tr, test_idx=te, ground_truth=gt, description=desc, params=params,
                 feature_groups=groups, sample_ids=sample_ids)
    return standardize_dataset(ds) if standardize else ds


def guarded(source: Any, fn: Callable[[], Dataset]) -> Dataset:
    """Run a reader; numpy/pandas/h5py errors become one-line ``UserDataError``s naming the file."""
    try:
        return fn()
    except XaiError:
        raise
    except UnicodeDecodeError:
        raise UserDataError(source, "is not UTF-8 text",
                            "save it as a UTF-8 CSV/TSV (or give the right file)") from None
    except (ValueError, OSError, KeyError, TypeError, IndexError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserDataError(source, f"could not be read ({msg})",
                            "check that the file is complete and in the expected layout") from None
