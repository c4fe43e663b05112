"""The user's own images: a folder of class subfolders, or a CSV of ``path,label``, with optional masks.

Policies (also in ``docs/user_data_images.md``; decoding, channel conversion, intensity and geometry of one
file are in ``image_files``):

- **Files:** PNG, JPEG and TIFF (``.png .jpg .jpeg .tif .tiff``, any case). Hidden files (``.DS_Store``,
  ``._x.png``), ``Thumbs.db``, ``desktop.ini`` and ``__MACOSX`` folders are ignored; any other file in a class
  folder is refused.
- **Classes:** one subfolder per class (images may sit in deeper folders inside it); sample ids are paths
  relative to the folder (to the CSV's folder for the CSV form).
- **Channels** (``"auto"``, 1 or 3): auto gives 1 if every image is single-channel, else 3.
- **Size:** default 64, like the bundled grain set; at least 8 (``simplenet`` halves the image three times).
- **Masks:** the mask of ``CLASS/x.jpg`` is ``MASKS/CLASS/x.png`` (or ``.tif``/``.tiff``), else ``MASKS/x.png``
  when no other image has the stem ``x``. A pixel is in the mask where any colour channel is non-zero (alpha
  ignored). JPEG masks are refused (compression blurs the edges). A mask must have its image's size. An image
  without a mask gets an empty mask (nothing marked, like a healthy grain kernel) and is listed in
  ``params["images_without_mask"]``; ``missing_masks="error"`` refuses instead. A mask folder that matches no
  image at all is refused.
- Images are read one at a time into a preallocated float32 array (a header pass first fixes the channel
  count and checks mask sizes before any pixel is decoded).
"""
from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import XaiError
from .dataset import Dataset, GroundTruth
from .image_files import (FITS, IMAGE_EXTS, INTENSITIES, MASK_EXTS, check_mask_file, decode, probe, resize, square,
                          to_channels, to_unit)
from .importers import Importer, register_importer
from .user_common import DEFAULT_SEED, DEFAULT_TEST_SIZE, UserDataError, encode_labels, make_split

IGNORED_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}
MIN_SIZE, MAX_SIZE = 8, 1024
MAX_BYTES = 16 << 30  # refuse an X that would need more than 16 GiB
_EXT_LIST = ", ".join(IMAGE_EXTS)


@dataclass
class _Item:
    path: Path
    sample_id: str
    label: str
    mask: Path | None = None


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in IGNORED_NAMES


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTS


# -- options -------------------------------------------------------------------------------------------
def _check_options(size: Any, fit: Any, channels: Any, intensity: Any, test_size: Any, seed: Any,
                   mask_strength: Any, missing_masks: Any) -> dict[str, Any]:
    """Validate (and coerce from CLI strings) the options shared by both forms."""
    try:
        size, test_size, seed = int(size), float(test_size), int(seed)
    except (TypeError, ValueError):
        raise XaiError(f"size and seed must be whole numbers, test_size a fraction; got size={size!r}, "
                       f"seed={seed!r}, test_size={test_size!r}") from None
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise XaiError(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size} "
                       f"(simplenet halves the image three times; larger images do not fit in memory)")
    ch = str(channels).strip().lower()
    if ch not in ("auto", "1", "3"):
        raise XaiError(f"channels must be 'auto', 1 or 3, got {channels!r}")
    for opt, val, valid in (("fit", fit, FITS), ("intensity", intensity, INTENSITIES),
                            ("mask_strength", mask_strength, ("exact", "weak")),
                            ("missing_masks", missing_masks, ("empty", "error"))):
        if val not in valid:
            raise XaiError(f"{opt} must be one of {', '.join(valid)}; got {val!r}")
    return dict(size=size, fit=fit, channels=ch if ch == "auto" else int(ch), intensity=intensity,
                test_size=test_size, seed=seed, mask_strength=mask_strength,
                missing_masks=missing_masks)


# -- the two layouts -----------------------------------------------------------------------------------
def _walk_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (any depth), hidden ones skipped, anything else refused."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        for f in sorted(filenames):
            if _hidden(f):
                continue
            p = Path(dirpath) / f
            if not _is_image(p):
                raise UserDataError(p, f"is not a supported image file (supported: {_EXT_LIST})",
                                    "convert it, or move it out of the image folder")
            out.append(p)
    return out


def _mask_index(masks: Path) -> tuple[dict[str, list[Path]], dict[str, list[Path]], set[Path]]:
    """Mask files by relative path without extension, and (top level only) by stem."""
    if not masks.is_dir():
        raise UserDataError(masks, "the mask folder does not exist", "give the folder that holds the PNG masks")
    by_rel: dict[str, list[Path]] = {}
    by_stem: dict[str, list[Path]] = {}
    order = {e: i for i, e in enumerate(MASK_EXTS + (".jpg", ".jpeg"))}
    for dirpath, dirnames, filenames in os.walk(masks):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        for f in filenames:
            p = Path(dirpath) / f
            if _hidden(f) or p.suffix.lower() not in order:
                continue
            rel = p.relative_to(masks).with_suffix("").as_posix()
            by_rel.setdefault(rel, []).append(p)
            if p.parent == masks:
                by_stem.setdefault(p.stem, []).append(p)
    for d in (by_rel, by_stem):
        for v in d.values():
            v.sort(key=lambda q: order[q.suffix.lower()])
    return by_rel, by_stem, {p for v in by_rel.values() for p in v}


def _attach_masks(items: list[_Item], root: Path, masks: Path) -> set[Path]:
    """Set ``item.mask`` from the mask folder; returns the mask files no image claimed."""
    by_rel, by_stem, every = _mask_index(masks)
    stems = Counter(it.path.stem for it in items)
    used: set[Path] = set()
    for it in items:
        rel = it.path.relative_to(root).with_suffix("").as_posix()
        if rel in by_rel:
            it.mask = by_rel[rel][0]
        elif it.path.stem in by_stem:
            if stems[it.path.stem] > 1:
                twins = [i.sample_id for i in items if i.path.stem == it.path.stem][:3]
                raise UserDataError(by_stem[it.path.stem][0],
                                    f"could be the mask of several images ({', '.join(twins)})",
                                    "put the masks in class subfolders that mirror the image folder")
            it.mask = by_stem[it.path.stem][0]
        if it.mask is not None:
            used.add(it.mask)
    return every - used


def _folder_items(path: Path, masks: Path | None) -> tuple[list[_Item], list[str]]:
    if not path.is_dir():
        raise UserDataError(path, "is not a folder", "give a folder with one subfolder of images per class")
    entries = sorted(e for e in path.iterdir() if not _hidden(e.name))
    skip = masks.resolve() if masks is not None else None
    subdirs = [e for e in entries if e.is_dir() and e.resolve() != skip]
    loose = [e for e in entries if e.is_file()]
    loose_images = [e.name for e in loose if _is_image(e)]
    if not entries:
        raise UserDataError(path, "the folder is empty", "put each class's images in its own subfolder "
                            "(e.g. FOLDER/healthy/, FOLDER/diseased/)")
    if loose_images:
        raise UserDataError(path, f"{len(loose_images)} image(s) lie directly in the folder, not in a class "
                            f"subfolder (e.g. {loose_images[0]})", "put each class's images in its own subfolder "
                            "(FOLDER/CLASS/image.png), or list them in a CSV with path,label columns")
    if not subdirs:
        raise UserDataError(path, "holds no class subfolders of images",
                            "put each class's images in its own subfolder (FOLDER/CLASS/image.png)")
    items: list[_Item] = []
    for d in subdirs:
        files = _walk_images(d)
        if not files:
            raise UserDataError(d, f"class folder '{d.name}' holds no images ({_EXT_LIST})",
                                "add images to it, or delete the folder")
        items += [_Item(f, f.relative_to(path).as_posix(), d.name) for f in files]
    return items, [e.name for e in loose]


def _csv_items(path: Path) -> tuple[list[_Item], list[str] | None]:
    """Rows of a ``path,label[,split][,mask]`` CSV; relative paths start at the CSV's folder."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    if not rows:
        raise UserDataError(path, "the CSV is empty", "give a header line 'path,label' and one row per image")
    cols = [c.strip().lower() for c in rows[0]]
    missing = [c for c in ("path", "label") if c not in cols]
    if missing:
        raise UserDataError(path, f"the header lacks column(s) {', '.join(missing)} (found: {', '.join(cols)})",
                            "name the columns path,label (optional: split, mask)")
    ix = {c: cols.index(c) for c in ("path", "label", "split", "mask") if c in cols}
    base, items, split, seen = path.parent, [], [] if "split" in ix else None, {}
    for n, row in enumerate(rows[1:], start=2):
        def cell(c: str, row: list[str] = row) -> str:
            return row[ix[c]].strip() if c in ix and ix[c] < len(row) else ""

        rel = cell("path")
        if not rel:
            raise UserDataError(path, f"line {n} has no path", "give every row an image path")
        if rel in seen:
            raise UserDataError(path, f"line {n} repeats the image {rel!r} of line {seen[rel]}",
                                "list each image once (a repeated image could land in both train and test)")
        seen[rel] = n
        p = base / rel
        if not p.is_file():
            raise UserDataError(path, f"line {n}: image {rel!r} not found (looked at {p})",
                                "relative paths start at the CSV's folder; fix the path or the file")
        if not _is_image(p):
            raise UserDataError(p, f"is not a supported image file (supported: {_EXT_LIST})", "convert it")
        m = cell("mask")
        mp = base / m if m else None
        if mp is not None and not mp.is_file():
            raise UserDataError(path, f"line {n}: mask {m!r} not found (looked at {mp})",
                                "relative paths start at the CSV's folder; fix the path or leave the cell empty")
        items.append(_Item(p, rel, cell("label"), mp))
        if split is not None:
            split.append(cell("split"))
    if not items:
        raise UserDataError(path, "the CSV has a header but no rows", "add one row per image")
    if "mask" in ix and not any(it.mask for it in items):
        raise UserDataError(path, "the mask column is empty in every row", "fill it, or drop the column")
    return items, split


# -- the common builder --------------------------------------------------------------------------------
def _build(items: list[_Item], source: Path, name: str, opts: dict[str, Any], split: list[str] | None,
           mask_source: str | None, extra: dict[str, Any]) -> Dataset:
    y, classes = encode_labels([it.label for it in items], source, what="class")
    size, fit, intensity = opts["size"], opts["fit"], opts["intensity"]
    # header pass: sizes and channels; mask sizes are checked before any pixel is decoded
    shapes = [probe(it.path) for it in items]
    for it, (h, w, _) in zip(items, shapes):
        if it.mask is not None:
            check_mask_file(it.mask)
            mh, mw, _ = probe(it.mask)
            if (mh, mw) != (h, w):
                raise UserDataError(it.mask, f"mask is {mw}x{mh} pixels but its image {it.path} is {w}x{h} (WxH)",
                                    "give each mask exactly its image's size")
    channels = opts["channels"]
    if channels == "auto":
        channels = 1 if all(c == 1 for *_, c in shapes) else 3
    n = len(items)
    if n * channels * size * size * 4 > MAX_BYTES:
        raise UserDataError(source, f"{n} images of {channels}x{size}x{size} would need "
                            f"{n * channels * size * size * 4 / 2**30:.1f} GiB", "choose a smaller size")
    X = np.empty((n, channels, size, size), dtype=np.float32)
    M = np.zeros((n, size, size), dtype=bool) if mask_source is not None else None
    without = [it.sample_id for it in items if it.mask is None] if M is not None else []
    if without and opts["missing_masks"] == "error":
        raise UserDataError(mask_source, f"{len(without)} image(s) have no mask (e.g. {without[0]})",
                            "add their masks, or import with missing_masks='empty' (empty masks)")
    if M is not None and len(without) == n:
        raise UserDataError(mask_source, "no mask matches any image", "name each mask like its image "
                            "(MASKS/CLASS/x.png for FOLDER/CLASS/x.jpg)")
    not_binary, dtypes = 0, Counter()
    for i, it in enumerate(items):
        raw, reader = decode(it.path)
        dtypes[str(raw.dtype)] += 1
        img = square(to_channels(to_unit(raw, intensity, reader, it.path), channels), fit)
        for c in range(channels):
            X[i, c] = resize(img[:, :, c], size, nearest=False)
        if M is not None and it.mask is not None:
            raw_m, _ = decode(it.mask)
            nz = raw_m[raw_m != 0]
            not_binary += bool(nz.size and (nz != nz.max()).any())
            M[i] = resize(square((raw_m != 0).any(axis=2), fit), size, nearest=True)
    np.clip(X, 0.0, 1.0, out=X)
    tr, te, split_info = make_split(y, split, opts["test_size"], opts["seed"], source)
    hw = Counter((h, w) for h, w, _ in shapes)
    (mh, mw), mc = hw.most_common(1)[0]
    params: dict[str, Any] = {
        "image_size": size, "fit": fit, "channels": channels, "channels_option": opts["channels"],
        "intensity": intensity, "n_images": n, "source_dtypes": dict(dtypes),
        "original_sizes": {"distinct": len(hw), "height_range": [min(h for h, _ in hw), max(h for h, _ in hw)],
                           "width_range": [min(w for _, w in hw), max(w for _, w in hw)],
                           "most_common": {"height": mh, "width": mw, "count": mc}},
        "n_upscaled": sum((max(h, w) if fit == "pad" else min(h, w)) < size for h, w, _ in shapes),
        **split_info, **extra}
    gt = None
    if M is not None:
        gt = GroundTruth(masks=M, strength=opts["mask_strength"], note=f"your masks ({mask_source})")
        params.update(masks=mask_source, mask_strength=opts["mask_strength"], missing_masks=opts["missing_masks"],
                      n_without_mask=len(without), images_without_mask=without[:50], n_masks_not_binary=not_binary)
    desc = (f"your images ({source.name}): {n} images resized to {channels}x{size}x{size} ({fit}), "
            f"{len(classes)} classes" + (", with masks" if gt is not None else ""))
    return Dataset(name=name, modality="image", X=X, y=y, class_names=classes, feature_names=[],
                   train_idx=tr, test_idx=te, ground_truth=gt, description=desc, params=params,
                   sample_ids=[it.sample_id for it in items])


# -- public readers ------------------------------------------------------------------------------------
def from_image_folder(path: str | Path, *, name: str = "images", masks: str | Path | None = None,
                      size: int = 64, fit: str = "resize", channels: str | int = "auto",
                      intensity: str = "dtype", test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED,
                      mask_strength: str = "exact", missing_masks: str = "empty") -> Dataset:
    """A folder with one subfolder of PNG/JPEG/TIFF images per class -> an image ``Dataset``.

    Parameters
    ----------
    path : str or Path
        The folder (``path/CLASS/x.png``).
    name : str
        The dataset's name.
    masks : str or Path, optional
        A folder of binary masks named like the images (``MASKS/CLASS/x.png`` for ``CLASS/x.jpg``; see the
        module docstring), the ground truth.
    size : int
        Side of the square images the model sees, in pixels.
    fit : str
        How images become square: ``resize`` (stretch), ``crop`` (centre square) or ``pad`` (zeros around).
    channels : str or int
        ``auto`` (1 if every image is grey, else 3), 1 (grey) or 3 (RGB).
    intensity : str
        ``dtype`` (divide by 255 / 65535 by pixel type) or ``minmax`` (each image's min..max to 0..1).
    test_size : float
        Fraction of images held out for testing (stratified split).
    seed : int
        Random seed of the stratified train/test split.
    mask_strength : str
        How far the masks are trusted as ground truth: ``exact`` or ``weak``.
    missing_masks : str
        An image without a mask gets an empty one (``empty``) or is an error (``error``).

    Returns
    -------
    Dataset
        Of modality ``image``.

    Raises
    ------
    UserDataError
        For a bad option, folder, image or mask.
    """
    path = Path(path)
    opts = _check_options(size, fit, channels, intensity, test_size, seed, mask_strength, missing_masks)
    mpath = Path(masks) if masks else None
    items, loose = _folder_items(path, mpath)
    extra: dict[str, Any] = {"ignored_files": loose[:20]} if loose else {}
    if mpath is not None:
        unmatched = _attach_masks(items, path, mpath)
        if unmatched:
            extra.update(n_unmatched_masks=len(unmatched),
                         unmatched_masks=sorted(p.relative_to(mpath).as_posix() for p in unmatched)[:20])
    return _build(items, path, name, opts, None, str(mpath) if mpath else None, extra)


def from_image_csv(path: str | Path, *, name: str = "images", size: int = 64, fit: str = "resize",
                   channels: str | int = "auto", intensity: str = "dtype", test_size: float = DEFAULT_TEST_SIZE,
                   seed: int = DEFAULT_SEED, mask_strength: str = "exact", missing_masks: str = "empty") -> Dataset:
    """A CSV with ``path,label`` columns (optional ``split`` train/test and ``mask``) -> an image ``Dataset``.

    Parameters
    ----------
    path : str or Path
        The CSV; relative image paths in it are taken from its folder.
    name : str
        The dataset's name.
    size : int
        Side of the square images the model sees, in pixels.
    fit : str
        How images become square: ``resize`` (stretch), ``crop`` (centre square) or ``pad`` (zeros around).
    channels : str or int
        ``auto`` (1 if every image is grey, else 3), 1 (grey) or 3 (RGB).
    intensity : str
        ``dtype`` (divide by 255 / 65535 by pixel type) or ``minmax`` (each image's min..max to 0..1).
    test_size : float
        Fraction of images held out for testing when there is no split column.
    seed : int
        Random seed of the stratified train/test split.
    mask_strength : str
        How far the masks are trusted as ground truth: ``exact`` or ``weak``.
    missing_masks : str
        An image without a mask gets an empty one (``empty``) or is an error (``error``).

    Returns
    -------
    Dataset
        Of modality ``image``.

    Raises
    ------
    UserDataError
        For a bad option, CSV, image or mask.
    """
    path = Path(path)
    opts = _check_options(size, fit, channels, intensity, test_size, seed, mask_strength, missing_masks)
    items, split = _csv_items(path)
    has_masks = any(it.mask for it in items)
    return _build(items, path, name, opts, split, f"mask column of {path.name}" if has_masks else None, {})


# -- detection and registration ------------------------------------------------------------------------
def _csv_files(path: Path, options: dict[str, Any]) -> list[Path]:
    """The images and masks a CSV lists: they enter the content hash, so editing one re-imports."""
    items, _ = _csv_items(path)
    return [it.path for it in items] + [it.mask for it in items if it.mask is not None]


def _detect_folder(path: Path, limit: int = 500) -> bool:
    """A folder whose (non-hidden) subfolders hold image files, directly or one level down."""
    if not path.is_dir():
        return False
    seen = 0
    for sub in sorted(e for e in path.iterdir() if e.is_dir() and not _hidden(e.name)):
        for e in sub.iterdir():
            seen += 1
            if seen > limit:
                return False
            if _hidden(e.name):
                continue
            if e.is_file() and _is_image(e):
                return True
            if e.is_dir() and any(f.is_file() and _is_image(f) for f in e.iterdir() if not _hidden(f.name)):
                return True
    return False


def _detect_csv(path: Path) -> bool:
    if not (path.is_file() and path.suffix.lower() == ".csv"):
        return False
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        header = next(csv.reader(fh), [])
    return {"path", "label"} <= {c.strip().lower() for c in header}


_COMMON_OPTIONS = {
    "size": f"side of the square images the model sees, in pixels (default 64, {MIN_SIZE}-{MAX_SIZE})",
    "fit": "how images become square: resize (stretch, default), crop (centre square) or pad (zeros around)",
    "channels": "auto (1 if every image is grey, else 3; default), 1 (grey) or 3 (RGB)",
    "intensity": "dtype (divide by 255 / 65535 by pixel type; default) or minmax (each image's min..max to 0..1)",
    "test_size": "fraction of images held out for testing when there is no split column (default 0.25)",
    "seed": "random seed of the stratified train/test split (default 0)",
    "mask_strength": "how far the masks are trusted as ground truth: exact (default) or weak",
    "missing_masks": "an image without a mask gets an empty one (empty, default) or is an error (error)",
}

register_importer(Importer(
    name="image-folder", kind="image",
    description="a folder with one subfolder of PNG/JPEG/TIFF images per class, optional mask folder",
    detect=_detect_folder, read=from_image_folder,
    options={"masks": "folder of binary PNG masks named like the images (MASKS/CLASS/x.png for CLASS/x.jpg)",
             **_COMMON_OPTIONS},
    side_files=("masks",)))

register_importer(Importer(
    name="image-csv", kind="image",
    description="a CSV with path,label columns (optional split, mask) pointing at PNG/JPEG/TIFF images",
    detect=_detect_csv, read=from_image_csv, options=dict(_COMMON_OPTIONS), referenced=_csv_files))
