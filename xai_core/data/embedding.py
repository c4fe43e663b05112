"""2-D embeddings of expression samples for viewing (PCA, or UMAP on the top principal components)."""
from __future__ import annotations

import numpy as np

from ..errors import UnknownChoice

EMBEDDINGS = ("pca", "umap")


def embed(X: np.ndarray, method: str = "pca", seed: int = 0, n_pcs: int = 30) -> np.ndarray:
    """(N, 2) coordinates. PCA via SVD of the centred data; UMAP (umap-learn) on the first ``n_pcs`` PCs."""
    if method not in EMBEDDINGS:
        raise UnknownChoice("embedding", method, list(EMBEDDINGS))
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(0)
    k = max(2, min(n_pcs, *Xc.shape))
    from sklearn.decomposition import PCA  # noqa: PLC0415 - sklearn: slow import (seconds), only embeddings need it

    pcs = PCA(n_components=k, random_state=seed, svd_solver="randomized").fit_transform(Xc)
    if method == "pca":
        return pcs[:, :2].astype(np.float32)
    import umap  # noqa: PLC0415 - umap-learn: optional (not a requirement), and slow to import (numba)

    um = umap.UMAP(n_components=2, random_state=seed, n_neighbors=15, min_dist=0.3)
    return um.fit_transform(pcs).astype(np.float32)


def top_variance_features(X: np.ndarray, k: int = 50) -> np.ndarray:
    """Indices of the ``k`` features with the largest variance, largest first."""
    v = np.asarray(X, dtype=np.float64).var(0)
    return np.argsort(-v, kind="stable")[:k]
