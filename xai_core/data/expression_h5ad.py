"""AnnData: an in-memory object (``from_anndata``) or an ``.h5ad`` file read with h5py (``from_h5ad``).

The policies are stated in ``load_expression``'s module doc.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp

from .dataset import Dataset
from .expression_assemble import as_bool, assemble, guarded
from .user_common import DEFAULT_SEED, DEFAULT_TEST_SIZE, UserDataError

H5_CHUNK_ROWS = 4096  # rows of a dense h5ad X read at once


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
    """A ``Dataset`` from an in-memory ``AnnData``.

    Labels from ``obs[label_key]``, values from ``X`` or ``layers[layer]`` (sparse stays sparse), genes from
    ``var_names``, sample ids from ``obs_names``. The policies (values, standardisation, ``max_cells``, ``hvg``,
    markers) are those of ``xai_core.data.load_expression``.

    Parameters
    ----------
    adata : AnnData
        The cells x genes object.
    label_key : str
        The obs column holding the labels.
    name : str
        The dataset's name.
    layer : str, optional
        A layer instead of ``X``.
    split_key : str, optional
        An obs column with train/test values (else a stratified split).
    markers : str or Path, optional
        Marker genes per class (weak ground truth): CSV ``class,gene`` (header optional) or GMT.
    gene_sets : str or Path, optional
        Gene sets for pathway grouping (``feature_groups``): GMT (name, description, genes...).
    hvg : int, optional
        Keep the N most variable genes (scanpy's seurat dispersion, on the training cells).
    max_cells : int, optional
        A stratified, seeded subsample of N cells, drawn before anything is densified.
    standardize : bool
        Per-gene standardisation with training statistics.
    test_size : float
        Fraction of cells held out when no split is given.
    seed : int
        Seed of the split and of the ``max_cells`` subsample.
    source : str or Path, optional
        What error messages name as the input (default ``AnnData 'name'``).

    Returns
    -------
    Dataset
        Of modality ``expression``; ``params`` records what was done.

    Raises
    ------
    UserDataError
        For a missing label column or layer, an empty ``X``, bad labels or values, or any read error.
    """
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
        return assemble(source, name, labels, adata.var_names, adata.obs_names, split,
                        lambda rows: M if rows is None else M[rows], what_label=f"obs[{label_key!r}]",
                        values=f"adata.layers[{layer!r}]" if layer else "adata.X", markers=markers,
                        gene_sets=gene_sets, hvg=hvg, max_cells=max_cells, standardize=standardize,
                        test_size=test_size, seed=seed,
                        params={"label_key": label_key, "layer": layer, "split_key": split_key})
    return guarded(source, run)


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
    import anndata  # noqa: PLC0415 - anndata (0.6 s): only reading an .h5ad's obs/var needs it

    for key in ("obs", "var"):
        if key not in f:
            raise UserDataError(path, f"not an AnnData file (no '{key}' in it)",
                                "write it with anndata (adata.write_h5ad); a 10x .h5 is read with "
                                "scanpy.read_10x_h5 and saved with write_h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "encoding-type" in f["obs"].attrs:
            try:
                from anndata.io import read_elem  # noqa: PLC0415 - anndata (0.6 s), as above
            except ImportError:  # anndata < 0.11
                from anndata.experimental import read_elem  # noqa: PLC0415 - anndata (0.6 s), as above
            return read_elem(f["obs"]), read_elem(f["var"])
        ad = anndata.read_h5ad(path, backed="r")
        try:
            return ad.obs.copy(), ad.var.copy()
        finally:
            ad.file.close()


def from_h5ad(path: str | Path, name: str | None = None, label_key: str | None = None, layer: str | None = None, *,
              split_key: str | None = None, markers: str | Path | None = None,
              gene_sets: str | Path | None = None, hvg: int | None = None, max_cells: int | None = None,
              standardize: bool = True, test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED
              ) -> Dataset:
    """A ``Dataset`` from an ``.h5ad`` file, read with h5py so a sparse X is never densified whole.

    obs and var are read as data frames; the matrix (``X`` or ``layers/<layer>``) as its arrays: dense rows in
    contiguous chunks (only the ``max_cells`` subsample is kept), sparse as data/indices/indptr. Nothing is
    unpickled (h5ad holds no pickles). The policies are those of ``xai_core.data.load_expression``.

    Parameters
    ----------
    path : str or Path
        The ``.h5ad`` file.
    name : str, optional
        The dataset's name; default the file's name without suffixes.
    label_key : str
        The obs column holding the labels.
    layer : str, optional
        A layer instead of ``X``.
    split_key : str, optional
        An obs column with train/test values (else a stratified split).
    markers : str or Path, optional
        Marker genes per class (weak ground truth): CSV ``class,gene`` (header optional) or GMT.
    gene_sets : str or Path, optional
        Gene sets for pathway grouping (``feature_groups``): GMT (name, description, genes...).
    hvg : int, optional
        Keep the N most variable genes (scanpy's seurat dispersion, on the training cells).
    max_cells : int, optional
        A stratified, seeded subsample of N cells, drawn before anything is densified.
    standardize : bool
        Per-gene standardisation with training statistics.
    test_size : float
        Fraction of cells held out when no split is given.
    seed : int
        Seed of the split and of the ``max_cells`` subsample.

    Returns
    -------
    Dataset
        Of modality ``expression``; ``params`` records what was done.

    Raises
    ------
    UserDataError
        For a missing file, a file that is not HDF5, a missing label column, ``X`` or layer, bad labels or values,
        or any read error.
    """
    name = name or Path(path).name.split(".")[0]  # default: the file's name without suffixes
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
            copies = 2 if as_bool(standardize, "standardize", path) else 1
            return assemble(path, name, labels, var.index, obs.index, split,
                            lambda rows: _read_h5_matrix(node, rows, path, copies),
                            what_label=f"obs[{label_key!r}]",
                            values=f"layers[{layer!r}] of the file" if layer else "X of the file",
                            markers=markers, gene_sets=gene_sets, hvg=hvg, max_cells=max_cells,
                            standardize=standardize, test_size=test_size, seed=seed,
                            params={"label_key": label_key, "layer": layer, "split_key": split_key})
    return guarded(path, run)


def detect_h5ad(path: Path) -> bool:
    """Whether ``path`` is an AnnData file: a ``.h5ad``, or a ``.h5`` holding ``obs`` and ``var``."""
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    if suffix == ".h5ad":  # read_h5ad then says clearly when it is not HDF5
        return True
    if suffix != ".h5":
        return False
    if not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        return "obs" in f and "var" in f
