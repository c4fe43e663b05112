"""Randomisation metrics: MPRT and random logit, against Quantus 0.6 where the setups can be made identical,
and against closed forms."""
import numpy as np

np.trapz = np.trapezoid; np.NaN = np.nan  # noqa: E702  (numpy 2.4 shims Quantus 0.6 needs)
import pytest  # noqa: E402
import torch  # noqa: E402
import zennit  # noqa: E402,F401  (must be importable before quantus)
import quantus  # noqa: E402
from torch import nn  # noqa: E402

from tests.metric_helpers import random_model_inputs, shipped_inputs  # noqa: E402
from xai_core.explainers import explain, make_context  # noqa: E402
from xai_core.metrics import build_inputs, compute_metric  # noqa: E402
from xai_core.metrics.randomisation import randomisable_layers  # noqa: E402


def quantus_explain(inp, method="saliency"):
    """Quantus' explain_func: our explainer around whatever (randomised) model Quantus hands over."""
    def fn(model, inputs, targets, **kwargs):
        ctx = inp.with_model(model.eval())
        return explain(ctx, torch.as_tensor(inputs), torch.as_tensor(targets), method).attributions.numpy()
    return fn


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# -- MPRT ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["top_down", "independent"])
def test_mprt_matches_quantus_layerwise(order):
    """Identical setup: every module with reset_parameters (layers='all', incl. BatchNorm), each re-seeded
    with Quantus' seed + 1, Spearman of |a|, no normalisation. Quantus' per-sample average differs on purpose:
    it skips a key 'orig' but stores 'original', so it averages the unrandomised model's similarity in too;
    ours is the mean over the randomised layers only (checked via the relation below)."""
    inp = shipped_inputs("simu-small", 6, "saliency")
    ours = compute_metric("model_parameter_randomisation", inp, strict=True, layers="all", seed=43,
                          layer_order=order)
    x, y, a = inp.x.numpy(), inp.target.numpy(), inp.a.numpy()
    kw = dict(layer_order=order, seed=42, abs=True, normalise=False, disable_warnings=True,
              display_progressbar=False)
    q = quantus.MPRT(**kw)(model=inp.ctx.model, x_batch=x, y_batch=y, a_batch=a, explain_func=quantus_explain(inp),
                          device="cpu")
    names = [k for k in q if k != "original"]
    assert sorted(names) == sorted(ours.extras["layers"]) == ["1", "2", "4"]  # Linear, BatchNorm, Linear
    diffs = [np.max(np.abs(np.asarray(q[nm]) - ours.curves[:, j])) for j, nm in enumerate(ours.extras["layers"])]
    assert max(diffs) < 1e-5, diffs
    q_avg = quantus.MPRT(return_average_correlation=True, **kw)(
        model=inp.ctx.model, x_batch=x, y_batch=y, a_batch=a, explain_func=quantus_explain(inp), device="cpu")
    n_l = ours.curves.shape[1]
    assert np.max(np.abs(np.asarray(q_avg) - (ours.scores * n_l + np.asarray(q["original"])) / (n_l + 1))) < 1e-5


def test_mprt_random_control_is_one_and_saliency_is_not():
    """The random control's map depends on the input only, so every randomised model gives the same map."""
    rnd = compute_metric("model_parameter_randomisation", shipped_inputs("simu-small", 8, "random"), strict=True)
    assert np.allclose(rnd.curves, 1.0) and np.allclose(rnd.scores, 1.0)
    sal = compute_metric("model_parameter_randomisation", shipped_inputs("simu-small", 8, "saliency"), strict=True)
    assert sal.curves.shape == (8, 2) and sal.extras["layers"] == ["4", "1"]
    assert np.all(sal.scores < 0.5)


def test_mprt_leaves_model_and_rng_untouched_and_is_seeded():
    inp = shipped_inputs("simu-small", 6, "saliency")
    before, rng_before = snapshot(inp.ctx.model), torch.get_rng_state()
    r1 = compute_metric("model_parameter_randomisation", inp, strict=True, layers="all")
    after = snapshot(inp.ctx.model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(rng_before, torch.get_rng_state())
    r2 = compute_metric("model_parameter_randomisation", inp, strict=True, layers="all")
    assert np.array_equal(r1.curves, r2.curves)
    inp.seed = 1
    r3 = compute_metric("model_parameter_randomisation", inp, strict=True, layers="all")
    assert not np.allclose(r1.curves, r3.curves)
    one = compute_metric("model_parameter_randomisation", inp, strict=True, max_layers=1, similarity="pearson")
    assert one.curves.shape == (6, 1)


def test_mprt_layer_sets():
    model = random_model_inputs("image", n=2).ctx.model
    weights = [n for n, _ in randomisable_layers(model, "weights")]
    everything = [n for n, _ in randomisable_layers(model, "all")]
    assert set(weights) < set(everything)
    assert all(isinstance(model.get_submodule(n), (nn.Conv2d, nn.Linear)) for n in weights)


# -- random logit ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def linear3():
    from tests.conftest import make_dataset

    ds = make_dataset("expression", n=40, seed=0, n_classes=3)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(ds.X.shape[1], 3)).eval()
    ctx = make_context(model, ds)
    idx = ds.test_idx
    a = explain(ctx, torch.as_tensor(ds.X[idx]), torch.as_tensor(ds.y[idx]), "saliency").attributions
    return build_inputs(ds, ctx, idx, a, "saliency", {})


def test_random_logit_linear_closed_form(linear3):
    """Saliency of a linear model for class c is its weight row w_c, so the score is corr(w_y, w_r)."""
    r = compute_metric("random_logit", linear3, strict=True)
    w = linear3.ctx.model[0].weight.detach().double().numpy()
    off, y = r.extras["off_class"], linear3.target.numpy()
    assert np.all(off != y) and set(off) <= {0, 1, 2}
    expected = [np.corrcoef(w[t], w[o])[0, 1] for t, o in zip(y, off)]
    assert np.max(np.abs(r.scores - expected)) < 1e-6
    assert np.array_equal(compute_metric("random_logit", linear3, strict=True).scores, r.scores)  # seeded


def test_random_logit_matches_quantus_two_classes():
    """With two classes the other class is determined, so Quantus' np.random draw cannot differ from ours.
    Quantus' default similarity is SSIM; we pass its Pearson to match our default (signed maps)."""
    inp = random_model_inputs("expression", n=8)
    ours = compute_metric("random_logit", inp, strict=True)
    q = quantus.RandomLogit(num_classes=2, similarity_func=quantus.similarity_func.correlation_pearson, abs=False,
                            normalise=False, disable_warnings=True, display_progressbar=False)(
        model=inp.ctx.model, x_batch=inp.x.numpy(), y_batch=inp.target.numpy(), a_batch=inp.a.numpy(),
        explain_func=quantus_explain(inp), device="cpu")
    assert np.max(np.abs(np.asarray(q) - ours.scores)) < 1e-5


def test_random_logit_single_output_is_nan():
    inp = shipped_inputs("dna-motifs-small", 4, "saliency")
    r = compute_metric("random_logit", inp, strict=True)
    assert np.all(np.isnan(r.scores)) and r.reasons[0] == "needs a model with ≥ 2 output classes"
