"""Costs in seconds: the arithmetic at a fixed per-pass cost, the wording, and the measured cost kept per model
hash and device in the cache folder (measured once, re-measured when the file is gone or damaged)."""
import json

import pytest
import torch
from torch import nn

from xai_core import costs
from xai_core.costs import PassCost


def test_seconds_arithmetic_at_a_fixed_per_pass_cost():
    per = PassCost(forward_s=0.1, backward_s=0.05)
    assert costs.seconds(216, 207, per) == pytest.approx(216 * 0.1 + 207 * 0.05)
    assert costs.seconds(0, 0, per) == 0
    assert costs.describe(216, 207, per) == "about 32 s (216 forward and 207 backward passes)"
    assert costs.describe(216, 207) == "216 forward and 207 backward passes"
    assert costs.describe(1_000_000, 0, per) == "about 27.8 h (1,000,000 forward and 0 backward passes)"


@pytest.mark.parametrize("s, text", [(0.2, "under 1 s"), (40.4, "about 40 s"), (89, "about 89 s"),
                                     (600, "about 10 min"), (5400, "about 1.5 h"), (float("nan"), "an unknown time")])
def test_format_seconds(s, text):
    assert costs.format_seconds(s) == text


def test_pass_cost_measured_once_and_cached(tmp_path, monkeypatch):
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(32, 8)
    calls = []
    real = costs.measure
    monkeypatch.setattr(costs, "measure", lambda m, xx, repeats=3: calls.append(1) or real(m, xx, repeats))
    a = costs.model_pass_cost(model, x, "abc", tmp_path)
    b = costs.model_pass_cost(model, x, "abc", tmp_path)
    assert len(calls) == 1 and a == b and a.forward_s > 0 and a.backward_s >= 0 and a.batch == 32
    stored = json.loads((tmp_path / "pass_costs.json").read_text())
    assert len(stored) == 1 and next(iter(stored)).startswith("abc:cpu:")
    costs.model_pass_cost(model, x, "other-hash", tmp_path)  # another model: measured again
    assert len(calls) == 2 and len(json.loads((tmp_path / "pass_costs.json").read_text())) == 2
    (tmp_path / "pass_costs.json").write_text("{not json")  # damaged: measured again and rewritten
    costs.model_pass_cost(model, x, "abc", tmp_path)
    assert len(calls) == 3 and "abc" in next(iter(json.loads((tmp_path / "pass_costs.json").read_text())))
    assert not any(p.grad is not None for p in model.parameters())  # timing leaves no gradients behind
