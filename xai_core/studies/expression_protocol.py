"""The building blocks of the Integrated-Gradients expression protocol (docs/protocols/ig-expression.md §1.5–§1.7).

- ``diffused_model``: the study's DiffuseLR / DiffuseMLP. The fixed graph diffusion x -> Â x (Â symmetric) in
  front of a head with a linear first layer is folded into that layer (W -> W Â): the same function of x,
  so IG, the prediction gaps and their fast path see an ordinary LR / MLP. It is trained on X Â.
- ``studied``, ``explained_samples``, ``ig_baseline``: which classes and samples are explained, against which
  reference input (§1.6).
- ``adaptive_ig``: IG of the class probability with per-sample step doubling until the completeness error
  |Σ a - (p(x) - p(b))| is at most ``tol_pp`` percentage points.
- ``protocol_scores``: PGI/PGU (local, global), PGR, feature agreement (local, global, with and without
  diffusion) through the engine's registered metrics, averaged within class (or sub-class) and then over
  classes, as the study does.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import nn

from xai_core.models import train_model
from xai_core.models.training import predict_proba

from ..explainers.context import ExplainContext, ProbabilityOutput
from ..metrics import build_inputs, compute_metric
from ..metrics.agreement import diffusion_matrix
from ..metrics.fastpath import split_linear_head


# -- models ----------------------------------------------------------------------------------------
def diffuse(X: np.ndarray, A: torch.Tensor, batch: int = 2048) -> np.ndarray:
    """Rows of X (n, G) diffused: X Â (Â symmetric, dense or sparse CSR)."""
    out = np.empty_like(X, dtype=np.float32)
    for i in range(0, len(X), batch):
        xb = torch.as_tensor(X[i:i + batch], dtype=torch.float32)
        out[i:i + batch] = (A @ xb.T).T.numpy() if A.layout != torch.strided else (xb @ A).numpy()
    return out


def diffusion_for(ds) -> torch.Tensor:
    """Â of the study's Diffuse models: the training-set gene correlation, > 0.5 only (HEAD ``infer_graph``)."""
    return diffusion_matrix(ds.X[ds.train_idx], "head")


def fold_diffusion(model: nn.Module, A: torch.Tensor) -> nn.Module:
    """The model x -> model(Â x) with Â folded into its first Linear layer (W -> W Â), in place."""
    split = split_linear_head(model.eval())
    if split is None:
        raise ValueError("diffusion can only be folded into a model whose first layer is linear")
    lin = split[0]
    with torch.no_grad():
        w = lin.weight.detach().float()
        lin.weight.copy_((A @ w.T).T if A.layout != torch.strided else w @ A.float())
    return model


def train_arch(ds, arch: str, seed: int, A: torch.Tensor | None = None, **recipe):
    """(model, report) for ``arch`` in {lr, mlp, diffuse_lr, diffuse_mlp}; Diffuse* need Â."""
    base = arch.removeprefix("diffuse_")
    if base == arch:
        return train_model(ds, arch, seed=seed, **recipe)
    view = dataclasses.replace(ds, X=diffuse(ds.X, A))
    model, report = train_model(view, base, seed=seed, **recipe)
    return fold_diffusion(model, A), report


# -- which samples, against which reference (§1.6) ----------------------------------------------
def studied(ds) -> tuple[list[int], str, float | None]:
    """(explained classes, PG/IG baseline, its class knob): §1.6."""
    if ds.params.get("sub_labels") is not None:  # SimuA–C: explain class 0 against the class-1 mean
        return [0], "class_mean", 1.0
    return list(range(ds.n_classes)), "train_mean", None


def ig_baseline(ctx, x: torch.Tensor, base: str, knob: float | None) -> torch.Tensor:
    """The IG reference input of §1.6 with the shape of ``x``: the training mean, or one class's training mean."""
    ref = ctx.train_mean if base == "train_mean" else ctx.class_means[int(knob)]
    return ref.expand_as(x).contiguous()


def explained_samples(ds, model, classes: list[int], max_samples: int, seed: int) -> np.ndarray:
    """Correctly classified test samples of ``classes`` (stratified subsample when ``max_samples``)."""
    idx = ds.test_idx[np.isin(ds.y[ds.test_idx], classes)]
    ok = idx[predict_proba(model, ds.X[idx]).argmax(1) == ds.y[idx]]
    if max_samples and len(ok) > max_samples:
        rng = np.random.default_rng(seed)
        ok = np.sort(rng.choice(ok, size=max_samples, replace=False))
    return ok


# -- Integrated Gradients ---------------------------------------------------------------------------
@dataclass
class AdaptiveIG:
    attributions: torch.Tensor  # (N, G)
    steps: np.ndarray  # (N,) steps that met the tolerance (or the cap)
    error_pp: np.ndarray  # (N,) completeness error, percentage points of probability
    evaluations: int  # gradient evaluations spent in all (sum over samples of all tried step counts)


PANEL = 64  # nodes per panel of the composite rule used above ``PLAIN_MAX`` steps
PLAIN_MAX = 1024


@functools.lru_cache(maxsize=32)
def quadrature(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(weights, nodes) on [0, 1]: captum's Gauss–Legendre rule for n <= 1024; above, a composite rule of
    n / 64 equal panels of 64-node Gauss–Legendre (the plain rule's nodes cost O(n³) to compute and its
    accuracy on near-step paths is no better)."""
    if n <= PLAIN_MAX or n % PANEL:
        step_sizes, alphas = approximation_parameters("gausslegendre")
        return np.asarray(step_sizes(n)), np.asarray(alphas(n))
    w, a = quadrature(PANEL)
    m = n // PANEL
    starts = np.arange(m)[:, None] / m
    return np.tile(w / m, m), (starts + a[None] / m).reshape(-1)


class _HiddenIG:
    """IG of a model ``rest(W x + c)`` whose first layer is linear, integrated in the first layer's output.

    Along the straight path x(α) = b + α (x - b) the pre-activation is h(α) = h_b + α (h_x - h_b), so by the
    chain rule IG_j = (x_j - b_j) Σ_h W_hj ∫ ∂f/∂h_h(h(α)) dα. The integral needs gradients of ``rest`` only
    (H = 2–33 values instead of G = 15,000–50,000), so thousands of steps cost what a few cost on the input.
    Same Gauss–Legendre nodes and weights as captum: the same attributions up to float rounding (tested).
    """

    def __init__(self, ctx: ExplainContext):
        self.lin, rest = split_linear_head(ctx.model)
        self.rest = ProbabilityOutput(rest) if ctx.output == "probability" else rest

    def attribute(self, x, baselines, target, n_steps, **_):
        rows = max(1, (1 << 21) // (n_steps * self.lin.out_features))  # path rows per piece: ~8 MB per unit
        parts = [self._attribute(x[i:i + rows], baselines[i:i + rows], target[i:i + rows], n_steps)
                 for i in range(0, len(x), rows)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _attribute(self, x, baselines, target, n_steps):
        w, a = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in quadrature(n_steps))
        with torch.no_grad():
            hx, hb = self.lin(x), self.lin(baselines)
        path = (hb[:, None] + a[None, :, None] * (hx - hb)[:, None]).reshape(-1, hx.shape[1]).requires_grad_(True)
        out = self.rest(path).gather(1, target.repeat_interleave(n_steps)[:, None]).sum()
        (grad,) = torch.autograd.grad(out, path)
        avg = (grad.view(len(x), n_steps, -1) * w[None, :, None]).sum(1)  # (N, H)
        attr = (x - baselines) * (avg @ self.lin.weight)
        with torch.no_grad():
            gap = (self.rest(hx) - self.rest(hb)).gather(1, target[:, None])[:, 0]
        return attr, attr.sum(1) - gap


def adaptive_ig(ctx: ExplainContext, x: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor,
                tol_pp: float = 1.0, start: int = 16, max_steps: int = 65536, chunk: int = 256,
                internal_batch_size: int = 4096, hidden: bool | None = None) -> AdaptiveIG:
    """IG (Gauss–Legendre) of ``ctx.forward`` (use output='probability'), doubling the steps of the samples
    whose completeness error exceeds ``tol_pp`` until all pass or ``max_steps`` is reached.

    ``hidden`` (default: whenever the model's first layer is linear) integrates in that layer's output
    (``_HiddenIG``), otherwise captum's ``IntegratedGradients`` on the input.
    """
    if hidden is None:
        hidden = split_linear_head(ctx.model) is not None
    ig = _HiddenIG(ctx) if hidden else IntegratedGradients(ctx.forward)
    if not hidden:
        max_steps = min(max_steps, 4096)
    n = len(x)
    attr = torch.zeros_like(x)
    steps = np.zeros(n, dtype=np.int64)
    err = np.full(n, np.inf)
    todo = np.arange(n)
    s, evals = start, 0
    while len(todo) and s <= max_steps:
        for i in range(0, len(todo), chunk):
            j = torch.as_tensor(todo[i:i + chunk], device=x.device)
            a, delta = ig.attribute(x[j], baselines=baseline[j], target=target[j], n_steps=s,
                                    method="gausslegendre", internal_batch_size=internal_batch_size,
                                    return_convergence_delta=True)
            attr[j] = a.detach()
            err[todo[i:i + chunk]] = 100 * delta.detach().abs().cpu().numpy()
        steps[todo] = s
        evals += s * len(todo)
        todo = todo[err[todo] > tol_pp]
        s *= 2
    return AdaptiveIG(attr, steps, err, evals)


def l2_normalised(a: torch.Tensor) -> torch.Tensor:
    n = a.flatten(1).norm(dim=1).clamp_min(1e-30)
    return a / n.view(-1, *([1] * (a.ndim - 1)))


# -- scores ----------------------------------------------------------------------------------------
PG_METRICS = ("pgi_local", "pgu_local", "pgi_global", "pgu_global", "pgr")


@dataclass
class Groups:
    """Which samples are averaged together and which genes are true for them."""

    labels: np.ndarray  # (N,) group id per explained sample (class, or sub-class of the studied class)
    truth: dict[int, np.ndarray]  # group id -> informative genes


def groups_for(ds, idx: np.ndarray, head_convention: bool) -> Groups:
    """Classes for SIMU1/2; for the two-class SimuA–C, the sub-classes of the studied class 0, each scored
    against its own genes (HEAD convention: plus the other class's genes, §1.3 step 5)."""
    fs = ds.ground_truth.feature_sets
    y = ds.y[idx]
    subs = ds.params.get("sub_labels")
    if subs is None:
        return Groups(y.copy(), {c: np.asarray(fs[name]) for c, name in enumerate(ds.class_names) if name in fs})
    sub = np.asarray(subs)[idx]
    other = np.asarray(fs[ds.class_names[1]])
    truth = {}
    for k in np.unique(sub[y == 0]):
        genes = np.asarray(fs[f"{ds.class_names[0]} / sub {k}"])
        truth[int(k)] = np.union1d(genes, other) if head_convention else genes
    return Groups(sub.copy(), truth)


def class_balanced(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean within each group, then over groups (the study's averaging)."""
    means = [np.nanmean(scores[labels == g]) for g in np.unique(labels) if np.isfinite(scores[labels == g]).any()]
    return float(np.mean(means)) if means else float("nan")


def protocol_scores(ds, ctx: ExplainContext, idx: np.ndarray, a: torch.Tensor, groups: Groups,
                    pg_baseline: tuple[str, float | None], n_random: int, n_boot: int = 1,
                    diffusion: bool = True, pgr_samples: int = 300, pg_metrics: tuple[str, ...] = PG_METRICS
                    ) -> dict[str, float]:
    """The study's numbers (× 100) for attributions ``a`` of samples ``idx`` (already L2-normalised).

    PGR ignores the attributions (random orders), so it is averaged over ``n_random`` orders on a seeded
    subsample of at most ``pgr_samples`` samples: 300 x 30 curves already pin it to a few hundredths of a pp.
    """
    inp = build_inputs(ds, ctx, idx, a, seed=ctx.seed)
    base, knob = pg_baseline
    out: dict[str, float] = {}
    for m in pg_metrics:
        run, labels = inp, ds.y[idx]
        extra = {}
        if m == "pgr":
            extra = {"n_random": n_random}
            if pgr_samples and len(idx) > pgr_samples:
                pick = np.sort(np.random.default_rng(ctx.seed).choice(len(idx), pgr_samples, replace=False))
                run, labels = inp.subset(pick), labels[pick]
        res = compute_metric(m, run, baseline=base, baseline_param=knob, strict=True, **extra)
        out[m] = 100 * class_balanced(res.scores, labels)
    for diff in ((False, "head") if diffusion else (False,)):
        tag = "" if diff is False else "_diffused"
        local, glob = np.full(len(idx), np.nan), []
        for g, genes in groups.truth.items():
            pick = np.flatnonzero(groups.labels == g)
            if len(pick) == 0:
                continue
            sub = inp.subset(pick)
            tgt = int(sub.target[0])
            sub = dataclasses.replace(sub, feature_sets={tgt: np.asarray(genes)})
            local[pick] = compute_metric("feature_agreement_local", sub, diffusion=diff, strict=True).scores
            if len(pick) >= 2:
                glob.append(float(compute_metric("feature_agreement_global", sub, diffusion=diff, n_boot=n_boot,
                                                 strict=True).scores[0]))
        out[f"fa_local{tag}"] = 100 * class_balanced(local, groups.labels)
        out[f"fa_global{tag}"] = 100 * float(np.mean(glob)) if glob else float("nan")
    return out
