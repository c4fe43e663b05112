"""Robustness metrics: do explanations stay put when the input changes in ways that should not matter?

- ``augmentation_invariant`` / ``augmentation_equivariant`` (images, Tětková et al.; protocol §2.5a);
- ``max_sensitivity`` / ``avg_sensitivity`` (Yeh et al. 2019, as in Quantus 0.6; protocol §2.5d);
- ``reverse_complement_consistency`` / ``shift_consistency`` (DNA) and ``noise_consistency`` (expression).

Every re-explanation is one batched ``inp.explain`` call; stacked perturbations are step-major (K*N rows).
"""
from __future__ import annotations

import torch

from ..errors import NotApplicable, XaiError
from ..explainers.postprocess import pool_channels
from .augment import AUGMENTATIONS, EQUIVARIANT, INVARIANT, SIMILARITIES, auc_ratio, resolve_augmentations
from .augment import similarity as compare_maps
from .base import MetricOutput, register_metric
from .metric_inputs import MetricInputs

SIM_NOTE = ("similarity: 'pearson', 'spearman' (average ranks of ties, as scipy), 'cosine', or 'topk' (share of "
            "the top-k positions in common, k a fraction of the compared positions if < 1, else a count)")


def _prep(a: torch.Tensor, abs_: bool, pooling: str = "none") -> torch.Tensor:
    """(N, ...) -> (N, P) float64: optional |a|, channel pooling for images ("none" keeps all channels)."""
    a = a.double()
    if pooling != "none":
        a = pool_channels(a, pooling)
    return (a.abs() if abs_ else a).reshape(len(a), -1)


def _reasons(scores: torch.Tensor, why: str) -> list[str | None]:
    return [None if bool(torch.isfinite(s)) else why for s in scores]


def _stack_explain(inp: MetricInputs, xs: torch.Tensor) -> torch.Tensor:
    """Re-explain K stacked copies of the batch (K*N rows, step-major) in one call; returns (K, N, ...)."""
    k = len(xs) // inp.n
    return inp.explain(xs, inp.target.repeat(k)).reshape(k, inp.n, *inp.x.shape[1:])


# -- robustness to augmentations (images) ---------------------------------------------------------------
def _augmentation_robustness(inp: MetricInputs, kind: str, augmentations, n_values: int, similarity_: str, k: float,
                             pooling: str, abs_: bool, probab_drop: float, cutoff: str, only_correct: bool):
    augs = resolve_augmentations(augmentations, kind)
    if similarity_ not in SIMILARITIES:
        raise XaiError(f"unknown similarity '{similarity_}'; {SIM_NOTE}")
    h, w = inp.x.shape[-2:]
    p0 = inp.output(inp.x).double()
    left_out = torch.zeros(inp.n, dtype=torch.bool, device=inp.device)
    if only_correct:
        left_out = inp.predict(inp.x) != inp.label
    ref = _prep(inp.a, abs_, pooling)
    per_aug, sims_all, extras = [], [], {"augmentations": [a.name for a in augs], "values": {}, "per_augmentation": {},
                                         "similarity_curves": {}, "probability_curves": {}, "interval": {}}
    for aug in augs:
        values = aug.values(n_values)
        c = values.index(aug.identity)
        sims = torch.empty(inp.n, len(values), dtype=torch.float64, device=inp.device)
        probs = torch.empty_like(sims)
        for j, v in enumerate(values):
            if j == c:
                sims[:, j], probs[:, j] = compare_maps(ref, ref, how=similarity_, k=k), p0
                continue
            xv = aug.apply(inp.x, v)
            probs[:, j] = inp.output(xv).double()
            ev = _prep(inp.explain(xv, inp.target), abs_, pooling)
            if kind == "invariant":
                sims[:, j] = compare_maps(ev, ref, how=similarity_, k=k)
                continue
            mask = aug.frame_mask(v, h, w, inp.device).reshape(1, -1)
            if pooling == "none":  # the frame mask applies to every channel
                mask = mask.repeat(1, inp.a.shape[1])
            sims[:, j] = compare_maps(ev, _prep(aug.apply(inp.a, v), abs_, pooling), mask.expand(inp.n, -1),
                                    how=similarity_, k=k)
        probs[left_out] = float("nan")
        score, keep = auc_ratio(sims, probs, c, probab_drop, cutoff)
        per_aug.append(score)
        sims_all.append(sims)
        extras["values"][aug.name] = values
        extras["per_augmentation"][aug.name] = score.cpu().numpy()
        extras["similarity_curves"][aug.name] = sims.cpu().numpy()
        extras["probability_curves"][aug.name] = probs.cpu().numpy()
        kept = keep[0].nonzero()[:, 0] if cutoff == "batch" else None
        extras["interval"][aug.name] = None if kept is None else (values[int(kept[0])], values[int(kept[-1])])
    scores = torch.stack(per_aug).mean(dim=0)
    undefined = "similarity undefined: an explanation is constant on the compared pixels"
    reasons = ["misclassified without augmentation (only_correct)" if bool(lo) else
               (None if bool(torch.isfinite(s)) else undefined) for s, lo in zip(scores, left_out)]
    return MetricOutput(scores, curves=torch.cat(sims_all, dim=1), reasons=reasons, extras=extras)


def _augmentation_cost(params, inp):
    names = params["augmentations"]
    names = names.split(",") if isinstance(names, str) else names
    n = sum(len(AUGMENTATIONS.get(a.strip()).values(params["n_values"])) - 1 for a in names if a.strip())
    return {"forward": n + 1.0 + float(params["only_correct"]), "explain": float(n)}


_AUG_DEFAULTS = {"n_values": 6, "similarity": "pearson", "k": 0.1, "pooling": "sum", "abs": False,
                 "probab_drop": 0.1, "cutoff": "batch", "only_correct": False}
_AUG_REF = ("Tětková et al. 2023/2024 predecessor code (augment.py, utils.fig_to_num/fig_to_table): same grid, "
            "frame mask, interval rule, max-shift and trapezoid. Differs: torch float augmentations instead of imgaug "
            "uint8 (brightness always in YCrCb); similarities on channel-pooled maps by default (pooling='none' = "
            "the study's H*W*3 maps); k of top-k a fraction of the pixels (study: 1000 of 50k); the interval for "
            "scale is symmetric about 1 in grid steps (the study's code, looking for the value nearest -N, kept "
            "[0.8, N]); images are not restricted to correctly classified ones unless only_correct=True. "
            "No Quantus equivalent.")
_CUT = (" The interval is cut where the batch-mean probability drops by probab_drop, as in the study, so all images "
        "share it (cutoff='per_sample' cuts each image at its own drop).")


@register_metric("augmentation_invariant", label="Robustness to colour changes", family="robustness",
                 direction="higher", modalities=("image",), needs="reexplain", cost=_augmentation_cost,
                 defaults={"*": {"augmentations": INVARIANT, **_AUG_DEFAULTS}},
                 description="How much the heatmap stays the same when brightness, hue or saturation change, relative "
                             "to how much the prediction stays the same; 1 = the explanation is as stable as the "
                             "prediction, higher = more robust." + _CUT, reference=_AUG_REF)
def augmentation_invariant(inp: MetricInputs, augmentations=INVARIANT, n_values: int = 6, similarity: str = "pearson",
                           k: float = 0.1, pooling: str = "sum", abs: bool = False, probab_drop: float = 0.1,
                           cutoff: str = "batch", only_correct: bool = False) -> MetricOutput:
    return _augmentation_robustness(inp, "invariant", augmentations, n_values, similarity, k, pooling, abs,
                                    probab_drop, cutoff, only_correct)


@register_metric("augmentation_equivariant", label="Robustness to rotation, shift and zoom", family="robustness",
                 direction="higher", modalities=("image",), needs="reexplain", cost=_augmentation_cost,
                 defaults={"*": {"augmentations": EQUIVARIANT, **_AUG_DEFAULTS}},
                 description="Whether the heatmap of a rotated, shifted or zoomed image is the original heatmap moved "
                             "the same way (pixels pushed out of the frame ignored), relative to how stable the "
                             "prediction is; higher = more robust." + _CUT, reference=_AUG_REF)
def augmentation_equivariant(inp: MetricInputs, augmentations=EQUIVARIANT, n_values: int = 6,
                             similarity: str = "pearson", k: float = 0.1, pooling: str = "sum", abs: bool = False,
                             probab_drop: float = 0.1, cutoff: str = "batch",
                             only_correct: bool = False) -> MetricOutput:
    return _augmentation_robustness(inp, "equivariant", augmentations, n_values, similarity, k, pooling, abs,
                                    probab_drop, cutoff, only_correct)


# -- local sensitivity (all modalities) -----------------------------------------------------------------
PERTURBATIONS = ("uniform", "gaussian", "mutate")


def sensitivity_perturbations(inp: MetricInputs, perturb: str, nr_samples: int, lower_bound: float,
                              n_mutations: int, salt: str = "sensitivity") -> torch.Tensor:
    """(nr_samples, N, ...) perturbed copies of ``inp.x``; sample i's copies come from its own generator
    (``inp.sample_generators(salt)``), so they do not depend on the samples that share its chunk.

    ``uniform``: x + δ, δ ~ U(-r, r) on every feature (Quantus ``batch_uniform_noise``, no clipping);
    ``gaussian``: x + N(0, r²); ``mutate`` (one-hot DNA): ``n_mutations`` random positions per copy get another
    nucleotide, drawn uniformly among the three others.
    """
    shape = (nr_samples, *inp.x.shape[1:])
    if perturb == "uniform":
        noise = inp.per_sample(salt, lambda g: torch.rand(shape, generator=g), dim=1) * 2.0 - 1.0
        return inp.x + (noise * lower_bound).to(inp.device, inp.x.dtype)
    if perturb == "gaussian":
        noise = inp.per_sample(salt, lambda g: torch.randn(shape, generator=g), dim=1)
        return inp.x + (noise * lower_bound).to(inp.device, inp.x.dtype)
    if perturb != "mutate":
        raise XaiError(f"unknown perturbation '{perturb}'; valid choices: {', '.join(PERTURBATIONS)}")
    if inp.modality != "sequence":
        raise NotApplicable("perturb='mutate' substitutes nucleotides: it applies to one-hot DNA only")
    k, n, (c, length) = nr_samples, inp.n, inp.x.shape[1:]
    m = min(int(n_mutations), length)
    gens = inp.sample_generators(salt)
    pos = torch.stack([torch.rand(k, length, generator=g) for g in gens], 1)
    pos = pos.argsort(dim=-1)[..., :m].to(inp.device)  # distinct positions
    shift = torch.stack([torch.randint(1, c, (k, m), generator=g) for g in gens], 1).to(inp.device)
    current = inp.x.argmax(dim=1).expand(k, n, length).gather(2, pos)
    new = torch.nn.functional.one_hot((current + shift) % c, c).to(inp.x.dtype).transpose(2, 3)  # (k, n, c, m)
    return inp.x.expand(k, *inp.x.shape).clone().scatter_(3, pos[:, :, None, :].expand(k, n, c, m), new)


def _sensitivity(inp: MetricInputs, reduce: str, nr_samples: int, lower_bound: float, perturb: str,
                 n_mutations: int, normalise_by: str, abs_: bool, pooling: str) -> MetricOutput:
    if normalise_by not in ("explanation", "input", "none"):
        raise XaiError(f"normalise_by must be 'explanation', 'input' or 'none', not '{normalise_by}'")
    xs = sensitivity_perturbations(inp, perturb, nr_samples, lower_bound, n_mutations)
    ap = _stack_explain(inp, xs.reshape(-1, *inp.x.shape[1:]))
    ref = _prep(inp.a, abs_, pooling)
    num = (_prep(ap.reshape(-1, *inp.a.shape[1:]), abs_, pooling).reshape(nr_samples, inp.n, -1) - ref).norm(dim=2)
    den = {"explanation": lambda: ref.norm(dim=1), "input": lambda: inp.x.double().reshape(inp.n, -1).norm(dim=1),
           "none": lambda: torch.ones(inp.n, dtype=torch.float64, device=inp.device)}[normalise_by]()
    sens = num / den  # (K, N)
    if reduce == "max":
        scores = torch.where(sens.isnan(), torch.full_like(sens, float("-inf")), sens).amax(dim=0)
        scores = torch.where(sens.isnan().all(dim=0), torch.full_like(scores, float("nan")), scores)
    else:
        scores = sens.nanmean(dim=0)
    return MetricOutput(scores, reasons=_reasons(scores, "sensitivity undefined (zero norm)"),
                        extras={"per_draw": sens.T.cpu().numpy()})


def _sens_cost(params, inp):
    return {"forward": 0.0, "explain": float(params["nr_samples"])}


_SENS_DEFAULTS = {"*": {"nr_samples": 10, "lower_bound": 0.2, "perturb": "uniform", "n_mutations": 2,
                        "normalise_by": "explanation", "abs": False},
                  "image": {"pooling": "sum"}, "sequence": {"perturb": "mutate"}}
_SENS_REF = ("Yeh et al. 2019 (NeurIPS), via Quantus 0.6.0 {cls}: ‖a(x+δ) - a(x)‖_F / ‖a(x)‖_F, δ ~ U(-0.2, 0.2), "
             "equal to Quantus on the same δ. Quantus 0.6 divides by the norm of the explanation (normalise_by="
             "'explanation', our default); Quantus ≤ 0.3 and protocol §2.5d divide by ‖x‖_F ('input'); the paper does "
             "not normalise ('none'). Differs: nr_samples 10 instead of Quantus' 200 (dashboard cost); images are "
             "compared after channel pooling (sum; pooling='none' keeps channels); DNA is perturbed by "
             "nucleotide substitutions (perturb='mutate') instead of off-manifold uniform noise.")


@register_metric("max_sensitivity", seeded=True, version=2, label="Max-Sensitivity", family="robustness",
                 direction="lower",
                 needs="reexplain", cost=_sens_cost, defaults=_SENS_DEFAULTS,
                 description="The largest change of the explanation, relative to its size, over small random "
                             "perturbations of the input (tiny noise; two point mutations for DNA); lower = more "
                             "stable.", reference=_SENS_REF.format(cls="MaxSensitivity"))
def max_sensitivity(inp: MetricInputs, nr_samples: int = 10, lower_bound: float = 0.2, perturb: str = "uniform",
                    n_mutations: int = 2, normalise_by: str = "explanation", abs: bool = False,
                    pooling: str = "none") -> MetricOutput:
    return _sensitivity(inp, "max", nr_samples, lower_bound, perturb, n_mutations, normalise_by, abs, pooling)


@register_metric("avg_sensitivity", seeded=True, version=2, label="Avg-Sensitivity", family="robustness",
                 direction="lower",
                 needs="reexplain", cost=_sens_cost, defaults=_SENS_DEFAULTS,
                 description="The average change of the explanation, relative to its size, over small random "
                             "perturbations of the input (tiny noise; two point mutations for DNA); lower = more "
                             "stable.", reference=_SENS_REF.format(cls="AvgSensitivity"))
def avg_sensitivity(inp: MetricInputs, nr_samples: int = 10, lower_bound: float = 0.2, perturb: str = "uniform",
                    n_mutations: int = 2, normalise_by: str = "explanation", abs: bool = False,
                    pooling: str = "none") -> MetricOutput:
    return _sensitivity(inp, "mean", nr_samples, lower_bound, perturb, n_mutations, normalise_by, abs, pooling)


# -- consistency under transformations the biology says are irrelevant -----------------------------------
def reverse_complement(x: torch.Tensor) -> torch.Tensor:
    """(N, 4, L) with channels ACGT: reverse the positions and swap A<->T, C<->G (an involution)."""
    return x.flip(1).flip(2)


def _dna_view(a: torch.Tensor, x: torch.Tensor, view: str, abs_: bool) -> torch.Tensor:
    if view == "observed":  # the attribution of the observed nucleotide per position (a logo's height)
        a = (a * x).sum(dim=1, keepdim=True)
    elif view != "full":
        raise XaiError(f"view must be 'full' (all 4 channels) or 'observed', not '{view}'")
    return _prep(a, abs_)


_SEQ_DEFAULTS = {"similarity": "pearson", "k": 0.1, "view": "full", "abs": False}


@register_metric("reverse_complement_consistency", label="Reverse-complement consistency", family="robustness",
                 direction="higher", modalities=("sequence",), needs="reexplain",
                 cost=lambda p, inp: {"forward": 0.0, "explain": 1.0}, defaults={"*": dict(_SEQ_DEFAULTS)},
                 description="Correlation between the explanation of a sequence and that of its reverse complement "
                             "read back on the original strand; 1 = the same motifs are found on both strands.",
                 reference="No Quantus equivalent; a standard sanity check in regulatory genomics (DNA is read on "
                           "both strands). view='full' compares all 4 channels, 'observed' the logo heights.")
def reverse_complement_consistency(inp: MetricInputs, similarity: str = "pearson", k: float = 0.1, view: str = "full",
                                   abs: bool = False) -> MetricOutput:
    back = reverse_complement(inp.explain(reverse_complement(inp.x), inp.target))
    s = compare_maps(_dna_view(back, inp.x, view, abs), _dna_view(inp.a, inp.x, view, abs), how=similarity, k=k)
    return MetricOutput(s, reasons=_reasons(s, "similarity undefined: an explanation is constant"))


def shift_sequences(x: torch.Tensor, s: int, fill: float = 0.25) -> torch.Tensor:
    """Move (N, C, L) sequences by ``s`` positions (right if s > 0); vacated positions get ``fill``."""
    out = torch.full_like(x, fill)
    if s > 0:
        out[..., s:] = x[..., :-s]
    elif s < 0:
        out[..., :s] = x[..., -s:]
    else:
        out = x.clone()
    return out


@register_metric("shift_consistency", label="Shift consistency", family="robustness", direction="higher",
                 modalities=("sequence",), needs="reexplain",
                 cost=lambda p, inp: {"forward": 0.0, "explain": 2.0}, defaults={"*": {"shift": 3, **_SEQ_DEFAULTS}},
                 description="Correlation between the explanation of a sequence and that of the same sequence moved "
                             "a few bases left or right (compared where they overlap, mean of both directions); "
                             "1 = motifs keep their importance wherever they sit.",
                 reference="No Quantus equivalent (translation equivariance, cf. the equivariant augmentations of "
                           "Tětková et al.); vacated positions are filled with 0.25 (an unknown base).")
def shift_consistency(inp: MetricInputs, shift: int = 3, similarity: str = "pearson", k: float = 0.1,
                      view: str = "full", abs: bool = False) -> MetricOutput:
    s = int(shift)
    length = inp.x.shape[-1]
    if not 0 < s < length:
        raise XaiError(f"shift must be between 1 and {length - 1} positions")
    moved = _stack_explain(inp, torch.cat([shift_sequences(inp.x, s), shift_sequences(inp.x, -s)]))
    a, x = inp.a, inp.x
    right = compare_maps(_dna_view(moved[0][..., s:], x[..., :-s], view, abs),
                         _dna_view(a[..., :-s], x[..., :-s], view, abs), how=similarity, k=k)
    left = compare_maps(_dna_view(moved[1][..., :-s], x[..., s:], view, abs),
                        _dna_view(a[..., s:], x[..., s:], view, abs), how=similarity, k=k)
    scores = (right + left) / 2
    return MetricOutput(scores, reasons=_reasons(scores, "similarity undefined: an explanation is constant"),
                        extras={"right": right.cpu().numpy(), "left": left.cpu().numpy()})


@register_metric("noise_consistency", seeded=True, version=2, label="Consistency under measurement noise",
                 family="robustness",
                 direction="higher", modalities=("expression",), needs="reexplain",
                 cost=lambda p, inp: {"forward": 0.0, "explain": float(p["n_draws"])},
                 defaults={"*": {"n_draws": 5, "noise_sd": 0.1, "similarity": "spearman", "k": 0.1, "abs": False}},
                 description="Rank agreement between the gene scores of a sample and those of the same sample with "
                             "added measurement noise (sd 0.1 of a gene's standard deviation), mean over draws; "
                             "1 = the gene ranking does not depend on the noise.",
                 reference="No Quantus equivalent (close to Quantus' Local Lipschitz / Continuity idea, scored as a "
                           "rank correlation as biologists read gene rankings); Gaussian noise on standardised data.")
def noise_consistency(inp: MetricInputs, n_draws: int = 5, noise_sd: float = 0.1, similarity: str = "spearman",
                      k: float = 0.1, abs: bool = False) -> MetricOutput:
    noise = inp.per_sample("noise_consistency", lambda g: torch.randn((n_draws, *inp.x.shape[1:]), generator=g),
                           dim=1) * noise_sd
    xs = (inp.x + noise.to(inp.device, inp.x.dtype)).reshape(-1, *inp.x.shape[1:])
    ap = _prep(_stack_explain(inp, xs).reshape(-1, *inp.a.shape[1:]), abs)
    sims = compare_maps(ap, _prep(inp.a, abs).repeat(n_draws, 1), how=similarity, k=k).reshape(n_draws, inp.n)
    scores = sims.nanmean(dim=0)
    return MetricOutput(scores, reasons=_reasons(scores, "similarity undefined: an explanation is constant"),
                        extras={"per_draw": sims.T.cpu().numpy()})
