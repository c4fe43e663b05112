"""Shared builders for metric tests: real shipped models on bundled data, or tiny random models."""
from __future__ import annotations

import functools

import numpy as np
import torch

from xai_core.models import build_model, load_model
from xai_core.data import load_dataset
from xai_core.explainers import explain, make_context
from xai_core.metrics import build_inputs

DEFAULT_DATA = {"expression": "simu-small", "image": "grain", "sequence": "dna-motifs-small"}


@functools.lru_cache(maxsize=8)
def shipped(dataset: str):
    """(Dataset, model, ExplainContext) for a bundled dataset and its shipped default checkpoint."""
    ds = load_dataset(dataset)
    model, _ = load_model(dataset)
    return ds, model, make_context(model, ds)


def shipped_inputs(dataset: str, n: int = 8, method: str = "saliency", params: dict | None = None,
                   positives_only: bool = False, **kw):
    """MetricInputs for the first ``n`` test samples of ``dataset`` explained by ``method``."""
    ds, model, ctx = shipped(dataset)
    idx = ds.test_idx
    if positives_only:
        idx = idx[ds.y[idx] == 1]
    idx = idx[:n]
    x = torch.as_tensor(ds.X[idx])
    a = explain(ctx, x, torch.as_tensor(ds.y[idx]), method, **(params or {})).attributions
    return build_inputs(ds, ctx, idx, a, method, params or {}, **kw)


def random_model_inputs(modality: str, n: int = 6, method: str = "saliency", seed: int = 0, **kw):
    """MetricInputs for a tiny random dataset (tests/conftest.make_dataset) and an untrained model."""
    from tests.conftest import make_dataset

    torch.manual_seed(seed)
    ds = make_dataset(modality, n=max(40, n * 2), seed=seed)
    arch = {"expression": "mlp", "image": "simplenet", "sequence": "dna_deep"}[modality]
    model = build_model(arch, ds.input_shape, ds.n_classes).eval()
    ctx = make_context(model, ds)
    idx = ds.test_idx[:n]
    a = explain(ctx, torch.as_tensor(ds.X[idx]), torch.as_tensor(ds.y[idx]), method).attributions
    return build_inputs(ds, ctx, np.asarray(idx), a, method, {}, **kw)
