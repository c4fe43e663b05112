"""Your own model from the command line (in-process): import-model, models, and the model flags of explain/evaluate."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from xai_core.cli import main

CODE = '''
import torch
from torch import nn


class LabNet(nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.fc1, self.norm, self.fc2 = nn.Linear(2000, hidden), nn.LayerNorm(hidden), nn.Linear(hidden, 5)

    def forward(self, x):
        return self.fc2(self.norm(torch.nn.functional.gelu(self.fc1(x))))
'''


class Payload:  # a custom object: torch.save pickles it, weights_only must refuse it
    pass


@pytest.fixture
def own(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XAI_CORE_STORE", str(tmp_path / "store.sqlite"))
    (tmp_path / "labnet.py").write_text(CODE)
    ns: dict = {}
    exec(compile(CODE, "labnet", "exec"), ns)
    torch.manual_seed(0)
    net = ns["LabNet"]().eval()
    save_file(net.state_dict(), str(tmp_path / "labnet.safetensors"))
    torch.jit.save(torch.jit.trace(net, torch.zeros(2, 2000)), str(tmp_path / "labnet.ts"))
    torch.save({"w": Payload()}, tmp_path / "evil.pt")
    return tmp_path


def test_import_list_explain_evaluate_remove(own, capsys):
    assert main(["import-model", str(own / "labnet.ts"), "--name", "lab-ts", "--dataset", "simu-small"]) == 0
    out = capsys.readouterr().out
    assert "torchscript" in out and "not eager" in out and "test accuracy" in out
    assert "warning" in out  # an untrained network classifies at chance: said plainly
    assert main(["models", "--dataset", "simu-small"]) == 0
    assert "lab-ts" in capsys.readouterr().out
    assert main(["explain", "--dataset", "simu-small", "--model", "lab-ts",
                 "--methods", "saliency,integrated_gradients", "--n", "4", "--out", str(own / "ex")]) == 0
    man = json.loads((own / "ex" / "manifest.json").read_text())
    assert man["model"]["checks"]["chance_level"] is True
    assert main(["explain", "--dataset", "simu-small", "--model", "lab-ts", "--methods", "lrp_epsilon_plus_flat",
                 "--n", "4", "--out", str(own / "ex2")]) == 2
    assert "eager model" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "simu-small", "--model", "lab-ts", "--methods", "saliency,random",
                 "--metrics", "sparseness", "--n", "4", "--include-misclassified", "--out", str(own / "ev")]) == 0
    assert set(pd.read_csv(own / "ev" / "scores.csv")["model"]) == {"lab-ts"}
    assert main(["models", "--remove", "lab-ts"]) == 0
    assert main(["explain", "--dataset", "simu-small", "--model", "lab-ts", "--n", "2", "--out", str(own / "x")]) == 2


def test_model_code_and_weights(own):
    code = ["--model-code", f"{own / 'labnet.py'}:LabNet", "--weights", str(own / "labnet.safetensors")]
    assert main(["explain", "--dataset", "simu-small", *code, "--methods", "saliency,lrp_epsilon_plus_flat",
                 "--n", "3", "--out", str(own / "ex")]) == 0  # eager: LRP runs
    with np.load(own / "ex" / "attributions.npz") as z:
        assert z["saliency"].shape == (3, 2000) and np.isfinite(z["lrp_epsilon_plus_flat"]).all()
    assert main(["evaluate", "--dataset", "simu-small", *code, "--methods", "saliency", "--metrics", "sparseness",
                 "--n", "3", "--include-misclassified", "--out", str(own / "ev")]) == 0


@pytest.mark.parametrize("argv,needle", [
    (["--model", "{own}/evil.pt"], "unpickle"),
    (["--weights", "{own}/labnet.safetensors"], "--weights goes with --model-code"),
    (["--model-code", "{own}/labnet.py:LabNet"], "--model-code needs --weights"),
    (["--model-code", "{own}/labnet.py:Nope", "--weights", "{own}/labnet.safetensors"], "Nope"),
])
def test_bad_model_input_is_one_line(own, capsys, argv, needle):
    argv = [a.format(own=own) for a in argv]
    assert main(["explain", "--dataset", "simu-small", *argv, "--n", "2", "--out", str(own / "x")]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_wrong_shape_model_file(own, capsys):
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(10, 5))), str(own / "small.ts"))
    assert main(["import-model", str(own / "small.ts"), "--name", "small", "--dataset", "simu-small"]) == 2
    err = capsys.readouterr().err
    assert "2000" in err and len(err.strip().splitlines()) == 1
