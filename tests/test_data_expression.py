"""Expression data: the LDA-like simulator (protocol §1.3-1.4) and the bundled real data sets."""
from __future__ import annotations

import numpy as np
import pytest

from xai_core.data import DATASETS, Dataset, load_dataset
from xai_core.data.expression_real import PBMC_MARKERS
from xai_core.data.expression_sim import build_simulated, simulate_expression, simulation_design
from xai_core.errors import XaiError

# A scaled-down SIMU1: disjoint supports of 10 genes, 6 classes x 5 over-expressed pathways.
SMALL = dict(n_classes=6, n_pathways=60, n_genes=600, p_over=5, n_samples=120)
SIM_KEYS = ("test_size", "split_seed")


def sim_params(name: str) -> dict:
    return {k: v for k, v in DATASETS.get(name).params.items() if k not in SIM_KEYS}


@pytest.fixture(scope="module")
def small_sim():
    return simulate_expression(**SMALL, seed=1)


@pytest.fixture(scope="module")
def simu_small_raw():
    return simulate_expression(**sim_params("simu-small"))


@pytest.fixture(scope="module")
def simu_small():
    return load_dataset("simu-small", use_cache=False)


# -- registry -------------------------------------------------------------------------------------
def test_registered_presets():
    expect = {"simu-small": ("small", 5, 2_000), "simu1": ("paper", 33, 15_000),
              "simu2": ("paper", 33, 15_000), "simuA": ("paper", 2, 50_000),
              "simuB": ("paper", 2, 50_000), "simuC": ("paper", 2, 50_000)}
    for name, (size, n_classes, n_genes) in expect.items():
        spec = DATASETS.get(name)
        assert spec.modality == "expression" and spec.size == size and spec.default_arch == "mlp"
        assert spec.params["n_classes"] == n_classes and spec.params["n_genes"] == n_genes
        assert spec.params["seed"] == 0 and spec.params["split_seed"] == 43
        assert spec.params["test_size"] == 0.4
    assert DATASETS.get("simu2").params["overlapping"] is True
    assert DATASETS.get("simu2").params["n_pathways"] == 3_000
    assert [DATASETS.get(f"simu{x}").params["sub_classes"] for x in "ABC"] == [2, 4, 6]
    assert DATASETS.get("breast-cancer").default_arch == "lr"
    assert DATASETS.get("pbmc68k").default_arch == "mlp"


# -- simulator: ground truth ----------------------------------------------------------------------
def test_disjoint_informative_genes_exact(small_sim):
    d = small_sim.design
    assert all(len(g) == 10 for g in d.supports)
    for c in range(6):
        # S_c = {5c, ..., 5c+4}, G_p = {10p, ..., 10p+9}: genes 50c .. 50c+49
        np.testing.assert_array_equal(d.informative[c], np.arange(50 * c, 50 * (c + 1)))
        np.testing.assert_array_equal(d.over_pathways[c], np.arange(5 * c, 5 * (c + 1)))
    np.testing.assert_array_equal(d.feature_groups(), np.repeat(np.arange(60), 10))


def test_simu1_preset_has_370_informative_genes_per_class():
    d = simulation_design(**sim_params("simu1"))  # no sampling: the design comes first
    assert d.n_classes == 33 and len(d.supports) == 1_500
    assert [len(d.informative[c]) for c in range(33)] == [370] * 33
    assert len(np.unique(np.concatenate(list(d.informative.values())))) == 33 * 370  # disjoint


def test_design_does_not_depend_on_n_samples(small_sim):
    d = simulation_design(**{**SMALL, "n_samples": 0}, seed=1)
    for c in range(6):
        np.testing.assert_array_equal(d.informative[c], small_sim.design.informative[c])
    for b1, b2 in zip(d.beta, small_sim.design.beta):
        np.testing.assert_array_equal(b1, b2)


def test_over_expressed_beta_respects_min_beta():
    d = simulation_design(**SMALL, min_beta=0.05, seed=3)
    over = np.concatenate(list(d.over_pathways.values()))
    assert all(d.beta[p].min() >= 0.05 for p in over)
    assert all(np.isclose(b.sum(), 1.0) for b in d.beta)


def test_overlapping_supports():
    r = simulate_expression(n_classes=3, n_pathways=300, n_genes=1_500, p_over=10, n_samples=30,
                            overlapping=True, seed=2)
    d = r.design
    sizes = np.array([len(g) for g in d.supports])
    assert sizes.min() >= 3
    assert 9.0 < sizes.mean() < 11.5  # each gene with prob 10 / G: about 10 genes per pathway
    counts = np.bincount(np.concatenate(d.supports), minlength=1_500)
    assert counts.max() >= 2  # some gene is in several pathways
    assert (counts == 0).any()  # and some in none
    groups = d.feature_groups()
    assert (groups[counts == 0] == -1).all()
    g = int(np.flatnonzero(counts >= 2)[0])
    assert groups[g] == min(p for p, s in enumerate(d.supports) if g in s)
    for c in range(3):  # informative = union of the over-expressed supports
        expect = np.unique(np.concatenate([d.supports[p] for p in range(10 * c, 10 * c + 10)]))
        np.testing.assert_array_equal(d.informative[c], expect)
    np.testing.assert_allclose(r.X.sum(axis=1), 1e6, rtol=1e-5)
    # genes of no pathway never get a read
    assert (r.X[:, counts == 0] == 0).all()


# -- simulator: samples ---------------------------------------------------------------------------
def test_cpm_rows_sum_to_a_million(small_sim):
    X = small_sim.X
    assert X.dtype == np.float32 and X.shape == (120, 600)
    np.testing.assert_allclose(X.sum(axis=1), 1e6, rtol=1e-5)  # counts sum to reads, / (reads/1e6)
    counts = X * 1.5
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)  # integer read counts
    assert (X >= 0).all()


def test_balanced_classes():
    r = simulate_expression(n_classes=5, n_pathways=50, n_genes=500, p_over=4, n_samples=103, seed=0)
    assert np.bincount(r.y).tolist() == [20] * 5  # int(n / C) each
    np.testing.assert_array_equal(r.y, r.sub_y)


def test_over_expressed_pathways_are_over_expressed(simu_small_raw):
    r = simu_small_raw
    for c in range(5):
        genes = r.informative[c]
        inside = r.X[r.y == c][:, genes].mean()
        outside = r.X[r.y != c][:, genes].mean()
        # alpha 8 vs 4 on S_c: the class's informative genes get about cls_gap = 2 times the reads
        assert 1.7 < inside / outside < 2.3
        other = np.setdiff1d(np.arange(2_000), genes)
        ratio_other = r.X[r.y == c][:, other].mean() / r.X[r.y != c][:, other].mean()
        assert 0.9 < ratio_other < 1.02


def test_seed_reproducibility():
    a = simulate_expression(**SMALL, seed=7)
    b = simulate_expression(**SMALL, seed=7)
    c = simulate_expression(**SMALL, seed=8)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    o1 = simulate_expression(**SMALL, overlapping=True, seed=7)
    o2 = simulate_expression(**SMALL, overlapping=True, seed=7)
    np.testing.assert_array_equal(o1.X, o2.X)


@pytest.mark.parametrize("sub_classes, sizes", [(2, [600, 600]), (4, [900, 300]), (6, [1000, 200])])
def test_regrouped_sub_classes(sub_classes, sizes):
    params = dict(n_classes=2, sub_classes=sub_classes, n_pathways=60, n_genes=600, p_over=5,
                  n_samples=1_200, reads=20_000)
    r = simulate_expression(**params)
    assert np.bincount(r.y).tolist() == sizes
    assert np.bincount(r.sub_y).tolist() == [1_200 // sub_classes] * sub_classes
    np.testing.assert_array_equal(r.y, (r.sub_y == sub_classes - 1).astype(int))
    d = r.design
    assert len(d.informative[0]) == 50 * (sub_classes - 1) and len(d.informative[1]) == 50
    ds = build_simulated("regrouped", **params)
    fs = ds.ground_truth.feature_sets
    subs0 = [f"class 0 / sub {k}" for k in range(sub_classes - 1)]
    assert set(fs) == {"class 0", "class 1", "class 1 / sub 0", *subs0}
    np.testing.assert_array_equal(fs["class 0"], np.unique(np.concatenate([fs[k] for k in subs0])))
    np.testing.assert_array_equal(fs["class 1"], fs["class 1 / sub 0"])
    sub_labels = np.array(ds.params["sub_labels"])
    assert np.bincount(sub_labels[ds.y == 0]).tolist() == [1_200 // sub_classes] * (sub_classes - 1)
    assert (sub_labels[ds.y == 1] == 0).all()


def test_head_informative_convention():
    r = simulate_expression(n_classes=2, sub_classes=2, n_pathways=40, n_genes=400, p_over=5,
                            n_samples=20, head_informative=True)
    np.testing.assert_array_equal(r.informative[0], np.arange(100))
    np.testing.assert_array_equal(r.informative[1], np.arange(100))


def test_bad_parameters_are_explained():
    with pytest.raises(XaiError, match="pathways"):
        simulate_expression(n_classes=5, n_pathways=10, n_genes=100, p_over=3, n_samples=10)
    with pytest.raises(XaiError, match="n_classes"):
        simulate_expression(n_classes=3, sub_classes=4, n_pathways=40, n_genes=400, p_over=5,
                            n_samples=40)
    with pytest.raises(XaiError, match="n_samples"):
        simulate_expression(n_classes=5, n_pathways=50, n_genes=500, p_over=5, n_samples=4)


# -- simulated Dataset --------------------------------------------------------------------------
def test_simu_small_dataset(simu_small, simu_small_raw):
    ds = simu_small
    assert ds.X.shape == (1_000, 2_000) and ds.modality == "expression"
    assert ds.class_names == [f"class {c}" for c in range(5)]
    assert ds.feature_names[0] == "G00001" and ds.feature_names[-1] == "G02000"
    assert np.bincount(ds.y).tolist() == [200] * 5
    assert len(ds.test_idx) == 400 and len(ds.train_idx) == 600
    assert len(np.intersect1d(ds.train_idx, ds.test_idx)) == 0
    gt = ds.ground_truth
    assert gt.strength == "exact"
    assert [len(gt.feature_sets[f"class {c}"]) for c in range(5)] == [100] * 5
    np.testing.assert_array_equal(ds.feature_groups, np.repeat(np.arange(200), 10))
    assert ds.params["standardized"] is True and ds.params["n_samples"] == 1_000
    tr = ds.X[ds.train_idx].astype(np.float64)
    np.testing.assert_allclose(tr.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(tr.std(axis=0), 1, atol=1e-3)
    # the standardised data is the raw CPM, affinely rescaled per gene with training statistics
    raw = simu_small_raw.X.astype(np.float64)
    mu, sd = raw[ds.train_idx].mean(axis=0), raw[ds.train_idx].std(axis=0)
    np.testing.assert_allclose(ds.X, (raw - mu) / sd, atol=1e-3)


def test_round_trip(simu_small, tmp_path):
    ds = simu_small
    ds.save(tmp_path / "simu")
    back = Dataset.load(tmp_path / "simu")
    for attr in ("X", "y", "train_idx", "test_idx", "feature_groups"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(ds, attr))
    assert back.fingerprint() == ds.fingerprint()
    assert back.class_names == ds.class_names and back.feature_names == ds.feature_names
    assert back.params == ds.params and back.description == ds.description
    assert back.ground_truth.strength == "exact"
    assert set(back.ground_truth.feature_sets) == set(ds.ground_truth.feature_sets)
    for k, v in ds.ground_truth.feature_sets.items():
        np.testing.assert_array_equal(back.ground_truth.feature_sets[k], v)


def test_paper_preset_simuC():
    """The one paper-size build (about 10-15 s): SimuC, 6 generated classes regrouped as 5 + 1."""
    ds = load_dataset("simuC", use_cache=False)
    assert ds.X.shape == (1_200, 50_000)
    assert np.bincount(ds.y).tolist() == [1_000, 200]
    assert len(ds.test_idx) == 480
    fs = ds.ground_truth.feature_sets
    assert len(fs["class 0"]) == 25_000 and len(fs["class 1"]) == 5_000
    assert [len(fs[f"class 0 / sub {k}"]) for k in range(5)] == [5_000] * 5
    assert ds.feature_names[-1] == "G50000"


# -- real data ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pbmc():
    return load_dataset("pbmc68k", use_cache=False)


def test_pbmc68k(pbmc):
    ds = pbmc
    assert ds.X.shape == (700, 765) and ds.n_classes == 10
    assert set(ds.class_names) == set(PBMC_MARKERS)
    assert np.bincount(ds.y, minlength=10).sum() == 700
    counts = dict(zip(ds.class_names, np.bincount(ds.y)))
    assert counts["Dendritic"] == 240 and counts["CD14+ Monocyte"] == 129
    assert len(ds.test_idx) == 210 and len(np.intersect1d(ds.train_idx, ds.test_idx)) == 0
    # stratified: every class is in the test set in proportion
    for c in range(10):
        share = (ds.y[ds.test_idx] == c).sum() / (ds.y == c).sum()
        assert 0.2 < share < 0.4
    tr = ds.X[ds.train_idx].astype(np.float64)
    np.testing.assert_allclose(tr.mean(axis=0), 0, atol=1e-4)
    assert ds.params["standardized"] is True and "raw" in ds.params["values"]
    assert ds.sample_ids[0].endswith("-1")  # cell barcodes


def test_pbmc68k_markers(pbmc):
    gt = pbmc.ground_truth
    assert gt.strength == "weak" and "not causal" in gt.note
    names = np.array(pbmc.feature_names)
    present = {c: set(names[idx]) for c, idx in gt.feature_sets.items()}
    for c, genes in present.items():
        assert genes <= set(PBMC_MARKERS[c])
        assert genes == set(pbmc.params["markers_present"][c])
    assert {"MS4A1", "CD79A", "CD79B"} <= present["CD19+ B"]
    assert {"GNLY", "NKG7", "PRF1"} <= present["CD56+ NK"]
    assert {"LYZ", "S100A8", "S100A9", "FCN1"} <= present["CD14+ Monocyte"]
    assert {"FCER1A", "CLEC10A", "CST3"} <= present["Dendritic"]
    assert {"CD8A", "CD8B"} <= present["CD8+ Cytotoxic T"]
    assert "CD14" not in names  # absent markers are dropped
    assert all(len(v) > 0 for v in present.values())
    # markers mean something: each B marker is higher in B cells than elsewhere
    b = pbmc.class_names.index("CD19+ B")
    for g in gt.feature_sets["CD19+ B"]:
        assert pbmc.X[pbmc.y == b, g].mean() > pbmc.X[pbmc.y != b, g].mean()


def test_breast_cancer():
    ds = load_dataset("breast-cancer", use_cache=False)
    assert ds.X.shape == (198, 76)
    assert ds.class_names == ["ER-negative", "ER-positive"]
    assert np.bincount(ds.y).tolist() == [64, 134]
    assert not {"age", "er", "grade", "size"} & set(ds.feature_names)
    assert ds.feature_names[0] == "X200726_at"
    assert ds.ground_truth is None
    assert len(ds.test_idx) == 60
    assert abs(ds.y[ds.test_idx].mean() - 134 / 198) < 0.03  # stratified
    np.testing.assert_allclose(ds.X[ds.train_idx].astype(np.float64).std(axis=0), 1, atol=1e-3)
