"""The methods that draw noise give each sample the same map in any batch: its draws come from a stream of its
own (the run's seed and the sample's bytes), so the store's reuse across runs of other sizes, an adaptive run's
small rounds and a resumed run all give the maps a fresh fixed-n run gives."""
import pytest
import torch
from torch import nn

import xai_core.explainers as E
from xai_core.explainers import EXPLAINERS
from xai_core.models import build_model
from xai_core.runner import EvalConfig, Evaluation
from tests.conftest import make_dataset

SEEDED = {"smoothgrad": {"nt_samples": 6, "nt_samples_batch_size": 4},
          "vargrad": {"nt_samples": 6, "nt_samples_batch_size": 4},
          "gradient_shap": {"n_samples": 6, "stdevs": 0.1},
          "lime": {"n_samples": 40}, "kernel_shap": {"n_samples": 40}, "random": {}}


def _mlp_ctx(modality="expression", seed=0):
    torch.manual_seed(0)
    ds = make_dataset(modality, n=40)
    arch = {"expression": "mlp", "image": "simplenet", "sequence": "dna_deep"}[modality]
    model = build_model(arch, ds.input_shape, ds.n_classes).eval()
    return ds, E.make_context(model, ds, seed=seed)


def test_every_seeded_method_is_listed_here():
    seeded = {name for name in EXPLAINERS.names() if EXPLAINERS.get(name).seeded and not E.is_composite(name)}
    assert seeded == set(SEEDED)


@pytest.mark.parametrize("method", sorted(SEEDED))
@pytest.mark.parametrize("modality", ["expression", "image"])
def test_a_samples_map_does_not_depend_on_its_batch(method, modality):
    ds, ctx = _mlp_ctx(modality)
    x, t = torch.as_tensor(ds.X[:6]), torch.as_tensor(ds.y[:6])
    whole = E.explain(ctx, x, t, method, batch_size=6, **SEEDED[method]).attributions
    split = E.explain(ctx, x[2:], t[2:], method, batch_size=3, **SEEDED[method]).attributions
    alone = E.explain(ctx, x[4:5], t[4:5], method, **SEEDED[method]).attributions
    torch.testing.assert_close(split, whole[2:], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(alone, whole[4:5], rtol=1e-4, atol=1e-6)
    again = E.explain(ctx, x.flip(0), t.flip(0), method, **SEEDED[method]).attributions  # another order
    torch.testing.assert_close(again.flip(0), whole, rtol=1e-4, atol=1e-6)
    other = E.explain(E.make_context(ctx.model, ds, seed=1), x, t, method, **SEEDED[method]).attributions
    assert not torch.allclose(other, whole)  # the seed still matters


def test_chunking_the_noisy_copies_changes_nothing():
    ds, ctx = _mlp_ctx()
    x, t = torch.as_tensor(ds.X[:5]), torch.as_tensor(ds.y[:5])
    for method in ("smoothgrad", "vargrad"):
        a = E.explain(ctx, x, t, method, nt_samples=7, nt_samples_batch_size=7).attributions
        b = E.explain(ctx, x, t, method, nt_samples=7, nt_samples_batch_size=2).attributions
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_smoothgrad_and_gradient_shap_on_a_linear_model_have_closed_forms():
    torch.manual_seed(0)
    ds = make_dataset("expression", n=40, n_classes=3)
    model = nn.Sequential(nn.Linear(30, 3)).eval()
    w = model[0].weight.detach()
    ctx = E.make_context(model, ds)
    x, t = torch.as_tensor(ds.X[:5]), torch.tensor([0, 1, 2, 1, 0])
    sg = E.explain(ctx, x, t, "smoothgrad").attributions  # the gradient is the same at every noisy copy
    torch.testing.assert_close(sg, w[t], rtol=1e-5, atol=1e-6)
    ctx.baseline_pool = ctx.baseline_pool[:1]  # one baseline: every draw uses it, at any point of the path
    gs = E.explain(ctx, x, t, "gradient_shap", n_samples=5).attributions
    torch.testing.assert_close(gs, w[t] * (x - ctx.baseline_pool[0]), rtol=1e-4, atol=1e-6)
    # with noise on the input: the mean over draws of w * (x + noise - b), i.e. not exactly the noiseless value
    noisy = E.explain(ctx, x, t, "gradient_shap", n_samples=5, stdevs=0.5).attributions
    assert not torch.allclose(noisy, gs)


def test_an_evaluation_in_small_rounds_stores_the_maps_of_one_fixed_run(tmp_path):
    """What the adaptive loop does (4 samples, then 8) against one run of 8: the same seeded maps."""
    from xai_core.store import ResultStore
    maps = {}
    for name, ns in (("rounds", (4, 8)), ("fixed", (8,))):
        store = ResultStore(tmp_path / f"{name}.sqlite")
        try:
            for n in ns:
                ev = Evaluation(EvalConfig("simu-small", methods=["smoothgrad", "aggregate"], metrics=["sparseness"],
                                           n=n, seed=3), store)
                ev.run(ev.plan())
            maps[name] = {m: ev.attributions(m, ev.plan().sample_idx) for m in ("smoothgrad", "aggregate")}
        finally:
            store.close()
    for m in ("smoothgrad", "aggregate"):
        torch.testing.assert_close(maps["rounds"][m], maps["fixed"][m], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", [(2000,), (3, 8, 8), (4, 201), (7,)])
def test_per_sample_noise_is_the_same_drawn_whole_or_in_chunks(shape):
    """One call for all of a sample's copies (sizes that are multiples of 16) gives the values of one call per
    copy, and chunks of copies give the values of one chunk: the fast path draws what the slow one draws."""
    from xai_core.explainers.seeding import per_sample_normal, sample_generators
    x = torch.randn(5, *shape)
    whole = per_sample_normal(sample_generators(3, x), shape, range(6))
    gens = sample_generators(3, x)
    chunked = torch.cat([per_sample_normal(gens, shape, range(0, 4)), per_sample_normal(gens, shape, range(4, 6))])
    gens = sample_generators(3, x)
    one_by_one = torch.stack([torch.stack([torch.randn(shape, generator=g) for g in gens]) for _ in range(6)])
    assert torch.equal(whole, chunked) and torch.equal(whole, one_by_one)
