"""Large sparse expression stays sparse: SparseRows indexing, statistics, persistence, and the engine on it."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from xai_core.data import Dataset, SparseRows, standardize
from xai_core.data.lazy import column_stats


def _csr(n=60, g=30, density=0.2, seed=0):
    rng = np.random.default_rng(seed)
    m = sp.random(n, g, density=density, random_state=seed, format="csr", dtype=np.float32)
    m.data = rng.gamma(2.0, 1.0, size=m.nnz).astype(np.float32)
    return m


def _dataset(X, y, name="lazy"):
    perm = np.random.default_rng(1).permutation(len(y))
    k = int(0.7 * len(y))
    return Dataset(name=name, modality="expression", X=X, y=y, class_names=["a", "b"],
                   feature_names=[f"g{i}" for i in range(X.shape[1])], train_idx=np.sort(perm[:k]),
                   test_idx=np.sort(perm[k:]))


def test_rows_equal_the_dense_matrix():
    m = _csr()
    X = SparseRows(m)
    dense = m.toarray()
    idx = np.array([5, 1, 1, 40])
    assert np.array_equal(X[idx], dense[idx])
    assert np.array_equal(X[3:9], dense[3:9])
    assert np.array_equal(X[7], dense[7])
    assert np.array_equal(X[dense[:, 0] > 0], dense[dense[:, 0] > 0])
    assert np.array_equal(X[idx, 2:5], dense[idx, 2:5])
    assert X.shape == dense.shape and len(X) == 60 and X.ndim == 2
    with pytest.raises(TypeError, match="refusing to densify"):
        np.asarray(X)


def test_standardised_rows_equal_dense_standardisation():
    m = _csr()
    y = np.arange(60) % 2
    dense = _dataset(m.toarray(), y)
    lazy = _dataset(SparseRows(m), y)
    a, b = standardize(dense), standardize(lazy)
    assert isinstance(b.X, SparseRows)
    np.testing.assert_allclose(b.X[np.arange(60)], a.X, rtol=1e-4, atol=1e-5)
    mean, cmeans, low, high = column_stats(b.X, b.train_idx, b.y, 2, chunk=7)
    np.testing.assert_allclose(mean, a.X[a.train_idx].mean(0), atol=1e-5)
    np.testing.assert_allclose(cmeans[1], a.X[a.train_idx][a.y[a.train_idx] == 1].mean(0), atol=1e-5)
    np.testing.assert_allclose(low, a.X[a.train_idx].min(0), atol=1e-5)
    np.testing.assert_allclose(b.train_mean(), mean, atol=1e-6)


def test_save_load_memory_mapped_and_fingerprint(tmp_path):
    m = _csr()
    y = np.arange(60) % 2
    ds = standardize(_dataset(SparseRows(m), y))
    ds.save(tmp_path / "d")
    back = Dataset.load(tmp_path / "d")
    assert isinstance(back.X, SparseRows)
    assert not back.X.csr.data.flags.owndata and not back.X.csr.indices.flags.owndata  # mapped, not read
    assert np.array_equal(back.X[np.arange(60)], ds.X[np.arange(60)])
    assert back.fingerprint() == ds.fingerprint()
    m2 = m.copy()
    m2.data[0] += 1.0
    assert _dataset(SparseRows(m2), y).fingerprint() != _dataset(SparseRows(m), y).fingerprint()
    # a damaged index array is refused, not read as another matrix
    np.save(tmp_path / "d.X" / "X.indptr.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="damaged"):
        Dataset.load(tmp_path / "d")


def test_training_and_explaining_on_sparse_equal_dense():
    """The same numbers through the lazy path and the dense path: train, context, explain."""
    from xai_core.models import train_model
    from xai_core.explainers import explain, make_context

    m = _csr(n=80, g=25, seed=3)
    y = (m.toarray()[:, :5].sum(1) > np.median(m.toarray()[:, :5].sum(1))).astype(np.int64)
    lazy = standardize(_dataset(SparseRows(m), y))
    dense = Dataset(**{**lazy.__dict__, "X": lazy.X[np.arange(80)]})
    m1, r1 = train_model(lazy, "mlp", seed=0, epochs=3)
    m2, r2 = train_model(dense, "mlp", seed=0, epochs=3)
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v1, v2), k
    assert r1.test_accuracy == r2.test_accuracy
    c1, c2 = make_context(m1, lazy), make_context(m2, dense)
    torch.testing.assert_close(c1.train_mean, c2.train_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c1.class_means, c2.class_means, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c1.low, c2.low)
    x = torch.as_tensor(lazy.X[lazy.test_idx[:8]])
    t = torch.as_tensor(lazy.y[lazy.test_idx[:8]])
    e1 = explain(c1, x, t, "integrated_gradients")
    e2 = explain(c2, x, t, "integrated_gradients")
    torch.testing.assert_close(e1.attributions, e2.attributions, atol=1e-5, rtol=1e-4)


def test_sparse_column_stats_equal_the_streamed_dense_ones():
    """The O(nnz) statistics (implicit zeros in min/max, per-class sums) equal those of densified rows."""
    from xai_core.data.lazy import CHUNK_ROWS

    m = _csr(n=90, g=20, density=0.3, seed=5)
    m.data -= 1.5  # negative stored values too, so implicit zeros matter for both min and max
    y = np.arange(90) % 3
    for X in (SparseRows(m), SparseRows(m).standardized(np.arange(60))):
        rows = np.arange(5, 80)
        fast = X.column_stats(rows, y, 3)
        dense = X[rows]
        np.testing.assert_allclose(fast[0], dense.mean(0), atol=1e-5)
        for c in range(3):
            np.testing.assert_allclose(fast[1][c], dense[y[rows] == c].mean(0), atol=1e-5)
        np.testing.assert_allclose(fast[2], dense.min(0), atol=1e-5)
        np.testing.assert_allclose(fast[3], dense.max(0), atol=1e-5)
    assert CHUNK_ROWS > 0
