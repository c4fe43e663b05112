"""Architectures, training and safetensors checkpoints."""
import json

import numpy as np
import pytest
import torch

from xai_core.models import ARCHS, build_model, load_checkpoint, predict_proba, save_checkpoint, train_model
from xai_core.models.checkpoints import read_metadata
from tests.conftest import make_dataset
from xai_core.errors import NotApplicable, UnknownChoice, XaiError


@pytest.mark.parametrize("arch,shape,n_out", [("lr", (30,), 3), ("mlp", (30,), 3), ("simplenet", (3, 64, 64), 3),
                                              ("dna_deep", (4, 200), 1), ("dna_shallow", (4, 200), 1)])
def test_architectures_forward(arch, shape, n_out):
    n_classes = 3 if n_out == 3 else 2
    m = build_model(arch, shape, n_classes).eval()
    assert m(torch.zeros(2, *shape)).shape == (2, n_out)


def test_dna_options_change_the_model():
    relu = build_model("dna_deep", (4, 200), 2)
    exp = build_model("dna_deep", (4, 200), 2, activation="exponential", batchnorm=False)
    assert any(type(m).__name__ == "Exp" for m in exp.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in exp.modules())
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in relu.modules())
    with pytest.raises(UnknownChoice, match="valid choices: dna_deep"):
        build_model("dna_deeep", (4, 200), 2)


def test_checkpoint_round_trip_without_pickle(tmp_path):
    torch.manual_seed(0)
    m = build_model("mlp", (30,), 3).eval()
    path = save_checkpoint(m, tmp_path / "m.safetensors",
                           {"arch": "mlp", "arch_kwargs": {}, "input_shape": [30], "n_classes": 3, "dataset": "x"})
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])  # safetensors: a JSON header then raw tensors
    assert json.loads(header["__metadata__"]["xai_core"])["arch"] == "mlp"
    m2, meta = load_checkpoint(path)
    x = torch.randn(5, 30)
    torch.testing.assert_close(m(x), m2(x))
    assert len(meta["checkpoint_hash"]) == 16


def test_unreadable_checkpoint_gives_a_clear_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(XaiError, match="not a readable safetensors checkpoint"):
        read_metadata(bad)
    with pytest.raises(XaiError, match="not found"):
        read_metadata(tmp_path / "missing.safetensors")


def test_training_learns_a_separable_task_and_reports_the_test_metric():
    ds = make_dataset("expression", n=300, n_classes=2)
    ds.X[ds.y == 1, :5] += 2.0  # five informative genes
    model, rep = train_model(ds, "lr", seed=0, epochs=15)
    assert rep.metric_name == "auroc" and rep.metric_value > 0.95
    assert 1 <= rep.best_epoch <= rep.epochs_run <= 15
    proba = predict_proba(model, ds.X[ds.test_idx])
    assert np.allclose(proba.sum(1), 1, atol=1e-5)
    _, rep2 = train_model(ds, "lr", seed=0, epochs=15)
    assert rep2.metric_value == rep.metric_value  # seeded: identical


def test_training_rejects_a_model_of_another_modality():
    ds = make_dataset("expression")
    with pytest.raises(NotApplicable, match="valid choices: lr, mlp"):
        train_model(ds, "simplenet")


def test_every_architecture_declares_a_recipe():
    for spec in ARCHS.values():
        assert {"optimizer", "lr", "epochs", "batch_size", "patience"} <= set(spec.train_defaults)
