"""Localisation metrics: does the explanation point at what is known to matter?

Images (ground truth: lesion masks) follow Quantus 0.6 (AUC, RelevanceMassAccuracy,
RelevanceRankAccuracy, PointingGame) on the channel-pooled map. DNA (ground truth: the planted motifs'
PWMs) follows the study code of Majdandzic et al. (tfomics ``evaluate.py``, protocol §3.5). Expression
feature agreement lives in ``agreement`` (imported at the end so it registers with this module).
All computations are batched over samples in torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..explainers.postprocess import dna_per_position, pool_channels
from .base import MetricOutput, register_metric
from .metric_inputs import MetricInputs
from .ops import average_ranks as tie_ranks, sort

NO_LESION = "no lesion in this image (empty mask)"
NO_MOTIF = "no planted motif in this sequence"


# -- shared rank statistics ---------------------------------------------------------------------
def average_ranks(s: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """1-based ranks along dim 1 with ties sharing their average rank; ``valid`` False entries are ignored."""
    s = s.double()
    if valid is not None:  # ignored entries rank above every valid one, so valid ranks are unchanged
        s = torch.where(valid, s, torch.full_like(s, float("inf")))
    return tie_ranks(s)


def roc_auc_rows(s: torch.Tensor, pos: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """ROC AUC per row = Mann–Whitney U / (n+ n-), ties counted 1/2 (equals sklearn roc_curve + auc)."""
    valid = torch.ones_like(pos, dtype=torch.bool) if valid is None else valid
    pos = pos & valid
    n_pos = pos.sum(1).double()
    n_neg = (valid & ~pos).sum(1).double()
    r = average_ranks(s, valid)
    u = (r * pos).sum(1) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def pr_auc_rows(s: torch.Tensor, pos: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Area under the precision–recall curve per row, trapezoidal, as sklearn ``auc(recall, precision)``
    after ``precision_recall_curve`` (one point per distinct score, plus (recall 0, precision 1))."""
    s = torch.where(valid, s.double(), torch.full_like(s, float("-inf"), dtype=torch.float64))
    order = sort(s, dim=1, descending=True, stable=True)[1]
    v = -s.gather(1, order).contiguous()  # ascending; invalid (+inf) last
    lab = (pos & valid).gather(1, order).double()
    ok = valid.gather(1, order).double()
    tps, fps = torch.cumsum(lab, 1), torch.cumsum(ok - lab, 1)
    n_valid = valid.sum(1, keepdim=True)
    end = torch.searchsorted(v, v, right=True) - 1  # last index of each tie group
    end = torch.minimum(end, (n_valid - 1).clamp(min=0))
    tp, fp = tps.gather(1, end), fps.gather(1, end)
    prec = tp / (tp + fp).clamp(min=1)
    rec = tp / tps[:, -1:].clamp(min=1)
    one = torch.ones_like(rec[:, :1])
    rec = torch.cat([torch.zeros_like(one), rec], 1)
    prec = torch.cat([one, prec], 1)
    return ((rec[:, 1:] - rec[:, :-1]) * (prec[:, 1:] + prec[:, :-1]) / 2).sum(1)


# -- images ----------------------------------------------------------------------------------------
_IMG_DEFAULTS = {"*": {"pooling": "sum", "abs": False}}
_IMG_META = dict(family="localisation", modalities=("image",), ground_truth="masks")
_QUANTUS_NOTE = ("Same channel handling as Quantus given a (N,1,H,W) map: channels pooled first (param pooling). "
                 "Quantus' normalise=True does not change this score (scale-free).")


def _map_and_mask(inp: MetricInputs, pooling: str, abs_: bool) -> tuple[torch.Tensor, torch.Tensor, list]:
    a = pool_channels(inp.a, pooling) if inp.a.ndim == 4 else inp.a
    a = a.abs() if abs_ else a
    m = inp.masks.to(a.device).bool()
    if m.shape != a.shape:
        raise ValueError(f"mask shape {tuple(m.shape)} does not match the attribution map {tuple(a.shape)}")
    m = m.reshape(len(m), -1)
    reasons = [None if k else NO_LESION for k in (m.sum(1) > 0).tolist()]
    return a.reshape(len(a), -1).double(), m, reasons


def _nan_where(score: torch.Tensor, reasons: list) -> MetricOutput:
    bad = torch.tensor([r is not None for r in reasons], device=score.device)
    return MetricOutput(torch.where(bad, torch.full_like(score, float("nan")), score), reasons=reasons)


@register_metric(
    "roc_auc", label="Lesion ROC-AUC", direction="higher", **_IMG_META, defaults=_IMG_DEFAULTS,
    description="How well the attribution map separates lesion pixels from the rest (ROC AUC): 1 means every "
                "lesion pixel scores above every healthy pixel, 0.5 is chance.",
    reference="Quantus AUC (sklearn roc_curve(mask, a) + auc), abs=False. Computed as the Mann-Whitney statistic "
              "with average ranks for ties, which equals sklearn exactly. " + _QUANTUS_NOTE)
def roc_auc(inp: MetricInputs, pooling: str = "sum", abs: bool = False) -> MetricOutput:
    a, m, reasons = _map_and_mask(inp, pooling, abs)
    full = (m.sum(1) == m.shape[1]).tolist()
    reasons = [r if r or not f else "the lesion covers the whole image" for r, f in zip(reasons, full)]
    return _nan_where(roc_auc_rows(a, m), reasons)


@register_metric(
    "relevance_mass_accuracy", label="Relevance mass accuracy", direction="higher", **_IMG_META,
    defaults={"*": {"pooling": "sum", "abs": False, "positive_only": False}},
    description="Share of the total relevance that falls inside the lesion (1 = all of it).",
    reference="Arras et al. 2022 (CLEVR-XAI) / Quantus RelevanceMassAccuracy: sum over mask of a / sum of a. "
              "positive_only=False is Quantus (signed sums); True is Arras et al. (positive relevance only). "
              + _QUANTUS_NOTE)
def relevance_mass_accuracy(inp: MetricInputs, pooling: str = "sum", abs: bool = False,
                            positive_only: bool = False) -> MetricOutput:
    a, m, reasons = _map_and_mask(inp, pooling, abs)
    if positive_only:
        a = a.clamp(min=0)
    total = a.sum(1)
    zero = (total == 0).tolist()
    why = "no positive relevance in this map" if positive_only else "the attributions sum to zero"
    reasons = [r if r or not z else why for r, z in zip(reasons, zero)]
    return _nan_where((a * m).sum(1) / torch.where(total == 0, torch.ones_like(total), total), reasons)


@register_metric(
    "relevance_rank_accuracy", label="Relevance rank accuracy", direction="higher", **_IMG_META,
    defaults=_IMG_DEFAULTS,
    description="Of the K most relevant pixels (K = lesion size), the fraction that lie in the lesion "
                "(1 = the top pixels are exactly the lesion).",
    reference="Arras et al. 2022 / Quantus RelevanceRankAccuracy: |top-K(a) ∩ mask| / K, K = |mask|. Quantus "
              "breaks ties at the K-th value by numpy's unstable argsort (arbitrary); we give tied pixels their "
              "expected share (order-free), identical when there is no tie at the cut. " + _QUANTUS_NOTE)
def relevance_rank_accuracy(inp: MetricInputs, pooling: str = "sum", abs: bool = False) -> MetricOutput:
    a, m, reasons = _map_and_mask(inp, pooling, abs)
    k = m.sum(1)
    srt = sort(a, dim=1, descending=True)[0]
    t = srt.gather(1, (k - 1).clamp(min=0)[:, None])  # the K-th largest value
    above, tied = a > t, a == t
    inside = (above & m).sum(1).double()
    slots = (k - above.sum(1)).double()  # top-K places left for values tied with the K-th
    share = (tied & m).sum(1).double() * slots / tied.sum(1).clamp(min=1).double()
    return _nan_where((inside + share) / k.clamp(min=1).double(), reasons)


def _dilate(m: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of (N, H, W) masks by a disk of ``radius`` pixels (Euclidean)."""
    if radius <= 0:
        return m
    r = int(radius)
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    disk = ((yy ** 2 + xx ** 2) <= radius ** 2).float().to(m.device)[None, None]
    return F.conv2d(m.float()[:, None], disk, padding=r)[:, 0] > 0.5


@register_metric(
    "pointing_game", label="Pointing game", direction="higher", **_IMG_META,
    defaults={"*": {"pooling": "sum", "abs": False, "tolerance": 0}},
    description="1 if the single most relevant pixel lies in the lesion (within `tolerance` pixels), else 0; "
                "the mean over images is the hit rate.",
    reference="Zhang et al. 2018 'Top-down neural attention by excitation backprop' / Quantus PointingGame "
              "(weighted=False): a hit if any pixel sharing the maximum lies in the mask. tolerance (pixels, "
              "Euclidean; Zhang et al. use 15) dilates the mask; 0 = Quantus. " + _QUANTUS_NOTE)
def pointing_game(inp: MetricInputs, pooling: str = "sum", abs: bool = False, tolerance: int = 0) -> MetricOutput:
    a, m, reasons = _map_and_mask(inp, pooling, abs)
    m = _dilate(m.reshape(inp.masks.shape), tolerance).reshape(len(m), -1)
    hit = ((a == a.amax(1, keepdim=True)) & m).any(1).double()
    return _nan_where(hit, reasons)


# -- DNA: planted motifs -----------------------------------------------------------------------------
_DNA_META = dict(family="localisation", modalities=("sequence",), ground_truth="pwm", direction="higher")
_DNA_NOTE = ("Per-position score s = attribution at the observed nucleotide (sum_a x*a); information content "
             "I = 2 + sum p log2(p + 1e-10) of the generating PWM; motif positions: I > threshold; background: "
             "I == min(I). Sequences without a planted motif are NaN (not scored).")


def _dna_parts(inp: MetricInputs, threshold: float):
    s = dna_per_position(inp.a.double(), inp.x.double())
    p = inp.pwm.to(s.device).double()
    info = 2.0 + (p * torch.log2(p + 1e-10)).sum(1)
    pos = info > threshold
    bg = info == info.amin(1, keepdim=True)
    reasons = [None if k else NO_MOTIF for k in pos.any(1).tolist()]
    return s, pos, bg, reasons


@register_metric(
    "motif_auroc", label="Motif AUROC", **_DNA_META, defaults={"*": {"threshold": 0.1}},
    description="How well per-position attribution separates planted-motif positions from background "
                "(ROC AUC per sequence): 1 = every motif position outranks every background position.",
    reference="Majdandzic et al. 2022 (tfomics interpretability_performance, acme threshold 0.1): sklearn "
              "roc_curve + auc on motif and background positions only, per sequence. " + _DNA_NOTE)
def motif_auroc(inp: MetricInputs, threshold: float = 0.1) -> MetricOutput:
    s, pos, bg, reasons = _dna_parts(inp, threshold)
    has_bg = (bg & ~pos).any(1).tolist()
    reasons = [r if r or b else "no background positions in this sequence" for r, b in zip(reasons, has_bg)]
    return _nan_where(roc_auc_rows(s, pos, pos | bg), reasons)


@register_metric(
    "motif_aupr", label="Motif AUPR", **_DNA_META, defaults={"*": {"threshold": 0.1}},
    description="Area under the precision-recall curve for finding planted-motif positions from the "
                "attribution (1 = perfect; chance is the share of motif positions).",
    reference="Majdandzic et al. 2022 (tfomics interpretability_performance): sklearn precision_recall_curve "
              "+ auc(recall, precision) (trapezoidal, not average precision), per sequence. " + _DNA_NOTE)
def motif_aupr(inp: MetricInputs, threshold: float = 0.1) -> MetricOutput:
    s, pos, bg, reasons = _dna_parts(inp, threshold)
    return _nan_where(pr_auc_rows(s, pos, pos | bg), reasons)


@register_metric(
    "motif_snr", label="Motif signal-to-noise", **_DNA_META, defaults={"*": {"threshold": 0.1, "top_k": 10}},
    description="Mean attribution on planted motifs divided by the mean of the 10 largest positive "
                "background attributions: high means motifs stand out from spurious background peaks.",
    reference="Majdandzic et al. 2022 (tfomics signal_noise_stats + calculate_snr, top_k=10): noise = the "
              "top_k largest s among background positions with s > 0; fewer than top_k such positions -> 0; "
              "NaN -> 0 (as the study's code). " + _DNA_NOTE)
def motif_snr(inp: MetricInputs, threshold: float = 0.1, top_k: int = 10) -> MetricOutput:
    s, pos, bg, reasons = _dna_parts(inp, threshold)
    signal = (s * pos).sum(1) / pos.sum(1).clamp(min=1)
    cand = (s > 0) & bg
    k = min(int(top_k), s.shape[1])
    noise = torch.where(cand, s, torch.full_like(s, float("-inf"))).topk(k, dim=1).values.mean(1)
    snr = torch.where(cand.sum(1) >= top_k, signal / noise, torch.zeros_like(signal)).nan_to_num(nan=0.0)
    return _nan_where(snr, reasons)


from . import agreement  # noqa: E402, F401  (expression feature agreement registers with localisation)
