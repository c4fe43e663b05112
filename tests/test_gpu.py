"""The CUDA path: training, explaining and evaluating on a GPU give the CPU's numbers (to float tolerance).

Skipped where torch sees no CUDA device (the 2-core CI machines); run it on a GPU machine with
``.venv/bin/python -m pytest -q tests/test_gpu.py``.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_training_on_cuda_keeps_every_tensor_there():
    from xai_core.models import train_model
    from xai_core.data import load_dataset

    ds = load_dataset("simu-small")
    model, report = train_model(ds, "mlp", seed=0, device="cuda", epochs=3)
    assert all(p.device.type == "cuda" for p in model.parameters())
    assert 0.0 <= report.test_accuracy <= 1.0


@pytest.mark.parametrize("dataset,methods", [
    ("simu-small", "saliency,integrated_gradients,smoothgrad,deeplift,lrp_epsilon_plus_flat"),
    ("grain", "saliency,integrated_gradients,gradcam"),
    ("dna-motifs-small", "saliency,integrated_gradients"),
])
def test_explain_on_cuda_equals_cpu(tmp_path, dataset, methods):
    from xai_core.cli import main

    for dev in ("cpu", "cuda"):
        assert main(["explain", "--dataset", dataset, "--methods", methods, "--n", "8", "--device", dev,
                     "--out", str(tmp_path / dev)]) == 0
    assert json.loads((tmp_path / "cuda" / "manifest.json").read_text())["device"] == "cuda"
    with np.load(tmp_path / "cpu" / "attributions.npz") as a, np.load(tmp_path / "cuda" / "attributions.npz") as b:
        for m in methods.split(","):
            scale = np.abs(a[m]).max() + 1e-12
            np.testing.assert_allclose(b[m] / scale, a[m] / scale, atol=2e-3, err_msg=m)


def test_evaluate_on_cuda_equals_cpu(tmp_path):
    from xai_core.cli import main

    for dev in ("cpu", "cuda"):
        assert main(["evaluate", "--dataset", "simu-small", "--methods", "saliency,integrated_gradients,random",
                     "--metrics", "sparseness,pixel_flipping,faithfulness_correlation,max_sensitivity", "--n", "16",
                     "--device", dev, "--store", str(tmp_path / f"{dev}.sqlite"), "--out", str(tmp_path / dev)]) == 0
    a = pd.read_csv(tmp_path / "cpu" / "scores.csv").sort_values(["method", "metric", "sample_id"])
    b = pd.read_csv(tmp_path / "cuda" / "scores.csv").sort_values(["method", "metric", "sample_id"])
    assert len(a) == len(b)
    np.testing.assert_allclose(b["score"].to_numpy(), a["score"].to_numpy(), rtol=1e-3, atol=1e-3)


def test_sparse_user_data_on_cuda(tmp_path, monkeypatch):
    """A lazily densified sparse matrix feeds a CUDA model batch by batch."""
    import scipy.sparse as sp

    from xai_core.models import train_model
    from xai_core.data import Dataset, SparseRows, standardize
    from xai_core.explainers import explain, make_context

    m = sp.random(200, 50, density=0.2, format="csr", dtype=np.float32, random_state=0)
    y = (m.toarray()[:, :5].sum(1) > 0.3).astype(np.int64)
    ds = standardize(Dataset("gpu-sparse", "expression", SparseRows(m), y, ["a", "b"],
                             [f"g{i}" for i in range(50)], np.arange(150), np.arange(150, 200)))
    model, _ = train_model(ds, "mlp", device="cuda", epochs=2)
    ctx = make_context(model, ds)
    assert ctx.train_mean.device.type == "cuda"
    e = explain(ctx, ds.X[ds.test_idx[:8]], ds.y[ds.test_idx[:8]], "integrated_gradients")
    assert e.attributions.device.type == "cuda" and torch.isfinite(e.attributions).all()


def test_a_dna_population_member_trains_on_cuda_under_the_cpu_key(tmp_path, monkeypatch):
    """The study's ``--set device=cuda``: the member trains on the GPU, its checkpoint holds CPU tensors, and its
    key is the CPU's (a CPU run reuses it)."""
    from safetensors import safe_open

    from tests.conftest import make_dataset
    from xai_core.studies import dna_population as pop

    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pop, "COMMITTED", tmp_path / "committed")
    ds = make_dataset("sequence", n=60)
    spec = pop.Spec("dna_shallow", "relu", True, "standard", 0)
    cfg = {**pop.CONFIGS["quick"], "epochs": 1, "dtype": "float32", "device": "cuda"}
    path, trained = pop.train_member(ds, spec, cfg)
    assert trained and path == pop.member_key(ds, spec, {**cfg, "device": "cpu"})[0]
    with safe_open(str(path), "pt") as f:
        assert all(f.get_tensor(k).device.type == "cpu" for k in f.keys())
    assert pop.train_member(ds, spec, {**cfg, "device": "cpu"}) == (path, False)
