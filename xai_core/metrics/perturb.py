"""Perturbation machinery shared by the faithfulness metrics: baselines, units, relevance per unit, masks.

A *unit* is what one perturbation removes together: a gene (expression), a pixel with all its channels
(image), a position with all 4 nucleotide channels (sequence). Masks are (..., N, U) booleans over units;
``unit_view`` broadcasts them onto inputs. Perturbed inputs of K steps are stacked step-major (K*N rows:
step 0's samples, then step 1's, ...) and evaluated by ``MetricInputs.output`` in one batched call.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.dataset import MODALITIES
from ..errors import NotApplicable, UnknownChoice
from ..explainers.postprocess import pool_channels
from ..registry import Registry
from .base import SEEDED_VALUES
from .metric_inputs import MetricInputs
from .fastpath import linear_removal_curve
from .ops import sort, top_order

BaselineFn = Callable[[torch.Tensor, MetricInputs, "list[torch.Generator]", "float | None"], torch.Tensor]


@dataclass(frozen=True)
class Baseline:
    fn: BaselineFn  # (x, inp, one generator per sample, knob) -> replacement values broadcastable to x
    modalities: frozenset[str]
    description: str
    seeded: bool = False  # draws from the per-sample generators (which are made only for it)


BASELINES: Registry[Baseline] = Registry("perturbation baseline")


# version of the seeded baselines' draws: 2 = one stream per sample (1 drew a chunk's values from one generator,
# so a sample's baseline depended on its chunk); scores with a seeded baseline are keyed by it
SEEDED_BASELINE_DRAWS = 2


def baseline_draws_key(params: dict) -> dict:
    """``params`` plus the seeded baselines' draw version when the ``baseline`` parameter names one."""
    return {**params, "_baseline_draws": SEEDED_BASELINE_DRAWS} \
        if str(params.get("baseline")) in SEEDED_VALUES.get("baseline", ()) else params


def _baseline(name: str, description: str, modalities: tuple[str, ...] = MODALITIES, seeded: bool = False):
    """Register a baseline; ``seeded`` when it draws from the generators (metrics using it are keyed by the seed);
    a seeded baseline draws each sample's values from that sample's generator."""
    if seeded:
        SEEDED_VALUES.setdefault("baseline", set()).add(name)
    return BASELINES.decorator(name, lambda fn: Baseline(fn, frozenset(modalities), description, seeded))


@_baseline("mean", "each input's own scalar mean over all its features and channels (Quantus 'mean'), "
                   "computed once on the unperturbed input")
def _mean(x, inp, g, knob):
    return x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)


@_baseline("zero", "zeros")
def _zero(x, inp, g, knob):
    return torch.zeros_like(x)


@_baseline("train_mean", "the training-set mean input (0 for standardised expression data)")
def _train_mean(x, inp, g, knob):
    return inp.ctx.train_mean.to(device=x.device, dtype=x.dtype)[None]


@_baseline("class_mean", "the training mean of one class (knob: the class index, default 1: the reference class "
                         "of the study's SimuA-C / BRCA protocol, §1.6)")
def _class_mean(x, inp, g, knob):
    c = 1 if knob is None else int(knob)
    if not 0 <= c < len(inp.ctx.class_means):
        raise NotApplicable(f"baseline class {c} does not exist; valid: 0-{len(inp.ctx.class_means) - 1}")
    return inp.ctx.class_means[c].to(device=x.device, dtype=x.dtype)[None]


@_baseline("blur", "a gaussian-blurred copy of the image (knob: sigma in pixels, default 3)", ("image",))
def _blur(x, inp, g, knob):
    return gaussian_blur(x, 3.0 if knob is None else float(knob))


@_baseline("uniform", "0.25 at each nucleotide of a replaced position (no base preferred)", ("sequence",))
def _uniform(x, inp, g, knob):
    return torch.full_like(x, 1.0 / x.shape[1])


@_baseline("dinuc_shuffle", "a dinucleotide-shuffled copy of each sequence (Altschul-Erickson), seeded",
           ("sequence",), seeded=True)
def _dinuc(x, inp, gens, knob):
    return dinuc_shuffle(x, gens)


@_baseline("uniform_noise", "the input plus uniform noise in [-b, b] (Quantus uniform_noise; knob b, default 0.02)",
           seeded=True)
def _uniform_noise(x, inp, gens, knob):
    b = 0.02 if knob is None else float(knob)
    noise = (torch.stack([torch.rand(x.shape[1:], generator=g) for g in gens]) * 2 - 1) * b
    return x + noise.to(device=x.device, dtype=x.dtype)


def make_baseline(name: str, inp: MetricInputs, x: torch.Tensor | None = None, knob: float | None = None,
                  salt: str = "") -> torch.Tensor:
    """Replacement values with the shape of ``x`` (default ``inp.x``); random baselines are seeded."""
    spec = BASELINES.get(name)
    if inp.modality not in spec.modalities:
        valid = [n for n, b in zip(BASELINES.names(), BASELINES.values()) if inp.modality in b.modalities]
        raise NotApplicable(f"baseline '{name}' does not apply to {inp.modality} data; valid: {', '.join(valid)}")
    x = inp.x if x is None else x
    gens = inp.sample_generators(f"baseline:{name}:{salt}") if spec.seeded else None  # seeding 32 costs ~0.1 ms
    b = spec.fn(x, inp, gens, knob)
    return b.to(device=x.device, dtype=x.dtype).expand_as(x)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable gaussian blur of (N, C, H, W) images, reflect padding, radius ceil(3 sigma)."""
    if sigma <= 0:
        return x.clone()
    r = max(1, min(math.ceil(3 * sigma), min(x.shape[-2:]) - 1))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def dinuc_shuffle(x: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
    """Dinucleotide-preserving shuffle of one-hot sequences (N, 4, L) (Altschul & Erickson 1985).

    Each sequence is an Eulerian path in the multigraph of its dinucleotides. Per vertex (nucleotide) a
    random *last* out-edge is drawn until these last edges form a tree towards the final nucleotide
    (rejection, cheap with 4 vertices); the other out-edges are put in random order, and the walk from
    the first nucleotide follows them. Dinucleotide counts and the first and last nucleotide are kept.
    Sequence i draws from ``gens[i]`` only, so its shuffle does not depend on the other sequences.
    Vectorised over sequences; the walk loops over the L positions. Assumes one-hot input (argmax is used).
    """
    n, c, length = x.shape
    if length < 3:
        return x.clone()
    tok = x.argmax(1).cpu()
    src, dst, last = tok[:, :-1], tok[:, 1:], tok[:, -1]
    keys = torch.zeros(n, length - 1)
    todo = torch.arange(n)
    while len(todo):
        k = torch.stack([torch.rand(length - 1, generator=gens[i]) for i in todo.tolist()])
        s, d, lst = src[todo], dst[todo], last[todo]
        best = torch.full((len(todo), c), -1.0).scatter_reduce(1, s, k, "amax")
        is_last = k == best.gather(1, s)
        dest = torch.full((len(todo), c + 1), -1, dtype=torch.long)
        dest.scatter_(1, torch.where(is_last, s, c), d)  # column c collects the non-last edges, dropped
        dest = dest[:, :c]
        p = torch.arange(c).expand(len(todo), c).clone()
        p = torch.where(best >= 0, p, lst[:, None])  # vertices without out-edges count as done
        for _ in range(c):
            p = torch.where(p == lst[:, None], p, dest.gather(1, p.clamp(min=0)))
        ok = (p == lst[:, None]).all(1)
        keys[todo[ok]] = torch.where(is_last, 2.0, k)[ok]
        todo = todo[~ok]
    order = torch.argsort(src * 4 + keys, dim=1)  # edges grouped by source, random order, last edge last
    next_pos = order + 1
    counts = torch.zeros(n, c, dtype=torch.long).scatter_add_(1, src, torch.ones_like(src))
    offsets = torch.cumsum(counts, 1) - counts
    used = torch.zeros(n, c, dtype=torch.long)
    cur = torch.zeros(n, 1, dtype=torch.long)
    out = torch.empty_like(tok)
    out[:, 0] = tok[:, 0]
    for j in range(1, length):
        v = tok.gather(1, cur)
        cur = next_pos.gather(1, offsets.gather(1, v) + used.gather(1, v))
        used.scatter_add_(1, v, torch.ones_like(v))
        out[:, j] = tok.gather(1, cur)[:, 0]
    return F.one_hot(out, c).permute(0, 2, 1).to(device=x.device, dtype=x.dtype)


# -- units ---------------------------------------------------------------------------------------------
def n_units(shape: tuple[int, ...] | torch.Size, modality: str) -> int:
    """Units of one input of ``shape`` (no batch dimension): pixels, positions or genes."""
    return math.prod(shape[1:]) if modality in ("image", "sequence") else math.prod(shape)


def unit_relevance(a: torch.Tensor, x: torch.Tensor | None, modality: str, pooling: str = "sum",
                   dna_score: str = "observed", abs: bool = False) -> torch.Tensor:
    """One relevance per unit, (N, U): images channel-pooled, DNA the attribution at the observed
    nucleotide ``(a*x).sum(1)`` ("observed") or the sum over the 4 channels ("sum"); ``abs`` after that."""
    if modality == "image":
        r = pool_channels(a, pooling).reshape(len(a), -1)
    elif modality == "sequence":
        if dna_score not in ("observed", "sum"):
            raise UnknownChoice("DNA position score", dna_score, ["observed", "sum"])
        if dna_score == "observed" and x is None:
            raise NotApplicable("the observed-nucleotide score needs the input sequences")
        r = (a * x).sum(1) if dna_score == "observed" else a.sum(1)
    else:
        r = a.reshape(len(a), -1)
    return r.abs() if abs else r


def unit_view(mask: torch.Tensor, x_shape: tuple[int, ...] | torch.Size, modality: str) -> torch.Tensor:
    """(..., N, U) unit mask -> broadcastable to (..., N, *x_shape[1:]) (channels of a unit together)."""
    lead = mask.shape[:-1]
    if modality in ("image", "sequence"):
        return mask.reshape(*lead, 1, *x_shape[2:])
    return mask.reshape(*lead, *x_shape[1:])


def order_units(r: torch.Tensor, descending: bool = True, limit: int | None = None) -> torch.Tensor:
    """Unit indices sorted by relevance, (N, U); ties keep index order (stable). With ``limit``, only the
    first ``limit`` of that order, (N, limit), found without sorting every unit (``ops.top_order``)."""
    if limit is not None and limit < r.shape[1]:
        return top_order(r, limit, descending=descending)
    return sort(r, dim=1, descending=descending, stable=True)[1]


def inverse_permutation(order: torch.Tensor, n_units: int | None = None, fill: int = 0) -> torch.Tensor:
    """Position of each unit in ``order`` (N, U); with ``n_units`` > K for a partial order (N, K), the units it
    leaves out get position ``fill``."""
    u = order.shape[1] if n_units is None else int(n_units)
    pos = torch.full((order.shape[0], u), fill, dtype=order.dtype, device=order.device)
    return pos.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))


def steps_from_order(order: torch.Tensor, per_step: int, n_units: int | None = None) -> torch.Tensor:
    """The 0-based step at which each unit is removed when ``per_step`` units go per step, (N, U).

    ``order`` may hold only the first K of U = ``n_units`` units (``order_units(..., limit=K)``); the units
    it leaves out get step ceil(U / per_step), after every real step."""
    u = order.shape[1] if n_units is None else int(n_units)
    return inverse_permutation(order, u, fill=-(-u // per_step) * per_step) // per_step


def cumulative_masks(step_of_unit: torch.Tensor, k0: int, k1: int) -> torch.Tensor:
    """Masks after steps k0..k1-1 of a cumulative removal, (k1-k0, N, U): unit removed iff its step <= k."""
    ks = torch.arange(k0, k1, device=step_of_unit.device)
    return step_of_unit[None] <= ks[:, None, None]


def stacked_outputs(inp: MetricInputs, base: torch.Tensor, masks: Callable[[int, int], torch.Tensor], n_masks: int,
                    kind: str = "probability") -> torch.Tensor:
    """Model output on ``n_masks`` perturbations of every sample, (N, n_masks).

    ``masks(k0, k1)`` returns the unit masks k0..k1-1, shape (k1-k0, N, U); masked units take ``base``.
    Masks are built in chunks of about 4 * ``inp.forward_batch`` stacked inputs (at least one step of all
    N samples), so memory follows that knob; ``inp.output`` evaluates ``forward_batch`` inputs at a time.
    """
    x, n = inp.x, inp.n
    per = max(1, (4 * inp.forward_batch) // max(n, 1))
    outs = []
    for k0 in range(0, n_masks, per):
        m = masks(k0, min(n_masks, k0 + per))
        xs = torch.where(unit_view(m, x.shape, inp.modality), base, x).reshape(-1, *x.shape[1:])
        outs.append(inp.output(xs, kind=kind).reshape(len(m), n))
    return torch.cat(outs).T if outs else torch.zeros(n, 0, device=x.device)


FAST_PATH = {"enabled": True}  # tests switch it off to compare with the generic path


def removal_curve(inp: MetricInputs, base: torch.Tensor, step_of_unit: torch.Tensor, n_steps: int,
                  kind: str = "probability", removed: torch.Tensor | None = None) -> torch.Tensor:
    """f(x_k) after each of the first ``n_steps`` cumulative removal steps, (N, n_steps).

    Models whose first layer is linear take ``fastpath.linear_removal_curve`` (no perturbed inputs built);
    ``removed`` (N, K), the units removed within those steps, lets it touch only them.
    """
    fast = (linear_removal_curve(inp, base, step_of_unit, n_steps, kind, removed=removed)
            if FAST_PATH["enabled"] else None)
    if fast is not None:
        return fast
    return stacked_outputs(inp, base, lambda k0, k1: cumulative_masks(step_of_unit, k0, k1), n_steps, kind)


def units_for_cost(params: dict, inp: MetricInputs | None) -> int:
    """Units per input for cost estimates. Without inputs: a typical size (64x64 images, 200-long DNA,
    2,000 genes), the modality read from the params (only images have ``pooling``, only DNA ``dna_score``)
    because cost callbacks are not told the modality."""
    if inp is not None:
        return n_units(tuple(inp.x.shape[1:]), inp.modality)
    return 4096 if "pooling" in params else 200 if "dna_score" in params else 2000
