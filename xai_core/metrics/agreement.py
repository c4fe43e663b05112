"""Expression feature agreement: do the top-ranked genes match the known informative genes?

Ground truth is ``inp.feature_sets`` (class index -> informative gene indices): exact biomarkers for
simulated data (Bontonou et al., protocol §1.7c), literature markers (weak) for real data. A sample is scored
against the set of the class whose output was explained (``target``; for single-logit binary models the
label, with the attribution's sign flipped for class 0 so that "evidence for the class" ranks first).
"""
from __future__ import annotations

import hashlib
import os
import warnings
import weakref
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..data import cache_dir
from ..errors import NotApplicable, UnknownChoice
from .base import MetricOutput, register_metric
from .metric_inputs import MetricInputs

DENSE_MAX_GENES = 5_000  # above this Â is built row-block-wise and kept sparse ("head" only)
SPARSE_MAX_NNZ = 50_000_000
_CACHE: OrderedDict[tuple, torch.Tensor] = OrderedDict()
_DIGESTS: dict[int, tuple[weakref.ref, str]] = {}


# -- diffusion -------------------------------------------------------------------------------------
def _digest(X: np.ndarray) -> str:
    hit = _DIGESTS.get(id(X))
    if hit is not None and hit[0]() is X:
        return hit[1]
    d = hashlib.blake2b(np.ascontiguousarray(X).view(np.uint8), digest_size=16).hexdigest()
    _DIGESTS[id(X)] = (weakref.ref(X), d)
    return d


def _adjacency(block: torch.Tensor, variant: str) -> torch.Tensor:
    if variant == "v1":
        return block.clamp(min=0)
    if variant == "head":
        return block * (block > 0.5)  # |corr| > 0.5, then positive entries only
    raise UnknownChoice("diffusion", variant, ["v1", "head"])


def diffusion_matrix(train_X: np.ndarray, variant: str, block: int = 1024) -> torch.Tensor:
    """Â = D^{-1/2}(A + I)D^{-1/2} from the gene–gene Pearson correlation of ``train_X`` (n, G), on CPU.

    A is the correlation with its diagonal set to 0 and undefined values (constant genes) to 0 (as the
    study's ``graphs.py``); v1: A = max(0, corr); head: corr where corr > 0.5. D = row sums of A + I.
    Dense (float32) for G <= ``DENSE_MAX_GENES``; above, only "head" is supported, built exactly by
    row blocks into a sparse CSR matrix (v1 has no sparsity to exploit: NotApplicable). Cached per
    dataset content.
    """
    X = np.asarray(train_X)
    G = X.shape[1]
    key = (variant, X.shape, _digest(X))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    if G > DENSE_MAX_GENES and variant != "head":
        raise NotApplicable(f"diffusion '{variant}' needs a dense {G}x{G} gene correlation matrix; with more than "
                            f"{DENSE_MAX_GENES} genes use diffusion='head' (thresholded, sparse) or False")
    path = _disk_path(key) if G > DENSE_MAX_GENES else None
    out = _read_disk(path, G) if path is not None and path.exists() else None
    if out is None:
        out = _build(X, variant, block)
        if path is not None:
            try:
                _write_disk(path, out)
            except OSError as e:  # a read-only or full cache: the matrix is still used, just not kept
                warnings.warn(f"the gene correlation graph could not be cached at {path} ({e}); it will be "
                              "rebuilt by the next process that needs it", stacklevel=2)
    _CACHE[key] = out
    while len(_CACHE) > 4:
        _CACHE.popitem(last=False)
    return out


def _build(X: np.ndarray, variant: str, block: int) -> torch.Tensor:
    G = X.shape[1]
    Z = torch.as_tensor(X, dtype=torch.float64 if X.size <= 20_000_000 else torch.float32)
    Z = Z - Z.mean(0)
    sd = Z.pow(2).mean(0).sqrt()
    Z = torch.where(sd > 0, Z / torch.where(sd > 0, sd, torch.ones_like(sd)), torch.zeros_like(Z))
    n = Z.shape[0]
    rows, cols, vals, deg = [], [], [], torch.ones(G, dtype=torch.float64)  # degree of A + I
    dense = torch.zeros(G, G, dtype=torch.float32) if G <= DENSE_MAX_GENES else None
    for i in range(0, G, block):
        c = ((Z[:, i:i + block].T @ Z) / n).double()  # (b, G) correlations
        c.clamp_(-1, 1)
        idx = torch.arange(i, min(i + block, G))
        c[idx - i, idx] = 0.0
        A = _adjacency(c, variant)
        deg[i:i + block] += A.sum(1)
        if dense is not None:
            dense[i:i + block] = A.float()
        else:
            r, k = A.nonzero(as_tuple=True)
            rows.append(r + i), cols.append(k), vals.append(A[r, k])
            if sum(len(v) for v in vals) > SPARSE_MAX_NNZ:
                raise NotApplicable(f"the thresholded gene correlation graph has more than {SPARSE_MAX_NNZ} "
                                    "edges; diffusion is not applicable to this dataset")
    dinv = deg.rsqrt()
    if dense is not None:
        dense.diagonal().add_(1.0)
        d = dinv.float()
        out = dense.mul_(d[:, None]).mul_(d[None, :])  # in place: one G x G float32 buffer
    else:
        r = torch.cat(rows + [torch.arange(G)])
        k = torch.cat(cols + [torch.arange(G)])
        v = torch.cat(vals + [torch.ones(G, dtype=torch.float64)]) * dinv[r] * dinv[k]
        out = torch.sparse_coo_tensor(torch.stack([r, k]), v.float(), (G, G),
                                      check_invariants=False).coalesce().to_sparse_csr()
    return out


# The sparse Â of a large dataset takes minutes to build (simuA: 50,000 genes) and a study needs it again
# for every model and seed, in several processes: it is kept on disk, keyed by the training matrix's content,
# the variant and the torch version and CPU kernels (the 0.5 threshold is applied to computed correlations,
# so another kernel set may keep a borderline edge differently: it builds its own).
DISK_FORMAT = 1


def _disk_path(key: tuple) -> Path:
    variant, shape, digest = key
    kernels = hashlib.blake2b(f"{torch.__version__}|{torch.backends.cpu.get_cpu_capability()}".encode(),
                              digest_size=4).hexdigest()
    return cache_dir() / "diffusion" / f"{variant}-{shape[0]}x{shape[1]}-{digest}-{kernels}.safetensors"


def _read_disk(path: Path, G: int) -> torch.Tensor | None:
    """The cached CSR matrix, checked (format, shape, index ranges, finite positive values); None, with a
    warning naming the file, when it does not pass (it is then rebuilt and rewritten)."""
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            crow, col, val = (f.get_tensor(n) for n in ("crow_indices", "col_indices", "values"))
        ok = (meta.get("format") == str(DISK_FORMAT) and meta.get("genes") == str(G) and crow.shape == (G + 1,)
              and int(crow[0]) == 0 and int(crow[-1]) == len(col) == len(val) and bool((crow.diff() >= 0).all())
              and (len(col) == 0 or (int(col.min()) >= 0 and int(col.max()) < G))
              and bool(torch.isfinite(val).all()) and bool((val > 0).all()))
        if ok:
            return torch.sparse_csr_tensor(crow, col, val, (G, G), check_invariants=True)  # and torch checks
        problem = "its contents do not form the expected matrix"
    except Exception as e:  # noqa: BLE001 - any unreadable file is rebuilt
        problem = f"it cannot be read ({type(e).__name__}: {e})"
    warnings.warn(f"the cached gene correlation graph {path} was ignored because {problem}; it is rebuilt and "
                  "rewritten", stacklevel=3)
    return None


def _write_disk(path: Path, m: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({"crow_indices": m.crow_indices().contiguous(), "col_indices": m.col_indices().contiguous(),
               "values": m.values().contiguous()}, str(tmp),
              metadata={"format": str(DISK_FORMAT), "genes": str(m.shape[0])})
    os.replace(tmp, path)  # readers see the old file or the whole new one


def diffuse(inp: MetricInputs, a: torch.Tensor, diffusion) -> torch.Tensor:
    """attr <- attr · Â (Â symmetric), or ``a`` unchanged when ``diffusion`` is False/None."""
    if not diffusion:
        return a
    if inp.ctx.train_X is None:
        raise NotApplicable("diffusion needs the training matrix (ctx.train_X), which this context lacks")
    M = diffusion_matrix(inp.ctx.train_X, str(diffusion)).to(a.device)  # float32: no G x G copy per call
    b = a.to(M.dtype)
    return (b @ M if M.layout == torch.strided else (M @ b.T).T).to(a.dtype)


# -- shared pieces ---------------------------------------------------------------------------------
def _truth(inp: MetricInputs, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, G) membership of each class's informative genes and (C,) set sizes."""
    G = inp.a.shape[1]
    C = max(n_classes, max(inp.feature_sets) + 1)
    T = torch.zeros(C, G, dtype=torch.bool, device=inp.device)
    for c, genes in inp.feature_sets.items():
        T[c, torch.as_tensor(np.asarray(genes, dtype=np.int64), device=inp.device)] = True
    return T, T.sum(1)


def _signed_by_class(inp: MetricInputs, diffusion) -> tuple[torch.Tensor, torch.Tensor]:
    """Attributions oriented as evidence for each sample's class, and that class (N,)."""
    a = diffuse(inp, inp.a.double(), diffusion)
    if inp.ctx.n_outputs == 1:
        cls = inp.label.long()
        a = a * torch.where(cls == 0, -1.0, 1.0).to(a)[:, None]
    else:
        cls = inp.target.long()
    return a, cls


def topk_hits(scores: torch.Tensor, T_rows: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Fraction of each row's top-k(row) entries (by score) that are in T_rows; rows (..., G)."""
    kmax = max(int(k.max()), 1)
    top = scores.topk(min(kmax, scores.shape[-1]), dim=-1).indices
    hit = T_rows.gather(-1, top)
    keep = torch.arange(top.shape[-1], device=top.device) < k[..., None]
    return (hit & keep).sum(-1).double() / k.clamp(min=1).double()


def _class_reasons(inp, cls, n_c, extra=None) -> list:
    names = inp.class_names or []
    out = []
    for i, c in enumerate(cls.tolist()):
        if extra is not None and extra[i]:
            out.append(extra[i])
        elif n_c[c] == 0:
            out.append(f"no known informative genes for class {names[c] if c < len(names) else c}")
        else:
            out.append(None)
    return out


def _misclassified(inp: MetricInputs, only_correct: bool) -> list | None:
    if not only_correct:
        return None
    wrong = (inp.predict(inp.x) != inp.label).tolist()
    return ["misclassified (only correctly classified samples are scored)" if w else None for w in wrong]


_FA_REF = ("Bontonou et al. 2023 (get_ranking_metrics.py, protocol §1.7c): k = n_c = |truth of the class|, so FA is "
           "precision@|truth| = recall@|truth|; signed attributions. diffusion: attr <- attr·Â, "
           "Â = D^-1/2(A + I)D^-1/2 from the training gene-gene Pearson correlation (v1: A = max(0, corr); head: "
           "corr > 0.5). The study keeps correctly classified samples only (only_correct=True) and averages per "
           "class then over classes; per-sample scores here are averaged by the caller.")
_COST = lambda p, inp: {"forward": 1.0 if p.get("only_correct") else 0.0, "explain": 0.0}  # noqa: E731


@register_metric(
    "feature_agreement_local", label="Feature agreement (local)", family="localisation", direction="higher",
    modalities=("expression",), ground_truth="feature_sets", cost=_COST,
    defaults={"*": {"diffusion": False, "only_correct": False}},
    description="For each sample, the share of its n top-ranked genes that are truly informative for its class, "
                "n being the number of informative genes (1 = the explanation recovers the true biomarkers).",
    reference=_FA_REF)
def feature_agreement_local(inp: MetricInputs, diffusion=False, only_correct: bool = False) -> MetricOutput:
    a, cls = _signed_by_class(inp, diffusion)
    T, n_c = _truth(inp, int(cls.max()) + 1)
    score = topk_hits(a, T[cls], n_c[cls])
    reasons = _class_reasons(inp, cls, n_c.tolist(), _misclassified(inp, only_correct))
    bad = torch.tensor([r is not None for r in reasons], device=score.device)
    return MetricOutput(torch.where(bad, torch.nan, score), reasons=reasons)


@register_metric(
    "precision_at_k", label="Marker precision@k", family="localisation", direction="higher",
    modalities=("expression",), ground_truth="feature_sets", defaults={"*": {"k": 10}},
    description="Share of the k top-ranked genes of each sample that are known markers of its class (for "
                "weak, literature ground truth; a class with fewer than k markers cannot reach 1).",
    reference="Precision@k against curated marker genes (weak ground truth), signed attributions; same class "
              "convention as feature_agreement_local.")
def precision_at_k(inp: MetricInputs, k: int = 10) -> MetricOutput:
    a, cls = _signed_by_class(inp, False)
    T, n_c = _truth(inp, int(cls.max()) + 1)
    kk = torch.full_like(cls, min(int(k), a.shape[1]))
    score = topk_hits(a, T[cls], kk)
    reasons = _class_reasons(inp, cls, n_c.tolist())
    bad = torch.tensor([r is not None for r in reasons], device=score.device)
    return MetricOutput(torch.where(bad, torch.nan, score), reasons=reasons)


@register_metric(
    "feature_agreement_global",
    seeded=True, label="Feature agreement (global)", family="localisation", direction="higher",
    modalities=("expression",), ground_truth="feature_sets", scope="set", cost=_COST,
    defaults={"*": {"diffusion": False, "variant": "sum", "n_boot": 50, "only_correct": False}},
    description="Per class, the share of the n top genes of the class-level ranking that are truly "
                "informative, averaged over classes (1 = the class-level ranking recovers the biomarkers).",
    reference=_FA_REF + " Global ranking per class: variant 'sum' = top-n_c of the sum over the class's samples of "
              "L2-normalised attributions (HEAD rank_mean_scores); 'intersect' = the n_c genes most often in the "
              "samples' top-n_c (v1 intersect_rank_scores; count ties broken by lower gene index). se: bootstrap "
              "over samples (n_boot resamples, seeded).")
def feature_agreement_global(inp: MetricInputs, diffusion=False, variant: str = "sum", n_boot: int = 50,
                             only_correct: bool = False) -> MetricOutput:
    a, cls = _signed_by_class(inp, diffusion)
    T, n_c = _truth(inp, int(cls.max()) + 1)
    keep = (n_c[cls] > 0)
    wrong = _misclassified(inp, only_correct)
    if wrong is not None:
        keep &= torch.tensor([w is None for w in wrong], device=keep.device)
    if not bool(keep.any()):
        raise NotApplicable("no sample of a class with known informative genes" +
                            (" is correctly classified" if only_correct else ""))
    a, cls = a[keep], cls[keep]
    N, G, C = a.shape[0], a.shape[1], T.shape[0]
    if variant == "sum":
        vals = a / a.norm(dim=1, keepdim=True).clamp(min=1e-300)  # the study's divide_by_norm
    elif variant == "intersect":
        k = n_c[cls]
        top = a.topk(max(int(k.max()), 1), dim=1).indices
        on = (torch.arange(top.shape[1], device=a.device) < k[:, None]).double()
        vals = torch.zeros_like(a).scatter_(1, top, on)
    else:
        raise UnknownChoice("feature agreement variant", variant, ["sum", "intersect"])
    g = inp.generator("feature_agreement_global")
    draws = torch.randint(0, N, (int(n_boot), N), generator=g).to(a.device)
    W = torch.cat([torch.ones(1, N, device=a.device, dtype=a.dtype),
                   torch.zeros(int(n_boot), N, device=a.device, dtype=a.dtype).scatter_add_(
                       1, draws, torch.ones_like(draws, dtype=a.dtype))])
    onehot = torch.nn.functional.one_hot(cls, C).to(a.dtype)  # (N, C)
    scores = []
    for w in W.split(8):  # bootstrap rows in chunks: (b, C, G) at a time
        S = (w[:, :, None] * onehot[None]).transpose(1, 2) @ vals  # (b, C, G)
        present = (w @ onehot > 0) & (n_c > 0)[None]  # (b, C)
        if variant == "intersect":  # most frequent first, ties by lower gene index, never a gene counted 0
            tie = (G - 1 - torch.arange(G, device=a.device, dtype=a.dtype)) / G
            S = torch.where(S > 0, S + tie, torch.full_like(S, -1.0))
            kk = n_c[None].expand_as(present)
            top = S.topk(max(int(n_c.max()), 1), dim=-1)
            hit = T[None].expand(S.shape[0], -1, -1).gather(-1, top.indices) & (top.values > 0)
            fa = (hit & (torch.arange(hit.shape[-1], device=a.device) < kk[..., None])).sum(-1).double()
            fa = fa / kk.clamp(min=1).double()
        else:
            fa = topk_hits(S, T[None].expand(S.shape[0], -1, -1), n_c[None].expand_as(present))
        scores.append((fa * present).sum(1) / present.sum(1).clamp(min=1))
    scores = torch.cat(scores)
    se = float(scores[1:].std()) if n_boot > 1 else None
    return MetricOutput(float(scores[0]), se=se, extras={"n_samples": N, "n_classes": int((onehot.sum(0) > 0).sum())})
