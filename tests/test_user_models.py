"""Your own models: registered nn.Modules and model files (safetensors + JSON, .pt2, TorchScript, .pt state
dicts, code + weights) through checks, explainers, the runner and the store; refusals are one clear line."""
import json
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import xai_core
from xai_core.models import build_model, load_model
from xai_core.models.checkpoints import state_dict_hash
from xai_core.models.model_formats import (
    LoadRequest,
    ModelCheckError,
    ModelFileError,
    PickleRefused,
    load_file,
)
from xai_core.models.user_models import _REGISTERED, find_model, import_model, remove_model
from xai_core.data import load_dataset
from xai_core.errors import NotApplicable, XaiError
from xai_core.explainers import (
    applicable_methods,
    explain,
    make_context,
    resolve_methods,
)
from xai_core.runner import EvalConfig, Evaluation
from xai_core.store import ResultStore

DS = "simu-small"  # expression, 2000 genes, 5 classes


class GeluMLP(nn.Module):
    """Not one of our architectures: GELU + LayerNorm, no nn.Sequential at the top."""

    def __init__(self, d: int = 2000, hidden: int = 16, c: int = 5):
        super().__init__()
        self.fc1, self.act = nn.Linear(d, hidden), nn.GELU()
        self.norm, self.fc2 = nn.LayerNorm(hidden), nn.Linear(hidden, c)

    def forward(self, x):
        return self.fc2(self.norm(self.act(self.fc1(x))))


CODE = '''
import torch
from torch import nn


class CodeNet(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.fc1, self.norm, self.fc2 = nn.Linear(2000, hidden), nn.LayerNorm(hidden), nn.Linear(hidden, 5)

    def forward(self, x):
        return self.fc2(self.norm(torch.nn.functional.gelu(self.fc1(x))))
'''


def _seeded(cls=GeluMLP, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(**kw).eval()


@pytest.fixture(scope="module")
def ds():
    return load_dataset(DS)


@pytest.fixture(autouse=True)
def clean_registry():
    yield
    _REGISTERED.clear()


def _x(ds, n=3):
    idx = ds.test_idx[:n]
    return torch.as_tensor(ds.X[idx]), torch.as_tensor(ds.y[idx])


def _saliency_ig(model, ds):
    ctx = make_context(model, ds)
    x, y = _x(ds)
    sal = explain(ctx, x, y, "saliency").attributions
    ig = explain(ctx, x, y, "integrated_gradients", n_steps=8).attributions
    return ctx, sal, ig


# -- a registered module through the runner and the store ---------------------------------------------------
def test_registered_module_runs_in_the_runner_resumes_and_is_keyed_by_its_weights(tmp_path):
    m = _seeded()
    entry = xai_core.register_model("gelu-mlp", m, dataset=DS)
    assert entry["checkpoint_hash"] == state_dict_hash(m) and entry["eager"]
    cfg = {"dataset": DS, "model": "gelu-mlp", "methods": "saliency,input_x_gradient",
           "metrics": "sparseness,complexity", "n": 5, "only_correct": False}
    ev = Evaluation(EvalConfig(**cfg), ResultStore(tmp_path / "r.sqlite"))
    assert ev.model_name == "gelu-mlp" and ev.model_hash == state_dict_hash(m)
    checks = ev.model_meta["checks"]
    assert 0 <= checks["test_accuracy"] <= 1 and checks["n_outputs"] == 5
    scores = ev.run()
    assert len(scores) == 2 * 2 * 5 and set(scores["model"]) == {"gelu-mlp"}
    assert set(scores["model_hash"]) == {state_dict_hash(m)}

    m2 = GeluMLP().eval()  # a new object with the same weights: same key, nothing recomputed
    m2.load_state_dict(m.state_dict())
    xai_core.register_model("gelu-mlp", m2, dataset=DS)
    events = []
    ev2 = Evaluation(EvalConfig(**cfg), ResultStore(tmp_path / "r.sqlite"))
    assert ev2.model_hash == ev.model_hash
    again = ev2.run(progress=events.append)
    assert events and all(e["cached"] for e in events)
    assert np.allclose(again.sort_values(["method", "metric", "sample"])["score"].to_numpy(),
                       scores.sort_values(["method", "metric", "sample"])["score"].to_numpy(), equal_nan=True)

    other = _seeded(seed=1)  # other weights: another key
    assert state_dict_hash(other) != state_dict_hash(m)


def test_registered_model_is_bound_to_its_dataset():
    xai_core.register_model("gelu-mlp", _seeded(), dataset=DS)
    with pytest.raises(XaiError, match="registered for dataset 'simu-small', not 'pbmc68k'"):
        load_model("pbmc68k", "gelu-mlp")
    with pytest.raises(XaiError, match="built-in architecture"):
        xai_core.register_model("mlp", _seeded(), dataset=DS)


# -- every file form loads, is checked and explains ---------------------------------------------------------
def _check_file_model(model, meta, ref, ds, eager):
    ctx, sal, ig = _saliency_ig(model, ds)
    _, sal_ref, ig_ref = _saliency_ig(ref, ds)
    torch.testing.assert_close(sal, sal_ref, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ig, ig_ref, rtol=1e-4, atol=1e-6)
    assert meta["eager"] is eager and ctx.eager is eager and len(meta["checkpoint_hash"]) == 16
    assert meta["checks"]["input_ok"] and meta["checks"]["test_accuracy"] is not None
    return ctx


def test_safetensors_with_a_side_json_and_a_pt_state_dict_with_model_meta(tmp_path, ds):
    ref = _seeded(build_model, arch="mlp", input_shape=(2000,), n_classes=5, hidden=12)
    st = tmp_path / "net.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(st))  # no xai_core metadata
    with pytest.raises(ModelFileError, match="without an architecture"):
        load_model(DS, str(st))
    (tmp_path / "net.safetensors.json").write_text(json.dumps({"arch": "mlp", "arch_kwargs": {"hidden": 12}}))
    model, meta = load_model(DS, str(st))
    assert meta["format"] == "safetensors" and meta["arch"] == "mlp" and meta["model_name"] == "net"
    _check_file_model(model, meta, ref, ds, eager=True)

    pt = tmp_path / "weights.pt"
    torch.save(ref.state_dict(), pt)
    side = tmp_path / "arch.json"
    side.write_text(json.dumps({"arch": "mlp", "arch_kwargs": {"hidden": 12}}))
    model, meta = load_model(DS, str(pt), meta=str(side))
    assert meta["format"] == "state_dict"
    ctx = _check_file_model(model, meta, ref, ds, eager=True)
    assert "lrp_epsilon_plus_flat" in applicable_methods(ctx)
    with pytest.raises(ModelFileError, match="do not fit architecture 'mlp'"):
        load_model(DS, str(pt), meta={"arch": "mlp", "arch_kwargs": {"hidden": 20}})


def test_exported_program_and_torchscript_explain_but_refuse_hook_methods(tmp_path, ds):
    ref = _seeded()
    dyn = tmp_path / "dyn.pt2"
    torch.export.save(torch.export.export(ref, (torch.randn(2, 2000),),
                                          dynamic_shapes=({0: torch.export.Dim("batch")},)), str(dyn))
    static = tmp_path / "static.pt2"  # traced for batches of exactly 2: run in chunks of 2
    torch.export.save(torch.export.export(ref, (torch.randn(2, 2000),)), str(static))
    ts = tmp_path / "scripted.pt"  # a TorchScript archive under .pt: found by content
    torch.jit.save(torch.jit.script(ref), str(ts))
    for path, fmt in ((dyn, "pt2"), (static, "pt2"), (ts, "torchscript")):
        model, meta = load_model(DS, str(path))
        assert meta["format"] == fmt
        ctx = _check_file_model(model, meta, ref, ds, eager=False)
        x, y = _x(ds, 2)
        with pytest.raises(NotApplicable, match="'lrp_epsilon_plus_flat' needs an eager model.*safetensors "
                                                "\\+ architecture or --model-code"):
            explain(ctx, x, y, "lrp_epsilon_plus_flat")
        listed = applicable_methods(ctx)
        assert "saliency" in listed and "integrated_gradients" in listed
        assert not {"deeplift", "guided_backprop", "lrp_epsilon_plus", "aggregate"} & set(listed)
        assert "deeplift" not in resolve_methods("all", ctx)
    assert load_model(DS, str(static))[1]["static_batch"] == 2

    # an archive that declares a pickled weight is refused before torch reads it
    tampered = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(dyn) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("_weights_config.json"):
                config = json.loads(data)
                next(iter(config["config"].values()))["use_pickle"] = True
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    with pytest.raises(PickleRefused, match="refusing to unpickle tampered.pt2: its entry '.*' is pickled"):
        load_model(DS, str(tampered))


def test_gradcam_on_torchscript_says_it_needs_an_eager_model(tmp_path, tiny):
    img = tiny("image", n=12)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 2))
    path = tmp_path / "cnn.ts"
    torch.jit.save(torch.jit.script(net), str(path))
    model, info = load_file(LoadRequest(path, img.input_shape, img.n_classes))
    assert info["format"] == "torchscript" and not info["eager"]
    ctx = make_context(model, img)
    for method in ("gradcam", "guided_gradcam", "guided_backprop"):
        with pytest.raises(NotApplicable, match=f"'{method}' needs an eager model"):
            explain(ctx, torch.as_tensor(img.X[:2]), [0, 1], method)
    assert "gradcam" in applicable_methods(make_context(net, img))  # the eager original still has it


def test_model_code_with_weights(tmp_path, ds):
    code = tmp_path / "mynet.py"
    code.write_text(CODE)
    ns = {}
    exec(compile(CODE, "mynet", "exec"), ns)  # the reference: the same class, built here
    ref = _seeded(ns["CodeNet"], hidden=8)
    w = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(w))
    model, meta = load_model(DS, str(w), code=f"{code}:CodeNet", model_args={"hidden": 8})
    assert meta["format"] == "code" and meta["model_name"] == "CodeNet"
    _check_file_model(model, meta, ref, ds, eager=True)
    with pytest.raises(ModelFileError, match="do not fit CodeNet"):
        load_model(DS, str(w), code=f"{code}:CodeNet")  # default hidden=16 does not fit the weights
    with pytest.raises(ModelFileError, match="no nn.Module class 'Nope'; its classes: CodeNet"):
        load_model(DS, str(w), code=f"{code}:Nope")


# -- refusals: one line each ----------------------------------------------------------------------------------
def _one_line(excinfo):
    assert isinstance(excinfo.value, XaiError) and "\n" not in str(excinfo.value)
    return str(excinfo.value)


def test_wrong_shapes_corrupt_files_and_pickles_give_one_clear_line(tmp_path):
    with pytest.raises(ModelCheckError) as e:
        xai_core.register_model("small-in", nn.Linear(50, 5), dataset=DS)
    assert _one_line(e) == ("model expects inputs of shape (N, 50) (its first Linear layer), dataset 'simu-small' "
                            "gives inputs of shape (N, 2000)")
    with pytest.raises(ModelCheckError, match="gives 3 output\\(s\\) per sample; dataset 'simu-small' has 5 classes"):
        xai_core.register_model("few-out", nn.Linear(2000, 3), dataset=DS)

    rng = np.random.default_rng(0)
    junk = b"\x13\x37" + rng.bytes(4000)
    for suffix in (".pt", ".pt2", ".ts", ".safetensors", ".bin"):
        p = tmp_path / f"junk{suffix}"
        p.write_bytes(junk)
        with pytest.raises(XaiError) as e:
            load_model(DS, str(p))
        assert "readable" in _one_line(e)
    p = tmp_path / "junk.xyz"
    p.write_bytes(junk)
    with pytest.raises(ModelFileError, match="cannot tell the model format"):
        load_model(DS, str(p))

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for obj in ({"w": torch.ones(2), "x": Payload()}, nn.Linear(2000, 5)):  # an object; a whole pickled module
        p = tmp_path / "payload.pt"
        torch.save(obj, p)
        with pytest.raises(PickleRefused) as e:
            load_model(DS, str(p), meta={"arch": "lr"})
        msg = _one_line(e)
        assert msg.startswith("refusing to unpickle payload.pt") and "save a state dict or safetensors" in msg
    assert not marker.exists()


# -- probabilities, chance level ---------------------------------------------------------------------------------
def test_a_probability_model_is_explained_like_its_logit_model(ds):
    logit = _seeded()
    probs = nn.Sequential(logit, nn.Softmax(dim=1))
    meta = xai_core.register_model("gelu-probs", probs, dataset=DS, output="probabilities")
    model, meta2 = load_model(DS, "gelu-probs")
    assert meta["output"] == "probabilities" and meta2["checkpoint_hash"] == meta["checkpoint_hash"]
    assert meta["checkpoint_hash"] != state_dict_hash(probs)  # the output kind is part of the key
    x, y = _x(ds)
    with torch.no_grad():  # closed form: log(softmax(z)) = log_softmax(z), so softmax of it is softmax(z)
        torch.testing.assert_close(model(x), torch.log_softmax(logit(x), 1), rtol=1e-5, atol=1e-5)
    for method in ("saliency", "integrated_gradients"):
        kw = {"n_steps": 8} if method == "integrated_gradients" else {}
        a = explain(make_context(model, ds, output="probability"), x, y, method, **kw).attributions
        b = explain(make_context(logit, ds, output="probability"), x, y, method, **kw).attributions
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    assert meta["checks"]["test_accuracy"] == pytest.approx(
        xai_core.register_model("gelu-logit", logit, dataset=DS)["checks"]["test_accuracy"])


def test_chance_level_flag_and_recorded_accuracy(ds):
    const = nn.Linear(2000, 5)
    with torch.no_grad():
        const.weight.zero_()
        const.bias.copy_(torch.tensor([1.0, 0, 0, 0, 0]))  # always class 0
    checks = xai_core.register_model("always-0", const, dataset=DS)["checks"]
    share0 = float((ds.y[ds.test_idx] == 0).mean())
    assert checks["test_accuracy"] == pytest.approx(share0) and checks["chance_level"] is True
    assert "chance level" in checks["warning"] and checks["chance_margin"] >= 0.02

    ev = Evaluation(EvalConfig(dataset=DS, n=2), ResultStore(":memory:"))  # the shipped checkpoint
    assert ev.model_meta["checks"]["chance_level"] is False and ev.model_meta["checks"]["test_accuracy"] > 0.5


# -- persistent import ------------------------------------------------------------------------------------------
def test_import_model_persists_in_the_cache_folder(pop_cache, tmp_path, ds):
    ref = _seeded()
    path = tmp_path / "exported.pt2"
    torch.export.save(torch.export.export(ref, (torch.randn(2, 2000),),
                                          dynamic_shapes=({0: torch.export.Dim("batch")},)), str(path))
    entry = import_model(path, "my-export", DS)
    folder = pop_cache / "user_models" / "my-export"
    on_disk = json.loads((folder / "entry.json").read_text())
    assert on_disk["format"] == "pt2" and on_disk["eager"] is False and on_disk["dataset"] == DS
    assert on_disk["dataset_fingerprint"] == ds.fingerprint() and on_disk["output"] == "logits"
    assert on_disk["hash"] == entry["hash"] == load_model(DS, str(path))[1]["checkpoint_hash"]
    assert "test_accuracy" in on_disk["checks"]
    _REGISTERED.clear()  # as after a restart: only the folder is left
    assert find_model("my-export")["where"] == "imported"
    ev = Evaluation(EvalConfig(dataset=DS, model="my-export", methods="all", metrics="sparseness", n=2,
                               only_correct=False), ResultStore(tmp_path / "r.sqlite"))
    assert ev.model_name == "my-export" and ev.model_hash == entry["hash"] and not ev.ctx.eager
    assert "lrp_epsilon_plus_flat" not in ev.plan().methods
    remove_model("my-export")
    assert not folder.exists() and find_model("my-export") is None
