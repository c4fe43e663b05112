"""captum's private names that ``xai_core.explainers.captum_compat`` relies on are still there and still work.

If one of these fails after a captum upgrade, captum renamed or moved ``SUPPORTED_NON_LINEAR`` / ``nonlinear``
in ``captum.attr._core.deep_lift``, or DeepLift stopped reading that dict: adapt ``captum_compat`` (the only
place that touches them) and rerun the DNA study's DeepLIFT numbers.
"""
from __future__ import annotations

import torch
from torch import nn

from xai_core.explainers.captum_compat import use_rescale_rule_for_exp
from xai_core.models.architectures import Exp


def _private():
    from captum.attr._core import deep_lift

    assert hasattr(deep_lift, "SUPPORTED_NON_LINEAR"), "captum moved or renamed deep_lift.SUPPORTED_NON_LINEAR"
    assert hasattr(deep_lift, "nonlinear"), "captum moved or renamed deep_lift.nonlinear"
    return deep_lift.SUPPORTED_NON_LINEAR, deep_lift.nonlinear


def test_captum_still_keeps_its_rescale_rules_in_a_dict_by_module_class():
    rules, nonlinear = _private()
    assert isinstance(rules, dict), f"captum's SUPPORTED_NON_LINEAR is a {type(rules).__name__} now, not a dict"
    assert rules.get(nn.ReLU) is nonlinear, "captum no longer applies deep_lift.nonlinear (the rescale rule) to ReLU"
    assert rules.get(nn.Sigmoid) is nonlinear


def test_the_exp_rule_is_added_once():
    rules, nonlinear = _private()
    use_rescale_rule_for_exp()
    n = len(rules)
    use_rescale_rule_for_exp()
    assert len(rules) == n and rules[Exp] is nonlinear


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 4), Exp(), nn.Linear(4, 2)).double().eval()


def _deeplift_gap(model: nn.Module) -> float:
    """|Σ attributions − (f(x) − f(0))|, largest over samples: 0 when DeepLift's rescale rule covers ``Exp``."""
    from captum.attr import DeepLift

    x = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    base = torch.zeros_like(x)
    target = torch.zeros(5, dtype=torch.long)
    a = DeepLift(model, multiply_by_inputs=True).attribute(x, baselines=base, target=target)
    with torch.no_grad():
        delta = model(x)[:, 0] - model(base)[:, 0]
    return float((a.sum(1) - delta).abs().max())


def test_deeplift_reads_the_dict_so_exp_gets_summation_to_delta():
    rules, _ = _private()
    model = _model()
    use_rescale_rule_for_exp()
    assert _deeplift_gap(model) < 1e-8, "DeepLift through Exp lost summation-to-delta with the rule registered"
    saved = rules.pop(Exp)
    try:  # without the entry DeepLift treats Exp as linear: proves captum still consults this very dict
        assert _deeplift_gap(model) > 1e-3, ("removing Exp from SUPPORTED_NON_LINEAR changed nothing: captum's "
                                             "DeepLift no longer reads that dict, so captum_compat has no effect")
    finally:
        rules[Exp] = saved


def test_the_deeplift_explainer_applies_the_rule():
    from xai_core.data import load_dataset
    from xai_core.explainers import explain, make_context

    rules, nonlinear = _private()
    saved = rules.pop(Exp, None)
    try:
        ds = load_dataset("simu-small")
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(ds.X.shape[1], 4), Exp(), nn.Linear(4, ds.n_classes)).eval()
        ctx = make_context(model, ds, seed=0)
        x, y = torch.as_tensor(ds.X[:3]), torch.as_tensor(ds.y[:3])
        explain(ctx, x, y, "deeplift")
        assert rules.get(Exp) is nonlinear, "xai_core's deeplift explainer ran without registering Exp's rule"
    finally:
        if saved is not None:
            rules[Exp] = saved
