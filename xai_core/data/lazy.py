"""A sparse expression matrix that is densified a batch of rows at a time, never whole.

``SparseRows`` wraps a CSR matrix (cells x genes) and answers the only questions the engine asks of
``Dataset.X``: ``shape``/``ndim``/``len`` and row indexing (an int, a slice, an index array or a boolean
mask), which returns a dense float32 ``ndarray`` of those rows. Optional per-gene centring and scaling
(``(x - mean) / std``, training statistics) are applied to the densified rows only, so standardising a
100,000 x 20,000 matrix costs two vectors of 20,000 numbers, not 8 GB.

On disk (``save``/``load``) it is three ``.npy`` files (data, indices, indptr) plus the optional mean and
std, read back memory-mapped: opening a cached dataset does not read the matrix into memory. Nothing is
ever pickled.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import scipy.sparse as sp

CHUNK_ROWS = 2048  # rows densified at once by the streaming statistics


class Hasher(Protocol):
    """What ``update_hash`` feeds: a ``hashlib`` hash object (its type is private to hashlib)."""

    def update(self, data: bytes | memoryview, /) -> None:
        """Feed ``data`` to the hash."""


class SparseRows:
    """Read-only (N, G) view over a CSR matrix; indexing rows gives dense float32 arrays.

    ``np.asarray`` of the whole matrix raises ``TypeError``: index rows (``X[idx]``) instead.

    Parameters
    ----------
    csr : scipy.sparse.csr_matrix or csr_array
        The cells x genes matrix (another sparse format is converted to CSR).
    mean, std : ndarray, optional
        Per-gene centring and scaling applied to the densified rows: ``(x - mean) / std``.

    Raises
    ------
    TypeError
        When ``csr`` is not a scipy sparse matrix.
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, csr: sp.csr_matrix | sp.csr_array, mean: np.ndarray | None = None,
                 std: np.ndarray | None = None):
        if not sp.issparse(csr):
            raise TypeError("SparseRows needs a scipy sparse matrix")
        csr = csr if csr.format == "csr" else csr.tocsr()
        self.csr = csr
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.std = None if std is None else np.asarray(std, dtype=np.float32)

    # -- array facts ------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(N, G)``."""
        return tuple(int(s) for s in self.csr.shape)  # type: ignore[return-value]

    @property
    def nnz(self) -> int:
        """The number of stored (non-zero) values."""
        return int(self.csr.nnz)

    @property
    def nbytes(self) -> int:
        """Bytes of the sparse storage (what the matrix costs in memory), not of a dense copy."""
        c = self.csr
        return int(c.data.nbytes + c.indices.nbytes + c.indptr.nbytes)

    def __len__(self) -> int:
        """The number of rows N."""
        return self.shape[0]

    def __repr__(self) -> str:
        """Shape, non-zeros and whether the view is standardised (never the values)."""
        return f"SparseRows({self.shape[0]} x {self.shape[1]}, nnz={self.nnz:,}, standardised={self.mean is not None})"

    # -- rows ---------------------------------------------------------------------------------------
    def _dense(self, rows) -> np.ndarray:
        block = self.csr[rows]
        out = np.asarray(block.toarray(), dtype=np.float32)
        if self.mean is not None:
            out -= self.mean
        if self.std is not None:
            out /= self.std
        return out

    def __getitem__(self, key) -> np.ndarray:
        """Dense float32 rows for an int, a slice, an index array or a boolean mask (``X[rows, cols]`` too)."""
        if isinstance(key, tuple):  # X[rows, cols]: densify the rows, then take the columns
            rows, cols = key[0], key[1:]
            return self[rows][(slice(None), *cols)]
        if isinstance(key, (int, np.integer)):
            return self._dense(np.array([int(key)]))[0]
        if isinstance(key, slice):
            return self._dense(key)
        idx = np.asarray(key)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return self._dense(idx.astype(np.int64, copy=False))

    def __array__(self, dtype=None, copy=None):
        """Refuse to densify the whole matrix (``TypeError``): index rows instead."""
        raise TypeError(f"refusing to densify a {self.shape[0]} x {self.shape[1]} sparse matrix whole; "
                        f"index rows (X[idx]) instead")

    def iter_rows(self, rows: np.ndarray, chunk: int = CHUNK_ROWS):
        """Dense blocks of ``rows``, ``chunk`` rows at a time.

        Parameters
        ----------
        rows : ndarray
            Row indices.
        chunk : int
            Rows densified at once.

        Yields
        ------
        tuple of (ndarray, ndarray)
            The block's row indices and its dense float32 rows.
        """
        rows = np.asarray(rows, dtype=np.int64)
        for i in range(0, len(rows), chunk):
            yield rows[i:i + chunk], self[rows[i:i + chunk]]

    # -- statistics without densifying ------------------------------------------------------------------
    def raw_mean_std(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-gene mean and (population) std of the raw values over ``rows``, in float64 sums.

        Parameters
        ----------
        rows : ndarray
            Row indices (the training rows).

        Returns
        -------
        mean, std : ndarray
            (G,) float32 each, before any standardisation of this view.
        """
        rows = np.asarray(rows, dtype=np.int64)
        G = self.shape[1]
        s1, s2 = np.zeros(G, dtype=np.float64), np.zeros(G, dtype=np.float64)
        step = 4 * CHUNK_ROWS  # a sparse block of rows at a time: no copy of the whole training matrix
        for i in range(0, len(rows), step):
            sub = self.csr[rows[i:i + step]]
            data = sub.data.astype(np.float64)
            s1 += np.bincount(sub.indices, weights=data, minlength=G)
            s2 += np.bincount(sub.indices, weights=data * data, minlength=G)
        n = max(len(rows), 1)
        mean = s1 / n
        var = np.maximum(s2 / n - mean ** 2, 0.0)
        return mean.astype(np.float32), np.sqrt(var).astype(np.float32)

    def standardized(self, rows: np.ndarray, eps: float = 1e-8) -> SparseRows:
        """The same matrix read as ``(x - mean) / std`` with the statistics of ``rows`` (training).

        Parameters
        ----------
        rows : ndarray
            The rows whose statistics are used.
        eps : float
            A std below ``eps`` is taken as 1.

        Returns
        -------
        SparseRows
            A new view over the same CSR matrix.
        """
        mean, std = self.raw_mean_std(rows)
        std = np.where(std < eps, 1.0, std).astype(np.float32)
        return SparseRows(self.csr, mean, std)

    def column_stats(self, rows: np.ndarray, y: np.ndarray | None = None, n_classes: int = 0):
        """``column_stats`` in O(non-zeros).

        Sums, per-class sums, min and max (implicit zeros included) of the raw values over sparse row blocks, then
        mapped through the standardisation, which is affine per gene.

        Parameters
        ----------
        rows : ndarray
            Row indices.
        y : ndarray, optional
            Class index of every row of the matrix; with it, the per-class means.
        n_classes : int
            The number of classes (used with ``y``).

        Returns
        -------
        tuple
            ``(mean (G,), class_means (C, G) or None, low (G,), high (G,))``, float32.
        """
        rows = np.asarray(rows, dtype=np.int64)
        G = self.shape[1]
        C = n_classes if y is not None else 0
        s = np.zeros(G, dtype=np.float64)
        cs = np.zeros(C * G, dtype=np.float64)
        cn = np.zeros(max(C, 1), dtype=np.int64)
        low = np.full(G, np.inf)
        high = np.full(G, -np.inf)
        step = 4 * CHUNK_ROWS
        for i in range(0, len(rows), step):
            r = rows[i:i + step]
            sub = self.csr[r]
            data = sub.data.astype(np.float64)
            s += np.bincount(sub.indices, weights=data, minlength=G)
            low = np.minimum(low, sub.min(axis=0).toarray().ravel())
            high = np.maximum(high, sub.max(axis=0).toarray().ravel())
            if C:
                yy = np.repeat(y[r], np.diff(sub.indptr))
                cs += np.bincount(sub.indices + yy * G, weights=data, minlength=C * G)
                cn += np.bincount(y[r], minlength=C)
        n = max(len(rows), 1)
        mean = s / n
        class_means = None
        if C:
            cs = cs.reshape(C, G)
            class_means = np.stack([cs[c] / cn[c] if cn[c] else mean for c in range(C)])
        shift = 0.0 if self.mean is None else self.mean.astype(np.float64)
        scale = 1.0 if self.std is None else self.std.astype(np.float64)
        f = lambda a: ((a - shift) / scale).astype(np.float32)  # noqa: E731
        return f(mean), None if class_means is None else f(class_means), f(low), f(high)

    # -- identity and persistence -----------------------------------------------------------------------
    def update_hash(self, h: Hasher) -> None:
        """Feed the matrix's content to ``h`` without copying it (buffers, not ``tobytes``).

        Parameters
        ----------
        h : hashlib hash object
            Receives the shape, the CSR arrays and the mean and std when set.
        """
        c = self.csr
        h.update(np.asarray(self.shape, dtype=np.int64).tobytes())
        for arr in (c.indptr, c.indices, c.data):
            a = np.ascontiguousarray(arr)
            h.update(memoryview(a).cast("B"))
        for arr in (self.mean, self.std):
            if arr is not None:
                h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))

    def save(self, folder: str | Path, prefix: str = "X") -> None:
        """Write the matrix as ``.npy`` files (data, indices, indptr, shape, and mean and std when set), no pickles.

        Parameters
        ----------
        folder : str or Path
            Created if missing.
        prefix : str
            The files are ``{prefix}.{part}.npy``.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        c = self.csr
        parts = {"data": c.data.astype(np.float32, copy=False), "indices": c.indices, "indptr": c.indptr,
                 "shape": np.asarray(self.shape, dtype=np.int64)}
        if self.mean is not None:
            parts["mean"] = self.mean
        if self.std is not None:
            parts["std"] = self.std
        for k, v in parts.items():
            np.save(folder / f"{prefix}.{k}.npy", np.ascontiguousarray(v), allow_pickle=False)

    @classmethod
    def exists(cls, folder: str | Path, prefix: str = "X") -> bool:
        """Whether ``folder`` holds a matrix saved with ``prefix``.

        Parameters
        ----------
        folder : str or Path
            As given to ``save``.
        prefix : str
            As given to ``save``.

        Returns
        -------
        bool
        """
        return (Path(folder) / f"{prefix}.indptr.npy").exists()

    @classmethod
    def load(cls, folder: str | Path, prefix: str = "X", mmap: bool = True) -> SparseRows:
        """Read a matrix written by ``save``, memory-mapped by default (the matrix is not read into memory).

        Parameters
        ----------
        folder : str or Path
            As given to ``save``.
        prefix : str
            As given to ``save``.
        mmap : bool
            Memory-map the arrays (else read them).

        Returns
        -------
        SparseRows

        Raises
        ------
        ValueError
            When the index arrays disagree with the saved shape (a damaged matrix).
        """
        folder = Path(folder)
        mode = "r" if mmap else None

        def get(k: str):
            p = folder / f"{prefix}.{k}.npy"
            return np.load(p, mmap_mode=mode, allow_pickle=False) if p.exists() else None

        shape = tuple(int(s) for s in np.load(folder / f"{prefix}.shape.npy", allow_pickle=False))
        data, indices, indptr = get("data"), get("indices"), get("indptr")
        if len(indptr) != shape[0] + 1 or len(data) != len(indices) or int(indptr[-1]) != len(data):
            raise ValueError(f"sparse matrix in {folder} is damaged (index arrays disagree with its shape)")
        csr = sp.csr_matrix((data, indices, indptr), shape=shape, copy=False)
        mean, std = get("mean"), get("std")
        return cls(csr, None if mean is None else np.array(mean), None if std is None else np.array(std))


def is_lazy(X) -> bool:
    """Whether ``X`` is a lazy ``SparseRows`` (rather than a dense array)."""
    return isinstance(X, SparseRows)


def column_stats(X, rows: np.ndarray, y: np.ndarray | None = None, n_classes: int = 0,
                 chunk: int = CHUNK_ROWS):
    """Mean, per-class means, min and max over ``rows`` of a lazy or dense 2-D matrix, streamed.

    Returns ``(mean (G,), class_means (C, G) or None, low (G,), high (G,))``; a class with no row gets the
    overall mean.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if is_lazy(X):
        return X.column_stats(rows, y, n_classes)
    G = X.shape[1]
    s = np.zeros(G, dtype=np.float64)
    cs = np.zeros((n_classes, G), dtype=np.float64) if y is not None else None
    cn = np.zeros(n_classes, dtype=np.int64)
    low = np.full(G, np.inf, dtype=np.float32)
    high = np.full(G, -np.inf, dtype=np.float32)
    for i in range(0, len(rows), chunk):
        r = rows[i:i + chunk]
        block = X[r]
        s += block.sum(axis=0, dtype=np.float64)
        low = np.minimum(low, block.min(axis=0))
        high = np.maximum(high, block.max(axis=0))
        if cs is not None:
            yy = y[r]
            for c in np.unique(yy):
                cs[c] += block[yy == c].sum(axis=0, dtype=np.float64)
                cn[c] += int((yy == c).sum())
    mean = (s / max(len(rows), 1)).astype(np.float32)
    class_means = None
    if cs is not None:
        class_means = np.stack([(cs[c] / cn[c]).astype(np.float32) if cn[c] else mean for c in range(n_classes)])
    return mean, class_means, low, high
