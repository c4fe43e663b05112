"""The linear-first-layer fast path for cumulative removal equals building the perturbed inputs."""
import numpy as np
import pytest
import torch

from tests.metric_helpers import shipped_inputs
from xai_core.metrics import compute_metric
from xai_core.metrics.fastpath import split_linear_head
from xai_core.metrics.perturb import FAST_PATH

METRICS = ["pixel_flipping", "irof", "pgi_local", "pgu_local", "pgi_global", "pgu_global", "pgr",
           "faithfulness_correlation"]


def _both(name, inp, **kw):
    FAST_PATH["enabled"] = False
    try:
        slow = compute_metric(name, inp, strict=True, **kw)
    finally:
        FAST_PATH["enabled"] = True
    return slow, compute_metric(name, inp, strict=True, **kw)


@pytest.mark.parametrize("dataset", ["simu-small", "breast-cancer"])
@pytest.mark.parametrize("name", METRICS + ["pixel_flipping:default", "pixel_flipping:uneven"])
def test_fast_path_equals_perturbed_inputs(dataset, name):
    """pixel_flipping runs over every step (fraction 1), over its default first 20 % (where the fast path
    touches only the removed genes and sums each step's in one reshape), and with steps that do not divide
    the genes (the last step short, the sums scattered)."""
    inp = shipped_inputs(dataset, 6, "integrated_gradients")
    assert split_linear_head(inp.ctx.model) is not None
    name, _, variant = name.partition(":")
    kw = ({"fraction": 1.0} if name == "pixel_flipping" and not variant else
          {"features_in_step": 7, "fraction": 1.0} if variant == "uneven" else
          {"n_random": 3} if name == "pgr" else {})
    if dataset == "breast-cancer" and name in ("irof",):
        kw["gene_segments"] = "clusters"  # no pathways known for the microarray probes
    slow, fast = _both(name, inp, **kw)
    # a correlation of small float32 probability differences (saturated samples) amplifies their rounding
    atol = 1e-4 if name == "faithfulness_correlation" else 2e-5
    np.testing.assert_allclose(fast.scores, slow.scores, atol=atol, equal_nan=True)
    if slow.curves is not None:
        np.testing.assert_allclose(fast.curves, slow.curves, atol=2e-5, equal_nan=True)


def test_fast_path_needs_a_linear_first_layer():
    assert split_linear_head(shipped_inputs("grain", 1).ctx.model) is None
    assert split_linear_head(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(3, 2)).eval()) is None
    lin = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(3, 2))
    assert split_linear_head(lin.train()) is None and split_linear_head(lin.eval()) is not None


@pytest.mark.parametrize("H", [2, 7, 40])  # scattered below SPARSE_MIN_OUTPUTS, sparse from it
def test_sparse_step_sums_equal_scattered_products(H):
    """The step sums are the scattered products d_j W[:, j], summed in the same order (bit-identical) whichever
    way they are computed, including steps that remove nothing and the spare bin of features removed after the
    last step."""
    from xai_core.metrics.fastpath import SPARSE_MIN_OUTPUTS, _step_sums
    assert 7 < SPARSE_MIN_OUTPUTS <= 40
    g = torch.Generator().manual_seed(0)
    c, G, n_bins = 5, 203, 24
    d = torch.randn(c, G, generator=g)
    w_t = torch.randn(G, H, generator=g)
    steps = torch.stack([torch.randperm(G, generator=g) // 10 for _ in range(c)]).clamp(max=n_bins - 1)
    steps[0] = torch.where(steps[0] == 3, 4, steps[0])  # an empty step
    ref = torch.zeros(c, n_bins, H).scatter_add_(1, steps[:, :, None].expand(-1, -1, H), d[:, :, None] * w_t[None])
    assert torch.equal(_step_sums(d, steps, n_bins, w_t), ref)


def test_fast_path_in_small_chunks_equals_one_chunk(monkeypatch):
    from xai_core.metrics import fastpath
    inp = shipped_inputs("simu-small", 6, "integrated_gradients")
    whole = compute_metric("pgi_local", inp, strict=True).curves
    monkeypatch.setattr(fastpath, "CHUNK_BYTES", 1)  # one sample per chunk
    np.testing.assert_array_equal(compute_metric("pgi_local", inp, strict=True).curves, whole)


def test_removed_step_sums_equal_scattering_every_gene():
    """Summing only the removed genes' products (reshaped when each step holds m consecutive ones of the
    removal order, scattered otherwise) gives the step sums of scattering all G genes, spare bin aside."""
    from xai_core.metrics.fastpath import _removed_step_sums, _step_sums
    from xai_core.metrics.perturb import order_units, steps_from_order
    g = torch.Generator().manual_seed(1)
    c, G, H = 4, 97, 5
    d, w_t = torch.randn(c, G, generator=g), torch.randn(G, H, generator=g)
    r = torch.randn(c, G, generator=g)
    for per, n_steps in [(4, 6), (5, 3), (97, 1)]:
        order = order_units(r, limit=per * n_steps)
        steps = steps_from_order(order, per, n_units=G)
        assert torch.equal(steps.gather(1, order), (torch.arange(per * n_steps) // per).expand(c, -1))
        ref = _step_sums(d, steps.clamp(max=n_steps), n_steps + 1, w_t)[:, :n_steps]
        got = _removed_step_sums(d, steps.gather(1, order), n_steps + 1, w_t, order)[:, :n_steps]
        torch.testing.assert_close(got, ref)
        shuffled = order[:, torch.randperm(order.shape[1], generator=g)]  # not in removal order: scattered
        got = _removed_step_sums(d, steps.gather(1, shuffled), n_steps + 1, w_t, shuffled)[:, :n_steps]
        torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("descending", [True, False])
def test_top_order_is_the_head_of_the_stable_sort(descending):
    """The first k of a stable sort, through topk when nothing ties and the partition otherwise: on distinct
    values, on many ties (zeros, as input-times-gradient gives unexpressed genes, and small integers), float64,
    NaN rows and every k from 0 to D."""
    from xai_core.metrics.ops import sort, top_order
    g = torch.Generator().manual_seed(2)
    cases = [torch.randn(5, 61, generator=g), torch.randint(0, 4, (5, 61), generator=g).float(),
             torch.randn(3, 40, generator=g, dtype=torch.float64)]
    zeros = torch.randn(4, 50, generator=g)
    zeros[:, ::2] = 0
    nan = torch.randn(2, 30, generator=g)
    nan[1, 3] = float("nan")
    for v in cases + [zeros, nan]:
        full = sort(v, dim=1, descending=descending, stable=True)[1]
        for k in range(v.shape[1] + 1):
            assert torch.equal(top_order(v, k, descending=descending), full[:, :k]), (v.shape, k)
