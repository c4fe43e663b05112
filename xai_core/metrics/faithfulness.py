"""Faithfulness by perturbation: pixel (feature) flipping, region perturbation, IROF, faithfulness correlation.

All four remove the units an explanation ranks first (or random subsets) and watch the explained output.
Units, baselines and batched cumulative masks are in ``perturb``. Every metric ranks units by their
*signed* relevance unless ``abs=True`` (Quantus' default too); image relevance is channel-pooled
(``pooling``, default "sum"), DNA relevance is the attribution at the observed nucleotide (``dna_score``).

Deliberate differences from Quantus 0.6.0 shared by these metrics (see each ``reference``):
- baseline "mean" is each input's mean computed once on the unperturbed input; Quantus recomputes it on
  the already-perturbed input at every step (IROF: over the whole batch), so its baseline drifts;
- a unit is a whole pixel / position: Quantus broadcasts a pooled map over the channels and counts
  array elements, and its unstable argsort can split a pixel's channels between two steps.
"""
from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import numpy as np
import torch
from skimage.segmentation import slic

from ..errors import NotApplicable
from .base import SEEDED_VALUES, CurveAxes, MetricOutput, register_metric
from .metric_inputs import MetricInputs
from .fastpath import linear_subset_outputs
from .perturb import (FAST_PATH, inverse_permutation, make_baseline, order_units, removal_curve, stacked_outputs,
                      steps_from_order, unit_relevance, units_for_cost)

# baseline: a name in perturb.BASELINES; baseline_param: its knob (blur sigma, uniform_noise half-width)
_UNIT = {"*": {"abs": False, "output": "probability", "baseline_param": None},
         "image": {"pooling": "sum", "baseline": "mean"},
         "sequence": {"dna_score": "observed", "baseline": "uniform"},
         "expression": {"baseline": "train_mean"}}


def _defaults(extra: dict[str, dict]) -> dict[str, dict]:
    return {k: {**_UNIT.get(k, {}), **extra.get(k, {})} for k in dict.fromkeys([*_UNIT, *extra])}  # stable order


def _relevance(inp: MetricInputs, abs: bool, pooling: str, dna_score: str) -> torch.Tensor:
    return unit_relevance(inp.a, inp.x, inp.modality, pooling, dna_score, abs)


def _ratio_guard(score: torch.Tensor, f0: torch.Tensor) -> tuple[torch.Tensor, list[str | None]]:
    """NaN (with a reason) where the curve's denominator f_y(x) is 0."""
    ok = f0.abs() > 1e-12
    reasons = [None if o else "the model output for the explained class is 0" for o in ok.tolist()]
    return torch.where(ok, score, torch.full_like(score, math.nan)), reasons


# -- pixel flipping ------------------------------------------------------------------------------------
def _pf_steps(p: dict, units: int) -> tuple[int, int]:
    fis = p["features_in_step"] if p.get("step_fraction") is None else max(1, round(p["step_fraction"] * units))
    total = math.ceil(units / fis)
    return fis, min(total, max(2, math.ceil(p["fraction"] * total - 1e-9)))


@register_metric(
    "pixel_flipping", label="Pixel / feature flipping (AOC)", family="faithfulness", direction="higher",
    curve=CurveAxes("removal step (most relevant features removed first)", "confidence / original confidence",
                    "a good map makes the curve fall fast"),
    needs="model", cost=lambda p, inp: {"forward": _pf_steps(p, units_for_cost(p, inp))[1] + 1, "explain": 0},
    defaults=_defaults({"*": {"fraction": 0.2, "step_fraction": None}, "image": {"features_in_step": 64},
                        "expression": {"features_in_step": 20}, "sequence": {"features_in_step": 2}}),
    description="Removes the pixels, genes or positions the explanation ranks most important first, a few "
                "per step, and measures how fast the model's confidence falls over the first 20% of steps; "
                "high (near 1) means the top-ranked features really drive the prediction.",
    reference="Bach et al. 2015; Quantus PixelFlipping and the grain-paper AOC (Tetkova et al.): curve_k = "
              "f_y(x_k)/f_y(x), score 1 - trapz(curve[:k], dx=1/(k-1)), k = ceil(fraction*T) (at least 2). "
              "Differs from Quantus 0.6: features_in_step counts pixels/positions (Quantus asserts it divides "
              "H*W but then counts elements of the channel-broadcast map, and its unstable argsort can split a "
              "pixel's channels between steps); 'mean' is the unperturbed input's mean (Quantus recomputes it "
              "on the already-perturbed input every step, so it drifts); only the first k steps are computed; "
              "Quantus returns f_y(x_k) without dividing by f_y(x).")
def pixel_flipping(inp: MetricInputs, features_in_step: int = 64, step_fraction: float | None = None,
                   fraction: float = 0.2, baseline: str = "mean", baseline_param: float | None = None,
                   output: str = "probability", abs: bool = False, pooling: str = "sum",
                   dna_score: str = "observed") -> MetricOutput:
    """Area over the flipping curve on the first ``fraction`` of steps (descending signed relevance).

    ``step_fraction`` (if set) replaces ``features_in_step`` by that fraction of the units. ``output``:
    "probability" or "logit" (the ratio is only meaningful for positive outputs). Curves: (N, k).
    """
    r = _relevance(inp, abs, pooling, dna_score)
    fis, k = _pf_steps({"features_in_step": features_in_step, "step_fraction": step_fraction,
                        "fraction": fraction}, r.shape[1])
    if math.ceil(r.shape[1] / fis) < 2:
        raise NotApplicable(f"pixel_flipping needs at least two steps; {r.shape[1]} units, {fis} per step")
    base = make_baseline(baseline, inp, knob=baseline_param)
    f0 = inp.output(inp.x, kind=output)
    order = order_units(r, limit=k * fis)  # only the units removed within the k steps
    steps = steps_from_order(order, fis, n_units=r.shape[1])
    curve = removal_curve(inp, base, steps, k, output, removed=order) / f0[:, None]
    score, reasons = _ratio_guard(1.0 - torch.trapezoid(curve, dx=1.0 / (k - 1), dim=1), f0)
    return MetricOutput(score, curves=curve, reasons=reasons)


# -- region perturbation -------------------------------------------------------------------------------
def _pad(dim: int, p: int) -> int:
    """Quantus' padding before a dimension that is not a multiple of the patch size (floor of half)."""
    return (p - dim % p) // 2 if dim % p else 0


def patch_ids(shape: tuple[int, ...], p: int) -> tuple[torch.Tensor, int]:
    """Patch index of every unit of a (C, H, W) or (C, L) input: p x p pixel blocks or windows of p
    positions on Quantus' padded, non-overlapping grid. Returns (U,) ids and the number of patches."""
    dims = shape[1:]
    coords = torch.meshgrid(*[torch.arange(d) for d in dims], indexing="ij")
    nb = [math.ceil(d / p) for d in dims]
    pid = torch.zeros(dims, dtype=torch.long)
    for c, d, b in zip(coords, dims, nb):
        pid = pid * b + (c + _pad(d, p)) // p
    return pid.reshape(-1), math.prod(nb)


def _n_regions(p: dict, inp: MetricInputs | None) -> int:
    if inp is not None:
        return min(p["regions_evaluation"], patch_ids(tuple(inp.x.shape[1:]), p["patch_size"])[1])
    side = 64 if "pooling" in p else units_for_cost(p, None)  # typical 64x64 images, 200-long sequences
    return min(p["regions_evaluation"], math.ceil(side / p["patch_size"]) ** (2 if "pooling" in p else 1))


@register_metric(
    "region_perturbation", label="Region perturbation (AOPC, MoRF)", family="faithfulness", direction="higher",
    curve=CurveAxes("regions removed (most relevant first)", "drop in confidence f(x) − f(x_k)",
                    "a good map makes the drop large early"),
    modalities=("image", "sequence"), needs="model",
    cost=lambda p, inp: {"forward": _n_regions(p, inp) + 1, "explain": 0},
    defaults=_defaults({"*": {"regions_evaluation": 100}, "image": {"patch_size": 8},
                        "sequence": {"patch_size": 10}}),
    description="Replaces square patches (images) or windows (DNA) in order of their total relevance, most "
                "relevant first, and averages the drop in the model's confidence; high means the regions the "
                "explanation highlights matter most to the model.",
    reference="Samek et al. 2017 (MoRF); Quantus RegionPerturbation 0.6: a non-overlapping grid padded as "
              "Quantus pads it (older Quantus slid overlapping patches and skipped those overlapping a perturbed "
              "one; 0.6 and we do not), regions ranked by summed relevance, regions_evaluation steps. "
              "Curve = f(x) - f(x_k), k = 1..L as in Quantus; "
              "AOPC = mean over k = 1..L (Samek's AOPC includes k=0 with a zero term: ours * L/(L+1)). "
              "The 'mean' baseline does not drift (Quantus recomputes it on the perturbed input).")
def region_perturbation(inp: MetricInputs, patch_size: int = 8, regions_evaluation: int = 100,
                        baseline: str = "mean", baseline_param: float | None = None, output: str = "probability",
                        abs: bool = False, pooling: str = "sum", dna_score: str = "observed") -> MetricOutput:
    """AOPC of the most-relevant-first region perturbation; curves (N, L) of f(x) - f(x_k)."""
    r = _relevance(inp, abs, pooling, dna_score)
    pid, n_patches = patch_ids(tuple(inp.x.shape[1:]), patch_size)
    pid = pid.to(inp.device)
    sums = torch.zeros(len(r), n_patches, dtype=r.dtype, device=r.device).index_add_(1, pid, r)
    rank = inverse_permutation(order_units(sums))
    n_steps = min(regions_evaluation, n_patches)
    base = make_baseline(baseline, inp, knob=baseline_param)
    f0 = inp.output(inp.x, kind=output)
    curve = f0[:, None] - removal_curve(inp, base, rank[:, pid], n_steps, output)
    return MetricOutput(curve.mean(1), curves=curve)


# -- IROF ----------------------------------------------------------------------------------------------
_SLIC_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()


# IROF on expression: gene clusters draw training samples and k-means starts from the seed, and "pathways" falls
# back to clusters on data without gene groups, so either value keys its scores by the seed
SEEDED_VALUES.setdefault("gene_segments", set()).update({"clusters", "pathways"})


def slic_segments(img_chw: np.ndarray, n_segments: int = 100, compactness: float = 10.0) -> np.ndarray:
    """SLIC superpixels of one (C, H, W) image as Quantus computes them (HWC float64, start_label=0),
    relabelled 0..S-1; cached by the image bytes."""
    img = np.ascontiguousarray(np.moveaxis(np.asarray(img_chw), 0, -1).astype(np.float64))
    key = (hashlib.sha1(img.tobytes()).hexdigest(), img.shape, n_segments, float(compactness))
    if key not in _SLIC_CACHE:
        seg = slic(img, n_segments=n_segments, compactness=compactness, start_label=0)
        _SLIC_CACHE[key] = np.unique(seg, return_inverse=True)[1].reshape(seg.shape)
        if len(_SLIC_CACHE) > 4096:
            _SLIC_CACHE.popitem(last=False)
    _SLIC_CACHE.move_to_end(key)
    return _SLIC_CACHE[key]


def gene_segment_labels(inp: MetricInputs, how: str, n_clusters: int) -> np.ndarray:
    """(G,) segment per gene: pathways (``feature_groups``; all ungrouped genes form ONE segment) or,
    when there are none or ``how="clusters"``, k-means clusters of the genes' correlation profiles on
    (up to 2,000) training samples. Cached in ``ctx.extras``."""
    groups = inp.feature_groups if inp.feature_groups is not None else inp.ctx.feature_groups
    if how == "pathways" and groups is not None and (np.asarray(groups) >= 0).any():
        return np.unique(np.asarray(groups), return_inverse=True)[1]
    if how not in ("pathways", "clusters"):
        raise NotApplicable(f"gene segments must be 'pathways' or 'clusters', not '{how}'")
    key = ("irof_gene_clusters", n_clusters)
    if key not in inp.ctx.extras:
        if inp.ctx.train_X is None:
            raise NotApplicable("gene clusters need the training data (ctx.train_X)")
        from sklearn.cluster import KMeans  # noqa: PLC0415 - sklearn.cluster: slow import (seconds), only gene clusters

        X = np.asarray(inp.ctx.train_X, dtype=np.float64)
        X = X[np.random.default_rng(inp.seed).permutation(len(X))[:2000]].T  # genes x samples
        X = X - X.mean(1, keepdims=True)
        X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)  # euclidean ~ correlation distance
        k = min(n_clusters, len(X))
        inp.ctx.extras[key] = KMeans(k, n_init=3, random_state=inp.seed).fit_predict(X)
    return np.unique(inp.ctx.extras[key], return_inverse=True)[1]


def segments_for(inp: MetricInputs, n_segments: int, compactness: float, window: int, gene_segments_how: str
                 ) -> torch.Tensor:
    """(N, U) segment label per unit, 0..S_n-1 per sample."""
    if inp.modality == "image":
        x = inp.x.detach().cpu().numpy()
        seg = np.stack([slic_segments(xi, n_segments, compactness).reshape(-1) for xi in x])
    elif inp.modality == "sequence":
        seg = np.broadcast_to(np.arange(inp.x.shape[-1]) // window, (inp.n, inp.x.shape[-1]))
    else:
        seg = np.broadcast_to(gene_segment_labels(inp, gene_segments_how, n_segments), (inp.n, inp.x.shape[1]))
    return torch.as_tensor(np.ascontiguousarray(seg), dtype=torch.long, device=inp.device)


def _irof_cost(p: dict, inp: MetricInputs | None) -> dict[str, float]:
    segs = p["n_segments"] if "window" not in p else math.ceil(units_for_cost(p, inp) / p["window"])
    return {"forward": segs + 1, "explain": 0}


@register_metric(
    "irof", label="IROF (iterative removal of features)", family="faithfulness", direction="higher", needs="model",
    curve=CurveAxes("segments removed (most relevant first)", "confidence / original confidence",
                    "a good map makes the curve fall fast"),
    cost=_irof_cost,
    defaults=_defaults({"*": {"normalise_by_segments": True}, "image": {"n_segments": 100, "compactness": 10.0},
                        "sequence": {"window": 10}, "expression": {"gene_segments": "pathways", "n_segments": 100}}),
    description="Removes whole regions (superpixels, DNA windows, gene pathways) in order of their mean "
                "relevance and measures the area over the model's confidence curve; high (near 1) means "
                "removing the regions the explanation favours destroys the prediction quickly.",
    reference="Rieger & Hansen 2020; Quantus IROF 0.6 (SLIC n_segments=100, compactness=10, start_label=0; "
              "preds_i = f(x_i)/f(x); IROF = S - trapz(preds)). Differs: normalise_by_segments (default) "
              "divides by S so images with different S compare; the 'mean' baseline is each image's own "
              "fixed mean (Quantus: mean of the whole perturbed batch, recomputed each step); no zero-padding "
              "of the curve to the batch's largest S (Quantus' padding makes a score depend on batch-mates); "
              "Quantus 0.6.0 IROF fails on RGB input (its 1-channel mask must match the image's shape).")
def irof(inp: MetricInputs, n_segments: int = 100, compactness: float = 10.0, window: int = 10,
         gene_segments: str = "pathways", normalise_by_segments: bool = True, baseline: str = "mean",
         baseline_param: float | None = None, output: str = "probability", abs: bool = False,
         pooling: str = "sum", dna_score: str = "observed") -> MetricOutput:
    """Segments removed cumulatively by descending mean relevance; curves (N, max S), NaN past S_n."""
    r = _relevance(inp, abs, pooling, dna_score)
    seg = segments_for(inp, n_segments, compactness, window, gene_segments)
    n_seg = seg.amax(1) + 1
    s_max = int(n_seg.max())
    sums = torch.zeros(len(r), s_max, dtype=r.dtype, device=r.device).scatter_add_(1, seg, r)
    cnt = torch.zeros_like(sums).scatter_add_(1, seg, torch.ones_like(r))
    means = torch.where(cnt > 0, sums / cnt.clamp(min=1), torch.full_like(sums, -math.inf))
    step_of_unit = inverse_permutation(order_units(means)).gather(1, seg)
    base = make_baseline(baseline, inp, knob=baseline_param)
    f0 = inp.output(inp.x, kind=output)
    preds = removal_curve(inp, base, step_of_unit, s_max, output).double() / f0[:, None].double()
    steps = torch.arange(s_max, device=inp.device)
    pair = (preds[:, :-1] + preds[:, 1:]) / 2 * (steps[None, :-1] < n_seg[:, None] - 1)
    score = n_seg.double() - pair.sum(1)  # float64: a sum of ~100 terms near 1
    if normalise_by_segments:
        score = score / n_seg.double()
    curves = torch.where(steps[None] < n_seg[:, None], preds, torch.full_like(preds, math.nan))
    score, reasons = _ratio_guard(score, f0)
    return MetricOutput(score, curves=curves, reasons=reasons)


# -- faithfulness correlation --------------------------------------------------------------------------
def random_subsets(rng: np.random.Generator, shape: tuple[int, ...], units: int, size: int) -> np.ndarray:
    """Uniformly random ``size``-subsets of ``range(units)``, one per entry of ``shape``: (*shape, size).

    The first ``size`` distinct values of an i.i.d. uniform sequence are a uniform random subset; drawing a
    few more integers than needed and dropping repeats costs ~1% of random keys + top-k over all units. The
    repeats are found with one sort of value-and-position keys (2x faster than the two stable argsorts it
    replaced, same subsets). Entries left short of ``size`` distinct values (rare) are redrawn with random keys.
    """
    rows = int(np.prod(shape))
    if size * 4 > units:  # dense subsets: random keys, smallest ``size``
        return np.argsort(rng.random((rows, units)), axis=1)[:, :size].reshape(*shape, size)
    m = size + max(8, size // 2)
    draw = rng.integers(0, units, (rows, m))
    # one sort of values only: value * m + draw position orders by value, then by position (the keys are distinct)
    val, pos = np.divmod(np.sort(draw * m + np.arange(m), axis=1), m)
    first = np.ones_like(val, dtype=bool)
    first[:, 1:] = val[:, 1:] != val[:, :-1]  # the earliest draw of each value
    distinct = np.zeros(rows * m, dtype=bool)
    distinct[(pos + m * np.arange(rows)[:, None])[first]] = True  # back to draw order
    distinct = distinct.reshape(rows, m)
    count = np.cumsum(distinct, axis=1)
    short = count[:, -1] < size
    keep = distinct & (count <= size)
    keep[short] = False
    keep[short, :size] = True  # placeholders, redrawn below
    out = draw[keep].reshape(rows, size)  # the first ``size`` distinct values of each row, in draw order
    if short.any():
        out[short] = np.argsort(rng.random((int(short.sum()), units)), axis=1)[:, :size]
    return out.reshape(*shape, size)


@register_metric(
    "faithfulness_correlation",
    seeded=True, version=2, label="Faithfulness correlation", family="faithfulness", direction="higher",
    needs="model", cost=lambda p, inp: {"forward": p["nr_runs"] + 1, "explain": 0},
    defaults=_defaults({"*": {"nr_runs": 100}, "image": {"subset_size": 224}, "sequence": {"subset_size": 10},
                        "expression": {"subset_size": 20}}),
    description="Removes many random sets of features and correlates the relevance the explanation gives each "
                "set with the drop in the model's confidence; high (near 1) means relevance predicts impact.",
    reference="Bhatt et al. 2020; Quantus FaithfulnessCorrelation (Pearson over nr_runs random subsets of "
              "subset_size, f(x) - f(x_S) vs the summed relevance). Differs: subsets are drawn over units "
              "(whole pixels/positions; Quantus draws array elements) with a seeded generator, all runs "
              "stacked into batched forwards.")
def faithfulness_correlation(inp: MetricInputs, nr_runs: int = 100, subset_size: int = 224,
                             baseline: str = "mean", baseline_param: float | None = None,
                             output: str = "probability", abs: bool = False, pooling: str = "sum",
                             dna_score: str = "observed") -> MetricOutput:
    """Pearson correlation, per sample, between Σ relevance of a random subset and f(x) - f(x_subset)."""
    r = _relevance(inp, abs, pooling, dna_score)
    n, units = r.shape
    size = min(subset_size, units)
    # every run's subset is drawn up front, each sample's from its own generator, so the subsets depend neither on
    # how the forward passes are chunked nor on the samples that share the chunk
    gens = inp.sample_generators("faithfulness_correlation")
    subsets = torch.from_numpy(np.stack([random_subsets(np.random.default_rng(g.initial_seed()), (nr_runs,), units,
                                                        size) for g in gens], axis=1))
    on = subsets.to(r.device)
    s = r[None].expand(nr_runs, -1, -1).gather(2, on).sum(2).T  # (N, runs): Σ relevance of each subset

    def masks(k0: int, k1: int) -> torch.Tensor:
        return torch.zeros(k1 - k0, n, units, dtype=torch.bool).scatter_(2, subsets[k0:k1], True).to(inp.device)

    base = make_baseline(baseline, inp, knob=baseline_param)
    f0 = inp.output(inp.x, kind=output)
    per_feature = inp.x.ndim == 2 and units == inp.x.shape[1]  # expression: a unit is one gene
    fast = (linear_subset_outputs(inp, base, subsets, output)
            if FAST_PATH["enabled"] and nr_runs and per_feature else None)
    delta = f0[:, None] - (fast if fast is not None else stacked_outputs(inp, base, masks, nr_runs, output))
    delta, s = delta - delta.mean(1, keepdim=True), s - s.mean(1, keepdim=True)
    den = delta.norm(dim=1) * s.norm(dim=1)
    corr = torch.where(den > 0, (delta * s).sum(1) / den.clamp(min=1e-30), torch.full_like(den, math.nan))
    reasons = [None if d > 0 else "no variation across the random subsets" for d in den.tolist()]
    return MetricOutput(corr, reasons=reasons)
