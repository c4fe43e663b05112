"""Randomisation checks: does the explanation change when the model does?

- ``model_parameter_randomisation`` (Adebayo et al. 2018; Quantus ``MPRT``): re-initialise the model's
  layers from the output down, re-explain, compare with the original map;
- ``random_logit`` (Sixt et al. 2020; Quantus ``RandomLogit``): explain a random other class, compare.

Both score each sample by a similarity: lower is better (the explanation depends on the model and class).
The row-wise similarity helpers (tie-averaged Spearman, Pearson) are shared with ``consistency``.
"""
from __future__ import annotations

import copy
import zlib

import torch
from torch import nn

from ..errors import UnknownChoice
from ..explainers.postprocess import pool_channels
from .base import MetricOutput, register_metric
from .metric_inputs import MetricInputs
from .ops import average_ranks

SIMILARITIES = ("spearman", "pearson")
LAYER_SETS = ("weights", "all")
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                 nn.ConvTranspose3d)


# -- row-wise similarities (batched, float64) ---------------------------------------------------------
def row_pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b``; NaN where a row is constant."""
    a = a.reshape(len(a), -1).double()
    b = b.reshape(len(b), -1).double()
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    den = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(den > 0, (a * b).sum(1) / torch.where(den > 0, den, torch.ones_like(den)),
                       torch.full_like(den, float("nan")))


def row_spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation per row (tie-averaged ranks, as ``scipy.stats.spearmanr``)."""
    return row_pearson(average_ranks(a.reshape(len(a), -1)), average_ranks(b.reshape(len(b), -1)))


def map_similarity(a: torch.Tensor, b: torch.Tensor, how: str) -> torch.Tensor:
    if how == "spearman":
        return row_spearman(a, b)
    if how == "pearson":
        return row_pearson(a, b)
    raise UnknownChoice("similarity", how, SIMILARITIES)


def _prepare(a: torch.Tensor, modality: str, pooling: str, use_abs: bool) -> torch.Tensor:
    """Images: pool the channels first (Quantus' channel-summed maps); then |a| if asked; flatten."""
    if modality == "image":
        a = pool_channels(a, pooling)
    a = a.abs() if use_abs else a
    return a.reshape(len(a), -1)


# -- model parameter randomisation ------------------------------------------------------------------
def randomisable_layers(model: nn.Module, layers: str = "weights") -> list[tuple[str, nn.Module]]:
    """Layers in registration (= forward, for ``nn.Sequential``) order.

    ``"weights"``: Linear / Conv layers; ``"all"``: every module with ``reset_parameters`` (Quantus),
    which adds BatchNorm (its affine parameters *and* running statistics are reset).
    """
    if layers == "weights":
        return [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)]
    if layers == "all":
        return [(n, m) for n, m in model.named_modules() if hasattr(m, "reset_parameters")]
    raise UnknownChoice("layer set", layers, LAYER_SETS)


def _reset(module: nn.Module, seed: int, device: torch.device) -> None:
    """``module.reset_parameters()`` under a forked RNG: reproducible, the global RNG is left as it was."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        module.reset_parameters()


def randomised_models(model: nn.Module, order: str = "top_down", layers: str = "weights",
                      max_layers: int | None = None, seed: int | None = None, base_seed: int = 0):
    """Yield ``(layer_name, randomised deep copy)``; the original model is never touched.

    ``top_down``: cascading from the output layer down, earlier randomisations kept. ``independent``:
    each yield is a fresh copy with only that layer randomised. The layer named ``name`` is
    re-initialised after ``torch.manual_seed(seed)`` when ``seed`` is given (Quantus re-seeds with
    ``seed + 1`` before every layer), otherwise with a seed from ``base_seed`` and the layer's name, so
    the randomised models do not depend on which samples are in the batch.
    """
    if order not in ("top_down", "independent"):
        raise UnknownChoice("layer order", order, ["top_down", "independent"])
    names = [n for n, _ in randomisable_layers(model, layers)][::-1]
    names = names[:max_layers] if max_layers is not None else names
    device = next(model.parameters()).device
    cascade = copy.deepcopy(model) if order == "top_down" else None
    for name in names:
        m = cascade if cascade is not None else copy.deepcopy(model)
        s = seed if seed is not None else (base_seed * 1_000_003 + zlib.crc32(f"mprt|{name}".encode())) % 2**63
        _reset(m.get_submodule(name), s, device)
        yield name, m


def _n_layers(p, inp) -> float:
    if inp is None:
        return float(p["max_layers"] or 1)
    n = len(randomisable_layers(inp.ctx.model, p["layers"]))
    return float(min(n, p["max_layers"]) if p["max_layers"] is not None else n)


@register_metric(
    "model_parameter_randomisation", seeded=True, label="Model parameter randomisation (MPRT)", family="randomisation",
    direction="lower", needs="reexplain", scope="sample",
    cost=lambda p, inp: {"forward": 0.0, "explain": _n_layers(p, inp)},
    defaults={"*": {"similarity": "spearman", "abs": True, "layer_order": "top_down", "max_layers": None,
                    "layers": "weights", "seed": None, "pooling": "sum"}},
    description="How similar the explanation stays when the model's layers are replaced by random ones, from "
                "the output down (mean rank correlation over layers); high means the map ignores what the model "
                "learned, so lower is better.",
    reference="Adebayo et al. 2018 'Sanity checks for saliency maps'; Quantus MPRT (same re-initialisation via "
              "reset_parameters, named_modules order, Spearman of |a|). Differences: by default only Linear/Conv "
              "layers are randomised (layers='weights'; 'all' adds BatchNorm, whose reset also clears running "
              "statistics, as Quantus); each layer gets its own seed (seed=s re-seeds every layer with s, "
              "= Quantus seed s-1); the per-sample mean over layers excludes the unrandomised model (Quantus' "
              "return_average_correlation includes it: it skips the key 'orig' but stores 'original'); images "
              "are channel-pooled (pooling) before |.|.")
def model_parameter_randomisation(inp: MetricInputs, similarity: str = "spearman", abs: bool = True,
                                  layer_order: str = "top_down", max_layers: int | None = None,
                                  layers: str = "weights", seed: int | None = None, pooling: str = "sum"
                                  ) -> MetricOutput:
    """Per sample: mean over randomised layers of sim(a, a_random); curves (N, n_layers) per layer."""
    a0 = _prepare(inp.a, inp.modality, pooling, abs)
    sims, names = [], []
    for name, m in randomised_models(inp.ctx.model, layer_order, layers, max_layers, seed, inp.seed):
        a_r = inp.explain(inp.x, inp.target, ctx=inp.with_model(m)).detach()
        sims.append(map_similarity(a0, _prepare(a_r, inp.modality, pooling, abs), similarity))
        names.append(name)
        del m
    if not sims:
        nan = torch.full((inp.n,), float("nan"), dtype=torch.float64, device=inp.device)
        return MetricOutput(nan, reasons=["the model has no layer to randomise"] * inp.n)
    curves = torch.stack(sims, dim=1)
    scores = torch.nanmean(curves, dim=1)
    reasons = [None if ok else "explanation is constant for every randomised model"
               for ok in torch.isfinite(scores).tolist()]
    return MetricOutput(scores, curves=curves, reasons=reasons, extras={"layers": names})


# -- random logit ---------------------------------------------------------------------------------------
@register_metric(
    "random_logit", seeded=True, version=2, label="Random logit", family="randomisation", direction="lower",
    needs="reexplain",
    scope="sample", cost=lambda p, inp: {"forward": 0.0, "explain": 1.0},
    defaults={"*": {"similarity": "pearson", "abs": False, "pooling": "sum"}},
    description="How similar the explanation of the predicted class is to the explanation of a randomly chosen "
                "other class; high means the map does not say why this class rather than another, so lower "
                "is better.",
    reference="Sixt et al. 2020 'When explanations lie'; Quantus RandomLogit (uniform other class, re-explain, "
              "similarity). Difference: Quantus uses SSIM by default; we use the Pearson correlation of the "
              "signed maps (images: channel-pooled), which needs no image structure and works for genes and "
              "DNA; the other class is drawn per sample from the run seed and sample ids, not np.random.seed.")
def random_logit(inp: MetricInputs, similarity: str = "pearson", abs: bool = False,
                 pooling: str = "sum") -> MetricOutput:
    """Per sample: sim(a_target, a_other) with ``other`` uniform over the other classes (``extras['off_class']``)."""
    n_classes = inp.ctx.n_outputs
    if n_classes < 2:
        nan = torch.full((inp.n,), float("nan"), dtype=torch.float64, device=inp.device)
        return MetricOutput(nan, reasons=["needs a model with ≥ 2 output classes"] * inp.n)
    shift = inp.per_sample("random_logit", lambda g: torch.randint(1, n_classes, (), generator=g)).to(inp.device)
    off = (inp.target + shift) % n_classes
    a_off = inp.explain(inp.x, off).detach()
    s = map_similarity(_prepare(inp.a, inp.modality, pooling, abs),
                                _prepare(a_off, inp.modality, pooling, abs), similarity)
    reasons = [None if ok else "an explanation is constant" for ok in torch.isfinite(s).tolist()]
    return MetricOutput(s, reasons=reasons, extras={"off_class": off.cpu().numpy()})
