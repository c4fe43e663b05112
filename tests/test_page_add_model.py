"""Add your model page (AppTest, no browser) on a private cache folder and results store: a TorchScript file by
its path (checks, chance-level warning, not eager, "Use this model", then Explanations without hook-based
methods and Method ranking), a bare safetensors state dict with a built-in architecture picked on the page,
refusals (a pickle, a wrong shape) as one error each with the page still working. Plus the parts without a
page: the sidebar's model list and labels, the cache key of a re-imported model, the device choices."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from app_helpers import no_exception, open_page
from torch import nn

GENES, CLASSES = 2000, 5  # simu-small


@pytest.fixture
def model_cache(tmp_path, monkeypatch, app_store):
    """A private XAI_CORE_CACHE (user models, uploads) sharing the generated datasets, and a private store."""
    from xai_core.data import cache_dir

    shared = cache_dir() / "datasets"
    shared.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "cache"
    root.mkdir()
    (root / "datasets").symlink_to(shared, target_is_directory=True)
    monkeypatch.setenv("XAI_CORE_CACHE", str(root))
    yield root
    from xai_core.models.user_models import _LOCK, _REGISTERED

    with _LOCK:
        _REGISTERED.clear()


def torchscript_file(path: Path, genes: int = GENES, classes: int = CLASSES) -> Path:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(genes, 32), nn.LayerNorm(32), nn.GELU(), nn.Linear(32, classes)).eval()
    with torch.no_grad():
        traced = torch.jit.trace(net, torch.randn(2, genes))
    torch.jit.save(traced, str(path))
    return path


class Payload:  # a custom object: torch.save pickles it
    def __init__(self):
        self.w = torch.zeros(3)


def page_at_path(path: Path):
    at = open_page("add_model")
    at.radio(key="am_source").set_value("a path on this machine").run()
    at.text_input(key="am_path").input(str(path)).run()
    return at


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_torchscript_by_path_checks_use_explain_and_rank(model_cache, tmp_path):
    ts = torchscript_file(tmp_path / "lab model.ts")
    at = page_at_path(ts)
    no_exception(at)
    assert at.selectbox(key="am_dataset").value == "simu-small"  # the sidebar's dataset
    assert any("**torchscript**" in i.value for i in at.info), [i.value for i in at.info]
    assert not any(r.key == "am_arch_src" for r in at.radio)  # a whole model: no architecture asked
    at.text_input(key="am_name").input("lab-ts").run()
    at.button(key="am_import").click().run()
    no_exception(at)
    assert any("Imported **lab-ts**" in s.value for s in at.success)
    assert metric(at, "Input shape") == f"✓ {GENES}"
    assert metric(at, "Outputs") == f"✓ {CLASSES}"
    assert metric(at, "Test accuracy").endswith("%")
    assert metric(at, "Eager") == "no"
    assert any("chance level" in w.value.lower() for w in at.warning), [w.value for w in at.warning]
    assert any("Not eager" in c.value and "LRP" in c.value and "DeepLIFT" in c.value for c in at.caption)
    model_box = at.sidebar.selectbox(key="model")
    assert model_box.options[-1] == "lab-ts (yours, TorchScript)"  # after the shipped ones
    assert model_box.options[0] == "mlp"
    assert (model_cache / "user_models" / "lab-ts" / "entry.json").is_file()
    assert "Python code" in " ".join(m.value for m in at.markdown)  # told to use the CLI for that

    at.button(key="am_use").click().run()
    no_exception(at)
    assert at.sidebar.selectbox(key="model").value == "lab-ts"
    assert at.button(key="am_use").disabled

    from xai_core.data import load_dataset

    ds = load_dataset("simu-small")
    sample = ds.sample_ids[ds.test_idx[0]]
    at = open_page("explanations", model="lab-ts", methods=["saliency"], samples=[sample])
    no_exception(at)
    assert any("chance level" in w.value for w in at.warning)
    offered = at.multiselect(key="_w_methods").options
    assert "Saliency" in " ".join(offered) or "saliency" in offered
    assert not any(k in " ".join(offered).lower() for k in ("lrp", "gradcam", "deeplift", "guided"))
    at.button(key="x_run").click().run()
    no_exception(at)
    assert at.get("plotly_chart"), "no explanation figure drawn"

    at = open_page("method_ranking", model="lab-ts")
    no_exception(at)
    at = open_page("data_model", model="lab-ts")
    no_exception(at)
    assert any("chance level" in w.value for w in at.warning)


def test_safetensors_state_dict_with_a_builtin_architecture(model_cache, tmp_path):
    from safetensors.torch import save_file

    from xai_core.models import build_model

    torch.manual_seed(0)
    net = build_model("mlp", (GENES,), CLASSES)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    at = page_at_path(path)
    no_exception(at)
    assert any("**safetensors**" in i.value for i in at.info)
    assert at.radio(key="am_arch_src").value == "a built-in architecture"  # the file names none
    assert set(at.selectbox(key="am_arch").options) == {"lr", "mlp"}  # expression architectures only
    at.selectbox(key="am_arch").set_value("mlp").run()
    no_exception(at)
    written = json.loads(at.code[0].value)
    assert written == {"arch": "mlp", "arch_kwargs": {}}
    assert any("Written to" in c.value and str(model_cache / "uploads") in c.value for c in at.caption)
    at.button(key="am_import").click().run()
    no_exception(at)
    assert metric(at, "Test accuracy").endswith("%") and metric(at, "Eager") == "yes"
    assert any("Eager: every method" in c.value for c in at.caption)
    from dashboard import state

    entry = state.user_model_entries("simu-small")["w"]
    assert entry["format"] == "safetensors" and entry["meta"] == {"arch": "mlp", "arch_kwargs": {}}


def test_refusals_are_one_error_and_the_page_keeps_working(model_cache, tmp_path):
    pickled = tmp_path / "evil.pt"
    torch.save({"obj": Payload()}, str(pickled))
    at = page_at_path(pickled)
    at.button(key="am_import").click().run()
    assert not at.exception
    assert len(at.error) == 1, [e.value for e in at.error]
    assert "refusing to unpickle" in at.error[0].value and "evil.pt" in at.error[0].value
    assert not (model_cache / "user_models" / "evil").exists()

    wrong = torchscript_file(tmp_path / "wrong.ts", genes=300)
    at.text_input(key="am_path").input(str(wrong)).run()
    at.button(key="am_import").click().run()
    assert not at.exception
    assert len(at.error) == 1, [e.value for e in at.error]
    assert "300" in at.error[0].value and "2000" in at.error[0].value
    assert not (model_cache / "user_models" / "wrong").exists()

    good = torchscript_file(tmp_path / "good.ts")
    at.text_input(key="am_path").input(str(good)).run()
    at.button(key="am_import").click().run()
    no_exception(at)
    assert metric(at, "Eager") == "no"
    assert "good (yours, TorchScript)" in at.sidebar.selectbox(key="model").options


def test_python_code_is_never_taken_by_the_uploader():
    from dashboard.add_model_view import upload_suffixes

    sfx = upload_suffixes()
    assert {"safetensors", "pt2", "pt", "ts"} <= set(sfx)
    assert "py" not in sfx and "zip" not in sfx and "pkl" not in sfx


def test_reimported_model_is_not_served_stale(model_cache, tmp_path):
    """The cached Evaluation is keyed on the user model's hash: the same name with another file loads afresh."""
    from dashboard import state
    from xai_core.models.user_models import import_model, remove_model

    import_model(torchscript_file(tmp_path / "a.ts"), "mine", "simu-small")
    assert state.model_choices("simu-small")[-1] == "mine"
    ev1 = state.evaluation("simu-small", "mine", 0)
    assert state.evaluation("simu-small", "mine", 0) is ev1
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(GENES, 8), nn.GELU(), nn.Linear(8, CLASSES)).eval()
    torch.jit.save(torch.jit.trace(net, torch.randn(2, GENES)), str(tmp_path / "b.ts"))
    import_model(tmp_path / "b.ts", "mine", "simu-small")
    ev2 = state.evaluation("simu-small", "mine", 0)
    assert ev2 is not ev1 and ev2.model_hash != ev1.model_hash
    assert state.model_label("mine") == "mine (yours, TorchScript)"
    remove_model("mine")
    assert "mine" not in state.model_choices("simu-small")


def test_device_choices_follow_cuda(monkeypatch):
    from dashboard import state

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert state.device_choices() == ["cpu"]  # the sidebar hides the picker
    assert state.current_device() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert state.device_choices() == ["cpu", "cuda"]


def test_no_device_picker_without_cuda(app_store):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the picker is shown")
    at = open_page()
    no_exception(at)
    assert not any(s.key == "device" for s in at.sidebar.selectbox)
