"""Image augmentations for the robustness-to-augmentation metrics (protocol §2.5a), batched over (N, 3, H, W).

The study (Tětková et al., predecessor code) used imgaug on uint8 RGB images. We work on float tensors in
[0, 1] and keep imgaug's parameter units and ranges:

- ``brightness`` (imgaug ``AddToBrightness``, v in [-100, 100] on the 0..255 scale): v/255 is added to the
  luma Y of YCbCr (BT.601, OpenCV's YCrCb), Y is clipped to [0, 1], then RGB is clipped to [0, 1]. Adding to Y
  with Cb, Cr fixed is adding the same amount to R, G and B, so no colour-space round trip is needed. imgaug
  draws the brightness colour space at random per image among YCrCb, HSV, HLS, Lab, Luv and YUV; we always
  use YCrCb, its first candidate.
- ``hue`` (``AddToHue(int(v))``, v in [-100, 100]): the hue (HSV) turns by trunc(int(v)/255·180) OpenCV hue
  units of 2° (imgaug's float32 projection and look-up table); S and V are kept.
- ``saturation`` (``AddToSaturation(int(v))``, v in [-100, 100]): S (HSV) += int(v)/255, clipped to [0, 1].
- ``rotation`` (``Rotate``, v in [-40°, 40°], clockwise as we read imgaug; the range is symmetric, so the
  direction does not change the score), ``translation`` (``Affine(translate_percent=v)``, v in [-0.4, 0.4] of
  each axis, the same v for x and y, positive = right/down) and ``scale`` (``Affine(scale=v)``, v in
  [0.8, 1.2]), all about the image centre with bilinear interpolation and constant fill 0 (torchvision
  ``transforms.v2.functional.affine``).

We skip imgaug's uint8 rounding. Colour augmentations are *invariant* (the reference explanation is e(x));
geometric ones are *equivariant* (the reference is T_v(e(x)), on the pixels still inside the frame).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..errors import XaiError
from ..registry import Registry
from .ops import average_ranks


@dataclass(frozen=True)
class Augmentation:
    name: str
    kind: str  # "invariant" or "equivariant"
    low: float
    high: float
    identity: float
    fn: Callable[[torch.Tensor, float], torch.Tensor]
    description: str

    @property
    def symmetric(self) -> bool:
        """Values on both sides of the identity (rotation) rather than starting at it (e.g. added noise)."""
        return self.low < self.identity < self.high

    def apply(self, x: torch.Tensor, v: float) -> torch.Tensor:
        """T_v(x) for a batch (N, C, H, W); the identity value returns ``x`` itself."""
        return x if v == self.identity else self.fn(x, float(v))

    def values(self, n_values: int = 6) -> list[float]:
        """The grid: [identity] + ``n_values`` evenly spaced values over the range, sorted, duplicates dropped."""
        if n_values < 1:
            raise XaiError("n_values must be at least 1")
        grid = np.concatenate([[self.identity], np.linspace(self.low, self.high, n_values)])
        return sorted({round(float(v), 10) for v in grid})

    def frame_mask(self, v: float, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """(H, W) bool: pixels that stay inside the frame under T_v (the study's ``make_mask``).

        An all-ones image is transformed with fill 0; a pixel is dropped where it became 0, i.e. below half a
        uint8 level (imgaug worked on uint8, where such pixels round to 0). Invariant augmentations keep all.
        """
        ones = torch.ones(1, 1, height, width, device=device)
        if self.kind == "invariant" or v == self.identity:
            return ones[0, 0].bool()
        return self.fn(ones, float(v))[0, 0] >= 0.5 / 255


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


def _augmentation(name: str, kind: str, low: float, high: float, identity: float, description: str):
    return AUGMENTATIONS.decorator(name, lambda fn: Augmentation(name, kind, low, high, identity, fn, description))


# -- colour spaces ---------------------------------------------------------------------------------------
def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> HSV with H in [0, 1) (fraction of the hue circle), S and V in [0, 1]."""
    r, g, b = x.unbind(1)
    v, imax = x.max(dim=1)
    delta = v - x.min(dim=1).values
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    d = delta.clamp_min(1e-12)
    h = torch.where(imax == 0, torch.remainder((g - b) / d, 6.0),
                    torch.where(imax == 1, (b - r) / d + 2.0, (r - g) / d + 4.0))
    h = torch.where(delta > 0, h / 6.0, torch.zeros_like(h))
    return torch.stack([torch.remainder(h, 1.0), s, v], dim=1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`: channel n of (R, G, B) = V - V·S·clamp(min(k, 4 - k), 0, 1),
    k = (n + 6H) mod 6 with n = 5, 3, 1."""
    h, s, v = hsv.unbind(1)
    n = torch.tensor([5.0, 3.0, 1.0], device=hsv.device, dtype=hsv.dtype).view(1, 3, 1, 1)
    k = torch.remainder(n + 6.0 * h[:, None], 6.0)
    return v[:, None] - (v * s)[:, None] * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


@_augmentation("brightness", "invariant", -100.0, 100.0, 0.0,
               "add v/255 to the luma (YCbCr Y), like imgaug AddToBrightness")
def add_to_brightness(x: torch.Tensor, v: float) -> torch.Tensor:
    y = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    return (x + ((y + v / 255.0).clamp(0.0, 1.0) - y)).clamp(0.0, 1.0)


@_augmentation("hue", "invariant", -100.0, 100.0, 0.0,
               "turn the hue by int(v)·360/255 degrees (in 2° steps), like imgaug AddToHue")
def add_to_hue(x: torch.Tensor, v: float) -> torch.Tensor:
    units = int(np.float32(int(v)) / np.float32(255.0) * np.float32(180.0))  # imgaug: float32, then astype(int32)
    hsv = rgb_to_hsv(x)
    h = torch.remainder(hsv[:, 0] + units / 180.0, 1.0)
    return hsv_to_rgb(torch.stack([h, hsv[:, 1], hsv[:, 2]], dim=1)).clamp(0.0, 1.0)


@_augmentation("saturation", "invariant", -100.0, 100.0, 0.0,
               "add int(v)/255 to the HSV saturation, like imgaug AddToSaturation")
def add_to_saturation(x: torch.Tensor, v: float) -> torch.Tensor:
    hsv = rgb_to_hsv(x)
    s = (hsv[:, 1] + int(v) / 255.0).clamp(0.0, 1.0)
    return hsv_to_rgb(torch.stack([hsv[:, 0], s, hsv[:, 2]], dim=1)).clamp(0.0, 1.0)


# -- geometry --------------------------------------------------------------------------------------------
def _affine(x: torch.Tensor, angle: float = 0.0, translate: tuple[float, float] = (0.0, 0.0),
            scale: float = 1.0) -> torch.Tensor:
    return TF.affine(x, angle=angle, translate=list(translate), scale=scale, shear=[0.0, 0.0],
                     interpolation=InterpolationMode.BILINEAR, fill=0.0)


@_augmentation("rotation", "equivariant", -40.0, 40.0, 0.0, "rotate by v degrees clockwise (imgaug Rotate)")
def rotate(x: torch.Tensor, v: float) -> torch.Tensor:
    return _affine(x, angle=v)  # torchvision's affine (unlike its rotate) turns clockwise for positive angles


@_augmentation("translation", "equivariant", -0.4, 0.4, 0.0,
               "shift right and down by v of the width and height (imgaug Affine translate_percent)")
def translate(x: torch.Tensor, v: float) -> torch.Tensor:
    return _affine(x, translate=(v * x.shape[-1], v * x.shape[-2]))


@_augmentation("scale", "equivariant", 0.8, 1.2, 1.0, "zoom by a factor v about the centre (imgaug Affine scale)")
def scale(x: torch.Tensor, v: float) -> torch.Tensor:
    return _affine(x, scale=v)


INVARIANT = tuple(a.name for a in AUGMENTATIONS.values() if a.kind == "invariant")
EQUIVARIANT = tuple(a.name for a in AUGMENTATIONS.values() if a.kind == "equivariant")


def resolve_augmentations(names: str | list[str] | tuple[str, ...], kind: str) -> list[Augmentation]:
    """Augmentations by name (a list, or a comma-separated string), all of ``kind``."""
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    augs = [AUGMENTATIONS.get(n) for n in names if n]
    wrong = [a.name for a in augs if a.kind != kind]
    if wrong or not augs:
        valid = INVARIANT if kind == "invariant" else EQUIVARIANT
        raise XaiError(f"augmentations for this metric must be {kind} ones ({', '.join(valid)}); got "
                       f"{', '.join(wrong) or 'none'}")
    return augs


# -- the study's scalar score (fig_to_num / fig_to_table) -----------------------------------------------
def _trapezoid_in(curve: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Trapezoid AUC of each row over its kept, contiguous positions, dx = 1/(len - 1), after shifting the
    kept part so that its maximum is 1."""
    big = torch.finfo(curve.dtype).max
    peak = torch.where(keep, curve, torch.full_like(curve, -big)).amax(dim=1, keepdim=True)
    y = curve + (1.0 - peak)
    pair = keep[:, 1:] & keep[:, :-1]
    area = torch.where(pair, (y[:, 1:] + y[:, :-1]) / 2.0, torch.zeros_like(y[:, 1:])).sum(dim=1)
    return area / (keep.sum(dim=1) - 1).clamp_min(1).to(curve.dtype)


def auc_ratio(similarity: torch.Tensor, probability: torch.Tensor, identity_index: int,
              probab_drop: float = 0.1, cutoff: str = "batch") -> tuple[torch.Tensor, torch.Tensor]:
    """Score = AUC(similarity)/AUC(probability) on the interval [-N, N] around the identity (§2.5a).

    ``similarity``, ``probability``: (N, L) curves over the sorted grid; the identity sits at
    ``identity_index``. Step j covers grid indices [c - j, c + j] (clipped to the grid, so a grid that starts at
    the identity gives [0, j]). N is the first step at which the probability on either side falls below
    (1 - ``probab_drop``) times its value at the identity; the whole grid when it never does (or when
    ``probab_drop`` is 0). ``cutoff="batch"`` (the study) uses the batch-mean probability curve, so every image
    is scored on the same interval; ``"per_sample"`` uses each image's own curve. NaN probabilities (samples
    left out) do not enter the batch mean. Returns the scores (N,) and the kept grid positions (N, L).
    """
    n, length = probability.shape
    c = identity_index
    steps = max(c, length - 1 - c)
    if cutoff == "batch":
        curve = probability.nanmean(dim=0, keepdim=True)
    elif cutoff == "per_sample":
        curve = probability
    else:
        raise XaiError(f"cutoff must be 'batch' or 'per_sample', not '{cutoff}'")
    j_star = torch.full((len(curve),), steps, dtype=torch.long, device=curve.device)
    if probab_drop > 0:
        target = curve[:, c] * (1.0 - probab_drop)
        for j in range(steps, 0, -1):  # ends with the first (smallest) dropping step
            lo, hi = max(c - j, 0), min(c + j, length - 1)
            drop = (curve[:, lo] < target) | (curve[:, hi] < target)
            j_star = torch.where(drop, torch.full_like(j_star, j), j_star)
    idx = torch.arange(length, device=curve.device)
    keep = ((idx[None] - c).abs() <= j_star[:, None]).expand(n, length)
    return _trapezoid_in(similarity, keep) / _trapezoid_in(probability, keep), keep


# -- comparing two maps on the kept positions ------------------------------------------------------------
SIMILARITIES = ("pearson", "spearman", "cosine", "topk")


def _weighted_pearson(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    n = w.sum(dim=1, keepdim=True)
    da = (a - (w * a).sum(dim=1, keepdim=True) / n) * w
    db = (b - (w * b).sum(dim=1, keepdim=True) / n) * w
    var = (da * da).sum(dim=1) * (db * db).sum(dim=1)
    r = (da * db).sum(dim=1) / var.sqrt()
    return torch.where(var > 0, r.clamp(-1.0, 1.0), torch.full_like(r, float("nan")))


def similarity(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None, how: str = "pearson",
               k: float = 0.1) -> torch.Tensor:
    """Per-row similarity of two (N, P) maps on the positions where ``mask`` (N, P) is True; shape (N,).

    ``pearson`` and ``spearman`` (Pearson of average ranks of the kept values) as scipy; ``cosine``; ``topk``:
    |top-k(a) ∩ top-k(b)| / k on signed values, k = round(k·kept) if k < 1 else min(k, kept), ties broken by
    position. NaN where undefined (a constant map for the correlations, a zero map for the cosine).
    """
    a, b = a.double(), b.double()
    w = torch.ones_like(a) if mask is None else mask.to(a.dtype)
    keep = w > 0
    if how == "pearson":
        return _weighted_pearson(a, b, w)
    if how == "spearman":  # left-out positions rank last (+inf) and get no weight
        inf = torch.full_like(a, float("inf"))
        return _weighted_pearson(average_ranks(torch.where(keep, a, inf)), average_ranks(torch.where(keep, b, inf)), w)
    if how == "cosine":
        a, b = a * w, b * w
        den = a.norm(dim=1) * b.norm(dim=1)
        return torch.where(den > 0, (a * b).sum(dim=1) / den, torch.full_like(den, float("nan")))
    if how == "topk":
        kept = keep.sum(dim=1)
        kk = (kept.double() * k).round().long() if k < 1 else torch.full_like(kept, int(k)).minimum(kept)
        kk = kk.clamp_min(1)
        ninf = torch.full_like(a, float("-inf"))

        def top(v):  # rank 0 = largest kept value
            order = torch.where(keep, v, ninf).argsort(dim=1, descending=True, stable=True)
            return order.argsort(dim=1) < kk[:, None]

        return (top(a) & top(b)).sum(dim=1).double() / kk.double()
    raise XaiError(f"unknown similarity '{how}'; valid choices: {', '.join(SIMILARITIES)}")
