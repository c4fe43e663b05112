"""The user's own images: class folders and CSVs of PNG/JPEG/TIFF, masks, geometry, errors, round trip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

from xai_core.data import IMPORTERS, UserDataError, detect_format, load_dataset
from xai_core.data import user as user_data
from xai_core.data.load_images import from_image_csv, from_image_folder


def _rgb(seed: int, h: int = 16, w: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, a: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, a)
    else:
        Image.fromarray(a).save(path)
    return path


def _two_classes(root: Path, n: int = 3, h: int = 16, w: int = 16, gray: bool = False) -> Path:
    for c, cls in enumerate(("healthy", "sick")):
        for i in range(n):
            a = _rgb(10 * c + i, h, w)
            _save(root / cls / f"{cls[0]}{i}.png", a[:, :, 0] if gray else a)
    return root


def _row(ds, sample_id: str) -> int:
    return ds.sample_ids.index(sample_id)


# -- formats, scaling, channels --------------------------------------------------------------------
@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    a0 = _rgb(0)
    a0[2, 3] = (255, 128, 0)
    _save(root / "alpha" / "a0.png", a0)
    _save(root / "alpha" / "a1.png", _rgb(1))
    _save(root / "alpha" / "a2.jpg", _rgb(2))
    b0 = np.full((16, 16), 1000, dtype=np.uint16)
    b0[4, 4] = 32768
    b0[1, 1] = 65535
    _save(root / "beta" / "b0.tif", b0)
    _save(root / "beta" / "b1.tif", (np.arange(256, dtype=np.uint16).reshape(16, 16) * 200))
    _save(root / "beta" / "b2.png", _rgb(3)[:, :, 1])  # 8-bit grey
    (root / "beta" / ".DS_Store").write_bytes(b"\x00junk")  # hidden: ignored
    return root


def test_folder_of_png_jpeg_and_16bit_tiff(mixed: Path):
    ds = from_image_folder(mixed, name="mixed", size=16)
    assert ds.modality == "image" and ds.X.shape == (6, 3, 16, 16) and ds.X.dtype == np.float32
    assert ds.class_names == ["alpha", "beta"]
    assert sorted(ds.sample_ids) == ["alpha/a0.png", "alpha/a1.png", "alpha/a2.jpg",
                                     "beta/b0.tif", "beta/b1.tif", "beta/b2.png"]
    assert [ds.class_names[ds.y[_row(ds, s)]] for s in ("alpha/a2.jpg", "beta/b0.tif")] == ["alpha", "beta"]
    assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0
    np.testing.assert_allclose(ds.X[_row(ds, "alpha/a0.png"), :, 2, 3], [1.0, 128 / 255, 0.0], rtol=1e-6)
    b0 = ds.X[_row(ds, "beta/b0.tif")]
    np.testing.assert_allclose(b0[:, 4, 4], [32768 / 65535] * 3, rtol=1e-6)  # grey replicated to RGB
    np.testing.assert_allclose(b0[:, 1, 1], [1.0] * 3)
    np.testing.assert_allclose(ds.X[_row(ds, "beta/b2.png"), 0], _rgb(3)[:, :, 1] / 255, rtol=1e-6)
    assert ds.params["channels"] == 3 and ds.params["intensity"] == "dtype"
    assert ds.params["source_dtypes"] == {"uint8": 4, "uint16": 2}
    assert len(ds.train_idx) + len(ds.test_idx) == 6 and ds.ground_truth is None


def test_channels_policy(mixed: Path, tmp_path: Path):
    grey = from_image_folder(mixed, size=16, channels=1)
    assert grey.X.shape == (6, 1, 16, 16)
    expected = 0.299 * 1.0 + 0.587 * 128 / 255
    assert grey.X[_row(grey, "alpha/a0.png"), 0, 2, 3] == pytest.approx(expected, rel=1e-5)
    assert _two_classes(tmp_path / "g", gray=True) and from_image_folder(tmp_path / "g", size=16).X.shape[1] == 1
    # RGBA drops alpha, a palette image is converted to RGB
    root = _two_classes(tmp_path / "p", gray=True)
    rgba = np.dstack([_rgb(7), np.zeros((16, 16), np.uint8)])
    Image.fromarray(rgba, "RGBA").save(root / "healthy" / "rgba.png")
    Image.fromarray(_rgb(8)).convert("P").save(root / "sick" / "pal.png")
    ds = from_image_folder(root, size=16)
    assert ds.X.shape[1] == 3
    np.testing.assert_allclose(ds.X[_row(ds, "healthy/rgba.png")], _rgb(7).transpose(2, 0, 1) / 255, rtol=1e-6)
    pal = np.asarray(Image.open(root / "sick" / "pal.png").convert("RGB"))
    np.testing.assert_allclose(ds.X[_row(ds, "sick/pal.png")], pal.transpose(2, 0, 1) / 255, rtol=1e-6)
    np.testing.assert_array_equal(ds.X[_row(ds, "healthy/h0.png"), 0], ds.X[_row(ds, "healthy/h0.png"), 2])


def test_intensity_minmax(tmp_path: Path):
    root = _two_classes(tmp_path / "i", gray=True)
    t = np.linspace(1000, 3000, 256).reshape(16, 16).astype(np.uint16)
    _save(root / "sick" / "dim.tif", t)
    ds = from_image_folder(root, size=16, intensity="minmax")
    x = ds.X[_row(ds, "sick/dim.tif"), 0]
    assert x.min() == 0.0 and x.max() == pytest.approx(1.0)
    np.testing.assert_allclose(x, (t - 1000.0) / 2000.0, atol=1e-6)


# -- masks and geometry ----------------------------------------------------------------------------
def _with_masks(root: Path, h: int, w: int) -> tuple[Path, dict[str, np.ndarray]]:
    _two_classes(root / "img", h=h, w=w)
    masks = {}
    for cls in ("healthy", "sick"):
        for i in range(3):
            sid = f"{cls}/{cls[0]}{i}.png"
            if sid == "sick/s2.png":
                continue  # one image without a mask
            m = np.random.default_rng(hash(sid) % 1000).random((h, w)) > 0.7
            _save(root / "masks" / sid, (m * 255).astype(np.uint8))
            masks[sid] = m
    return root, masks


def test_masks_identity_and_missing(tmp_path: Path):
    root, masks = _with_masks(tmp_path, 16, 16)
    ds = from_image_folder(root / "img", masks=root / "masks", size=16)
    gt = ds.ground_truth
    assert gt is not None and gt.masks.shape == (6, 16, 16) and gt.masks.dtype == bool and gt.strength == "exact"
    for sid, m in masks.items():
        np.testing.assert_array_equal(gt.masks[_row(ds, sid)], m)
    assert not gt.masks[_row(ds, "sick/s2.png")].any()
    assert ds.params["images_without_mask"] == ["sick/s2.png"] and ds.params["n_without_mask"] == 1
    with pytest.raises(UserDataError, match="have no mask"):
        from_image_folder(root / "img", masks=root / "masks", size=16, missing_masks="error")
    weak = from_image_folder(root / "img", masks=root / "masks", size=16, mask_strength="weak")
    assert weak.ground_truth.strength == "weak"


def test_masks_follow_resize_with_nearest(tmp_path: Path):
    root, masks = _with_masks(tmp_path, 12, 20)
    ds = from_image_folder(root / "img", masks=root / "masks", size=8)
    assert ds.X.shape == (6, 3, 8, 8) and ds.ground_truth.masks.shape == (6, 8, 8)
    for sid, m in masks.items():
        want = np.asarray(Image.fromarray(m.astype(np.uint8)).resize((8, 8), Image.Resampling.NEAREST)) > 0
        np.testing.assert_array_equal(ds.ground_truth.masks[_row(ds, sid)], want)
    assert ds.params["fit"] == "resize"
    assert ds.params["original_sizes"]["most_common"] == {"height": 12, "width": 20, "count": 6}


@pytest.mark.parametrize("fit,size,where", [("crop", 10, (3, 2)), ("pad", 20, (8, 7)), ("resize", 8, None)])
def test_fit_policies_move_a_known_pixel(tmp_path: Path, fit: str, size: int, where):
    """Images 10 high x 20 wide with one bright pixel at row 3, column 7 (and the same pixel in the mask)."""
    root = tmp_path / "f"
    for cls in ("a", "b"):
        for i in range(2):
            a = np.full((10, 20), 50, dtype=np.uint8)
            a[3, 7] = 250
            _save(root / "img" / cls / f"x{cls}{i}.png", a)
            m = np.zeros((10, 20), dtype=np.uint8)
            m[3, 7] = 1  # a 0/1 mask
            _save(root / "masks" / cls / f"x{cls}{i}.png", m)
    ds = from_image_folder(root / "img", masks=root / "masks", size=size, fit=fit)
    assert ds.X.shape == (4, 1, size, size) and ds.params["fit"] == fit
    if where is None:
        return
    x, m = ds.X[0, 0], ds.ground_truth.masks[0]
    assert x[where] == pytest.approx(250 / 255) and m[where] and m.sum() == 1
    if fit == "pad":  # 5 rows of zeros above and below the 10 x 20 image
        assert (x[:5] == 0).all() and (x[15:] == 0).all() and x[5, 0] == pytest.approx(50 / 255)


def test_csv_with_split_and_mask_columns(tmp_path: Path):
    root = _two_classes(tmp_path / "c")
    _save(root / "m" / "h0.png", np.eye(16, dtype=np.uint8) * 255)
    lines = ["path,label,split,mask"]
    for cls in ("healthy", "sick"):
        for i in range(3):
            mask = "m/h0.png" if (cls, i) == ("healthy", 0) else ""
            lines.append(f"{cls}/{cls[0]}{i}.png,{cls},{'test' if i == 0 else 'train'},{mask}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    ds = from_image_csv(root / "labels.csv", size=16)
    assert ds.sample_ids[0] == "healthy/h0.png" and ds.class_names == ["healthy", "sick"]
    assert [ds.sample_ids[i] for i in ds.test_idx] == ["healthy/h0.png", "sick/s0.png"]
    assert ds.params["split"].startswith("given")
    np.testing.assert_array_equal(ds.ground_truth.masks[0], np.eye(16, dtype=bool))
    assert IMPORTERS.get("image-csv").detect(root / "labels.csv")
    assert not IMPORTERS.get("image-folder").detect(root / "labels.csv")


# -- bad inputs ------------------------------------------------------------------------------------
def _refused(path: Path, *words: str, **kw) -> UserDataError:
    with pytest.raises(UserDataError) as e:
        from_image_folder(path, size=16, **kw)
    for w in words:
        assert w in str(e.value), str(e.value)
    return e.value


def test_empty_folder(tmp_path: Path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / ".DS_Store").write_bytes(b"x")
    _refused(tmp_path / "e", "e:", "the folder is empty")


def test_images_directly_in_the_folder(tmp_path: Path):
    _save(tmp_path / "flat" / "x.png", _rgb(0))
    _refused(tmp_path / "flat", "directly in the folder", "x.png", "class subfolder")


def test_truncated_png_is_refused_even_if_pil_is_lenient(tmp_path: Path, monkeypatch):
    root = _two_classes(tmp_path / "t")
    good = (root / "sick" / "s1.png").read_bytes()
    (root / "sick" / "s1.png").write_bytes(good[:len(good) // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    err = _refused(root, "s1.png", "truncated or corrupt")
    assert err.source.endswith("s1.png") and ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_corrupt_bytes_with_png_name(tmp_path: Path):
    root = _two_classes(tmp_path / "c")
    (root / "healthy" / "h1.png").write_bytes(b"not an image at all " * 20)
    _refused(root, "h1.png", "truncated or corrupt")


def test_mask_of_the_wrong_size(tmp_path: Path):
    root, _ = _with_masks(tmp_path, 16, 16)
    _save(root / "masks" / "sick" / "s1.png", np.zeros((10, 12), dtype=np.uint8))
    err = _refused(root / "img", "s1.png", "12x10", "16x16", masks=root / "masks")
    assert str(root / "masks" / "sick" / "s1.png") in str(err) and str(root / "img" / "sick" / "s1.png") in str(err)


def test_one_class_only(tmp_path: Path):
    for i in range(3):
        _save(tmp_path / "one" / "only" / f"{i}.png", _rgb(i))
    _refused(tmp_path / "one", "one", "one class only", "'only'")


def test_class_with_one_image(tmp_path: Path):
    root = _two_classes(tmp_path / "c")
    _save(root / "lonely" / "x.png", _rgb(9))
    _refused(root, "fewer than 2", "'lonely' (1)")


def test_unsupported_file_lists_extensions(tmp_path: Path):
    root = _two_classes(tmp_path / "u")
    (root / "sick" / "notes.txt").write_text("hello")
    _refused(root, "notes.txt", "not a supported image", ".png, .jpg, .jpeg, .tif, .tiff")


def test_bad_option_values(tmp_path: Path):
    from xai_core.errors import XaiError

    root = _two_classes(tmp_path / "o")
    for kw in ({"size": 4}, {"fit": "stretch"}, {"channels": 2}, {"intensity": "auto"}):
        with pytest.raises(XaiError):
            from_image_folder(root, **kw)
    assert from_image_folder(root, size="16", channels="1", seed="1").X.shape == (6, 1, 16, 16)  # CLI strings


# -- registry round trip and a model -----------------------------------------------------------------
def test_import_round_trip(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    root, masks = _with_masks(tmp_path, 16, 16)
    assert detect_format(root / "img").name == "image-folder"
    ds, entry, reused = user_data.import_data(root / "img", "my-images", size=16, masks=str(root / "masks"))
    assert not reused and entry["format"] == "image-folder" and entry["kind"] == "image"
    try:
        back = load_dataset("my-images")
        np.testing.assert_array_equal(back.X, ds.X)
        np.testing.assert_array_equal(back.ground_truth.masks, ds.ground_truth.masks)
        assert back.sample_ids == ds.sample_ids and back.class_names == ["healthy", "sick"]
        assert back.params["format"] == "image-folder" and back.params["fit"] == "resize"
        assert user_data.import_data(root / "img", "my-images", size=16, masks=str(root / "masks"))[2]
    finally:
        user_data.remove("my-images")


def test_simplenet_trains_on_default_size(tmp_path: Path):
    from xai_core.models import train_model

    root = _two_classes(tmp_path / "s", n=4, h=40, w=50)
    ds = from_image_folder(root)  # default size 64
    assert ds.input_shape == (3, 64, 64)
    model, report = train_model(ds, "simplenet", epochs=1)
    assert report.epochs_run == 1 and 0.0 <= report.test_accuracy <= 1.0
