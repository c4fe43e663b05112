"""Simulated grain kernels: shapes, exact lesion masks, reproducibility, registry, learnability."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import label as connected_components
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from xai_core.data import DATASETS, Dataset, load_dataset
from xai_core.data import grain
from xai_core.data.grain import CLASS_NAMES, MIN_CHANGE, build_grain, simulate_grain


@pytest.fixture(scope="module")
def sim():
    return simulate_grain(n_per_class=60, size=64, seed=3, return_clean=True)


def test_shapes_dtype_range_and_balance(sim):
    X, y, M = sim["images"], sim["labels"], sim["masks"]
    assert X.shape == (180, 3, 64, 64) and X.dtype == np.float32
    assert M.shape == (180, 64, 64) and M.dtype == bool
    assert sim["kernels"].shape == M.shape and sim["clean"].shape == X.shape
    assert y.dtype == np.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert np.bincount(y).tolist() == [60, 60, 60]
    assert not np.array_equal(y[:60], np.zeros(60))  # shuffled, not blocks
    assert CLASS_NAMES == ["healthy", "pink fusarium", "skinned"]


def test_seed_reproducibility():
    a = simulate_grain(n_per_class=10, size=32, seed=7)
    b = simulate_grain(n_per_class=10, size=32, seed=7)
    c = simulate_grain(n_per_class=10, size=32, seed=8)
    for k in ("images", "labels", "masks", "kernels"):
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["images"], c["images"])


def test_image_looks_like_kernel_on_dark_tray(sim):
    X, K = sim["images"], sim["kernels"]
    kfrac = K.mean(axis=(1, 2))
    assert np.all((kfrac > 0.08) & (kfrac < 0.45))
    # the tray is dark, the kernel much brighter and warm (R > G > B)
    bg = np.array([X[i][:, ~K[i]].mean() for i in range(len(X))])
    kern = np.stack([X[i][:, K[i]].mean(axis=1) for i in range(len(X))])
    assert np.all(bg < 0.15)
    assert np.all(kern.mean(axis=1) > bg + 0.15)
    assert np.mean((kern[:, 0] > kern[:, 1]) & (kern[:, 1] > kern[:, 2])) > 0.95
    # kernels do not touch the image border
    assert not K[:, [0, -1], :].any() and not K[:, :, [0, -1]].any()


def test_masks_empty_for_healthy_nonempty_inside_kernel_for_lesions(sim):
    y, M, K = sim["labels"], sim["masks"], sim["kernels"]
    assert not M[y == 0].any()
    assert np.all(M[y > 0].sum(axis=(1, 2)) > 0)
    assert not (M & ~K).any()  # every lesion pixel lies on the kernel


def test_lesion_pixels_changed_and_rest_identical(sim):
    X, C, M, y = sim["images"], sim["clean"], sim["masks"], sim["labels"]
    np.testing.assert_array_equal(X[y == 0], C[y == 0])
    diff = np.abs(X - C).max(axis=1)  # (N, H, W)
    assert np.all(diff[~M] == 0.0)    # bit-identical outside the masks
    assert np.all(diff[M] >= MIN_CHANGE - 1e-7)
    # and the change is visible, not marginal: mean change over a lesion is several 8-bit levels
    mean_change = np.array([diff[i][M[i]].mean() for i in np.where(y > 0)[0]])
    assert np.median(mean_change) > 0.05 and np.mean(mean_change > 0.02) > 0.95


def test_healthy_rendering_does_not_depend_on_class():
    labels_a = np.array([0, 1, 2, 1, 0, 2])
    labels_b = np.array([2, 0, 1, 2, 1, 0])
    cfg = dict(grain._KNOBS)
    for k in ("seed", "test_size", "split_seed"):
        cfg.pop(k)
    _, clean_a, _, _ = grain._render_chunk(np.random.default_rng(0), labels_a, 48, cfg)
    _, clean_b, _, _ = grain._render_chunk(np.random.default_rng(0), labels_b, 48, cfg)
    np.testing.assert_array_equal(clean_a, clean_b)


def test_lesion_area_within_configured_range(sim):
    y, frac = sim["labels"], sim["lesion_fraction"]
    np.testing.assert_allclose(frac, sim["masks"].sum((1, 2)) / sim["kernels"].sum((1, 2)))
    f = frac[y > 0]
    assert f.min() >= 0.03 * 0.9 and f.max() <= 0.25 + 1e-9
    assert f.std() > 0.03  # sizes really vary
    narrow = simulate_grain(n_per_class=15, size=64, seed=1, lesion_area_min=0.10,
                            lesion_area_max=0.12)
    g = narrow["lesion_fraction"][narrow["labels"] > 0]
    assert g.min() >= 0.10 * 0.9 and g.max() <= 0.12 + 1e-9


def test_two_patches_happen():
    s = simulate_grain(n_per_class=20, size=64, seed=2, two_patch_prob=1.0)
    n_comp = [connected_components(m)[1] for m in s["masks"][s["labels"] > 0]]
    assert np.mean(np.array(n_comp) >= 2) > 0.7


def test_invalid_parameters_raise():
    with pytest.raises(ValueError):
        simulate_grain(n_per_class=2, lesion_area_min=0.3, lesion_area_max=0.2)
    with pytest.raises(ValueError):
        simulate_grain(n_per_class=2, size=8)


def test_global_colour_alone_is_not_enough_but_lesion_region_is():
    s = simulate_grain(n_per_class=100, size=48, seed=5)
    X, y, M = s["images"], s["labels"], s["masks"]
    mean_rgb = X.mean(axis=(2, 3))

    def logreg():
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))

    acc = cross_val_score(logreg(), mean_rgb, y, cv=5).mean()
    assert acc < 0.8, f"mean colour alone classifies too well ({acc:.2f}): degenerate data"
    # colour inside the known lesion region separates the two lesion types ...
    d = y > 0
    lesion_rgb = np.stack([X[i][:, M[i]].mean(axis=1) for i in np.where(d)[0]])
    kernel_rgb = np.stack([X[i][:, s["kernels"][i] & ~M[i]].mean(axis=1) for i in np.where(d)[0]])
    feat = np.concatenate([lesion_rgb, lesion_rgb - kernel_rgb], axis=1)
    acc_mask = cross_val_score(logreg(), feat, y[d], cv=5).mean()
    assert acc_mask > 0.9
    # ... and lesions are paler than the rest of their kernel (both types whiten the tissue)
    assert np.mean(lesion_rgb[:, 2] > kernel_rgb[:, 2]) > 0.9


def test_builder_split_and_save_load_round_trip(tmp_path):
    ds = build_grain(name="grain", n_per_class=12, image_size=32, seed=0)
    assert ds.modality == "image" and ds.class_names == CLASS_NAMES and ds.feature_names == []
    assert ds.input_shape == (3, 32, 32) and ds.n_classes == 3
    assert len(ds.train_idx) == 27 and len(ds.test_idx) == 9
    assert sorted(np.concatenate([ds.train_idx, ds.test_idx]).tolist()) == list(range(36))
    assert np.bincount(ds.y[ds.test_idx]).tolist() == [3, 3, 3]  # stratified
    gt = ds.ground_truth
    assert gt is not None and gt.strength == "exact" and gt.masks.shape == (36, 32, 32)
    ds.save(tmp_path / "g")
    back = Dataset.load(tmp_path / "g")
    np.testing.assert_array_equal(back.X, ds.X)
    np.testing.assert_array_equal(back.ground_truth.masks, gt.masks)
    assert back.ground_truth.masks.dtype == bool
    assert back.fingerprint() == ds.fingerprint() and back.params == ds.params


def test_registered_datasets():
    for name, px, npc, size in (("grain", 64, 400, "small"),):
        spec = DATASETS.get(name)
        assert spec.modality == "image" and spec.default_arch == "simplenet" and spec.size == size
        assert spec.params["image_size"] == px and spec.params["n_per_class"] == npc
        for knob in ("seed", "lesion_area_min", "lesion_area_max", "background_level",
                     "two_patch_prob", "lesion_strength", "blemish_rate"):
            assert knob in spec.params
    ds = load_dataset("grain", use_cache=False, n_per_class=5, image_size=24)
    assert ds.X.shape == (15, 3, 24, 24) and ds.ground_truth.masks.shape == (15, 24, 24)
