"""A user's own expression data: AnnData (``.h5ad``, or an object in memory) and CSV/TSV tables.

Every reader returns a ``Dataset`` of modality ``expression`` (cells x genes) and records what it did in
``Dataset.params``. Policies (also in ``docs/user_data_expression.md``):

- **Values** are used as given (``X`` or the named layer); no normalisation or log transform is applied.
  With ``standardize`` (the default) each gene is centred and scaled with the mean and std of the
  *training* cells only, as for the bundled data. NaN or infinite values are refused.
- **Sparse stays sparse:** a sparse matrix becomes a ``SparseRows`` (CSR, densified a batch of rows at a
  time); an ``.h5ad``'s sparse ``X`` is read as its three arrays (``data``, ``indices``, ``indptr``, CSC
  converted to CSR), so a 100,000 x 20,000 file costs about those arrays in memory. A dense ``X`` whose
  float32 copy (twice that when standardising) exceeds the available memory is refused.
- **max_cells=N:** a stratified subsample drawn before anything is densified: each class keeps a share
  proportional to its size (largest remainders), at least two cells, drawn with ``RandomState(seed)``.
- **hvg=N:** scanpy's ``flavor="seurat"`` dispersion (the values are taken as log-normalised, so
  ``expm1`` is applied; per-gene mean and variance; log dispersion z-scored within 20 bins of
  log1p(mean)), computed here on the *training* cells without densifying, keeping exactly the N genes
  with the highest normalised dispersion (ties by gene order). Negative values or values above 50 (not
  log scale) are refused.
- **markers** (CSV ``class,gene`` or GMT, set name = class) become weak ground truth; **gene_sets** (GMT)
  become ``feature_groups`` (the first set holding a gene; -1 for none). Gene names match exactly;
  genes absent from the data (or removed by ``hvg``) are dropped and listed in ``params``.
- **Orientation** of a table: ``auto`` takes cells x genes when the label column is in the header; with a
  label file, its ids matched against the header mean genes x cells, against the first column cells x
  genes. ``params["orientation"]`` says which and how it was found.
"""
from __future__ import annotations

import csv
import gzip
import io
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import XaiError
from .dataset import Dataset, GroundTruth, standardize as standardize_dataset
from .importers import Importer, register_importer
from .lazy import SparseRows
from .user_common import (DEFAULT_SEED, DEFAULT_TEST_SIZE, UserDataError, check_finite, check_unique,
                          encode_labels, make_split)

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
ID_HEADERS = {"", "id", "ids", "cell", "cells", "cell_id", "sample", "samples", "sample_id", "barcode",
              "barcodes", "obs_names", "index", "name"}
MARKER_GENE_HEADERS = {"gene", "genes", "marker", "markers", "symbol", "gene_symbol", "gene_name"}
HVG_MAX_LOG_VALUE = 50.0  # above this the values are not log-normalised (expm1 would overflow)
H5_CHUNK_ROWS = 4096  # rows of a dense h5ad X read at once
ORIENTATIONS = {"auto": "auto", "cells x genes": "cells x genes", "genes x cells": "genes x cells"}


# -- the shared assembly: labels, subsample, split, gene selection, ground truth ------------------------
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


def _as_bool(value: Any, what: str, source: Any) -> bool:
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "yes", "1", "on"):
            return True
        if v in ("false", "no", "0", "off"):
            return False
        raise UserDataError(source, f"option {what} must be true or false, got {value!r}", f"give {what}=true or false")
    return bool(value)


def _subsample(y: np.ndarray, max_cells: int, seed: int, source: Any) -> np.ndarray | None:
    """Stratified cell indices (sorted): shares proportional to class sizes, at least 2 per class."""
    n, counts = len(y), np.bincount(y)
    if max_cells >= n:
        return None
    if max_cells < 2 * len(counts):
        raise UserDataError(source, f"max_cells={max_cells} is too few for {len(counts)} classes",
                            f"use max_cells >= {2 * len(counts)} (two cells per class)")
    exact = max_cells * counts / n
    quota = np.minimum(counts, np.maximum(2, np.floor(exact))).astype(np.int64)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    while quota.sum() < max_cells:
        for c in order:
            if quota.sum() < max_cells and quota[c] < counts[c]:
                quota[c] += 1
    while quota.sum() > max_cells:  # the minimum of two pushed it over: take from the largest shares
        quota[int(np.argmax(np.where(quota > 2, quota, -1)))] -= 1
    rng = np.random.RandomState(seed)
    picks = [rng.choice(np.flatnonzero(y == c), int(quota[c]), replace=False) for c in range(len(counts))]
    return np.sort(np.concatenate(picks))


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


def highly_variable(X: np.ndarray | sp.csr_matrix, rows: np.ndarray, n_top: int, source: Any = None,
                    n_bins: int = 20, chunk: int = 4096) -> np.ndarray:
    """Indices (sorted) of the ``n_top`` genes of highest seurat-flavour normalised dispersion over ``rows``.

    Follows ``scanpy.pp.highly_variable_genes(flavor="seurat")``: on ``expm1`` of the values, per-gene mean
    and variance (ddof=1), log dispersion z-scored within ``n_bins`` equal-width bins of ``log1p(mean)``
    (a bin holding one gene gets a normalised dispersion of 1). A sparse ``X`` is never densified.
    """
    import pandas as pd

    rows = np.asarray(rows, dtype=np.int64)
    n, G = len(rows), X.shape[1]
    s1, s2 = np.zeros(G), np.zeros(G)
    lo, hi = np.inf, -np.inf
    for i in range(0, n, chunk):
        block = X[rows[i:i + chunk]]
        vals = block.data if sp.issparse(block) else block
        if vals.size:
            lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
        if lo < 0 or hi > HVG_MAX_LOG_VALUE:
            raise UserDataError(source, f"hvg needs log-normalised values, but they range from {lo:g} to {hi:g}",
                                "log-normalise first (scanpy normalize_total then log1p), or leave hvg out")
        if sp.issparse(block):
            e = block.astype(np.float64)
            e.data = np.expm1(e.data)
            s1 += np.asarray(e.sum(axis=0)).ravel()
            s2 += np.asarray(e.multiply(e).sum(axis=0)).ravel()
        else:
            e = np.expm1(block.astype(np.float64))
            s1 += e.sum(axis=0)
            s2 += (e * e).sum(axis=0)
    mean = s1 / max(n, 1)
    var = np.maximum(s2 / max(n, 1) - mean ** 2, 0.0) * (n / (n - 1) if n > 1 else 1.0)
    mean[mean == 0] = 1e-12
    disp = var / mean
    disp[disp == 0] = np.nan
    df = pd.DataFrame({"mean": np.log1p(mean), "disp": np.log(disp)})
    df["bin"] = pd.cut(df["mean"], bins=n_bins)
    stats = df.groupby("bin", observed=True)["disp"].agg(avg="mean", dev="std")
    single = stats["dev"].isnull()
    stats.loc[single, "dev"] = stats.loc[single, "avg"]
    stats.loc[single, "avg"] = 0.0
    per_gene = stats.loc[df["bin"]].to_numpy()
    norm = (df["disp"].to_numpy() - per_gene[:, 0]) / per_gene[:, 1]
    norm = np.nan_to_num(norm, nan=-np.inf)
    return np.sort(np.argsort(-norm, kind="stable")[:n_top])


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig", newline="")


def _fields(line: str, sep: str) -> list[str]:
    line = line.rstrip("\r\n")
    if '"' in line:
        return next(csv.reader([line], delimiter=sep))
    return line.split(sep)


def _read_gene_lists(path: str | Path, what: str, classes: Sequence[str] | None = None
                     ) -> dict[str, list[str]]:
    """Set name -> genes (ordered, unique) from a GMT file or a CSV/TSV ``class,gene`` (header optional)."""
    path = Path(path)
    if not path.is_file():
        raise UserDataError(path, f"no such {what} file", f"check the {what} path")
    out: dict[str, list[str]] = {}
    gmt = path.suffix.lower() == ".gmt"
    with _open_text(path) as fh:
        lines = [(i, ln) for i, ln in enumerate(fh, start=1) if ln.strip()]
    sep = "\t" if gmt or (lines and "\t" in lines[0][1]) else ","
    for k, (lineno, line) in enumerate(lines):
        f = [x.strip() for x in _fields(line, sep)]
        if k == 0 and not gmt and len(f) >= 2 and f[1].lower() in MARKER_GENE_HEADERS and \
                (classes is None or f[0] not in classes):
            continue  # a header row
        genes = [g for g in (f[2:] if gmt else f[1:]) if g]
        if not f[0] or not genes:
            raise UserDataError(path, f"line {lineno} has no " + ("set name" if not f[0] else "gene"),
                                "write one 'name<TAB>description<TAB>gene...' per line" if gmt
                                else "write one 'class,gene' per line")
        got = out.setdefault(f[0], [])
        got.extend(g for g in genes if g not in got)
    if not out:
        raise UserDataError(path, f"the {what} file is empty", "give one set of genes per line")
    return out


def _marker_truth(path: str | Path, classes: list[str], genes: list[str]
                  ) -> tuple[GroundTruth, dict[str, Any]]:
    sets = _read_gene_lists(path, "markers", classes)
    unknown = [c for c in sets if c not in classes]
    if unknown:
        raise UserDataError(path, f"marker class {unknown[0]!r} is not a class of the data",
                            f"use the class names of the labels: {', '.join(map(repr, classes))}")
    index = {g: i for i, g in enumerate(genes)}
    fs = {c: np.array([index[g] for g in gs if g in index], dtype=np.int64) for c, gs in sets.items()}
    dropped = {c: [g for g in gs if g not in index] for c, gs in sets.items()}
    if not any(len(v) for v in fs.values()):
        raise UserDataError(path, "none of the marker genes is among the data's genes "
                            f"(e.g. {next(iter(sets.values()))[0]!r} vs {genes[0]!r})",
                            "use the same gene identifiers as the data (symbols vs Ensembl ids)")
    info = {"file": str(path), "present": {c: [genes[i] for i in v] for c, v in fs.items()},
            "dropped": {c: d for c, d in dropped.items() if d}}
    gt = GroundTruth(feature_sets=fs, strength="weak",
                     note="the user's marker genes (weak ground truth: curated, not causal truth)")
    return gt, info


def _gene_groups(path: str | Path, genes: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    sets = _read_gene_lists(path, "gene_sets")
    index = {g: i for i, g in enumerate(genes)}
    groups = np.full(len(genes), -1, dtype=np.int64)
    sizes = []
    for k, gs in enumerate(sets.values()):
        hit = [index[g] for g in gs if g in index]
        sizes.append(len(hit))
        hit = [i for i in hit if groups[i] < 0]
        groups[hit] = k
    if not sum(sizes):
        raise UserDataError(path, "none of the genes of the gene sets is among the data's genes",
                            "use the same gene identifiers as the data (symbols vs Ensembl ids)")
    return groups, {"file": str(path), "names": list(sets), "genes_present": sizes,
                    "genes_in_no_set": int((groups < 0).sum()),
                    "policy": "each gene belongs to the first set (file order) that holds it"}


def _assemble(source: Any, name: str, labels: Sequence[Any], genes: Sequence[Any], sample_ids: Sequence[Any],
              split_values: Sequence[Any] | None, read_rows: Callable[[np.ndarray | None], Any], *,
              what_label: str, values: str, markers: str | Path | None = None,
              gene_sets: str | Path | None = None, hvg: Any = None, max_cells: Any = None,
              standardize: Any = True, test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED,
              params: dict[str, Any] | None = None) -> Dataset:
    """Labels -> subsample -> matrix -> split -> hvg -> ground truth -> Dataset (standardised if asked)."""
    hvg, max_cells = _as_int(hvg, "hvg", source), _as_int(max_cells, "max_cells", source)
    seed = int(_as_int(seed, "seed", source, low=0) or 0)
    standardize = _as_bool(standardize, "standardize", source)
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
    rows = _subsample(y, max_cells, seed, source) if max_cells else None
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
        gt, params["markers"] = _marker_truth(markers, classes, genes)
    if gene_sets:
        groups, params["gene_sets"] = _gene_groups(gene_sets, genes)
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


def _guarded(source: Any, fn: Callable[[], Dataset]) -> Dataset:
    """Run a reader; numpy/pandas/h5py errors become one-line ``UserDataError``s naming the file."""
    try:
        return fn()
    except XaiError:
        raise
    except UnicodeDecodeError:
        raise UserDataError(source, "is not UTF-8 text", "save it as a UTF-8 CSV/TSV (or give the right file)") from None
    except (ValueError, OSError, KeyError, TypeError, IndexError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserDataError(source, f"could not be read ({msg})",
                            "check that the file is complete and in the expected layout") from None


# -- AnnData ---------------------------------------------------------------------------------------------
def _obs_column(obs, key: str | None, what: str, source: Any) -> list[Any]:
    cols = [str(c) for c in obs.columns]
    if key is None or key not in obs.columns:
        problem = f"no obs column {key!r}" if key is not None else f"no {what} given (the obs column of the labels)"
        raise UserDataError(source, problem, f"set {what} to one of the obs columns: "
                            f"{', '.join(map(repr, cols)) or '(obs has no columns)'}")
    return list(obs[key].astype(object))


def from_anndata(adata: Any, label_key: str | None, *, name: str = "anndata", layer: str | None = None,
                 split_key: str | None = None, markers: str | Path | None = None,
                 gene_sets: str | Path | None = None, hvg: int | None = None, max_cells: int | None = None,
                 standardize: bool = True, test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED,
                 source: str | Path | None = None) -> Dataset:
    """A ``Dataset`` from an in-memory ``AnnData``: labels from ``obs[label_key]``, values from ``X`` or
    ``layers[layer]`` (sparse stays sparse), genes from ``var_names``, sample ids from ``obs_names``."""
    source = source or f"AnnData {name!r}"

    def run() -> Dataset:
        labels = _obs_column(adata.obs, label_key, "label_key", source)
        split = _obs_column(adata.obs, split_key, "split_key", source) if split_key else None
        if layer is None:
            M = adata.X
        elif layer in adata.layers:
            M = adata.layers[layer]
        else:
            raise UserDataError(source, f"no layer {layer!r}", "use one of the layers: "
                                f"{', '.join(map(repr, adata.layers)) or '(none; leave layer out for X)'}")
        if M is None:
            raise UserDataError(source, "X is empty", "store the expression matrix in X or name a layer")
        if hasattr(M, "to_memory"):  # a backed sparse matrix
            M = M.to_memory()
        M = sp.csr_matrix(M, dtype=np.float32) if sp.issparse(M) else np.asarray(M, dtype=np.float32)
        return _assemble(source, name, labels, adata.var_names, adata.obs_names, split,
                         lambda rows: M if rows is None else M[rows], what_label=f"obs[{label_key!r}]",
                         values=f"adata.layers[{layer!r}]" if layer else "adata.X", markers=markers,
                         gene_sets=gene_sets, hvg=hvg, max_cells=max_cells, standardize=standardize,
                         test_size=test_size, seed=seed,
                         params={"label_key": label_key, "layer": layer, "split_key": split_key})
    return _guarded(source, run)


def _available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``), or a large number when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def _read_h5_matrix(node: Any, rows: np.ndarray | None, source: Any, copies: int):
    """The matrix under ``node`` (an h5py Dataset: dense; a Group: csr/csc) with only ``rows`` kept."""
    import h5py

    if isinstance(node, h5py.Group):
        enc = str(node.attrs.get("encoding-type", node.attrs.get("h5sparse_format", "")))
        shape = tuple(int(s) for s in node.attrs.get("shape", node.attrs.get("h5sparse_shape", ())))
        fmt = {"csr_matrix": "csr", "csr": "csr", "csc_matrix": "csc", "csc": "csc"}.get(enc)
        if fmt is None or len(shape) != 2:
            raise UserDataError(source, f"the matrix is stored as {enc or 'an unknown encoding'!r}",
                                "store X as a dense array or a scipy CSR/CSC matrix (anndata's write_h5ad)")
        data = node["data"][...].astype(np.float32, copy=False)
        cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
        M = cls((data, node["indices"][...], node["indptr"][...]), shape=shape).tocsr()
        return M if rows is None else M[rows]
    n, g = node.shape
    keep = np.arange(n) if rows is None else rows
    need = len(keep) * g * 4 * copies
    if need > _available_memory():
        fit = max(int(_available_memory() // (g * 4 * copies)), 0)
        raise UserDataError(source, f"the dense X needs {need / 2**30:.1f} GiB for {len(keep)} cells x {g} genes, "
                            f"more than the {_available_memory() / 2**30:.1f} GiB available",
                            f"pass max_cells (about {fit} fit), or store X sparse "
                            "(adata.X = scipy.sparse.csr_matrix(adata.X))")
    out, at, chunk = np.empty((len(keep), g), dtype=np.float32), 0, H5_CHUNK_ROWS
    for start in range(0, n, chunk):  # contiguous reads; only the kept rows are copied
        sel = keep[(keep >= start) & (keep < start + chunk)]
        if len(sel):
            out[at:at + len(sel)] = node[start:min(start + chunk, n)][sel - start]
            at += len(sel)
    return out


def _read_h5_frames(f: Any, path: Path):
    """obs and var as DataFrames, without loading X or the layers (older files: via backed anndata)."""
    import anndata

    for key in ("obs", "var"):
        if key not in f:
            raise UserDataError(path, f"not an AnnData file (no '{key}' in it)",
                                "write it with anndata (adata.write_h5ad); a 10x .h5 is read with "
                                "scanpy.read_10x_h5 and saved with write_h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "encoding-type" in f["obs"].attrs:
            try:
                from anndata.io import read_elem
            except ImportError:  # anndata < 0.11
                from anndata.experimental import read_elem
            return read_elem(f["obs"]), read_elem(f["var"])
        ad = anndata.read_h5ad(path, backed="r")
        try:
            return ad.obs.copy(), ad.var.copy()
        finally:
            ad.file.close()


def from_h5ad(path: str | Path, name: str, label_key: str | None = None, layer: str | None = None, *,
              split_key: str | None = None, markers: str | Path | None = None,
              gene_sets: str | Path | None = None, hvg: int | None = None, max_cells: int | None = None,
              standardize: bool = True, test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED
              ) -> Dataset:
    """A ``Dataset`` from an ``.h5ad`` file, read with h5py so a sparse X is never densified whole.

    obs and var are read as data frames; the matrix (``X`` or ``layers/<layer>``) as its arrays: dense
    rows in contiguous chunks (only the ``max_cells`` subsample is kept), sparse as data/indices/indptr.
    Nothing is unpickled (h5ad holds no pickles)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise UserDataError(path, "no such file", "check the path")
    if not h5py.is_hdf5(path):
        raise UserDataError(path, "is not an HDF5 file, so not an .h5ad", "write it with anndata's "
                            "adata.write_h5ad(path); a CSV/TSV table is read with format 'table'")

    def run() -> Dataset:
        with h5py.File(path, "r") as f:
            obs, var = _read_h5_frames(f, path)
            labels = _obs_column(obs, label_key, "label_key", path)
            split = _obs_column(obs, split_key, "split_key", path) if split_key else None
            if layer is None:
                if "X" not in f:
                    raise UserDataError(path, "the file has no X", "name a layer, or store the matrix in X")
                node = f["X"]
            else:
                have = list(f["layers"].keys()) if "layers" in f else []
                if layer not in have:
                    raise UserDataError(path, f"no layer {layer!r}", "use one of the layers: "
                                        f"{', '.join(map(repr, have)) or '(none; leave layer out for X)'}")
                node = f["layers"][layer]
            copies = 2 if _as_bool(standardize, "standardize", path) else 1
            return _assemble(path, name, labels, var.index, obs.index, split,
                             lambda rows: _read_h5_matrix(node, rows, path, copies),
                             what_label=f"obs[{label_key!r}]",
                             values=f"layers[{layer!r}] of the file" if layer else "X of the file",
                             markers=markers, gene_sets=gene_sets, hvg=hvg, max_cells=max_cells,
                             standardize=standardize, test_size=test_size, seed=seed,
                             params={"label_key": label_key, "layer": layer, "split_key": split_key})
    return _guarded(path, run)


# -- CSV / TSV tables --------------------------------------------------------------------------------------
def _scan_table(path: Path, sep: str | None) -> tuple[str, list[str], list[str], bool]:
    """(sep, header, first field of each data line, header_had_no_corner); refuses ragged lines."""
    with _open_text(path) as fh:
        first = fh.readline()
        if not first.strip():
            raise UserDataError(path, "the file is empty (no header line)", "write a header line, then one row per line")
        sep = sep or ("\t" if "\t" in first else ",")
        header, firsts, cornerless = _fields(first, sep), [], False
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            f = _fields(line, sep)
            if lineno == 2 and len(f) == len(header) + 1:  # R's write.table: no corner cell in the header
                header, cornerless = ["", *header], True
            if len(f) != len(header):
                raise UserDataError(path, f"line {lineno} has {len(f)} fields but the header has {len(header)}",
                                    "give every row one value per column (look for a missing value or a stray "
                                    f"separator {sep!r})")
            firsts.append(f[0].strip())
    if not firsts:
        raise UserDataError(path, "the file has a header but no rows", "add one row per sample")
    return sep, [h.strip() for h in header], firsts, cornerless


def _read_label_file(path: str | Path) -> tuple[dict[str, str], dict[str, str] | None]:
    """id -> label (and id -> split when the file has a split column) from CSV/TSV ``id,label[,split]``."""
    path = Path(path)
    if not path.is_file():
        raise UserDataError(path, "no such label file", "check the labels path (CSV id,label[,split])")
    with _open_text(path) as fh:
        rows = [(i, ln) for i, ln in enumerate(fh, start=1) if ln.strip()]
    if not rows:
        raise UserDataError(path, "the label file is empty", "write one 'id,label' per line")
    sep = "\t" if "\t" in rows[0][1] else ","
    table = [(i, [x.strip() for x in _fields(ln, sep)]) for i, ln in rows]
    head = [h.lower() for h in table[0][1]]
    cols = {"id": 0, "label": 1, "split": 2 if len(head) > 2 else None}
    if "label" in head:
        cols = {"id": 0, "label": head.index("label"), "split": head.index("split") if "split" in head else None}
        table = table[1:]
    labels, split = {}, {} if cols["split"] is not None else None
    for lineno, f in table:
        if len(f) <= max(c for c in cols.values() if c is not None):
            raise UserDataError(path, f"line {lineno} has {len(f)} field(s)", "write 'id,label[,split]' on every line")
        labels[f[0]] = f[cols["label"]]
        if split is not None:
            split[f[0]] = f[cols["split"]]
    check_unique([f[0] for _, f in table], path, what="sample id")
    return labels, split


def _numeric(df: Any, cols: list[int], row_names: list[str], col_names: list[str], source: Any) -> np.ndarray:
    """The columns ``cols`` of ``df`` as float32; a non-numeric cell is an error naming its row and column."""
    import pandas as pd

    for j, c in enumerate(cols):
        col = df[c]
        if pd.api.types.is_numeric_dtype(col) and col.dtype != bool:
            continue
        conv = pd.to_numeric(col.astype(str) if col.dtype == bool else col, errors="coerce")
        bad = np.flatnonzero((conv.isna() & col.notna()).to_numpy())
        if len(bad):
            r = int(bad[0])
            raise UserDataError(source, f"non-numeric value {str(col.iloc[r])!r} at row {row_names[r]!r}, "
                                f"column {col_names[j]!r}", "expression values must be numbers; fix the value, "
                                "or if that column is not a gene name it as label_column/split_column or drop it")
        df[c] = conv
    return df[cols].to_numpy(dtype=np.float32)


def from_table(path: str | Path, name: str, label_column: str = "label", labels: str | Path | None = None,
               orientation: str = "auto", sep: str | None = None, *, split_column: str | None = None,
               markers: str | Path | None = None, gene_sets: str | Path | None = None, hvg: int | None = None,
               max_cells: int | None = None, standardize: bool = True, test_size: float = DEFAULT_TEST_SIZE,
               seed: int = DEFAULT_SEED) -> Dataset:
    """A ``Dataset`` from a CSV/TSV table: cells x genes with a label column, or genes x cells with a label
    file (``labels``: ``id,label[,split]``); ``orientation="auto"`` detects which (see the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise UserDataError(path, "no such file", "check the path")
    key = str(orientation).strip().lower().replace("_", " ").replace("-", " ")
    if key not in ORIENTATIONS:
        raise UserDataError(path, f"unknown orientation {orientation!r}",
                            "use orientation=auto, 'cells x genes' or 'genes x cells'")

    def run() -> Dataset:
        import pandas as pd

        nonlocal key
        sep_, header, firsts, cornerless = _scan_table(path, sep)
        lab = split_map = None
        if labels is not None:
            lab, split_map = _read_label_file(labels)
        if key == "auto" and lab is None:
            if label_column not in header:
                raise UserDataError(path, f"no label column {label_column!r}; the columns are "
                                    f"{', '.join(map(repr, header[:20]))}" + (" ..." if len(header) > 20 else ""),
                                    "name the label column with label_column=..., or give labels=FILE (id,label) "
                                    "for a genes x cells table")
            key, how = "cells x genes", f"the label column {label_column!r} is in the header"
        elif key == "auto":
            in_head, in_first = sum(h in lab for h in header[1:]), sum(v in lab for v in firsts)
            if not in_head and not in_first:
                raise UserDataError(path, f"none of the ids of the label file {Path(labels).name} is a column name "
                                    "or a first-column value", "use the table's cell ids in the label file")
            key = "genes x cells" if in_head >= in_first else "cells x genes"
            how = (f"{in_head} label-file ids match column names and {in_first} match first-column values")
        else:
            how = "given by the user (orientation option)"
        params: dict[str, Any] = {"orientation": key, "orientation_detected": how, "sep": sep_,
                                  "label_column": label_column if lab is None else None,
                                  "labels_file": str(labels) if labels is not None else None}
        if cornerless:
            params["header"] = "one field short (R write.table): the first column taken as row names"
        if key == "genes x cells":
            if lab is None:
                raise UserDataError(path, "a genes x cells table needs its labels in a separate file",
                                    "give labels=FILE with lines 'cell_id,label'")
            if split_column is not None:
                raise UserDataError(path, "split_column applies to cells x genes tables",
                                    "put a split column (train/test) in the label file instead")
            genes, cells, cell_cols = firsts, header[1:], list(range(1, len(header)))
            check_unique(genes, path)
            df = pd.read_csv(path, sep=sep_, header=None, skiprows=1, dtype={0: str}, low_memory=False,
                             encoding="utf-8-sig")
            X = np.ascontiguousarray(_numeric(df, cell_cols, genes, cells, path).T)
        else:
            if split_column is not None and split_column not in header:
                raise UserDataError(path, f"no split column {split_column!r}", "use one of the columns: "
                                    + ", ".join(map(repr, header[:20])))
            special = {i for i, h in enumerate(header) if h in (label_column, split_column)}
            first_num = all(_is_number(v) for v in firsts[:200])
            has_ids = lab is not None or (0 not in special and (header[0].lower() in ID_HEADERS or not first_num))
            gene_cols = [i for i in range(len(header)) if i not in special and not (has_ids and i == 0)]
            genes = [header[i] for i in gene_cols]
            check_unique(genes, path)
            cells = firsts if has_ids else [f"row{i + 1}" for i in range(len(firsts))]
            df = pd.read_csv(path, sep=sep_, header=None, skiprows=1, low_memory=False, encoding="utf-8-sig",
                             dtype={i: str for i in special | ({0} if has_ids else set())})
            X = _numeric(df, gene_cols, cells, genes, path)
        check_unique(cells, path, what="sample id")
        if lab is not None:
            missing = [c for c in cells if c not in lab]
            if missing:
                raise UserDataError(labels, f"{len(missing)} cell(s) of {path.name} have no label "
                                    f"(e.g. {', '.join(map(repr, missing[:3]))})",
                                    "add them to the label file or drop them from the table")
            y_raw = [lab[c] for c in cells]
            params["label_file_ids_unused"] = len(lab) - len(cells)
        else:
            y_raw = list(df[header.index(label_column)])
        if split_column is not None:
            split_vals = list(df[header.index(split_column)])
        else:
            split_vals = [split_map[c] for c in cells] if split_map is not None else None
        params["split_column"] = split_column
        what = f"column {label_column!r}" if lab is None else f"labels of {Path(labels).name}"
        return _assemble(path, name, y_raw, genes, cells, split_vals, lambda rows: X if rows is None else X[rows],
                         what_label=what, values="the table's numbers as given", markers=markers,
                         gene_sets=gene_sets, hvg=hvg, max_cells=max_cells, standardize=standardize,
                         test_size=test_size, seed=seed, params=params)
    return _guarded(path, run)


def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return v.strip().lower() in ("", "na", "nan")


# -- importers ------------------------------------------------------------------------------------------------
def _detect_h5ad(path: Path) -> bool:
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    if suffix == ".h5ad":  # read_h5ad then says clearly when it is not HDF5
        return True
    if suffix != ".h5":
        return False
    import h5py
    if not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        return "obs" in f and "var" in f


def _detect_table(path: Path) -> bool:
    """A .csv/.tsv/.txt file that is neither FASTA ('>' first) nor an image list (path and label columns)."""
    if not (path.is_file() and path.name.lower().endswith(TABLE_SUFFIXES)):
        return False
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as fh:
            first = next((line for line in fh if line.strip()), "")
    except (OSError, EOFError):
        return True  # unreadable: the table reader then says why
    if first.lstrip().startswith(">"):
        return False
    header = {c.strip().strip('"').lower() for c in first.replace("\t", ",").split(",")}
    return not {"path", "label"} <= header


_COMMON = {
    "markers": "marker genes per class (weak ground truth): CSV class,gene (header optional) or GMT",
    "gene_sets": "gene sets for pathway grouping: GMT (name, description, genes...)",
    "hvg": "keep the N most variable genes (scanpy's seurat dispersion, on the training cells)",
    "max_cells": "a stratified, seeded subsample of N cells, drawn before anything is densified",
    "standardize": "per-gene standardisation with training statistics (default true)",
    "test_size": "fraction of cells held out when no split is given (default 0.25)",
    "seed": "seed of the split and of the max_cells subsample (default 0)",
}

register_importer(Importer(
    name="h5ad", kind="expression",
    description="AnnData .h5ad: labels from an obs column, X or a layer (sparse stays sparse)",
    detect=_detect_h5ad, read=lambda path, name, **o: from_h5ad(path, name, **o),
    options={"label_key": "the obs column holding the labels", "layer": "a layer instead of X",
             "split_key": "an obs column with train/test values (else a stratified split)", **_COMMON},
    side_files=("markers", "gene_sets")))

register_importer(Importer(
    name="table", kind="expression",
    description="CSV/TSV table: cells x genes with a label column, or genes x cells with a label file",
    detect=_detect_table, read=lambda path, name, **o: from_table(path, name, **o),
    options={"label_column": "the column holding the labels (cells x genes; default 'label')",
             "labels": "label file CSV id,label[,split] (genes x cells, or cells x genes without a label column)",
             "orientation": "auto (default), 'cells x genes' or 'genes x cells'",
             "sep": "field separator (default: tab if the header has one, else comma)",
             "split_column": "a column with train/test values (else a stratified split)", **_COMMON},
    side_files=("markers", "gene_sets", "labels")))
