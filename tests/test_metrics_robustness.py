"""Robustness metrics: Quantus references (sensitivity), the study's AUC rule, closed-form cases."""
from __future__ import annotations

import colorsys
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from tests.metric_helpers import shipped_inputs
from xai_core.data import Dataset
from xai_core.explainers import explain, make_context
from xai_core.metrics import METRICS, build_inputs, compute_metric, estimate_metric_cost
from xai_core.metrics.augment import AUGMENTATIONS, auc_ratio, hsv_to_rgb, rgb_to_hsv, similarity
from xai_core.metrics.robustness import reverse_complement, sensitivity_perturbations, shift_sequences

np.trapz = np.trapezoid  # numpy 2.4 shims Quantus 0.6 needs
np.NaN = np.nan
import zennit  # noqa: E402,F401  (must be importable before quantus)
import quantus  # noqa: E402


def custom_inputs(modality: str, model: nn.Module, X: np.ndarray, n: int = 4, method: str = "saliency"):
    """MetricInputs for a hand-built model on given inputs (the last ``n`` rows are scored)."""
    y = np.arange(len(X)) % 2
    ds = Dataset("hand", modality, X, y, ["c0", "c1"], [], np.arange(len(X) - n), np.arange(len(X) - n, len(X)))
    ctx = make_context(model.eval(), ds)
    idx = ds.test_idx
    a = explain(ctx, torch.as_tensor(ds.X[idx]), torch.as_tensor(ds.y[idx]), method).attributions
    return build_inputs(ds, ctx, idx, a, method, {})


# -- Max/Avg-Sensitivity vs Quantus on identical perturbations ------------------------------------------
@pytest.mark.parametrize("dataset,pooling", [("grain", "sum"), ("grain", "none"), ("simu-small", None),
                                             ("dna-motifs-small", None)])
def test_sensitivity_matches_quantus(dataset, pooling):
    """Quantus replays our perturbed inputs through ``perturb_func`` (uniform noise; two point mutations for
    DNA); explanations and norms must agree. Quantus 0.6.0 divides by ‖a(x)‖_F (``norm_denominator(a=a_batch)``),
    our default normalise_by="explanation" (protocol §2.5d's ‖x‖_F is normalise_by="input", checked below by hand).
    Only defaults differ (nr_samples 10 vs 200; DNA mutations instead of uniform noise), so the test uses equal
    settings and the same perturbed inputs."""
    inp = shipped_inputs(dataset, 4)
    k = 4
    xs = sensitivity_perturbations(inp, "mutate" if inp.modality == "sequence" else "uniform", k, 0.2, 2)
    pool = (lambda a: a.sum(1, keepdim=True)) if pooling == "sum" else (lambda a: a)

    def explain_func(model, inputs, targets, **kw):
        a = explain(inp.ctx, torch.as_tensor(inputs), torch.as_tensor(targets), "saliency").attributions
        return pool(a).numpy()

    over = {} if pooling is None else {"pooling": pooling}

    def replaying(it):
        return lambda arr, indices, **kw: next(it).reshape(arr.shape).numpy()

    for cls, name in [(quantus.MaxSensitivity, "max_sensitivity"), (quantus.AvgSensitivity, "avg_sensitivity")]:
        replay = iter(xs)
        metric = cls(nr_samples=k, lower_bound=0.2, abs=False, normalise=False, disable_warnings=True,
                     display_progressbar=False,
                     perturb_func=replaying(replay))
        ref = np.asarray(metric(model=inp.ctx.model, x_batch=inp.x.numpy(), y_batch=inp.target.numpy(),
                                a_batch=pool(inp.a).numpy(), explain_func=explain_func, device="cpu", softmax=False))
        ours = compute_metric(name, inp, nr_samples=k, strict=True, **over).scores
        assert np.abs(ours - ref).max() < 1e-5, (name, ours, ref)


def test_sensitivity_normalisers_and_one_stacked_call():
    inp = shipped_inputs("simu-small", 4)
    calls, original = [], inp.explain_fn

    def counting(x, target, ctx=None):
        calls.append(len(x))
        return original(x, target, ctx)

    inp = replace(inp, explain_fn=counting)
    by = {b: compute_metric("avg_sensitivity", inp, normalise_by=b, strict=True).scores
          for b in ("explanation", "input", "none")}
    assert calls == [10 * inp.n] * 3  # all nr_samples perturbations in one call
    a_norm, x_norm = inp.a.double().norm(dim=1).numpy(), inp.x.double().norm(dim=1).numpy()
    np.testing.assert_allclose(by["explanation"] * a_norm, by["none"], rtol=1e-10)
    np.testing.assert_allclose(by["input"] * x_norm, by["none"], rtol=1e-10)
    assert estimate_metric_cost("max_sensitivity", inp, "expression", 5)["explain_calls"] == 50


def test_linear_models_have_zero_sensitivity_and_full_consistency():
    """Saliency of a linear model is its weight row, whatever the input."""
    torch.manual_seed(0)
    img = custom_inputs("image", nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)),
                        np.random.default_rng(0).random((12, 3, 8, 8)))
    for name in ("max_sensitivity", "avg_sensitivity"):
        assert np.all(compute_metric(name, img, strict=True).scores == 0.0)
    expr = custom_inputs("expression", nn.Linear(30, 2), np.random.default_rng(1).normal(size=(12, 30)))
    assert np.all(compute_metric("max_sensitivity", expr, strict=True).scores == 0.0)
    np.testing.assert_allclose(compute_metric("noise_consistency", expr, strict=True).scores, 1.0, atol=1e-12)


# -- DNA ---------------------------------------------------------------------------------------------------
def _one_hot(n: int, length: int, seed: int = 0) -> np.ndarray:
    return np.eye(4, dtype="f4")[np.random.default_rng(seed).integers(0, 4, (n, length))].transpose(0, 2, 1).copy()


def test_reverse_complement_mapping():
    x = torch.as_tensor(_one_hot(3, 20))
    assert torch.equal(reverse_complement(reverse_complement(x)), x)
    seq = torch.zeros(1, 4, 3)
    seq[0, [0, 1, 2], [0, 1, 2]] = 1  # "ACG" -> reverse complement "CGT"
    assert reverse_complement(seq)[0].argmax(0).tolist() == [1, 2, 3]
    s = shift_sequences(x, 2)
    assert torch.equal(s[..., 2:], x[..., :-2]) and torch.all(s[..., :2] == 0.25)
    assert torch.equal(shift_sequences(x, -2)[..., :-2], x[..., 2:])


def test_dna_consistency_closed_forms():
    """A linear model whose weights are the same at every position and RC-palindromic over channels
    (A=T, C=G) has gradient maps that are shift- and RC-invariant: both consistencies are 1."""
    lin = nn.Sequential(nn.Flatten(), nn.Linear(4 * 30, 1))
    with torch.no_grad():
        lin[1].weight.copy_(torch.tensor([1.0, -2.0, -2.0, 1.0])[:, None].expand(4, 30).reshape(1, -1))
    inp = custom_inputs("sequence", lin, _one_hot(12, 30))
    for name in ("reverse_complement_consistency", "shift_consistency"):
        np.testing.assert_allclose(compute_metric(name, inp, strict=True).scores, 1.0, atol=1e-12)


def test_rc_symmetric_conv_is_rc_consistent():
    """Conv filters equal to their own reverse complement, then ReLU and a global mean: f(rc(x)) = f(x)."""
    torch.manual_seed(0)
    conv = nn.Conv1d(4, 6, 9, padding=4)
    with torch.no_grad():
        conv.weight.copy_((conv.weight + conv.weight.flip(1).flip(2)) / 2)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(6, 1))
    inp = custom_inputs("sequence", model, _one_hot(12, 40, seed=3))
    with torch.no_grad():
        torch.testing.assert_close(model(reverse_complement(inp.x)), model(inp.x))
    for view in ("full", "observed"):
        r = compute_metric("reverse_complement_consistency", inp, view=view, strict=True).scores
        np.testing.assert_allclose(r, 1.0, atol=1e-6)


def test_mutations_substitute_exactly_n_bases():
    inp = shipped_inputs("dna-motifs-small", 3)
    xs = sensitivity_perturbations(inp, "mutate", 5, 0.2, 2)
    assert xs.shape == (5, *inp.x.shape) and torch.all(xs.sum(dim=2) == 1)
    changed = (xs != inp.x).any(dim=2).sum(dim=-1)
    assert torch.all(changed == 2)
    assert torch.equal(xs, sensitivity_perturbations(inp, "mutate", 5, 0.2, 2))  # reproducible
    r = compute_metric("max_sensitivity", inp, strict=True)
    assert r.params["perturb"] == "mutate" and np.all(np.isfinite(r.scores))


# -- maps similarity vs scipy -----------------------------------------------------------------------------
def test_similarity_matches_scipy_with_ties_and_mask():
    g = torch.Generator().manual_seed(0)
    a = (torch.randn(5, 60, generator=g) * 3).round()  # many ties
    b = a + torch.randn(5, 60, generator=g) * 2
    mask = torch.rand(5, 60, generator=g) > 0.3
    for how, ref in [("pearson", lambda u, v: stats.pearsonr(u, v)[0]),
                     ("spearman", lambda u, v: stats.spearmanr(u, v)[0]),
                     ("cosine", lambda u, v: u @ v / np.linalg.norm(u) / np.linalg.norm(v))]:
        ours = similarity(a, b, mask, how=how).numpy()
        want = [ref(a[i][mask[i]].double().numpy(), b[i][mask[i]].double().numpy()) for i in range(5)]
        np.testing.assert_allclose(ours, want, atol=1e-12)
    u = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    v = torch.tensor([[5.0, 0.0, 3.0, 9.0, 1.0, 8.0]])
    keep = torch.tensor([[True, True, True, True, True, False]])  # drops v's 8
    assert similarity(u, v, keep, how="topk", k=2).item() == 0.5  # {5,4} vs {9,5}
    assert similarity(u, v, keep, how="topk", k=0.4).item() == 0.5  # round(0.4 * 5) = 2
    assert np.isnan(similarity(u, torch.ones_like(u), how="pearson").item())


# -- augmentations -----------------------------------------------------------------------------------------
def test_colour_augmentations_by_hand():
    x = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.2, 0.6, 0.9], [0.9, 0.95, 1.0]]).T.reshape(1, 3, 2, 2)
    hsv = rgb_to_hsv(x)
    want = [colorsys.rgb_to_hsv(*p) for p in x.reshape(3, 4).T.tolist()]
    torch.testing.assert_close(hsv.reshape(3, 4).T, torch.tensor(want))
    torch.testing.assert_close(hsv_to_rgb(hsv), x)
    hue = AUGMENTATIONS.get("hue").apply(x, 85.0)  # int(85 / 255 * 180) = 60 OpenCV units = 120°: red -> green
    torch.testing.assert_close(hue[0, :, 0, 0], torch.tensor([0.0, 1.0, 0.0]))
    sat = AUGMENTATIONS.get("saturation").apply(x, 51.0)  # grey (S=0) gets S = 0.2, hue 0 (red)
    torch.testing.assert_close(sat[0, :, 0, 1], torch.tensor([0.5, 0.4, 0.4]))
    bright = AUGMENTATIONS.get("brightness").apply(x, 25.5)  # + 0.1 on Y = + 0.1 on R, G, B, then clipped
    torch.testing.assert_close(bright.reshape(3, 4)[:, :3], (x + 0.1).clamp(0, 1).reshape(3, 4)[:, :3])
    y_top = 0.299 * 0.9 + 0.587 * 0.95 + 0.114 * 1.0  # Y clipped at 1 first: that pixel gains only 1 - Y
    torch.testing.assert_close(bright[0, :, 1, 1], (x[0, :, 1, 1] + (1 - y_top)).clamp(0, 1))


def test_geometry_grid_and_frame_mask():
    rot = AUGMENTATIONS.get("rotation")
    assert rot.values(6) == [-40.0, -24.0, -8.0, 0.0, 8.0, 24.0, 40.0] and rot.values(5) == [-40, -20, 0, 20, 40]
    assert AUGMENTATIONS.get("scale").values(2) == [0.8, 1.0, 1.2] and rot.symmetric
    x = torch.rand(2, 3, 10, 10)
    torch.testing.assert_close(rot.apply(x, 90.0), torch.rot90(x, k=-1, dims=(2, 3)), atol=1e-5, rtol=0)  # clockwise
    tr = AUGMENTATIONS.get("translation")
    torch.testing.assert_close(tr.apply(x, 0.2)[..., 2:, 2:], x[..., :-2, :-2], atol=1e-5, rtol=0)
    mask = tr.frame_mask(0.2, 10, 10)
    assert mask.sum() == 64 and not mask[:2].any() and not mask[:, :2].any()
    assert AUGMENTATIONS.get("brightness").frame_mask(100.0, 10, 10).all()


def _study_fig_to_num(results, values, n_value):
    """The predecessor's ``fig_to_num`` (symmetric case), ported verbatim."""
    ind_n = values.index(n_value)
    ind_min = values.index(min(values, key=lambda v: abs(v + n_value)))
    cut = results[ind_min: ind_n + 1]
    cut = [r + 1 - max(cut) for r in cut]
    return np.trapezoid(cut, dx=1 / (len(cut) - 1))


def test_auc_ratio_is_the_studys_rule():
    """Our batched interval/shift/trapezoid rule equals the study's list code on symmetric grids. (Deliberate
    difference, not tested against the study: for scale, whose grid does not straddle 0, the study's search for
    the value nearest -N kept [0.8, N]; we keep the same number of grid steps on both sides of 1.)"""
    rng = np.random.default_rng(0)
    values = [-40.0, -24.0, -8.0, 0.0, 8.0, 24.0, 40.0]
    for mean_probs in ([0.6, 0.8, 0.97, 1.0, 0.95, 0.85, 0.7], [0.95] * 7, [0.5, 0.6, 0.85, 1.0, 0.99, 0.9, 0.8]):
        probs = np.clip(np.asarray(mean_probs) + rng.normal(0, 0.01, (5, 7)), 0, 1)
        sims = np.clip(1 - np.abs(np.asarray(values)) / 60 + rng.normal(0, 0.05, (5, 7)), -1, 1)
        sims[:, 3] = 1.0
        pm = probs.mean(0)  # the study's cutoff: first step where the mean probability falls by 10 %
        n_value = next((values[3 + i] for i in range(1, 4) if min(pm[3 + i], pm[3 - i]) < 0.9 * pm[3]), values[-1])
        want = [_study_fig_to_num(list(s), values, n_value) / _study_fig_to_num(list(p), values, n_value)
                for s, p in zip(sims, probs)]
        got, _ = auc_ratio(torch.as_tensor(sims), torch.as_tensor(probs), 3, 0.1, "batch")
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_invariant_identity_and_linear_model_closed_form():
    """Saliency of a linear model does not change: every similarity is 1 and the score is 1/AUC(probability)."""
    torch.manual_seed(0)
    inp = custom_inputs("image", nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)),
                        np.random.default_rng(0).random((12, 3, 8, 8)))
    r = compute_metric("augmentation_invariant", inp, n_values=4, strict=True)
    assert r.curves.shape == (inp.n, 3 * 5)
    for aug in r.extras["augmentations"]:
        np.testing.assert_allclose(r.extras["similarity_curves"][aug], 1.0, atol=1e-12)
        probs = torch.as_tensor(r.extras["probability_curves"][aug])
        vals = r.extras["values"][aug]
        direct = torch.stack([inp.output(AUGMENTATIONS.get(aug).apply(inp.x, v)).double() for v in vals], 1)
        torch.testing.assert_close(probs, direct)
        _, keep = auc_ratio(probs, probs, vals.index(0.0))
        cut = probs[:, keep[0]].numpy()
        auc = np.trapezoid(cut + 1 - cut.max(1, keepdims=True), dx=1 / (cut.shape[1] - 1), axis=1)
        np.testing.assert_allclose(r.extras["per_augmentation"][aug], 1 / auc, rtol=1e-10)
    real = shipped_inputs("grain", 3)
    out = compute_metric("augmentation_invariant", real, n_values=2, augmentations=["hue"], similarity="spearman",
                         strict=True)
    np.testing.assert_allclose(out.extras["similarity_curves"]["hue"][:, 1], 1.0, atol=1e-12)  # identity
    assert np.all(np.isfinite(out.scores))


def test_equivariant_mock_explanation_is_exactly_equivariant():
    """An 'explanation' equal to the input is equivariant by construction: with whole-pixel shifts the
    similarity on the unmasked region is exactly 1 (tests our transform/mask/pooling plumbing)."""
    torch.manual_seed(0)
    inp = custom_inputs("image", nn.Sequential(nn.Flatten(), nn.Linear(3 * 10 * 10, 2)),
                        np.random.default_rng(0).random((12, 3, 10, 10)))
    calls = []

    def mock(x, target, ctx=None):
        calls.append(len(x))
        return x.clone()

    inp = replace(inp, explain_fn=mock, a=inp.x.clone())
    for pooling in ("sum", "none"):
        r = compute_metric("augmentation_equivariant", inp, augmentations=["translation"], n_values=5,
                           pooling=pooling, similarity="pearson", strict=True)
        assert r.extras["values"]["translation"] == [-0.4, -0.2, 0.0, 0.2, 0.4]  # 4 and 2 whole pixels
        np.testing.assert_allclose(r.curves, 1.0, atol=1e-12)
    assert calls == [inp.n] * 8  # one batched re-explanation per non-identity value
    spec = METRICS.get("augmentation_equivariant")
    cost = spec.cost(spec.params_for("image"), inp)
    assert cost == {"forward": 19.0, "explain": 18.0}


def test_grain_equivariant_per_sample_cutoff_and_only_correct():
    inp = shipped_inputs("grain", 4)
    r = compute_metric("augmentation_equivariant", inp, augmentations="rotation,scale", n_values=2,
                       cutoff="per_sample", only_correct=True, strict=True)
    correct = (inp.predict(inp.x) == inp.label).numpy()
    assert np.all(np.isfinite(r.scores[correct])) and np.all(np.isnan(r.scores[~correct]))
    assert r.curves.shape == (4, 6) and set(r.extras["per_augmentation"]) == {"rotation", "scale"}
    bad = compute_metric("augmentation_equivariant", inp, augmentations=["hue"])
    assert np.all(np.isnan(bad.scores)) and "equivariant" in bad.reasons[0]
