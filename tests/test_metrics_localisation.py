"""Localisation metrics: images vs Quantus 0.6, DNA vs the study's code, expression feature agreement."""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.metrics import auc, precision_recall_curve, roc_curve

np.trapz = np.trapezoid  # numpy 2.4 shims Quantus 0.6 needs
np.NaN = np.nan
import zennit  # noqa: E402, F401  (must be importable before quantus)
import quantus  # noqa: E402

from tests.metric_helpers import shipped, shipped_inputs  # noqa: E402
from xai_core.data import Dataset  # noqa: E402
from xai_core.explainers import explain, make_context, pool_channels  # noqa: E402
from xai_core.metrics import MetricInputs, build_inputs, compute_metric  # noqa: E402
from xai_core.metrics import agreement  # noqa: E402

QUANTUS = {"roc_auc": quantus.AUC, "relevance_mass_accuracy": quantus.RelevanceMassAccuracy,
           "relevance_rank_accuracy": quantus.RelevanceRankAccuracy, "pointing_game": quantus.PointingGame}


# -- images ----------------------------------------------------------------------------------------
def grain_inputs(method: str, n: int = 8, healthy: int = 0):
    ds, _, ctx = shipped("grain")
    te = ds.test_idx
    has = ds.ground_truth.masks[te].reshape(len(te), -1).any(1)
    idx = np.concatenate([te[has][:n], te[~has][:healthy]])
    a = explain(ctx, torch.as_tensor(ds.X[idx]), torch.as_tensor(ds.y[idx]), method).attributions
    return build_inputs(ds, ctx, idx, a, method)


@pytest.fixture(scope="module", params=["saliency", "gradcam"])
def grain(request):
    return grain_inputs(request.param)


@pytest.mark.parametrize("name", sorted(QUANTUS))
def test_images_match_quantus(grain, name):
    """Quantus gets our channel-summed map as a (N,1,H,W) a_batch and the masks as (N,1,H,W) s_batch."""
    inp = grain
    pooled = pool_channels(inp.a, "sum")[:, None].double().numpy()
    metric = QUANTUS[name](normalise=False, abs=False, disable_warnings=True, display_progressbar=False)
    ref = metric(model=inp.ctx.model, x_batch=inp.x.numpy(), y_batch=inp.target.numpy(), a_batch=pooled,
                 s_batch=inp.masks[:, None].double().numpy(), device="cpu")
    ours = compute_metric(name, inp, strict=True).scores
    assert np.abs(ours - np.asarray(ref, dtype=float)).max() < 1e-5


def test_healthy_image_is_nan_with_reason():
    inp = grain_inputs("saliency", n=2, healthy=1)
    for name in QUANTUS:
        r = compute_metric(name, inp, strict=True)
        assert np.isfinite(r.scores[:2]).all() and np.isnan(r.scores[2])
        assert r.reasons[2] == "no lesion in this image (empty mask)"


def tiny_image(a, mask) -> MetricInputs:
    """A hand-made (N, 1, H, W) map with masks (N, H, W) on the grain context (no model pass needed)."""
    base = grain_inputs("saliency", n=1)
    a = torch.as_tensor(a, dtype=torch.float32)
    n = len(a)
    return replace(base, x=torch.zeros(n, 3, *a.shape[-2:]), a=a, masks=torch.as_tensor(mask, dtype=torch.bool),
                   target=torch.zeros(n, dtype=torch.long), label=torch.zeros(n, dtype=torch.long), sample_ids=None)


def test_four_pixel_closed_forms():
    inp = tiny_image([[[[4.0, 3.0], [2.0, 1.0]]]], [[[1, 0], [1, 0]]])
    score = lambda name, **kw: compute_metric(name, inp, strict=True, **kw).scores[0]  # noqa: E731
    assert score("roc_auc") == pytest.approx(3 / 4)  # pairs (4>3, 4>1, 2<3, 2>1)
    assert score("relevance_mass_accuracy") == pytest.approx(6 / 10)
    assert score("relevance_rank_accuracy") == pytest.approx(1 / 2)  # top-2 = {4, 3}
    assert score("pointing_game") == 1.0
    signed = tiny_image([[[[2.0, -1.0], [1.0, -2.0]]]], [[[1, 1], [0, 0]]])
    r = compute_metric("relevance_mass_accuracy", signed, strict=True)
    assert np.isnan(r.scores[0]) and r.reasons[0] == "the attributions sum to zero"
    pos = compute_metric("relevance_mass_accuracy", signed, strict=True, positive_only=True)
    assert pos.scores[0] == pytest.approx(2 / 3)  # Arras et al.: positive relevance only


def test_rank_accuracy_ties_get_their_expected_share():
    inp = tiny_image([[[[1.0, 1.0], [1.0, 0.0]]]], [[[1, 0], [0, 1]]])  # K = 2; three pixels tie at the cut
    assert compute_metric("relevance_rank_accuracy", inp, strict=True).scores[0] == pytest.approx(1 / 3)


def test_roc_auc_with_ties_equals_sklearn():
    rng = np.random.default_rng(0)
    a = rng.integers(-2, 3, (5, 1, 12, 12)).astype("f4")
    m = rng.random((5, 12, 12)) < 0.3
    ours = compute_metric("roc_auc", tiny_image(a, m), strict=True).scores
    ref = [auc(*roc_curve(m[i].ravel(), a[i].ravel())[:2]) for i in range(5)]
    assert np.abs(ours - ref).max() < 1e-12


def test_pointing_game_tolerance():
    a = np.zeros((1, 1, 5, 5), "f4")
    a[0, 0, 0, 2] = 1.0
    mask = np.zeros((1, 5, 5), bool)
    mask[0, 0, 0] = True  # two pixels from the maximum
    inp = tiny_image(a, mask)
    assert [compute_metric("pointing_game", inp, tolerance=t).scores[0] for t in (0, 1, 2)] == [0.0, 0.0, 1.0]


# -- DNA -------------------------------------------------------------------------------------------
def study_dna(scores, x_model, threshold=0.1, top_k=10):
    """Per-sequence port of tfomics interpretability_performance / signal_noise_stats / calculate_snr."""
    roc, pr, snr = [], [], []
    for j, score in enumerate(scores):
        gt_info = np.log2(4) + np.sum(x_model[j] * np.log2(x_model[j] + 1e-10), axis=1)
        label = (gt_info > threshold).astype(float)
        index = np.where((gt_info > threshold) | (gt_info == np.min(gt_info)))[0]
        precision, recall, _ = precision_recall_curve(label[index], score[index])
        pr.append(auc(recall, precision))
        fpr, tpr, _ = roc_curve(label[index], score[index])
        roc.append(auc(fpr, tpr))
        index2 = np.where((score > 0) & (gt_info == np.min(gt_info)))[0]
        if len(index2) < top_k:
            signal = noise = 0.0
        else:
            signal = np.mean(score[gt_info > threshold])
            noise = np.mean(np.sort(score[index2])[::-1][:top_k])
        with np.errstate(invalid="ignore"):
            v = np.float64(signal) / np.float64(noise)
        snr.append(0.0 if np.isnan(v) else v)
    return {"motif_auroc": roc, "motif_aupr": pr, "motif_snr": snr}


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
@pytest.mark.parametrize("quantised", [False, True])
def test_dna_matches_study_code(method, quantised):
    inp = shipped_inputs("dna-motifs-small", n=16, method=method, positives_only=True)
    if quantised:  # many ties among positions
        inp.a = torch.round(3 * inp.a / inp.a.abs().max())
    s = (inp.a * inp.x).sum(1).double().numpy()
    ref = study_dna(s, inp.pwm.double().numpy().transpose(0, 2, 1))
    for name, values in ref.items():
        assert np.abs(compute_metric(name, inp, strict=True).scores - values).max() < 1e-6


def test_dna_without_motif_is_nan():
    inp = shipped_inputs("dna-motifs-small", n=3, method="saliency")
    pwm = inp.pwm.clone()
    pwm[1] = 0.25
    inp.pwm = pwm
    for name in ("motif_auroc", "motif_aupr", "motif_snr"):
        r = compute_metric(name, inp, strict=True)
        assert np.isnan(r.scores[1]) and r.reasons[1] == "no planted motif in this sequence"
        assert np.isfinite(r.scores[[0, 2]]).all()


# -- expression feature agreement --------------------------------------------------------------------
def toy_expression(a, label, n_out: int = 2) -> MetricInputs:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 6)).astype("f4")
    ds = Dataset("toy", "expression", X, np.arange(20) % 2, ["A", "B"], [f"g{i}" for i in range(6)],
                 np.arange(16), np.arange(16, 20))
    ctx = make_context(torch.nn.Linear(6, n_out), ds)
    label = torch.as_tensor(label)
    return MetricInputs(ctx=ctx, x=torch.zeros(len(label), 6), a=torch.as_tensor(a, dtype=torch.float32),
                        target=ctx.resolve_target(label), label=label, feature_sets={0: np.array([0, 1]),
                                                                                       1: np.array([2, 3, 4])},
                        class_names=["A", "B"])


TOY_A = [[5, 1, 4, 0, 0, 0], [0, 0, 3, 2, -1, 5], [1, 0.6, 0.4, 0, 0, 0.5], [0, 0, 1, 1, 0, 0.5]]


def test_feature_agreement_by_hand():
    inp = toy_expression(TOY_A, [0, 1, 0, 1])
    local = compute_metric("feature_agreement_local", inp, strict=True).scores
    assert np.allclose(local, [1 / 2, 2 / 3, 1.0, 2 / 3])  # top-2 {0,2}; top-3 {5,2,3}; {1,0}; {2,3,5}
    # class 0, 'sum' of L2-normalised maps: gene 0 (5/√42 + 1/√1.77) > gene 2 (.92) > gene 1 (.61) -> {0, 2}: 1/2
    # class 1: gene 2 (3/√39 + 1/1.5) > gene 5 (5/√39 + .5/1.5) > gene 3 -> 2/3; mean (1/2 + 2/3) / 2
    g = compute_metric("feature_agreement_global", inp, strict=True)
    assert g.scores[0] == pytest.approx((1 / 2 + 2 / 3) / 2) and g.se is not None and g.se[0] >= 0
    # 'intersect' class 0: counts 0:2, 1:1, 2:1 -> {0, 1} (tie -> lower index): 1; class 1: {2,3,5}: 2/3
    gi = compute_metric("feature_agreement_global", inp, strict=True, variant="intersect")
    assert gi.scores[0] == pytest.approx((1 + 2 / 3) / 2)
    assert np.allclose(compute_metric("precision_at_k", inp, strict=True, k=2).scores, [1 / 2, 1 / 2, 1, 1])


def test_single_logit_model_ranks_evidence_for_the_class():
    """With one logit, class-0 samples' evidence is negative attribution: the sign is flipped."""
    inp = toy_expression([[-5, -4, 1, 0, 0, 0], [0, 0, 3, 2, 1, 0]], [0, 1], n_out=1)
    assert np.allclose(compute_metric("feature_agreement_local", inp, strict=True).scores, [1.0, 1.0])


def numpy_diffusion(X, variant):
    with np.errstate(invalid="ignore", divide="ignore"):
        A = np.corrcoef(X, rowvar=False)
    A[np.isnan(A)] = 0
    np.fill_diagonal(A, 0)
    A = np.maximum(A, 0) if variant == "v1" else A * (np.abs(A) > 0.5) * (A > 0)
    A = A + np.eye(len(A))
    d = 1 / np.sqrt(A.sum(1))
    return d[:, None] * A * d[None, :]


@pytest.mark.parametrize("variant", ["v1", "head"])
def test_diffusion_matrix_matches_formula(variant, monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 30)) @ rng.normal(size=(30, 30)) * 0.3 + rng.normal(size=(40, 30))
    X[:, 7] = 1.5  # constant gene: undefined correlation -> 0
    X = X.astype("f4")
    ref = numpy_diffusion(X.astype(np.float64), variant)
    assert np.abs(agreement.diffusion_matrix(X, variant).numpy() - ref).max() < 1e-6
    monkeypatch.setattr(agreement, "DENSE_MAX_GENES", 10)  # the sparse, row-block path for large G
    agreement._CACHE.clear()
    if variant == "head":
        sparse = agreement.diffusion_matrix(X, variant, block=8)
        assert sparse.layout == torch.sparse_csr and np.abs(sparse.to_dense().numpy() - ref).max() < 1e-6
    else:
        with pytest.raises(agreement.NotApplicable):
            agreement.diffusion_matrix(X, variant)
    agreement._CACHE.clear()


def study_fa(attr, y, truth, setting):
    """Port of get_ranking_metrics.py (attributions already restricted to the scored samples)."""
    attr = attr / np.linalg.norm(attr, axis=1, keepdims=True)
    glob = loc = 0.0
    for c, genes in truth.items():
        a = attr[y == c]
        if setting == "rank_mean_scores":
            chosen = np.argsort(-np.sum(a, axis=0))[:len(genes)]
        else:
            g, nb = np.unique(np.argsort(-a, axis=1)[:, :len(genes)].reshape(-1), return_counts=True)
            chosen = g[np.argsort(-nb, kind="stable")[:len(genes)]]
        glob += len(set(chosen) & set(genes)) / len(genes)
        top = np.argsort(-a, axis=1)[:, :len(genes)].reshape(-1)
        loc += np.isin(top, genes).mean()
    return glob / len(truth), loc / len(truth)


@pytest.mark.parametrize("diffusion", [False, "head"])
def test_simu_small_ig_beats_random_and_matches_study(diffusion):
    ig = shipped_inputs("simu-small", n=60, method="integrated_gradients")
    rnd = shipped_inputs("simu-small", n=60, method="random")
    fa_ig = compute_metric("feature_agreement_local", ig, strict=True, diffusion=diffusion).scores
    fa_rnd = compute_metric("feature_agreement_local", rnd, strict=True, diffusion=diffusion).scores
    assert np.mean(fa_ig) > np.mean(fa_rnd) + 0.4
    a = agreement.diffuse(ig, ig.a.double(), diffusion).numpy()
    y = ig.target.numpy()
    truth = {c: g for c, g in ig.feature_sets.items() if (y == c).any()}
    for variant, setting in (("sum", "rank_mean_scores"), ("intersect", "intersect_rank_scores")):
        glob, _ = study_fa(a, y, truth, setting)
        r = compute_metric("feature_agreement_global", ig, strict=True, diffusion=diffusion, variant=variant)
        assert r.scores[0] == pytest.approx(glob, abs=1e-9) and np.isfinite(r.se[0])
    per_class = [np.mean(fa_ig[y == c]) for c in truth]
    assert np.mean(per_class) == pytest.approx(study_fa(a, y, truth, "rank_mean_scores")[1])


def test_precision_at_k_on_pbmc_markers():
    inp = shipped_inputs("pbmc68k", n=20, method="integrated_gradients")
    ours = compute_metric("precision_at_k", inp, strict=True, k=10).scores
    top = np.argsort(-inp.a.numpy(), axis=1)[:, :10]
    ref = [np.isin(t, inp.feature_sets[int(c)]).mean() for t, c in zip(top, inp.target.numpy())]
    assert np.allclose(ours, ref)


def test_sparse_diffusion_graph_is_kept_on_disk_and_checked_when_read(monkeypatch, tmp_path):
    """The sparse Â is written once and read back identically by a later process; a damaged or altered file
    is named in a warning, rebuilt and rewritten, never used."""
    from safetensors.torch import load_file, save_file
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path))
    monkeypatch.setattr(agreement, "DENSE_MAX_GENES", 10)
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(50, 24)) @ rng.normal(size=(24, 24)) * 0.4 + rng.normal(size=(50, 24))).astype("f4")
    agreement._CACHE.clear()
    built = agreement.diffusion_matrix(X, "head", block=8)
    files = list((tmp_path / "diffusion").glob("head-50x24-*.safetensors"))
    assert len(files) == 1

    def again():
        agreement._CACHE.clear()  # as a new process: only the disk copy is left
        return agreement.diffusion_matrix(X, "head", block=8)

    def same(m):
        return all(torch.equal(getattr(m, f)(), getattr(built, f)()) for f in ("crow_indices", "col_indices",
                                                                              "values"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good file is read without a word
        assert same(again())
    parts = load_file(str(files[0]))
    for damage in ("truncated", "negative weight", "column out of range"):
        if damage == "truncated":
            files[0].write_bytes(files[0].read_bytes()[:100])
        else:
            bad = {k: v.clone() for k, v in parts.items()}
            if damage == "negative weight":
                bad["values"][0] = -1.0
            else:
                bad["col_indices"][-1] = 24
            save_file(bad, str(files[0]), metadata={"format": str(agreement.DISK_FORMAT), "genes": "24"})
        with pytest.warns(UserWarning, match="was ignored because .*rebuilt"):
            assert same(again())
        assert same(again())  # rewritten whole
    agreement._CACHE.clear()
