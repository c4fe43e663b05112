"""Simulated grain-kernel images with pixel-exact lesion masks (stand-in for the FOSS data, §2.8).

The study behind §2 explains a small CNN on proprietary single-kernel images (pink fusarium
disease, skinned damage) against expert lesion annotations. Those images cannot be obtained, so
this module renders a stand-in with the same structure and an *exact* ground truth:

- one wheat/barley-like kernel per image on a dark, slightly noisy tray: an elongated, slightly
  egg-shaped and bent ellipse, golden-brown to tan, with per-kernel colour, smoothed texture
  noise, dome shading from a directional light (one side brighter), a soft specular highlight,
  the ventral crease along the long axis, an anti-aliased edge and a darker brush tip;
- natural blemishes that are *not* lesions (small dark spots near the germ end), drawn with the
  same probability in every class so that "any anomaly" is not the label;
- class 1 "pink fusarium": pinkish/reddish-white, mottled, fuzzy-edged discoloured patches;
- class 2 "skinned": the bran peeled off, showing paler, whiter and smoother endosperm with a
  sharp irregular edge, sometimes residual bran streaks and a darker torn rim.

Each image is rendered twice from the same random draws: once healthy (``clean``) and once with
its lesions. A lesion only changes the kernel's albedo inside its region, so the mask is *exactly*
the set of pixels that differ from the healthy rendering (by at least ``MIN_CHANGE``), and every
pixel outside the mask is bit-identical to it. Healthy images have empty masks. Lesion area is a
uniform draw in ``[lesion_area_min, lesion_area_max]`` of the kernel area (one or two patches),
reached by thresholding a noisy blob field at the matching quantile.

Everything is vectorised with numpy over pixels and over chunks of images (no per-pixel loops).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import binary_erosion, gaussian_filter

from .dataset import Dataset, GroundTruth
from .registry import register_dataset

CLASS_NAMES = ["healthy", "pink fusarium", "skinned"]
MIN_CHANGE = 1.0 / 255.0  # a mask pixel differs from the healthy kernel by at least one 8-bit level

# Kernel albedo palette (RGB in [0, 1]): golden-brown, tan / barley-like, reddish-brown (red wheat).
_PALETTE = np.array([[0.78, 0.55, 0.30],
                     [0.80, 0.66, 0.44],
                     [0.66, 0.42, 0.24]], dtype=np.float64)
_FUSARIUM = np.array([0.93, 0.66, 0.68])   # pinkish-white mould / chalky tissue
_ENDOSPERM = np.array([0.93, 0.88, 0.72])  # pale, creamy exposed endosperm
_BLEMISH32 = np.array([0.28, 0.18, 0.11], dtype=np.float32)  # dark brown spot


_CHUNK = 128  # images rendered together; fixed, because the random stream depends on it


def _smooth_noise(rng: np.random.Generator, n: int, size: int, sigma: float) -> np.ndarray:
    """``n`` fields of Gaussian-smoothed white noise (n, size, size), each with unit std."""
    z = gaussian_filter(rng.standard_normal((n, size, size), dtype=np.float32),
                        sigma=(0.0, sigma, sigma), mode="wrap")
    return z / (z.std(axis=(1, 2), keepdims=True) + 1e-12)


def _top_pixels(field: np.ndarray, allowed: np.ndarray, n_pixels: np.ndarray) -> np.ndarray:
    """Per image, the ``n_pixels`` allowed pixels with the largest ``field`` (a level set of it).

    field, allowed: (B, H, W); n_pixels: (B,) int, clipped to the number of allowed pixels.
    """
    b = len(field)
    vals = np.where(allowed, field, -np.inf).reshape(b, -1)
    desc = -np.sort(-vals, axis=1)
    n = np.clip(n_pixels, 0, allowed.reshape(b, -1).sum(axis=1))
    thr = desc[np.arange(b), np.maximum(n - 1, 0)]
    return allowed & (field >= thr[:, None, None]) & (n > 0)[:, None, None]


def _pow(x: np.ndarray, p: np.ndarray | float) -> np.ndarray:
    """x ** p for x > 0 via exp/log (vectorised; np.power with array exponents is slow)."""
    return np.exp(p * np.log(np.maximum(x, 1e-30)))


def _col(x: np.ndarray) -> np.ndarray:
    """(B,) -> (B, 1, 1) for broadcasting over the pixel grid."""
    return np.asarray(x, dtype=np.float32)[:, None, None]


@dataclass(frozen=True)
class _Geometry:
    """One chunk's kernel shapes on the pixel grid (arrays are (B, H, W) unless noted)."""

    n: int                # images in the chunk
    size: int             # image side (px)
    s: float              # geometry scale: size / 64
    xx: np.ndarray        # pixel centres (1, H, W)
    yy: np.ndarray
    a: np.ndarray         # semi-major / semi-minor axis (B, 1, 1)
    b: np.ndarray
    theta: np.ndarray     # long-axis angle (B,)
    cx: np.ndarray        # centre (B, 1, 1)
    cy: np.ndarray
    un: np.ndarray        # normalised coordinates along / across the long axis
    vn: np.ndarray
    v: np.ndarray         # across the long axis (px), bent and tapered
    r: np.ndarray         # superellipse radius: 1 on the rim
    sd: np.ndarray        # signed distance to the rim (px)
    alpha: np.ndarray     # anti-aliased coverage
    kernel: np.ndarray    # kernel pixels (coverage >= 0.5)
    core: np.ndarray      # where lesions may lie


def _uniform(rng: np.random.Generator, n: int):
    """``U(lo, hi)``: ``n`` uniform draws, one per image."""
    return lambda lo, hi: rng.uniform(lo, hi, n)


def _render_chunk(rng: np.random.Generator, labels: np.ndarray, size: int, cfg: dict[str, Any]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render a batch of kernels, vectorised over images and pixels.

    Returns (images with lesions, the same kernels without lesions, lesion masks, kernel masks).
    All draws for the healthy kernels come first and do not depend on the labels; the lesion
    draws are made for every image (and unused for healthy ones), so the healthy rendering of an
    image is the same whatever its class. The steps below draw from ``rng`` in this fixed order.
    """
    g = _kernel_geometry(rng, len(labels), size, cfg)
    albedo, tex_coarse = _albedo(rng, g, cfg)
    shade, spec = _lighting(rng, g, cfg)
    background = _tray_background(rng, g, cfg)
    clean = _compose(albedo, shade, spec, g.alpha, background)
    region, depth = _lesion_regions(rng, g, labels, cfg)
    lesioned = _lesion_appearance(rng, g, labels, cfg, region, depth, albedo, tex_coarse)
    image = _compose(lesioned, shade, spec, g.alpha, background)

    # The mask is exactly the set of changed pixels: lesion pixels that changed by less than one
    # 8-bit level (rare) are reverted to the healthy value, so outside the mask image == clean.
    mask = region & (np.abs(image - clean).max(axis=1) >= MIN_CHANGE)
    image = np.where(mask[:, None], image, clean)
    return image, clean, mask, g.kernel


# ---- kernel geometry -------------------------------------------------------------------
def _kernel_geometry(rng: np.random.Generator, B: int, size: int, cfg: dict[str, Any]) -> _Geometry:
    s = size / 64.0  # geometry is specified at 64 px and scaled
    # float32 throughout: transcendental functions are several times faster than in float64
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5)[:, None]
    U = _uniform(rng, B)
    a = _col(U(19.0, 25.0) * s * cfg["kernel_scale"])             # semi-major axis (px)
    b = a * _col(U(0.42, 0.56))                                    # semi-minor axis
    theta = U(0.0, np.pi)
    cx = _col(size / 2 + U(-4.0, 4.0) * s)
    cy = _col(size / 2 + U(-4.0, 4.0) * s)
    taper = _col(U(-0.15, 0.15))                                   # egg shape: one end blunter
    bend = _col(U(-0.10, 0.10))                                    # slight banana bend
    pexp = _col(U(1.7, 2.05))                                     # < 2: more pointed tips
    ct, st = _col(np.cos(theta)), _col(np.sin(theta))
    u = (xx - cx) * ct + (yy - cy) * st                            # along the long axis (px)
    v0 = -(xx - cx) * st + (yy - cy) * ct
    un = u / a
    v = (v0 + bend * b * un ** 2) / (1.0 + taper * np.clip(un, -1, 1))
    vn = v / b
    r = _pow(_pow(np.abs(un), pexp) + _pow(np.abs(vn), pexp), 1.0 / pexp)
    gy, gx = np.gradient(r, axis=(1, 2))
    sd = (1.0 - r) / (np.hypot(gx, gy) + 1e-9)                     # signed distance to rim (px)
    alpha = np.clip(0.5 + sd / (1.1 * s), 0.0, 1.0)                # anti-aliased edge
    kernel = alpha >= 0.5
    core = sd >= 1.5 * s                                           # where lesions may lie
    return _Geometry(n=B, size=size, s=s, xx=xx, yy=yy, a=a, b=b, theta=theta, cx=cx, cy=cy, un=un, vn=vn, v=v,
                     r=r, sd=sd, alpha=alpha, kernel=kernel, core=core)


# ---- albedo: colour, texture, tips, crease, blemishes ----------------------------------
def _albedo(rng: np.random.Generator, g: _Geometry, cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The healthy kernel's albedo (B, 3, H, W) and its coarse texture (reused by skinned lesions)."""
    B, size, s, un, vn, v, a, b = g.n, g.size, g.s, g.un, g.vn, g.v, g.a, g.b
    U = _uniform(rng, B)
    base = rng.dirichlet([1.2, 1.0, 0.8], B) @ _PALETTE
    base = (base * U(0.82, 1.10)[:, None] + rng.normal(0.0, 0.02, (B, 3))).astype(np.float32)
    tex_coarse = _smooth_noise(rng, B, size, 3.0 * s)
    tex_fine = _smooth_noise(rng, B, size, 0.7 * s)
    wr_period = _col(U(2.5, 4.0) * s)
    wrinkle = np.sin(2 * np.pi * v / wr_period + 1.5 * _smooth_noise(rng, B, size, 2.0 * s))
    tex = 0.045 * tex_coarse + 0.03 * tex_fine + 0.02 * wrinkle
    albedo = base[:, :, None, None] * (1.0 + tex)[:, None]
    germ_end = _col(np.where(rng.random(B) < 0.5, 1.0, -1.0))     # which tip holds the germ
    tip = np.clip((-germ_end * un - 0.70) / 0.30, 0.0, 1.0)        # brush end: darker
    albedo *= (1.0 - 0.25 * tip * np.sqrt(tip))[:, None]
    germ = np.exp(-(((un - germ_end * 0.80) / 0.14) ** 2 + (vn / 0.5) ** 2))
    albedo += (0.06 * germ)[:, None] * np.array([1.0, 0.9, 0.6], dtype=np.float32)[:, None, None]

    has_crease = _col(rng.random(B) < cfg["crease_prob"])
    c_off = _col(rng.normal(0.0, 0.12, B)) * b
    c_width = _col(U(0.6, 1.0) * s)
    c_depth = _col(U(0.25, 0.50))
    c_wave = 0.8 + 0.2 * np.cos(un * _col(U(3.0, 7.0)) + _col(U(0, 2 * np.pi)))
    fade = np.clip((0.90 - np.abs(un)) / 0.3, 0.0, 1.0)
    dv = (v - c_off) / c_width
    groove = np.exp(-0.5 * dv ** 2) - 0.35 * np.exp(-0.5 * (dv - 1.8) ** 2)  # dark groove, lit lip
    albedo *= (1.0 - has_crease * c_depth * c_wave * fade * groove)[:, None]

    n_blem = np.minimum(rng.poisson(cfg["blemish_rate"], B), 3)
    for k in range(3):
        near_germ = rng.random(B) < 0.7
        bu = _col(np.where(near_germ, germ_end[:, 0, 0] * U(0.45, 0.85), U(-0.7, 0.7)))
        bv = _col(U(-0.45, 0.45))
        br = _col(U(0.7, 1.6) * s)
        on = _col((k < n_blem) * U(0.45, 0.8))
        spot = on * np.exp(-0.5 * (((un - bu) * a) ** 2 + ((vn - bv) * b) ** 2) / br ** 2)
        albedo = albedo * (1 - spot)[:, None] + _BLEMISH32[:, None, None] * spot[:, None]
    return albedo, tex_coarse


# ---- lighting ---------------------------------------------------------------------------
def _lighting(rng: np.random.Generator, g: _Geometry, cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(shade, specular highlight), both (B, H, W): dome shading from a directional light."""
    B, r, b = g.n, g.r, g.b
    U = _uniform(rng, B)
    phi = cfg["light_angle"] + rng.normal(0.0, 0.35, B)
    elev = U(0.55, 0.85)                                           # light elevation (rad)
    light = np.stack([np.cos(phi) * np.cos(elev), np.sin(phi) * np.cos(elev), np.sin(elev)],
                     1).astype(np.float32)
    height = np.sqrt(np.clip(1.0 - r ** 2, 0.0, 1.0)) * b * 0.75
    hy, hx = np.gradient(height, axis=(1, 2))
    nrm = np.stack([-hx, -hy, np.ones_like(hx)], 1)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    lam = np.clip(np.einsum("bc,bchw->bhw", light, nrm), 0.0, 1.0)
    half = light + np.array([0.0, 0.0, 1.0], dtype=np.float32)
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    spec = _pow(np.clip(np.einsum("bc,bchw->bhw", half, nrm), 1e-6, 1.0), _col(U(12.0, 25.0)))
    spec *= _col(U(0.06, 0.16))
    shade = _col(U(0.90, 1.08)) * (0.42 + 0.68 * lam)
    return shade, spec


# ---- tray background ---------------------------------------------------------------------
def _tray_background(rng: np.random.Generator, g: _Geometry, cfg: dict[str, Any]) -> np.ndarray:
    """The dark, slightly noisy tray (B, 3, H, W) with a faint contact shadow around the kernel."""
    B, size, s, xx, yy = g.n, g.size, g.s, g.xx, g.yy
    U = _uniform(rng, B)
    level = _col(cfg["background_level"] + U(-1.0, 1.0) * cfg["background_jitter"])
    tint = (1.0 + rng.normal(0.0, 0.06, (B, 3))).astype(np.float32)
    gdir = _col(U(0.0, 2 * np.pi))
    ramp = ((xx - size / 2) * np.cos(gdir) + (yy - size / 2) * np.sin(gdir)) / size
    bg = level * (1.0 + 0.35 * ramp) + cfg["background_noise"] * (
        0.6 * _smooth_noise(rng, B, size, 2.0 * s)
        + 0.8 * rng.standard_normal((B, size, size), dtype=np.float32))
    bg = bg * (1.0 - 0.35 * np.exp(-np.clip(-g.sd, 0, None) / (2.0 * s)))  # faint contact shadow
    return np.clip(bg, 0.0, None)[:, None] * tint[:, :, None, None]


def _compose(alb: np.ndarray, shade: np.ndarray, spec: np.ndarray, alpha: np.ndarray,
             background: np.ndarray) -> np.ndarray:
    """An albedo lit and laid on the tray: the image (B, 3, H, W) in [0, 1]."""
    k = alb * shade[:, None] + spec[:, None]
    k = np.where(k > 0.8, 0.8 + 0.2 * np.tanh((k - 0.8) / 0.2), k)  # soft highlight shoulder
    return np.clip(alpha[:, None] * k + (1.0 - alpha[:, None]) * background, 0.0, 1.0)


# ---- lesion regions: one or two irregular patches of a drawn total area ------------------
def _lesion_regions(rng: np.random.Generator, g: _Geometry, labels: np.ndarray, cfg: dict[str, Any]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(region, depth), both (B, H, W): the lesion pixels (none for healthy kernels) and how deep inside a
    patch each lies (0 at its edge, 1 at its centre)."""
    B, size, s, un, vn, a, b = g.n, g.size, g.s, g.un, g.vn, g.a, g.b
    U = _uniform(rng, B)
    k_area = g.kernel.sum(axis=(1, 2))
    frac = U(cfg["lesion_area_min"], cfg["lesion_area_max"])
    two = rng.random(B) < cfg["two_patch_prob"]
    share1 = np.where(two, U(0.35, 0.65), 1.0)
    is_fus = labels == 1
    region = np.zeros((B, size, size), dtype=bool)
    depth = np.zeros((B, size, size), np.float32)                 # 0 at a patch edge, 1 inside
    pu1 = U(-0.6, 0.6)
    # ragged edge: noise on the scale of the patch (smoother for fusarium, sharper for skinned)
    rough = 0.6 * _smooth_noise(rng, B, size, 1.4 * s) + 0.4 * _smooth_noise(rng, B, size, 2.8 * s)
    rough *= _col(np.where(is_fus, 0.30, 0.45))
    for j, share in enumerate((share1, 1.0 - share1)):
        pu = pu1 if j == 0 else -np.sign(pu1 + 1e-9) * U(0.15, 0.65)
        pv, ang, elong = U(-0.5, 0.5), U(0.0, np.pi), U(1.0, 2.2)
        du, dv_ = (un - _col(pu)) * a, (vn - _col(pv)) * b
        pa = du * _col(np.cos(ang)) + dv_ * _col(np.sin(ang))
        pb = -du * _col(np.sin(ang)) + dv_ * _col(np.cos(ang))
        dist = np.sqrt((pa / _col(elong)) ** 2 + pb ** 2)          # px, anisotropic
        n_pix = np.round(frac * share * k_area).astype(np.int64)
        radius = _col(np.maximum(np.sqrt(n_pix / np.pi), 1.0))
        field = -dist / radius + rough
        patch = _top_pixels(field, g.core & ~region, n_pix)
        lo = np.where(patch, field, np.inf).min(axis=(1, 2), keepdims=True)
        hi = np.where(patch, field, -np.inf).max(axis=(1, 2), keepdims=True)
        lo, hi = np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 1.0)  # empty
        depth = np.where(patch, (field - lo) / (hi - lo + 1e-9), depth)
        region |= patch
    region &= (labels > 0)[:, None, None]
    return region, depth


# ---- lesion appearance --------------------------------------------------------------------
def _lesion_appearance(rng: np.random.Generator, g: _Geometry, labels: np.ndarray, cfg: dict[str, Any],
                       region: np.ndarray, depth: np.ndarray, albedo: np.ndarray, tex_coarse: np.ndarray
                       ) -> np.ndarray:
    """The albedo with its lesions blended in (B, 3, H, W): unchanged outside ``region``."""
    B, size, s, xx, yy = g.n, g.size, g.s, g.xx, g.yy
    U = _uniform(rng, B)
    is_fus = labels == 1
    strength = cfg["lesion_strength"]
    # pink fusarium: pinkish/reddish white, mottled, with a fuzzy soft edge
    pink = (_FUSARIUM * U(0.86, 1.03)[:, None] + rng.normal(0.0, 0.025, (B, 3))).astype(np.float32)
    pink[:, 1:] -= U(0.0, 0.08)[:, None]                           # from whitish to more reddish
    fuzz = _smooth_noise(rng, B, size, 0.9 * s)
    t_fus = pink[:, :, None, None] * (1.0 + 0.06 * fuzz)[:, None]
    mottle = 0.75 + 0.25 * np.clip(_smooth_noise(rng, B, size, 1.8 * s), -1, 1)
    w_fus = _col(U(0.55, 0.9)) * (0.35 + 0.65 * np.clip(depth / 0.45, 0.0, 1.0)) * mottle
    # skinned: pale smooth endosperm, uniform blend (sharp edge), residual bran streaks, torn rim
    endo = (_ENDOSPERM * U(0.88, 1.02)[:, None] + rng.normal(0.0, 0.02, (B, 3))).astype(np.float32)
    t_skin = endo[:, :, None, None] * (1.0 + 0.025 * tex_coarse)[:, None]
    beta = g.theta + rng.normal(0.0, 0.25, B)
    coord = -(xx - g.cx) * _col(np.sin(beta)) + (yy - g.cy) * _col(np.cos(beta))
    streak = np.clip(np.cos(2 * np.pi * coord / _col(U(3.0, 6.0) * s) + _col(U(0, 2 * np.pi))),
                     0, 1) ** 2
    streak = streak * streak * streak
    streak *= _col(rng.random(B) < 0.5)
    w_skin = _col(U(0.7, 0.92)) * (1.0 - 0.55 * streak)
    rim = region & ~binary_erosion(region, structure=np.ones((1, 3, 3), dtype=bool))
    rim &= (rng.random(B) < 0.6)[:, None, None]
    t_skin = np.where(rim[:, None], t_skin * 0.82, t_skin)

    target = np.where(is_fus[:, None, None, None], t_fus, t_skin)
    w = np.clip(np.where(is_fus[:, None, None], w_fus, w_skin) * strength, 0.0, 1.0)[:, None]
    return np.where(region[:, None], albedo * (1.0 - w) + target * w, albedo)


def simulate_grain(n_per_class: int = 400, size: int = 64, seed: int = 0,
                   lesion_area_min: float = 0.03, lesion_area_max: float = 0.25,
                   two_patch_prob: float = 0.3, lesion_strength: float = 1.0,
                   background_level: float = 0.06, background_jitter: float = 0.025,
                   background_noise: float = 0.008, blemish_rate: float = 0.5,
                   crease_prob: float = 0.7, kernel_scale: float = 1.0,
                   light_angle: float = -2.2, return_clean: bool = False
                   ) -> dict[str, np.ndarray]:
    """Render ``3 * n_per_class`` kernel images (classes in ``CLASS_NAMES``), shuffled.

    Returns a dict with ``images`` (N, 3, size, size) float32 in [0, 1], ``labels`` (N,) int64,
    ``masks`` (N, size, size) bool (exact lesion pixels; empty for healthy kernels),
    ``kernels`` (N, size, size) bool (kernel pixels, anti-aliased coverage >= 0.5),
    ``lesion_fraction`` (N,) float (mask area / kernel area) and, if ``return_clean``, ``clean``:
    the same kernels rendered without their lesions (identical to ``images`` outside ``masks``).

    ``blemish_rate`` is the Poisson mean of harmless dark spots per kernel (all classes alike);
    ``lesion_strength`` scales the lesion blend weight (1 = default contrast);
    ``light_angle`` is the mean light direction in the image plane (radians, jittered per image).
    """
    if not 0.0 < lesion_area_min <= lesion_area_max < 1.0:
        raise ValueError("need 0 < lesion_area_min <= lesion_area_max < 1")
    if size < 16:
        raise ValueError("size must be at least 16 pixels")
    cfg = dict(lesion_area_min=lesion_area_min, lesion_area_max=lesion_area_max,
               two_patch_prob=two_patch_prob, lesion_strength=lesion_strength,
               background_level=background_level, background_jitter=background_jitter,
               background_noise=background_noise, blemish_rate=blemish_rate,
               crease_prob=crease_prob, kernel_scale=kernel_scale, light_angle=light_angle)
    rng = np.random.default_rng(seed)
    n_classes = len(CLASS_NAMES)
    labels = rng.permutation(np.repeat(np.arange(n_classes), n_per_class)).astype(np.int64)
    n = len(labels)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    clean = np.empty((n, 3, size, size), dtype=np.float32) if return_clean else None
    masks = np.zeros((n, size, size), dtype=bool)
    kernels = np.zeros((n, size, size), dtype=bool)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        img, cln, m, k = _render_chunk(rng, labels[sl], size, cfg)
        images[sl], masks[sl], kernels[sl] = img, m, k
        if clean is not None:
            clean[sl] = cln
    fracs = masks.sum(axis=(1, 2)) / np.maximum(kernels.sum(axis=(1, 2)), 1)
    out = {"images": images, "labels": labels, "masks": masks, "kernels": kernels,
           "lesion_fraction": fracs}
    if clean is not None:
        out["clean"] = clean
    return out


def build_grain(name: str = "grain", n_per_class: int = 400, image_size: int = 64, seed: int = 0,
                test_size: float = 0.25, split_seed: int = 0, **sim_params: Any) -> Dataset:
    """Registry builder: simulate, split stratified (75/25 by default) and wrap as a ``Dataset``.

    The image side is ``image_size`` here because ``register_dataset`` reserves ``size`` for the
    dataset's size class ("small" / "paper").
    """
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 - sklearn: slow import (seconds), only a build

    sim = simulate_grain(n_per_class=n_per_class, size=image_size, seed=seed, **sim_params)
    y = sim["labels"]
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y,
                                           random_state=split_seed)
    params = dict(n_per_class=n_per_class, image_size=image_size, seed=seed, test_size=test_size,
                  split_seed=split_seed, **sim_params)
    gt = GroundTruth(masks=sim["masks"], strength="exact",
                     note="lesion pixels: exactly those that differ from the same kernel rendered "
                          "without lesions")
    return Dataset(
        name=name, modality="image", X=sim["images"], y=y, class_names=list(CLASS_NAMES),
        # Images have no named features: per-pixel names ("r_0_0", ...) would only waste memory,
        # so feature_names stays empty for this modality.
        feature_names=[],
        train_idx=np.sort(train_idx), test_idx=np.sort(test_idx), ground_truth=gt,
        description=_describe(image_size), params=params)


def _describe(image_size: int) -> str:
    return (f"Simulated grain kernels {image_size}x{image_size}: healthy / pink-fusarium-like / "
            "skinned-like, with pixel lesion masks")


# Every generator knob is a registry parameter (overridable through ``load_dataset``).
_KNOBS: dict[str, Any] = dict(
    seed=0, test_size=0.25, split_seed=0, lesion_area_min=0.03, lesion_area_max=0.25,
    two_patch_prob=0.3, lesion_strength=1.0, background_level=0.06, background_jitter=0.025,
    background_noise=0.008, blemish_rate=0.5, crease_prob=0.7, kernel_scale=1.0, light_angle=-2.2)

register_dataset("grain", "image", _describe(64), build_grain, default_arch="simplenet",
                 size="small", n_per_class=400, image_size=64, **_KNOBS)
# Larger images: load_dataset("grain", image_size=128, n_per_class=300) (no shipped checkpoint).
