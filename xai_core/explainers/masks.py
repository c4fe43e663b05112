"""Interpretable features for LIME and KernelSHAP: superpixels, DNA windows, gene groups.

Every function returns an integer feature mask with the shape of the input batch (N, *input_shape),
ids starting at 0 within each sample.
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.segmentation import quickshift, slic

from ..errors import UnknownChoice
from ..registry import Registry

SEGMENTATIONS: Registry = Registry("segmentation")


def _register(name):
    return SEGMENTATIONS.decorator(name, lambda fn: fn)


def _hwc(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(img, (1, 2, 0)), dtype=np.float64)


@_register("slic")
def _slic(img: np.ndarray, n_segments: int, **_) -> np.ndarray:
    return slic(_hwc(img), n_segments=n_segments, compactness=10, start_label=0, channel_axis=-1)


@_register("quickshift")
def _quickshift(img: np.ndarray, n_segments: int, **_) -> np.ndarray:
    # kernel size from the desired number of segments: ~ sqrt(area / n)
    k = max(1.0, float(np.sqrt(img.shape[1] * img.shape[2] / n_segments)) / 2)
    return quickshift(_hwc(img), kernel_size=k, max_dist=3 * k, ratio=0.5, channel_axis=-1)


@_register("grid")
def _grid(img: np.ndarray, n_segments: int, **_) -> np.ndarray:
    h, w = img.shape[1:]
    side = max(1, int(round(np.sqrt(n_segments))))
    rows = np.minimum(np.arange(h) * side // h, side - 1)
    cols = np.minimum(np.arange(w) * side // w, side - 1)
    return rows[:, None] * side + cols[None, :]


def image_mask(x: torch.Tensor, segmentation: str, n_segments: int) -> torch.Tensor:
    seg = SEGMENTATIONS.get(segmentation)
    masks = []
    for img in x.detach().cpu().numpy():
        m = seg(img, n_segments=n_segments)
        if len(np.unique(m)) < 2:  # a flat image gives one segment; a surrogate needs at least two
            m = _grid(img, n_segments=n_segments)
        masks.append(m)
    masks = np.stack(masks)
    m = torch.as_tensor(masks, dtype=torch.long, device=x.device)[:, None]
    return m.expand_as(x).contiguous()


def sequence_mask(x: torch.Tensor, window: int) -> torch.Tensor:
    length = x.shape[-1]
    ids = torch.arange(length, device=x.device) // window
    return ids.expand_as(x).contiguous()


def expression_groups(n_genes: int, feature_groups: np.ndarray | None, train_X: np.ndarray | None,
                      grouping: str, n_groups: int, seed: int) -> np.ndarray:
    """One group id per gene: known pathways, correlation clusters (k-means on gene profiles), or single genes.

    ``"auto"`` uses the pathways when the dataset knows them (simulations), else correlation clusters.
    """
    if grouping == "auto":
        grouping = "pathways" if feature_groups is not None else "clusters"
    if grouping == "single":
        return np.arange(n_genes)
    if grouping == "pathways":
        if feature_groups is None:
            raise UnknownChoice("gene grouping for this dataset (no pathways known)", grouping, ["clusters", "single"])
        g = np.asarray(feature_groups).copy()
        g[g < 0] = g.max() + 1  # genes in no pathway form one group
        return np.unique(g, return_inverse=True)[1]
    if grouping == "clusters":
        from sklearn.cluster import KMeans  # noqa: PLC0415 - sklearn.cluster: slow import (seconds), only gene clusters

        if train_X is None:
            raise ValueError("clustering genes needs the training matrix")
        k = min(n_groups, n_genes)
        return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(train_X.T)
    raise UnknownChoice("gene grouping", grouping, ["auto", "pathways", "clusters", "single"])
