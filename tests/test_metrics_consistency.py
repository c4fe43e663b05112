"""Consistency metrics (protocol §3.6, §3.7 and ranking stability): hand cases and ports of the original code.

None of these metrics exists in Quantus 0.6, so each is checked against a hand computation and against a
plain (loop-based) port of the authors' procedure, written here from the spec.
"""
from collections import Counter
from itertools import product

import numpy as np
import pytest
import torch
from scipy import special, stats

from tests.metric_helpers import random_model_inputs, shipped_inputs
from xai_core.metrics import MetricInputs, compute_metric
from xai_core.metrics.consistency import kept_kmer_windows
from xai_core.metrics.randomisation import average_ranks, row_spearman


@pytest.fixture(scope="module")
def seq_ctx():
    return random_model_inputs("sequence", n=2).ctx


@pytest.fixture(scope="module")
def expr_ctx():
    return random_model_inputs("expression", n=2).ctx


def make_inputs(ctx, x, a, population=None, seed=0) -> MetricInputs:
    x, a = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(a, dtype=torch.float32)
    t = torch.zeros(len(x), dtype=torch.long)
    return MetricInputs(ctx=ctx, x=x, a=a, target=t, label=t, population=population, seed=seed)


def one_hot(seqs):
    return np.stack([np.eye(4, dtype="f4")[["ACGT".index(c) for c in s]].T for s in seqs])


# -- k-mer KLD ----------------------------------------------------------------------------------------------
def test_kmer_kld_hand_case(seq_ctx):
    """N=2, L=12, k=3, threshold 0.75: three positions of |a| = 5 over a background of 1 pass per sequence.

    seq0 ACGTACGTACGT, kept 0,1,9: runs [0,1] -> [0,3], [9] -> [9,11] (clipped): ACG, CGT | CGT.
    seq1 AAACCCGGGTTT, kept 2,4,7: [2] -> [2,4] and [4] -> [4,6] overlap -> [2,6]; [7] -> [7,9] only touches
    [2,6], so it stays apart (the stack merge needs start <= previous end): ACC, CCC, CCG | GGT.
    """
    x = one_hot(["ACGTACGTACGT", "AAACCCGGGTTT"])
    a = np.zeros((2, 4, 12), "f4")
    a[:, 0, :] = 1.0
    a[0, 0, [0, 1, 9]] = 5.0
    a[1, 0, [2, 4, 7]] = 5.0
    inp = make_inputs(seq_ctx, x, a)
    _, kept, _, lengths = kept_kmer_windows(inp.a, inp.x, k=3, threshold=0.75, buffer=2)
    assert kept[0].nonzero().flatten().tolist() == [0, 1, 9]
    assert kept[1].nonzero().flatten().tolist() == [2, 3, 4, 7]
    assert sorted(lengths.tolist()) == [3, 3, 4, 5]
    p = Counter({"ACG": 1, "CGT": 2, "ACC": 1, "CCC": 1, "CCG": 1, "GGT": 1})
    q = Counter({"ACG": 3, "CGT": 3, "GTA": 2, "TAC": 2, "AAA": 1, "AAC": 1, "ACC": 1, "CCC": 1, "CCG": 1,
                 "CGG": 1, "GGG": 1, "GGT": 1, "GTT": 1, "TTT": 1})
    expected = sum((c / 7) * np.log((c / 7) / (q[w] / 20)) for w, c in p.items())
    r = compute_metric("kmer_kld", inp, strict=True, k=3, threshold=0.75, gradient_correct=False, n_boot=5)
    assert r.scores[0] == pytest.approx(expected, abs=1e-12)
    assert r.extras["n_intervals"] == 4 and r.extras["n_nucleotides"] == 15 and r.extras["n_kmers"] == 7
    assert r.se is not None and np.isfinite(r.se[0])


def port_kmer_kld(A, X, k=6, threshold=0.9, buffer=2, gradient_correct=False):
    """acme collect_passing_subsequences + calculate_kmer_entropy, as loops, maps (N, L, 4), with the guard."""
    if gradient_correct:
        A = A - A.mean(-1, keepdims=True)
        A = A / np.sqrt(np.sum(np.square(A), axis=(-1, -2), keepdims=True))
    N, L, _ = X.shape
    r = np.linalg.norm(A, axis=-1)
    cutoff = np.quantile(r, threshold, axis=-1)
    blocks = []
    for n in range(N):
        idx = np.where(r[n] > cutoff[n])[0]
        if not len(idx):  # the guard: this sequence contributes nothing
            continue
        runs = np.split(idx, np.where(np.diff(idx) != 1)[0] + 1)
        merged = []
        for run in runs:
            b, e = run[0], (L - 1 if run[-1] + buffer >= L - 1 else run[-1] + buffer)
            if merged and b <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([b, e])
        blocks += ["".join("ACGT"[i] for i in X[n, b:e + 1].argmax(-1)) for b, e in merged if e - b + 1 >= k]

    def spectrum(seqs):
        c = Counter(s[i:i + k] for s in seqs for i in range(len(s) - k + 1))
        v = np.array([c["".join(w)] for w in product("ACGT", repeat=k)], float)
        return v / v.sum()

    full = ["".join("ACGT"[i] for i in X[n].argmax(-1)) for n in range(N)]
    return float(np.sum(special.kl_div(spectrum(blocks), spectrum(full)))), len(blocks)


@pytest.mark.parametrize("gradient_correct", [False, True])
def test_kmer_kld_matches_loop_port(seq_ctx, gradient_correct):
    rng = np.random.default_rng(1)
    n, length = 24, 200
    x = np.eye(4, dtype="f4")[rng.integers(0, 4, (n, length))].transpose(0, 2, 1).copy()
    a = rng.normal(size=(n, 4, length)).astype("f4")
    a[:, :, 50:60] *= 4  # a recurring strong stretch makes long intervals
    a[3] = np.array([1.0, 2.0, 3.0, 4.0])[:, None]  # same vector everywhere: no position above its cutoff
    expected, n_blocks = port_kmer_kld(a.transpose(0, 2, 1).astype("f8"), x.transpose(0, 2, 1), 6, 0.9, 2,
                                       gradient_correct)
    r = compute_metric("kmer_kld", make_inputs(seq_ctx, x, a), strict=True, gradient_correct=gradient_correct,
                       n_boot=3)
    assert r.scores[0] == pytest.approx(expected, abs=1e-9)
    assert r.extras["n_intervals"] == n_blocks
    assert r.extras["n_sequences_without_kmers"] >= 1


def test_kmer_kld_seeded_and_on_shipped_model():
    inp = shipped_inputs("dna-motifs-small", 24, "saliency", positives_only=True)
    r1, r2 = compute_metric("kmer_kld", inp, strict=True), compute_metric("kmer_kld", inp, strict=True)
    assert np.isfinite(r1.scores[0]) and r1.scores[0] > 0
    assert r1.scores[0] == r2.scores[0] and r1.se[0] == r2.se[0]


# -- spherical KLD ---------------------------------------------------------------------------------------------
def port_spherical_as_coded(A, radius_count_cutoff, box_length=0.1, prior_range=3):
    """method_2_analysis.ipynb, as coded (maps (N, L, 4)); not rounded to 3 decimals."""
    A = A - np.mean(A, axis=-1, keepdims=True)
    A = A / np.sum(np.sqrt(np.sum(np.square(A), axis=-1, keepdims=True)), axis=-2, keepdims=True)
    S = A + np.roll(A, -1, axis=-2) + np.roll(A, -2, axis=-2)
    x, y, z, w = S[..., 0], S[..., 1], S[..., 2], S[..., 3]
    e1 = 1 / np.sqrt(2) * (-x + y)
    e2 = np.sqrt(2 / 3) * (-1 / 2 * x - 1 / 2 * y)
    e3 = np.sqrt(3 / 4) * (-1 / 3 * x - 1 / 3 * y - 1 / 3 * z + w)
    PI = 3.1416
    radius_count = int(radius_count_cutoff * A.shape[0] * A.shape[1])
    x, y, z = (np.nan_to_num(v.reshape(-1)) for v in (e1, e2, e3))
    r = np.nan_to_num(np.sqrt(x * x + y * y + z * z))
    keep = np.sqrt(x * x + y * y + z * z) > np.sort(r)[-radius_count]
    x, y, z, r = y[keep], z[keep], x[keep], r[keep]  # rotate axes
    with np.errstate(divide="ignore", invalid="ignore"):
        phi_1 = np.arctan(y / x)
        phi_1 = np.where((x < 0) & (y >= 0), np.arctan(y / x) + PI, phi_1)
        phi_1 = np.where((x < 0) & (y < 0), np.arctan(y / x) - PI, phi_1)
    phi_1 = np.where(x == 0, PI / 2, phi_1)
    phi_1 = phi_1 / 2 + PI / 2
    phi_2 = np.arccos(z / r)
    n_bins, box_volume = int(PI / box_length), box_length * box_length
    count = np.zeros((n_bins, n_bins))
    for i in range(len(phi_1)):
        count[min(int(phi_1[i] / box_length), n_bins - 1), min(int(phi_2[i] / box_length), n_bins - 1)] += r[i] ** 2
    pdf = count / len(phi_1) / box_volume
    pdf = pdf / np.sum(pdf * box_volume)
    total = 0.0
    for i in range(1, n_bins - 1):
        for j in range(1, n_bins - 1):
            if pdf[i, j] > 0:
                prior, cnt = 0.0, 0
                for ii in range(-prior_range, prior_range):
                    for jj in range(-prior_range, prior_range):
                        if 0 < i + ii < n_bins and 0 < j + jj < n_bins:
                            prior += pdf[i + ii, j + jj]
                            cnt += 1
                prior /= cnt
                if prior > 0 and np.sin(i / n_bins * PI) > 0:
                    total += pdf[i, j] * np.log(pdf[i, j] / prior)
    return total * box_volume


@pytest.mark.parametrize("cutoff", [0.99, 0.10])
def test_spherical_as_coded_matches_notebook_port(seq_ctx, cutoff):
    rng = np.random.default_rng(2)
    x = np.eye(4, dtype="f4")[rng.integers(0, 4, (20, 100))].transpose(0, 2, 1).copy()
    a = rng.normal(size=(20, 4, 100)).astype("f4")
    a[:, 2, 40:45] += 3  # a G-rich preference somewhere
    expected = port_spherical_as_coded(a.transpose(0, 2, 1).astype("f8"), cutoff)
    inp = make_inputs(seq_ctx, x, a)
    r = compute_metric("spherical_kld", inp, strict=True, as_coded=True, radius_cutoff=cutoff, n_boot=2)
    assert r.scores[0] == pytest.approx(expected, abs=1e-6)
    corrected = compute_metric("spherical_kld", inp, strict=True, radius_cutoff=cutoff, n_boot=2)
    assert abs(corrected.scores[0] - r.scores[0]) > 1e-3  # e2 with z, symmetric window, pi: not the same number


def test_spherical_clustered_vs_isotropic(seq_ctx):
    """Identical attribution vectors all land in one bin: KLD = log(#cells in the prior window) = log 49.
    Isotropic Gaussian vectors (40,000 points, radius_cutoff 0.99 as in the synthetic setting) spread
    smoothly, so the local prior matches the density: KLD near 0 in the corrected form. As coded, the
    projection without z is not orthonormal, so isotropic noise already looks clustered (KLD > 0.1)."""
    rng = np.random.default_rng(3)
    n, length = 200, 200
    x = np.eye(4, dtype="f4")[rng.integers(0, 4, (n, length))].transpose(0, 2, 1).copy()
    same = np.broadcast_to(np.array([0.3, -1.0, 0.5, 0.9], "f4")[None, :, None], (n, 4, length)).copy()
    iso = make_inputs(seq_ctx, x, rng.normal(size=(n, 4, length)).astype("f4"))
    kw = dict(strict=True, radius_cutoff=0.99, n_boot=0)
    clustered = compute_metric("spherical_kld", make_inputs(seq_ctx, x, same), **kw).scores[0]
    isotropic = compute_metric("spherical_kld", iso, **kw).scores[0]
    assert clustered == pytest.approx(np.log(49), abs=1e-9)
    assert abs(isotropic) < 0.05 and isotropic < clustered / 50
    assert compute_metric("spherical_kld", iso, as_coded=True, **kw).scores[0] > 0.1


def test_spherical_basis_is_orthonormal():
    from xai_core.metrics.consistency import spherical_points

    eye = torch.eye(4, dtype=torch.float64)[None, :, :]  # the 4 letters at 4 positions, one sequence
    basis = spherical_points(eye, window=1, gradient_correct=False) * 4  # undo the division by Σ norms (= 4)
    # rows: the images of the unit vectors -> columns of the 3x4 projection; P P^T must be the identity
    P = basis.T
    assert torch.allclose(P @ P.T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(P.sum(1), torch.zeros(3, dtype=torch.float64), atol=1e-12)  # orthogonal to (1,1,1,1)


# -- ranking stability -----------------------------------------------------------------------------------------
def test_ranking_stability_hand_cases(expr_ctx):
    rng = np.random.default_rng(4)
    n, g = 6, 30
    x = rng.normal(size=(n, g)).astype("f4")
    inc = np.tile(np.arange(1, g + 1, dtype="f4"), (n, 1)) * rng.choice([-1, 1], (n, g))  # |a| increasing in g
    dec = inc[:, ::-1].copy()
    no_pop = compute_metric("ranking_stability", make_inputs(expr_ctx, x, inc), strict=True)
    assert np.isnan(no_pop.scores[0]) and "≥ 2 models" in no_pop.reasons[0]
    same = compute_metric("ranking_stability", make_inputs(expr_ctx, x, inc, [torch.tensor(inc) * 3]), strict=True)
    assert same.scores[0] == pytest.approx(1.0) and same.extras["topk_jaccard"] == pytest.approx(1.0)
    rev = compute_metric("ranking_stability", make_inputs(expr_ctx, x, inc, [torch.tensor(dec)]), strict=True, k=5)
    assert rev.scores[0] == pytest.approx(-1.0) and rev.extras["topk_jaccard"] == 0.0
    # three models: mean of the three pairwise Spearman correlations of mean |a| (scipy), top-5 Jaccard by hand
    third = np.abs(rng.normal(size=(n, g))).astype("f4")
    maps = [inc, dec, third]
    r = compute_metric("ranking_stability", make_inputs(expr_ctx, x, inc, [torch.tensor(m) for m in maps[1:]]),
                       strict=True, k=5)
    glob = [np.abs(m).astype("f8").mean(0) for m in maps]
    pairs = [(0, 1), (0, 2), (1, 2)]
    assert r.scores[0] == pytest.approx(np.mean([stats.spearmanr(glob[i], glob[j])[0] for i, j in pairs]), abs=1e-12)
    tops = [set(np.argsort(-v)[:5]) for v in glob]
    jac = np.mean([len(tops[i] & tops[j]) / len(tops[i] | tops[j]) for i, j in pairs])
    assert r.extras["topk_jaccard"] == pytest.approx(jac) and r.extras["n_models"] == 3
    assert r.se is not None and r.se[0] >= 0


def test_row_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 5, (6, 40)).astype("f8")  # many ties
    b = rng.integers(0, 5, (6, 40)).astype("f8")
    ours = row_spearman(torch.tensor(a), torch.tensor(b)).numpy()
    ref = [stats.spearmanr(u, v)[0] for u, v in zip(a, b)]
    assert np.max(np.abs(ours - ref)) < 1e-12
    assert np.array_equal(average_ranks(torch.tensor(a)).numpy(), np.stack([stats.rankdata(u) for u in a]))


@pytest.mark.parametrize("as_coded", [True, False])
def test_spherical_bootstrap_equals_recomputing_on_resampled_maps(seq_ctx, as_coded):
    """The bootstrap scores every resample as a multiset of points computed once; it must equal resampling the
    maps and computing the metric again (as coded: the notebook port on each resample)."""
    from xai_core.metrics.consistency import spherical_kl, spherical_points

    rng = np.random.default_rng(5)
    n, length = 12, 60
    x = np.eye(4, dtype="f4")[rng.integers(0, 4, (n, length))].transpose(0, 2, 1).copy()
    a = rng.normal(size=(n, 4, length)).astype("f4")
    a[:4, 1, 20:26] += 2.5
    inp = make_inputs(seq_ctx, x, a, seed=3)
    n_boot, cutoff = 6, 0.2
    r = compute_metric("spherical_kld", inp, strict=True, as_coded=as_coded, radius_cutoff=cutoff, n_boot=n_boot)
    g = inp.generator("spherical_kld")
    draws = [torch.randint(0, n, (n,), generator=g).numpy() for _ in range(n_boot)]
    if as_coded:
        boots = [port_spherical_as_coded(a[d].transpose(0, 2, 1).astype("f8"), cutoff) for d in draws]
    else:
        boots = [spherical_kl(spherical_points(torch.as_tensor(a[d]), 3, False, True), cutoff) for d in draws]
    assert r.se is not None and r.se == pytest.approx(float(np.std(boots, ddof=1)), rel=1e-9, abs=1e-12)
