"""The training recipe's precision (``dtype``): float64 training is the same on another thread count and another
CPU kernel set, gives a float32 model like any other, and reaches every cache key (docs/determinism.md)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import make_dataset
from xai_core.data import load_dataset
from xai_core.determinism import reproducible
from xai_core.errors import XaiError
from xai_core.models import build_model, train_cached, train_model
from xai_core.models.checkpoints import read_metadata
from xai_core.models.training import CreatedIn, check_recipe, model_dtype, predict_proba, training_dtype
from xai_core.studies import run_study
from xai_core.studies.dna_consistency import CONFIGS, Spec, member_key

ROOT = Path(__file__).resolve().parents[1]
# a tiny population member: Gaussian-noise training and dropout draw random numbers in every batch
TINY = {"epochs": 3, "batch_size": 16, "regularizer": "gn", "regularizer_params": {"sigma": 0.15}}


def _train(threads: int, dtype: str) -> tuple[dict[str, torch.Tensor], dict]:
    ds = make_dataset("sequence", n=200)
    with reproducible(0, threads):
        model, report = train_model(ds, "dna_shallow", seed=0, dtype=dtype, **TINY)
    return model.state_dict(), report.to_dict()


def test_float64_training_is_bit_identical_over_thread_counts():
    """On this machine float32 training of the same member gives other weights with 1 and 2 threads (a reduction
    split over threads adds in another order); float64 gives the same float32 weights, validation scores and test
    metrics, bit for bit."""
    (w1, r1), (w2, r2) = _train(1, "float64"), _train(2, "float64")
    assert {v.dtype for v in w1.values() if v.is_floating_point()} == {torch.float32}  # the tool's model
    assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert [h["val_score"] for h in r1["history"]] == [h["val_score"] for h in r2["history"]]
    assert r1["test_auroc"] == r2["test_auroc"] and r1["recipe"]["dtype"] == "float64"


_OTHER_KERNELS = """
import json, sys
from tests.conftest import make_dataset
from xai_core.determinism import reproducible
from xai_core.models import train_model
with reproducible(0, 1) as rec:
    m, r = train_model(make_dataset("sequence", n=200), "dna_shallow", seed=0, dtype="float64",
                       **json.loads(sys.argv[1]))
print(json.dumps({"cpu_capability": rec["cpu_capability"], "val": [h["val_score"] for h in r.history],
                  "auroc": r.test_auroc,
                  "w": {k: v.double().flatten().tolist() for k, v in m.state_dict().items() if v.is_floating_point()}}))
"""


def test_float64_training_is_the_same_under_other_cpu_kernels():
    """ATen's generic kernels instead of AVX2, and oneDNN limited to SSE4.1 (another machine, simulated): the same
    validation scores and test AUROC to the last digit, and the float32 weights equal but for rare last-bit
    roundings of float64 numbers that differ by a few units of 1e-16. In float32 the initial weights alone
    differ in half their elements, and training makes that ~1e-6."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _OTHER_KERNELS, json.dumps(TINY)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    other = json.loads(done.stdout.strip().splitlines()[-1])
    assert other["cpu_capability"] == "DEFAULT"
    here, report = _train(1, "float64")
    assert other["val"] == [h["val_score"] for h in report["history"]] and other["auroc"] == report["test_auroc"]
    for k, v in here.items():
        if v.is_floating_point():
            theirs = torch.tensor(other["w"][k], dtype=torch.float64).reshape(v.shape)
            ulp = torch.finfo(torch.float32).eps * v.double().abs().clamp_min(2.0 ** -20)
            assert ((theirs - v.double()).abs() <= ulp).all(), k  # at most one float32 unit in the last place
            assert (theirs != v.double()).sum() <= max(2, v.numel() // 100), k  # and rarely


def test_float32_stays_the_default_and_its_path_is_unchanged():
    ds = make_dataset("sequence", n=60)
    assert all(check_recipe(a, {})["dtype"] == "float32" for a in ("mlp", "dna_shallow", "simplenet"))
    a, ra = train_model(ds, "dna_shallow", seed=0, epochs=2, batch_size=8)
    b, rb = train_model(ds, "dna_shallow", seed=0, epochs=2, batch_size=8, dtype="float32")
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    c, rc = train_model(ds, "dna_shallow", seed=0, epochs=2, batch_size=8, dtype="float64")
    assert {v.dtype for v in c.state_dict().values() if v.is_floating_point()} == {torch.float32}
    assert not all(torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())
    assert ra.recipe["dtype"] == "float32" and rc.recipe["dtype"] == "float64"
    x = torch.as_tensor(ds.X[:5])  # the float64-trained model takes float32 inputs like any other
    assert c(x).dtype == torch.float32 and predict_proba(c, ds.X[:5]).dtype == np.float32


def test_predict_proba_computes_in_the_models_dtype():
    model = build_model("mlp", (6,), 3).double()
    assert model_dtype(model) == torch.float64 and model_dtype(model.float()) == torch.float32
    X = np.random.default_rng(0).normal(size=(7, 6)).astype(np.float32)
    p64 = predict_proba(model.double(), X)
    assert p64.dtype == np.float64 and np.allclose(p64.sum(1), 1, atol=1e-12)
    assert np.allclose(predict_proba(model.float(), X), p64, atol=1e-6)


def test_the_float64_model_is_created_in_float64_on_this_thread_only():
    """The model is built inside a thread-local torch function mode: another thread creating tensors meanwhile
    gets float32, and after the block nothing has changed."""
    seen = []
    with CreatedIn(torch.float64):
        worker = threading.Thread(target=lambda: seen.append(torch.zeros(2).dtype))
        worker.start()
        worker.join()
        model = build_model("dna_shallow", (4, 200), 2)
    assert seen == [torch.float32] and torch.zeros(2).dtype == torch.float32
    assert {p.dtype for p in model.parameters()} == {torch.float64}


def test_bad_dtype_is_refused_with_the_choices():
    with pytest.raises(XaiError, match=r"--set dtype must be one of float32, float64, got 'float16'"):
        check_recipe("mlp", {"dtype": "float16"})
    with pytest.raises(ValueError, match="dtype must be one of"):
        train_model(make_dataset("expression", n=40), "mlp", epochs=1, dtype="double")
    with pytest.raises(XaiError, match="MPS device has no float64; train on device cpu"):
        training_dtype({"dtype": "float64"}, "mps")
    assert training_dtype({}, "mps") == torch.float32


def test_a_checkpoint_of_another_precision_is_not_reused(tmp_path):
    ds, path = make_dataset("expression", n=60), tmp_path / "m.safetensors"
    first = train_cached(ds, "lr", path, recipe={"epochs": 1})
    assert first.trained and read_metadata(path)["recipe"]["dtype"] == "float32"
    assert not train_cached(ds, "lr", path, recipe={"epochs": 1, "dtype": "float32"}).trained
    wide = train_cached(ds, "lr", path, recipe={"epochs": 1, "dtype": "float64"})  # reuse=True, yet trained
    assert wide.trained and read_metadata(path)["recipe"]["dtype"] == "float64"
    assert not train_cached(ds, "lr", path, recipe={"epochs": 1, "dtype": "float64"}).trained
    assert train_cached(ds, "lr", path, recipe={"epochs": 1}).trained  # float32 asked: trained again


def test_the_dtype_reaches_the_study_cache_key():
    """A float64 member has its own cache key; a float32 member keeps the key it had before the option existed
    (the recipe hashed without a dtype)."""
    ds = load_dataset("dna-motifs-small")
    spec = Spec("dna_shallow", "relu", True, "gn", 0)
    quick = CONFIGS["quick"]
    assert quick["dtype"] == "float64" and CONFIGS["full"]["dtype"] == "float32"
    p64, _, r64 = member_key(ds, spec, quick)
    p32, want, r32 = member_key(ds, spec, {**quick, "dtype": "float32"})
    assert r64 == {**r32, "dtype": "float64"} and "dtype" not in r32 and p64 != p32
    before = {"epochs": 4, "lr": 0.003, "batch_size": 64, "patience": 4, "regularizer": "gn",
              "regularizer_params": {"sigma": 0.15}}  # the recipe as the study wrote it before the option
    key = hashlib.sha256(json.dumps([want, before], sort_keys=True).encode()).hexdigest()[:10]
    assert p32.name == f"dna-motifs-small__dna_shallow-relu-bn-gn-s0__{key}.safetensors"


def test_the_study_refuses_a_bad_dtype_before_any_work(tmp_path):
    with pytest.raises(XaiError, match="--set dtype must be one of float32, float64"):
        run_study("dna-consistency", quick=True, out_dir=tmp_path / "out", dtype="half")
    assert not (tmp_path / "out").exists()
