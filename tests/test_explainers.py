"""Explainers: closed forms on linear models, completeness, shapes everywhere, models left unchanged."""
import numpy as np
import pytest
import torch
from torch import nn

import xai_core.explainers as E
from xai_core.models import build_model
from tests.conftest import make_dataset
from xai_core.errors import NotApplicable, UnknownChoice

ARCH = {"expression": "mlp", "image": "simplenet", "sequence": "dna_deep"}
FAST = {"lime": {"n_samples": 30}, "kernel_shap": {"n_samples": 30}, "integrated_gradients": {"n_steps": 8},
        "smoothgrad": {"nt_samples": 4}, "vargrad": {"nt_samples": 4}, "gradient_shap": {"n_samples": 4}}


def _linear_ctx(n_classes=3, seed=0):
    torch.manual_seed(seed)
    ds = make_dataset("expression", n=40, n_classes=n_classes)
    model = nn.Sequential(nn.Dropout(0.2), nn.Linear(30, n_classes)).eval()
    return ds, model, E.make_context(model, ds)


@pytest.mark.parametrize("modality", ["expression", "image", "sequence"])
def test_every_method_returns_finite_input_shaped_maps(modality):
    torch.manual_seed(0)
    ds = make_dataset(modality)
    model = build_model(ARCH[modality], ds.input_shape, ds.n_classes).eval()
    ctx = E.make_context(model, ds)
    methods = E.applicable_methods(ctx)
    assert len(methods) == (18 if modality == "expression" else 20)
    x, t = torch.as_tensor(ds.X[:3]), torch.as_tensor(ds.y[:3])
    for m in methods:
        params = FAST.get(m, {})
        e = E.explain(ctx, x, t, m, batch_size=2, **params)
        assert e.attributions.shape == x.shape, m
        assert torch.isfinite(e.attributions).all(), m
        assert e.attributions.abs().sum() > 0, m


def test_saliency_equals_weights_and_ig_equals_x_minus_baseline_times_w():
    ds, model, ctx = _linear_ctx()
    w = model[1].weight.detach()
    x = torch.as_tensor(ds.X[:5])
    t = torch.tensor([0, 1, 2, 1, 0])
    sal = E.explain(ctx, x, t, "saliency").attributions
    torch.testing.assert_close(sal, w[t], rtol=1e-5, atol=1e-6)
    for baseline, ref in [("zero", torch.zeros_like(x)), ("train_mean", ctx.train_mean.expand_as(x)),
                          ("class_mean", ctx.class_means[t])]:
        ig = E.explain(ctx, x, t, "integrated_gradients", baseline=baseline, n_steps=20).attributions
        torch.testing.assert_close(ig, (x - ref) * w[t], rtol=1e-4, atol=1e-5)
    ixg = E.explain(ctx, x, t, "input_x_gradient").attributions
    torch.testing.assert_close(ixg, x * w[t])
    dl = E.explain(ctx, x, t, "deeplift", baseline="train_mean").attributions
    torch.testing.assert_close(dl, (x - ctx.train_mean) * w[t], rtol=1e-4, atol=1e-5)


def test_lrp_epsilon_on_a_linear_layer_equals_gradient_times_input():
    ds, model, ctx = _linear_ctx()
    w = model[1].weight.detach()
    x = torch.as_tensor(ds.X[:5])
    t = torch.tensor([0, 1, 2, 1, 0])
    lrp = E.explain(ctx, x, t, "lrp_epsilon_plus", epsilon=1e-9).attributions
    torch.testing.assert_close(lrp, x * w[t], rtol=1e-4, atol=1e-5)
    # "onehot" init is the same map divided by the explained output
    z = model(x).gather(1, t[:, None]).detach()
    lrp1 = E.explain(ctx, x, t, "lrp_epsilon_plus", epsilon=1e-9, init="onehot").attributions
    torch.testing.assert_close(lrp1 * z, x * w[t], rtol=1e-4, atol=1e-5)


def test_ig_completeness_on_an_mlp():
    torch.manual_seed(1)
    ds = make_dataset("expression", n_classes=3)
    model = build_model("mlp", ds.input_shape, 3).eval()
    ctx = E.make_context(model, ds, output="probability")
    x, t = torch.as_tensor(ds.X[:8]), torch.as_tensor(ds.y[:8])
    e = E.explain(ctx, x, t, "integrated_gradients", n_steps=64)
    with torch.no_grad():
        p = torch.softmax(model(x), 1).gather(1, t[:, None])[:, 0]
        p0 = torch.softmax(model(torch.zeros_like(x)), 1).gather(1, t[:, None])[:, 0]
    total = e.attributions.sum(1)
    assert torch.allclose(total, p - p0, atol=1e-3)
    assert np.abs(e.extras["completeness_delta"]).max() < 1e-3
    assert e.extras["completeness_rel_error"].shape == (8,)


def test_zennit_leaves_the_model_unchanged():
    torch.manual_seed(0)
    ds = make_dataset("image")
    model = build_model("simplenet", ds.input_shape, 2).eval()
    # give BatchNorm non-trivial statistics so that merging would change weights if not undone
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.as_tensor(ds.X[:4])
    out_before = model(x).detach()
    ctx = E.make_context(model, ds)
    for m in ("lrp_epsilon_plus_flat", "lrp_epsilon_gamma_box", "lrp_epsilon_alpha2_beta1_flat"):
        E.explain(ctx, x, torch.zeros(4, dtype=torch.long), m)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    torch.testing.assert_close(model(x).detach(), out_before)
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


def test_inapplicable_and_unknown_choices_name_the_valid_ones():
    ds, model, ctx = _linear_ctx()
    with pytest.raises(NotApplicable, match="does not apply to expression data; valid choices: .*saliency"):
        E.explain(ctx, torch.as_tensor(ds.X[:2]), 0, "gradcam")
    with pytest.raises(UnknownChoice, match="valid choices: .*saliency"):
        E.explain(ctx, torch.as_tensor(ds.X[:2]), 0, "sailency")
    with pytest.raises(UnknownChoice, match="baseline"):
        E.explain(ctx, torch.as_tensor(ds.X[:2]), 0, "integrated_gradients", baseline="black")
    assert "gradcam" not in E.applicable_methods(ctx)


def test_postprocessing_closed_forms():
    a = torch.tensor([[[1.0, -4.0], [2.0, 0.5]], [[-3.0, 0.0], [1.0, 1.0]]])  # (N=2, C=2, 2)
    torch.testing.assert_close(E.pool_channels(a, "sum"), torch.tensor([[3.0, -3.5], [-2.0, 1.0]]))
    torch.testing.assert_close(E.pool_channels(a, "mean"), torch.tensor([[1.5, -1.75], [-1.0, 0.5]]))
    torch.testing.assert_close(E.pool_channels(a, "max"), torch.tensor([[2.0, 0.5], [1.0, 1.0]]))
    torch.testing.assert_close(E.pool_channels(a, "abs"), torch.tensor([[2.0, 4.0], [3.0, 1.0]]))
    torch.testing.assert_close(E.normalise(a, "per_map_max")[0], a[0] / 4)
    torch.testing.assert_close(E.normalise(a, "per_map_max")[1], a[1] / 3)
    torch.testing.assert_close(E.normalise(a, "dataset_max"), a / 4)
    p99 = torch.quantile(a[0].abs().flatten(), 0.99)
    torch.testing.assert_close(E.normalise(a, "per_map_p99")[0], a[0] / p99)
    torch.testing.assert_close(E.normalise(a, "dataset_p99"), a / torch.quantile(a.abs().flatten(), 0.99))
    zero = torch.zeros(1, 2, 2)
    assert torch.equal(E.normalise(zero, "per_map_max"), zero)  # no NaN from a blank map
    g = torch.randn(3, 4, 10)
    assert torch.allclose(E.dna_gradient_correction(g).sum(1), torch.zeros(3, 10), atol=1e-6)
    x = torch.eye(4)[torch.randint(0, 4, (3, 10))].permute(0, 2, 1)
    torch.testing.assert_close(E.dna_per_position(g, x), (g * x).sum(1))
    assert ((E.dna_project(g, x) != 0).sum(1) <= 1).all()


def test_aggregate_is_the_mean_of_normalised_components_and_reuses_them():
    ds, model, ctx = _linear_ctx()
    x, t = torch.as_tensor(ds.X[:6]), torch.as_tensor(ds.y[:6])
    comps = ["saliency", "input_x_gradient", "lrp_epsilon_plus"]
    res = E.explain_many(ctx, x, t, comps + ["aggregate"],
                         params={"aggregate": {"methods": ",".join(comps), "normalisation": "per_map_max"}})
    assert res["aggregate"].extras["reused_components"] == comps  # components ran at their defaults: reused
    expected = torch.stack([E.normalise(res[c].attributions, "per_map_max") for c in comps]).mean(0)
    torch.testing.assert_close(res["aggregate"].attributions, expected)
    default = E.explain_many(ctx, x, t, E.EXPLAINERS.get("aggregate").defaults["*"]["methods"].split(",")
                             + ["aggregate"])
    assert default["aggregate"].extras["reused_components"]
    direct = E.explain(ctx, x, t, "aggregate").attributions
    torch.testing.assert_close(default["aggregate"].attributions, direct, rtol=1e-4, atol=1e-5)


def test_random_control_is_per_sample_deterministic():
    ds, model, ctx = _linear_ctx()
    x = torch.as_tensor(ds.X[:6])
    a = E.explain(ctx, x, 0, "random", batch_size=6).attributions
    b = E.explain(ctx, x, 0, "random", batch_size=4).attributions
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])


def test_cost_model_counts_passes():
    ds = make_dataset("image")
    model = build_model("simplenet", ds.input_shape, 2).eval()
    ctx = E.make_context(model, ds)
    assert E.estimate_cost("saliency", ctx, 10) == {"forward_per_sample": 1.0, "backward_per_sample": 1.0,
                                                     "forward": 10.0, "backward": 10.0}
    assert E.estimate_cost("integrated_gradients", ctx, 1, n_steps=30)["backward"] == 30
    # 32x32 image, 8x8 windows, stride 4: 7 x 7 windows + the unperturbed pass
    assert E.estimate_cost("occlusion", ctx, 1)["forward"] == 50
    agg = E.estimate_cost("aggregate", ctx, 1)["forward"]
    assert agg == sum(E.estimate_cost(m, ctx, 1)["forward"] for m in
                      E.EXPLAINERS.get("aggregate").defaults["*"]["methods"].split(","))


def test_gradient_shap_is_reproducible():
    """captum draws GradientSHAP's path points from numpy's global RNG; we seed it per call."""
    import numpy as np

    torch.manual_seed(0)
    ds = make_dataset("expression")
    model = build_model("mlp", ds.input_shape, ds.n_classes).eval()
    ctx = E.make_context(model, ds)
    x, t = torch.as_tensor(ds.X[:4]), torch.as_tensor(ds.y[:4])
    a1 = E.explain(ctx, x, t, "gradient_shap").attributions
    np.random.rand(5)  # move the global state
    a2 = E.explain(ctx, x, t, "gradient_shap").attributions
    assert torch.equal(a1, a2)


def test_vargrad_is_exactly_zero_for_a_linear_model():
    """The gradient of a linear model does not change under noise; captum's float32 E[g^2]-E[g]^2 leaves
    ~1e-7 of rounding noise there, which metrics would score as an explanation."""
    ds, model, ctx = _linear_ctx()
    x, t = torch.as_tensor(ds.X[:4]), torch.as_tensor(ds.y[:4])
    assert torch.count_nonzero(E.explain(ctx, x, t, "vargrad").attributions) == 0
    mlp = build_model("mlp", ds.input_shape, ds.n_classes).eval()
    a = E.explain(E.make_context(mlp, ds), x, t, "vargrad", nt_samples=8, nt_samples_batch_size=3).attributions
    assert a.shape == x.shape and (a >= 0).all() and a.abs().sum() > 0
