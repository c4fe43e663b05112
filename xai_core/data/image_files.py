"""Reading one image file: decoding PNG/JPEG/TIFF strictly, intensity scaling, channels and geometry.

Policies (also in ``docs/user_data_images.md``; folders, CSVs and masks are in ``load_images``):

- **Files:** PNG, JPEG and TIFF (``.png .jpg .jpeg .tif .tiff``, any case). TIFF is read with tifffile (16-bit
  and float microscopy, planar RGB), falling back to Pillow; the rest with Pillow. A file that cannot be
  decoded *to its last byte* (a PNG cut in half, bytes that are not an image) is refused: Pillow's
  ``LOAD_TRUNCATED_IMAGES`` is forced off while reading, and PNG checksums are verified. Multi-page TIFFs
  (stacks) are refused; EXIF orientation is ignored (pixels as stored, so masks line up with the stored grid).
- **Channels:** alpha is dropped, palette images count as colour, grey images are replicated to RGB, colour
  to grey uses ITU-R 601 luma.
- **Intensity:** ``"dtype"`` divides by the pixel type's maximum (255 for 8-bit, 65535 for 16-bit; float
  images must already lie in [0, 1]); ``"minmax"`` maps each image's own min..max (all channels together) to
  [0, 1] (a constant image becomes 0).
- **Geometry** (``fit``), applied after the intensity scaling: ``"resize"`` stretches to ``size`` x ``size``
  (aspect not kept), ``"crop"`` centre-crops to a square first, ``"pad"`` pads to a centred square with zeros
  first (an odd surplus goes to the bottom/right). Images use Pillow's bilinear filter on float32 planes
  (antialiased when shrinking), masks nearest-neighbour; an image already ``size`` x ``size`` is untouched.
- **Mask files:** JPEG masks are refused (compression blurs the edges).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from .user_common import UserDataError

IMAGE_EXTS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MASK_EXTS: tuple[str, ...] = (".png", ".tif", ".tiff")  # lookup order for a mask's extension
TIFF_EXTS = (".tif", ".tiff")
FITS = ("resize", "crop", "pad")
INTENSITIES = ("dtype", "minmax")
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_UNREADABLE_FIX = "re-export or copy the file again, or remove it"


@contextmanager
def _strict_pil() -> Iterator[None]:
    """Decode to the last byte: a truncated file is an error even if someone switched that off globally."""
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def _unreadable(path: Path, e: BaseException) -> UserDataError:
    if isinstance(e, Image.DecompressionBombError):
        return UserDataError(path, f"is too large to decode safely ({e})", "downscale it before importing")
    return UserDataError(path, f"cannot be read as an image: truncated or corrupt ({type(e).__name__}: {e})",
                         _UNREADABLE_FIX)


# -- reading one file ----------------------------------------------------------------------------------
def _layout(shape: tuple[int, ...], path: Path) -> tuple[int, int, int, bool]:
    """(H, W, channels kept, planar) of one image's array shape: 1-2 channels -> 1 (grey, alpha dropped),
    3-4 -> 3 (RGB, alpha dropped); a stack or more than 4 channels is refused."""
    dims = [s for s in shape if s != 1] if len(shape) > 2 else list(shape)
    dims = dims if len(dims) >= 2 else list(shape[-2:])
    planar = len(dims) == 3 and dims[-1] > 4 and dims[0] <= 4
    if len(dims) == 2:
        return dims[0], dims[1], 1, False
    if len(dims) != 3 or (dims[-1] > 4 and not planar):
        raise UserDataError(path, f"holds an array of shape {tuple(shape)}, not one 2D image with 1-4 channels "
                            "(a stack or multi-channel TIFF?)", "save one grey or RGB image per file")
    h, w, c = (dims[1], dims[2], dims[0]) if planar else dims
    return h, w, (1 if c <= 2 else 3), planar


def _hwc(a: np.ndarray, path: Path) -> np.ndarray:
    """Any array layout of one image -> (H, W, C) with C in {1, 3}: alpha dropped, planar RGB transposed."""
    h, w, c, planar = _layout(a.shape, path)
    a = np.moveaxis(a.reshape(-1, h, w), 0, -1) if planar else a.reshape(h, w, -1)
    return a[:, :, :c]


def _pil_array(im: Image.Image) -> np.ndarray:
    if getattr(im, "n_frames", 1) > 1 and im.format not in ("JPEG", "MPO"):
        raise UserDataError(getattr(im, "filename", None), f"has {im.n_frames} frames/pages",
                            "save one image per file")
    if im.mode == "1" or im.mode in ("LA", "La"):
        im = im.convert("L")
    elif im.mode not in _GREY_MODES and im.mode != "RGB":
        im = im.convert("RGB")  # palette, RGBA, CMYK, YCbCr, ...: alpha dropped
    a = np.asarray(im)
    return a.astype(a.dtype.newbyteorder("=")) if not a.dtype.isnative else a


def decode(path: Path) -> tuple[np.ndarray, str]:
    """The pixels of ``path`` as (H, W, C), C in {1, 3}, in the file's own dtype; and which reader read it."""
    first_error: BaseException | None = None
    if path.suffix.lower() in TIFF_EXTS:
        import tifffile  # noqa: PLC0415 - tifffile (0.4-0.7 s): only TIFF files need it

        try:
            with tifffile.TiffFile(path) as tf:
                series = tf.series[0]
                _layout(tuple(series.shape), path)  # refuse a stack before reading it
                return _hwc(series.asarray(), path), "tifffile"
        except (UserDataError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - an exotic codec, or any other tifffile failure: Pillow may still read it
            first_error = e
    try:
        with _strict_pil():
            with Image.open(path) as im:
                im.verify()  # chunk checksums (PNG); verify leaves the image unusable, so open again
            with Image.open(path) as im:
                im.load()
                mode = im.mode
                return _hwc(_pil_array(im), path), f"pil-{mode}"
    except (UserDataError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - Pillow fails in many ways on a damaged file: all mean unreadable
        raise _unreadable(path, first_error or e) from None


def probe(path: Path) -> tuple[int, int, int]:
    """(height, width, channels after alpha is dropped) from the header alone."""
    try:
        if path.suffix.lower() in TIFF_EXTS:
            import tifffile  # noqa: PLC0415 - tifffile (0.4-0.7 s): only TIFF files need it

            try:
                with tifffile.TiffFile(path) as tf:
                    shape = tuple(tf.series[0].shape)
                return _layout(shape, path)[:3]
            except UserDataError:
                raise
            except Exception:  # noqa: BLE001 - any tifffile failure: Pillow below may still read it
                pass  # Pillow below
        with _strict_pil(), Image.open(path) as im:
            return im.size[1], im.size[0], 1 if im.mode in _GREY_MODES else 3
    except (UserDataError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - Pillow fails in many ways on a damaged header: all mean unreadable
        raise _unreadable(path, e) from None


# -- intensity, channels and geometry ------------------------------------------------------------------
def to_unit(a: np.ndarray, intensity: str, reader: str, path: Path) -> np.ndarray:
    """Pixel values -> float32 in [0, 1] by the stated intensity policy."""
    x = a.astype(np.float32)
    if not np.isfinite(x).all():
        raise UserDataError(path, "has NaN or infinite pixel values", "replace them before importing")
    if intensity == "minmax":
        lo, hi = float(x.min()), float(x.max())
        return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    if a.dtype.kind == "f":
        if x.min() < -1e-6 or x.max() > 1 + 1e-6:
            raise UserDataError(path, f"has floating-point pixels in [{x.min():.4g}, {x.max():.4g}], not in [0, 1]",
                                "use intensity='minmax', or scale the image to [0, 1]")
        return np.clip(x, 0.0, 1.0)
    if a.dtype.kind == "b":
        return x
    if x.min() < 0:
        raise UserDataError(path, f"has negative pixel values ({a.dtype})", "use intensity='minmax'")
    top = float(np.iinfo(a.dtype).max)
    if reader == "pil-I" and x.max() <= 65535:  # Pillow reports some 16-bit files as 32-bit integers
        top = 65535.0
    return x / top


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """(H, W, C) -> (H, W, ``channels``): colour to grey by luma, grey replicated to RGB."""
    if channels == 1 and img.shape[2] == 3:
        return (img @ _LUMA)[:, :, None]
    if channels == 3 and img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    return img


def square(a: np.ndarray, fit: str) -> np.ndarray:
    """(H, W[, C]) -> a square by ``crop`` (centred) or ``pad`` (zeros, centred); ``resize`` leaves it."""
    h, w = a.shape[:2]
    if h == w or fit == "resize":
        return a
    if fit == "crop":
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        return a[top:top + s, left:left + s]
    s = max(h, w)
    out = np.zeros((s, s) + a.shape[2:], dtype=a.dtype)
    top, left = (s - h) // 2, (s - w) // 2
    out[top:top + h, left:left + w] = a
    return out


def resize(plane: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    """One (H, W) plane -> (size, size): bilinear on float32, or nearest-neighbour to bool (masks)."""
    if plane.shape == (size, size):
        return plane
    if nearest:
        im = Image.fromarray(plane.astype(np.uint8))
        return np.asarray(im.resize((size, size), Image.Resampling.NEAREST)) > 0
    im = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))
    return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR))


def check_mask_file(path: Path) -> None:
    """Refuse a JPEG mask (lossy compression blurs its edges)."""
    if path.suffix.lower() in (".jpg", ".jpeg"):
        raise UserDataError(path, "is a JPEG mask (lossy compression blurs its edges)",
                            f"save masks as PNG ({', '.join(MASK_EXTS)})")
