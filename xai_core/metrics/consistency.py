"""Consistency of explanations over a whole set of maps (one number per method and model).

- ``kmer_kld`` (Majdandzic et al. 2022, method 1, protocol §3.6): the k-mers under the top-attributed DNA
  positions vs the k-mer spectrum of the sequences themselves;
- ``spherical_kld`` (method 2, "k-attr-mean", §3.7): how clustered the per-position attribution vectors
  are on the sphere, vs a locally smoothed version of their own density;
- ``ranking_stability``: agreement of global feature rankings across models trained with other seeds.

All three: higher is more consistent. DNA maps are (N, 4, L) over ACGT, as the dataset stores them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..data.dataset import MODALITIES
from ..explainers.postprocess import dna_gradient_correction, pool_channels
from .base import MetricOutput, register_metric
from .metric_inputs import MetricInputs
from .ops import average_ranks

_NO_POP = "needs attributions from ≥ 2 models (train more seeds: --population-seeds)"


def _boot_weights(inp: MetricInputs, n: int, n_boot: int, salt: str) -> torch.Tensor:
    """(n_boot, n) multinomial resampling counts of the n sequences / samples, seeded."""
    idx = torch.randint(0, n, (n_boot, n), generator=inp.generator(salt))
    return torch.zeros(n_boot, n, dtype=torch.float64).scatter_add_(1, idx, torch.ones(n_boot, n, dtype=torch.float64))


def _se(values: list[float]) -> float | None:
    v = torch.tensor(values, dtype=torch.float64)
    v = v[torch.isfinite(v)]
    return float(v.std()) if len(v) > 1 else None


# -- k-mer KLD (§3.6) -------------------------------------------------------------------------------------
def kl_div_sum(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Σ ``scipy.special.kl_div``(p, q): x·log(x/y) − x + y; y where x = 0; inf where x > 0 = y."""
    safe_q = torch.where(q > 0, q, torch.ones_like(q))
    term = torch.where(p > 0, torch.where(q > 0, p * torch.log(p / safe_q) - p + q, torch.full_like(p, math.inf)), q)
    return term.sum(-1)


def kept_kmer_windows(a: torch.Tensor, x: torch.Tensor, k: int = 6, threshold: float = 0.9, buffer: int = 2
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """k-mer codes of ``x`` and which windows count, for maps ``a`` (N, 4, L) on one-hot ``x`` (N, 4, L).

    Returns ``codes`` (N, L−k+1) base-4 (A=0 … T=3, first letter most significant), ``kept`` (windows
    inside one merged interval), ``valid`` (windows of one-hot letters only) and ``lengths`` of the
    merged intervals. Runs of positions with ‖a_l‖₂ > the row's ``threshold`` quantile are extended
    ``buffer`` positions to the right; an extended run merges with the next when that starts at or before
    its end (not when it merely touches it), exactly as the stack merge of the original code.
    """
    n, _, length = a.shape
    r = a.double().norm(dim=1)  # (N, L)
    rows = max(1, 16_000_000 // max(length, 1))  # torch.quantile's input limit
    cut = torch.cat([torch.quantile(r[i:i + rows], threshold, dim=1) for i in range(0, n, rows)])
    keep = r > cut[:, None]
    cs = F.pad(keep.long().cumsum(1), (1, 0))  # cs[:, j] = #kept in [0, j)
    pos = torch.arange(length, device=a.device)
    dil = (cs[:, pos + 1] - cs[:, (pos - buffer).clamp_min(0)]) > 0  # kept in [l − buffer, l]
    back = max(buffer, 1)
    start = keep & ((cs[:, pos] - cs[:, (pos - back).clamp_min(0)]) == 0)  # no kept in [l − back, l − 1]
    gid = start.long().cumsum(1)  # merged-interval id within the row (on dilated positions)
    ds = F.pad(dil.long().cumsum(1), (1, 0))
    w = torch.arange(length - k + 1, device=a.device)
    kept = ((ds[:, w + k] - ds[:, w]) == k) & (gid[:, w] == gid[:, w + k - 1])
    letters = x.argmax(1)
    one_hot = ((x == 0) | (x == 1)).all(1) & (x.sum(1) == 1)
    valid = one_hot.unfold(1, k, 1).all(-1)
    powers = 4 ** torch.arange(k - 1, -1, -1, device=a.device)
    codes = (letters.unfold(1, k, 1) * powers).sum(-1)
    ids = (gid + torch.arange(n, device=a.device)[:, None] * (length + 1))[dil]
    lengths = torch.bincount(ids)
    return codes, kept, valid, lengths[lengths > 0]


@register_metric(
    "kmer_kld",
    seeded=True, label="k-mer KLD (attribution consistency)", family="consistency", direction="higher",
    modalities=("sequence",), scope="set",
    defaults={"*": {"k": 6, "threshold": 0.9, "buffer": 2, "gradient_correct": True, "n_boot": 20}},
    description="Whether the DNA stretches a method highlights share recurring words (k-mers, e.g. motifs) "
                "rather than following the ordinary word frequencies of the sequences; higher means the model "
                "consistently points at the same sequence patterns.",
    reference="Majdandzic et al. 2022 (MLCB) consistency method 1 (acme utils.collect_passing_subsequences, "
              "calculate_kmer_entropy): same cutoff, buffer, merge and scipy kl_div; q is the k-mer spectrum of "
              "the evaluated sequences. Differences: a sequence with no position above its cutoff contributes "
              "nothing instead of shifting later sequences' indices; k-mers over non-one-hot letters are "
              "skipped; not rounded to 3 decimals; bootstrap SE over sequences. No Quantus equivalent.")
def kmer_kld(inp: MetricInputs, k: int = 6, threshold: float = 0.9, buffer: int = 2, gradient_correct: bool = True,
             n_boot: int = 20) -> MetricOutput:
    """KL(p‖q) of the kept k-mers' frequencies p against the sequences' own k-mer spectrum q."""
    a = inp.a.double()
    if gradient_correct:  # ATAC setting; the Frobenius normalisation does not change which positions pass
        a = dna_gradient_correction(a)
        a = a / a.flatten(1).norm(dim=1).clamp_min(1e-300)[:, None, None]
    if a.shape[-1] < k:
        return MetricOutput(float("nan"), reasons=[f"sequences are shorter than k = {k}"])
    n_bins = 4 ** k
    codes, kept, valid, lengths = kept_kmer_windows(a, inp.x, k, threshold, buffer)
    rows = torch.arange(inp.n, device=a.device)[:, None].expand_as(codes)
    pc, pr = codes[kept & valid], rows[kept & valid]
    qc, qr = codes[valid], rows[valid]

    def kld(weights: torch.Tensor | None) -> float:
        wp = None if weights is None else weights[pr]
        wq = None if weights is None else weights[qr]
        p = torch.bincount(pc, weights=wp, minlength=n_bins).double()
        q = torch.bincount(qc, weights=wq, minlength=n_bins).double()
        if p.sum() <= 0 or q.sum() <= 0:
            return float("nan")
        return float(kl_div_sum(p / p.sum(), q / q.sum()))

    score = kld(None)
    if not math.isfinite(score):
        return MetricOutput(float("nan"), reasons=[f"no attributed stretch of ≥ {k} nucleotides passed the cutoff"])
    W = _boot_weights(inp, inp.n, n_boot, "kmer_kld").to(a.device)
    se = _se([kld(W[b]) for b in range(n_boot)])
    n_seq_out = int(inp.n - torch.unique(pr).numel())
    return MetricOutput(score, se=se, extras={
        "n_intervals": int((lengths >= k).sum()), "n_nucleotides": int(lengths[lengths >= k].sum()),
        "n_kmers": int(len(pc)), "n_sequences_without_kmers": n_seq_out})


# -- spherical-coordinate KLD (§3.7) ------------------------------------------------------------------------
def spherical_points(a: torch.Tensor, window: int = 3, as_coded: bool = False, gradient_correct: bool = True
                     ) -> torch.Tensor:
    """(N, 4, L) maps -> (N·L, 3) window-summed vectors in the plane Σ = 0, as (e1, e2, e3)."""
    a = a.double()
    if gradient_correct:
        a = dna_gradient_correction(a)
    tot = a.norm(dim=1).sum(dim=1)
    a = a / torch.where(tot > 0, tot, torch.ones_like(tot))[:, None, None]
    s = sum(a.roll(-i, dims=2) for i in range(window))
    x, y, z, w = s.unbind(1)
    e1 = (-x + y) / math.sqrt(2)
    e2 = math.sqrt(2 / 3) * (-x / 2 - y / 2) if as_coded else math.sqrt(2 / 3) * (-(x + y) / 2 + z)
    e3 = math.sqrt(3 / 4) * (-(x + y + z) / 3 + w)
    return torch.stack([e1, e2, e3], dim=-1).reshape(-1, 3)


def _spherical_bins(points: torch.Tensor, box_length: float, as_coded: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per point: its radius r and its (φ₁, φ₂) histogram bin; and the bins per axis."""
    pi = 3.1416 if as_coded else math.pi
    pts = torch.nan_to_num(points)
    r = pts.norm(dim=1)
    e1, e2, e3 = pts.unbind(1)
    xr, yr, zr = e2, e3, e1  # rotated axes
    if as_coded:
        phi1 = torch.atan(yr / xr)
        phi1 = torch.where((xr < 0) & (yr >= 0), phi1 + pi, phi1)
        phi1 = torch.where((xr < 0) & (yr < 0), phi1 - pi, phi1)
        phi1 = torch.where(xr == 0, torch.full_like(phi1, pi / 2), phi1)
    else:
        phi1 = torch.atan2(yr, xr)
    phi1 = phi1 / 2 + pi / 2
    phi2 = torch.arccos((zr / torch.where(r > 0, r, torch.ones_like(r))).clamp(-1, 1))
    nb = int(pi / box_length)
    i1 = torch.floor(phi1 / box_length).long().clamp(0, nb - 1)
    i2 = torch.floor(phi2 / box_length).long().clamp(0, nb - 1)
    return r, i1 * nb + i2, nb


def _kept_weights(r: torch.Tensor, counts: torch.Tensor, count: int, as_coded: bool) -> torch.Tensor:
    """(B, P) weight of each point in the kept set of each (multi)set; ``counts`` (B, P) are its copies.

    The kept set is the top ``count`` radii of the multiset (as coded: every copy with r above the count-th
    largest r; ``count`` = 0 keeps r above the smallest). Resampling with replacement gives a point ``counts``
    copies, so the top of the multiset is read off one descending sort of the distinct points.
    """
    order = torch.argsort(r, descending=True)
    rs, cs = r[order], counts[:, order]
    before = cs.cumsum(1) - cs  # copies ranked above each point's first copy
    if as_coded:
        if count > 0:  # the count-th largest value of the multiset, then strictly above it
            at = (before < count) & (before + cs >= count) & (cs > 0)
            cut = (rs[None, :] * at).sum(1, keepdim=True)
        else:
            cut = torch.where(cs > 0, rs[None, :], torch.full_like(cs, math.inf)).min(1, keepdim=True).values
        w = torch.where(rs[None, :] > cut, cs, torch.zeros_like(cs))
    else:
        w = (count - before).clamp(min=0).minimum(cs) * (rs[None, :] > 0)
    out = torch.zeros_like(w)
    out[:, order] = w
    return out


def _kl_of_histograms(counts: torch.Tensor, nb: int, box_length: float, prior_range: int, as_coded: bool
                      ) -> torch.Tensor:
    """(B, nb·nb) r²-weighted histograms -> (B,) KL of each pdf against its local moving average (NaN if empty)."""
    b = counts.shape[0]
    counts = counts.reshape(b, nb, nb).double()
    bv = box_length * box_length
    total = counts.sum((1, 2), keepdim=True)
    pdf = counts / torch.where(total > 0, total, torch.ones_like(total)) / bv
    inside = torch.ones(nb, nb, dtype=pdf.dtype, device=pdf.device)
    inside[0, :] = 0
    inside[:, 0] = 0  # the prior window skips row / column 0 (as coded: 0 < i + a < n_bins)
    hi = prior_range if as_coded else prior_range + 1  # range(-3, 3) as coded, range(-3, 4) symmetric
    R = prior_range
    pp, pv = F.pad(pdf * inside, (R, R, R, R)), F.pad(inside, (R, R, R, R))
    psum, pcnt = torch.zeros_like(pdf), torch.zeros_like(inside)
    for da in range(-R, hi):  # window offsets: a few dozen whole-grid shifts
        for db in range(-R, hi):
            psum += pp[:, R + da:R + da + nb, R + db:R + db + nb]
            pcnt += pv[R + da:R + da + nb, R + db:R + db + nb]
    prior = psum / pcnt.clamp_min(1)
    core = torch.zeros(nb, nb, dtype=torch.bool, device=pdf.device)
    core[1:nb - 1, 1:nb - 1] = True
    use = core & (pdf > 0) & (prior > 0)
    terms = torch.where(use, pdf * torch.log(torch.where(use, pdf / prior, torch.ones_like(pdf))),
                        torch.zeros_like(pdf))
    kl = terms.sum((1, 2)) * bv
    return torch.where(total.reshape(-1) > 0, kl, torch.full_like(kl, math.nan))


def spherical_kl_weighted(points: torch.Tensor, counts: torch.Tensor, radius_cutoff: float, box_length: float = 0.1,
                          prior_range: int = 3, as_coded: bool = False, group: torch.Tensor | None = None
                          ) -> torch.Tensor:
    """``spherical_kl`` of several multisets of the same points at once (a bootstrap, without recomputing).

    Parameters
    ----------
    points : Tensor
        (P, 3) vectors, as from ``spherical_points``.
    counts : Tensor
        (B, G) copies of each group of points in each multiset (a resample of G sequences: its counts).
    radius_cutoff, box_length, prior_range, as_coded
        As ``spherical_kl``.
    group : Tensor, optional
        (P,) the group (sequence) of each point; default each point its own group (G = P).

    Returns
    -------
    Tensor
        (B,) the KL of each multiset; NaN where nothing passes the cutoff.
    """
    r, bins, nb = _spherical_bins(points, box_length, as_coded)
    per_point = counts if group is None else counts[:, group]
    per_point = per_point.to(r)
    count = int(radius_cutoff * len(r))
    if count < 1 and not as_coded:
        return torch.full((len(counts),), math.nan, dtype=torch.float64)
    out = []
    step = max(1, 20_000_000 // max(len(r), 1))  # multisets per chunk: (B, P) temporaries stay ~ 20 M doubles
    for c in range(0, len(per_point), step):
        w = _kept_weights(r, per_point[c:c + step], count, as_coded)
        hist = torch.zeros(len(w), nb * nb, dtype=torch.float64, device=r.device)
        hist.scatter_add_(1, bins[None].expand_as(w), (w * (r * r)[None]).double())
        out.append(_kl_of_histograms(hist, nb, box_length, prior_range, as_coded))
    return torch.cat(out)


def spherical_kl(points: torch.Tensor, radius_cutoff: float, box_length: float = 0.1, prior_range: int = 3,
                 as_coded: bool = False) -> float:
    """KL of the r²-weighted (φ₁, φ₂) histogram of the longest vectors against its local moving average."""
    ones = torch.ones(1, len(points), dtype=torch.float64, device=points.device)
    return float(spherical_kl_weighted(points, ones, radius_cutoff, box_length, prior_range, as_coded)[0])


@register_metric(
    "spherical_kld",
    seeded=True, label="Spherical KLD (attribution clustering)", family="consistency", direction="higher",
    modalities=("sequence",), scope="set",
    defaults={"*": {"radius_cutoff": 0.10, "window": 3, "box_length": 0.1, "prior_range": 3, "as_coded": False,
                    "gradient_correct": True, "n_boot": 20}},
    description="Whether the strongest attribution vectors (which nucleotide is favoured, over a 3-letter "
                "window) cluster in a few directions instead of spreading evenly; higher means the model "
                "explains its predictions with a few consistent sequence preferences.",
    reference="Majdandzic et al. 2022 (MLCB) consistency method 2, method_2_analysis.ipynb "
              "(process_attribution_map, spherical_coordinates_process_2_trad, KL_divergence_2). as_coded=True "
              "reproduces the notebook: e2 without z, prior window range(-3, 3), PI = 3.1416, keep r > the "
              "count-th largest r. Default (corrected): orthonormal e2 = (−x−y+2z)/√6, symmetric window "
              "range(-3, 4), math.pi, atan2, exactly the top radius_cutoff fraction kept. radius_cutoff 0.10 "
              "is the paper's ATAC setting; its synthetic results used 0.99. Not rounded; bootstrap SE over "
              "sequences. No Quantus equivalent.")
def spherical_kld(inp: MetricInputs, radius_cutoff: float = 0.10, window: int = 3, box_length: float = 0.1,
                  prior_range: int = 3, as_coded: bool = False, gradient_correct: bool = True, n_boot: int = 20
                  ) -> MetricOutput:
    """KLD of the pooled (over all sequences and positions) direction histogram vs its smoothed prior."""
    # The points of a sequence depend on that sequence only: compute them once, and score the original set and
    # every bootstrap resample (the same draws as resampling the maps) as multisets of the same points.
    pts = spherical_points(inp.a, window, as_coded, gradient_correct)
    group = torch.arange(inp.n, device=pts.device).repeat_interleave(inp.a.shape[-1])
    g = inp.generator("spherical_kld")
    draws = [torch.randint(0, inp.n, (inp.n,), generator=g) for _ in range(n_boot)]
    counts = torch.stack([torch.ones(inp.n, dtype=torch.float64)]
                         + [torch.bincount(d, minlength=inp.n).double() for d in draws]).to(pts.device)
    values = spherical_kl_weighted(pts, counts, radius_cutoff, box_length, prior_range, as_coded, group=group)
    value = float(values[0])
    if not math.isfinite(value):
        return MetricOutput(float("nan"), reasons=["no attribution vector passed the radius cutoff"])
    return MetricOutput(value, se=_se(values[1:].tolist()))


# -- ranking stability across training seeds ------------------------------------------------------------------
def _global_scores(a: torch.Tensor, modality: str, pooling: str, signed: bool) -> torch.Tensor:
    """(N, ...) maps -> (N, D) per-sample feature scores (images: channel-pooled; |a| unless signed)."""
    a = a.double()
    if modality == "image":
        a = pool_channels(a, pooling)
    return (a if signed else a.abs()).reshape(len(a), -1)


def _pairwise(feats: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, D) global scores -> mean pairwise Spearman and mean pairwise top-k Jaccard over the M models."""
    m, d = feats.shape
    rk = average_ranks(feats)
    rk = rk - rk.mean(1, keepdim=True)
    rk = rk / rk.norm(dim=1, keepdim=True).clamp_min(1e-300)
    iu = torch.triu_indices(m, m, 1, device=feats.device)
    rho = (rk @ rk.T)[iu[0], iu[1]]
    kk = min(k, d)
    top = torch.zeros(m, d, dtype=torch.float64, device=feats.device)
    top.scatter_(1, feats.topk(kk, dim=1).indices, 1.0)
    inter = (top @ top.T)[iu[0], iu[1]]
    return rho.mean(), (inter / (2 * kk - inter)).mean()


@register_metric(
    "ranking_stability",
    seeded=True, label="Ranking stability across seeds", family="consistency", direction="higher",
    modalities=MODALITIES, scope="set", population=True,
    defaults={"*": {"signed": False, "k": 50, "pooling": "sum", "n_boot": 20}},
    description="Whether models of the same design trained from different random starts rank the features "
                "(e.g. genes) in the same order of importance; higher (up to 1) means the top genes are a "
                "property of the data, not of one training run.",
    reference="Mean pairwise Spearman correlation of the global rankings (mean |a| over samples) of models "
              "trained with different seeds (Bontonou et al. 2023 study IG over seeds); top-k Jaccard in extras; "
              "bootstrap SE over samples. No Quantus equivalent.")
def ranking_stability(inp: MetricInputs, signed: bool = False, k: int = 50, pooling: str = "sum", n_boot: int = 20
                      ) -> MetricOutput:
    maps = [inp.a] + [p.to(inp.device) for p in (inp.population or [])]
    maps = [m for m in maps if m.shape == inp.a.shape and bool(torch.isfinite(m).all())]
    if len(maps) < 2:
        return MetricOutput(float("nan"), reasons=[_NO_POP])
    per = torch.stack([_global_scores(m, inp.modality, pooling, signed) for m in maps])  # (M, N, D)
    rho, jac = _pairwise(per.mean(1), k)
    W = _boot_weights(inp, inp.n, n_boot, "ranking_stability").to(per)
    boots = [float(_pairwise((per * W[b][None, :, None]).sum(1) / inp.n, k)[0]) for b in range(n_boot)]
    return MetricOutput(float(rho), se=_se(boots), extras={"topk_jaccard": float(jac), "n_models": len(maps),
                                                           "k": min(k, per.shape[-1])})
