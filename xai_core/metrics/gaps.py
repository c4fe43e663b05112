"""Prediction gaps PGI, PGU, PGR (Bontonou et al. 2023, protocol §1.7a), for every modality.

Units (genes, pixels, positions) are replaced by the baseline in cumulative chunks of ``gap`` units, in
an order given by the attributions. With Δ_k = p_y(x) − p_y(x^(k)) (softmax probability of the explained
class) after chunk k = 1 … ⌊U/gap⌋:

    PG(x) = (gap / U) · Σ_k max(Δ_k, 0)

PGI removes the most important units first (high is good), PGU the least important first (low is good),
PGR a random order (a reference level that scores every method alike). Scores are fractions in [0, 1];
the paper reports them × 100. Local orders are per sample; global orders are one order for all samples,
from the sum over the evaluated samples of the L2-normalised attributions.
"""
from __future__ import annotations

import math

import torch

from .base import CurveAxes, MetricOutput, register_metric
from .metric_inputs import MetricInputs
from .perturb import (make_baseline, order_units, removal_curve,
                      steps_from_order, unit_relevance, units_for_cost)

_DEFAULTS = {"*": {"abs": False, "baseline_param": None},
             "expression": {"gap": 10, "baseline": "train_mean"},
             "image": {"gap": 64, "baseline": "mean", "pooling": "sum"},
             "sequence": {"gap": 2, "baseline": "uniform", "dna_score": "observed"}}


def _defaults(**extra) -> dict[str, dict]:
    return {k: ({**v, **extra} if k == "*" else dict(v)) for k, v in _DEFAULTS.items()}


def _cost(p: dict, inp: MetricInputs | None) -> dict[str, float]:
    steps = units_for_cost(p, inp) // p["gap"]
    return {"forward": steps * p.get("n_random", 1) + 1 + int(bool(p.get("adjusted"))), "explain": 0}


def _gap_score(p_x: torch.Tensor, p_k: torch.Tensor, gap: int, units: int) -> torch.Tensor:
    """(gap/U) Σ_k max(p(x) − p(x^(k)), 0) over the last dimension of ``p_k``."""
    delta = p_x.reshape(-1, *([1] * (p_k.ndim - 1))) - p_k
    return gap / units * delta.clamp(min=0).sum(-1)


def prediction_gap(inp: MetricInputs, order: torch.Tensor, gap: int, baseline: str, baseline_param: float | None,
                   adjusted: bool = False) -> MetricOutput:
    """PG for a unit ``order`` (N, U) or one order (U,) for all samples; curves are the Δ_k, (N, ⌊U/gap⌋)."""
    if order.ndim == 1:
        order = order.expand(inp.n, -1)
    units = order.shape[1]
    n_point = units // gap
    base = make_baseline(baseline, inp, knob=baseline_param)
    p_x = inp.output(inp.x)
    p_k = removal_curve(inp, base, steps_from_order(order, gap), n_point)
    score = _gap_score(p_x, p_k, gap, units)
    reasons = None
    if adjusted:  # PGU / (1 - p_c(baseline))
        room = 1.0 - inp.output(base)
        score = torch.where(room > 0, score / room.clamp(min=1e-12), torch.full_like(score, math.nan))
        reasons = [None if v > 0 else "the baseline input already gets probability 1" for v in room.tolist()]
    return MetricOutput(score, curves=p_x[:, None] - p_k, reasons=reasons)


def _local(inp: MetricInputs, abs: bool, pooling: str, dna_score: str) -> torch.Tensor:
    return unit_relevance(inp.a, inp.x, inp.modality, pooling, dna_score, abs)


def global_relevance(inp: MetricInputs, abs: bool = False, pooling: str = "sum", dna_score: str = "observed"
                     ) -> torch.Tensor:
    """One relevance per unit for all samples, (U,).

    ``inp.extras["global_attr"]`` (the runner's Σ over the evaluation set of a/‖a‖₂, one input's shape, or
    already one value per unit) is used when given; otherwise Σ_n r_n over the samples at hand, with r_n
    the unit relevance of a_n/‖a_n‖₂. DNA with ``dna_score="observed"`` needs each sample's nucleotides, so
    an input-shaped ``global_attr`` is used there only with ``dna_score="sum"``.
    """
    units = inp.a[0].numel() if inp.modality == "expression" else inp.a[0, 0].numel()
    g = inp.extras.get("global_attr")
    if inp.modality == "sequence" and dna_score == "observed":
        g = inp.extras.get("global_attr_observed")  # Σ_n (a_n·x_n).sum(channels)/‖a_n‖₂ from the runner
    if g is not None:
        g = torch.as_tensor(g, dtype=inp.a.dtype, device=inp.device)
        if g.numel() == units:
            return g.reshape(-1).abs() if abs else g.reshape(-1)
        if inp.modality == "image":
            return unit_relevance(g[None], None, "image", pooling, dna_score, abs)[0]
        if inp.modality == "expression" or dna_score == "sum":
            return unit_relevance(g[None], None, inp.modality, pooling, "sum", abs)[0]
    norm = inp.a.reshape(inp.n, -1).norm(dim=1).clamp(min=1e-30)
    a = inp.a / norm.reshape(-1, *([1] * (inp.a.ndim - 1)))
    return unit_relevance(a, inp.x, inp.modality, pooling, dna_score, abs).sum(0)


_REF = ("Bontonou et al. 2023 (prediction_gap_with_dataloader, protocol §1.7a): chunks of `gap` units replaced by "
        "the baseline, PG = (gap/U) Σ_k max(Δ_k, 0), softmax probability; no Quantus equivalent. Per-sample "
        "scores (the paper averages within class, then over classes) and fractions, not × 100.")


@register_metric(
    "pgi_local", label="PGI (prediction gap on important features, local)", family="faithfulness",
    curve=CurveAxes("chunks removed (most important first)", "drop in class probability",
                    "a good map gives a large drop"),
    direction="higher", needs="model", cost=_cost, defaults=_defaults(),
    description="Removes the features this sample's explanation ranks highest, 10 genes at a time, and "
                "averages the drop in the predicted probability of the class (0-1; the paper reports x100); "
                "high means the highlighted features carry the prediction.",
    reference=_REF + " Local order: descending signed relevance of each sample.")
def pgi_local(inp: MetricInputs, gap: int = 10, baseline: str = "train_mean", baseline_param: float | None = None,
              abs: bool = False, pooling: str = "sum", dna_score: str = "observed") -> MetricOutput:
    return prediction_gap(inp, order_units(_local(inp, abs, pooling, dna_score)), gap, baseline, baseline_param)


@register_metric(
    "pgu_local", label="PGU (prediction gap on unimportant features, local)", family="faithfulness",
    curve=CurveAxes("chunks removed (least important first)", "drop in class probability",
                    "a good map gives a small drop"),
    direction="lower", needs="model", cost=_cost, defaults=_defaults(adjusted=False),
    description="Removes the features this sample's explanation ranks lowest, 10 genes at a time, and "
                "averages the drop in the predicted probability of the class (0-1; the paper reports x100); "
                "low means the features the explanation dismisses are indeed unimportant.",
    reference=_REF + " Local order: ascending signed relevance. adjusted=True divides by 1 - p_c(baseline).")
def pgu_local(inp: MetricInputs, gap: int = 10, baseline: str = "train_mean", baseline_param: float | None = None,
              abs: bool = False, pooling: str = "sum", dna_score: str = "observed", adjusted: bool = False
              ) -> MetricOutput:
    order = order_units(_local(inp, abs, pooling, dna_score), descending=False)
    return prediction_gap(inp, order, gap, baseline, baseline_param, adjusted)


@register_metric(
    "pgi_global", label="PGI (global feature order)", family="faithfulness", direction="higher", needs="model",
    curve=CurveAxes("chunks removed (most important first, one order for all samples)", "drop in class probability",
                    "a good map gives a large drop"),
    of_set=True, cost=_cost, defaults=_defaults(),
    description="Like PGI, but with one feature order for all samples (features ranked by their summed "
                "normalised relevance over the evaluated samples); high means the explanation finds the "
                "features the model uses across the data set (0-1; the paper reports x100).",
    reference=_REF + " Global order (HEAD 'sum_decreasing'): Σ over the evaluated samples of a/‖a‖₂, from "
                     "extras['global_attr'] when the runner gives it.")
def pgi_global(inp: MetricInputs, gap: int = 10, baseline: str = "train_mean", baseline_param: float | None = None,
               abs: bool = False, pooling: str = "sum", dna_score: str = "observed") -> MetricOutput:
    order = order_units(global_relevance(inp, abs, pooling, dna_score)[None])[0]
    return prediction_gap(inp, order, gap, baseline, baseline_param)


@register_metric(
    "pgu_global", label="PGU (global feature order)", family="faithfulness", direction="lower", needs="model",
    curve=CurveAxes("chunks removed (least important first, one order for all samples)", "drop in class probability",
                    "a good map gives a small drop"),
    of_set=True, cost=_cost, defaults=_defaults(adjusted=False),
    description="Like PGU, but with one feature order for all samples (lowest summed normalised relevance "
                "first); low means the features the explanation dismisses across the data set are unimportant "
                "(0-1; the paper reports x100).",
    reference=_REF + " Global order (HEAD 'sum_increasing'); adjusted=True divides by 1 - p_c(baseline).")
def pgu_global(inp: MetricInputs, gap: int = 10, baseline: str = "train_mean", baseline_param: float | None = None,
               abs: bool = False, pooling: str = "sum", dna_score: str = "observed", adjusted: bool = False
               ) -> MetricOutput:
    order = order_units(global_relevance(inp, abs, pooling, dna_score)[None], descending=False)[0]
    return prediction_gap(inp, order, gap, baseline, baseline_param, adjusted)


@register_metric(
    "pgr",
    seeded=True, label="PGR (prediction gap, random order)", family="faithfulness", direction="higher", needs="model",
    curve=CurveAxes("chunks removed (random order)", "drop in class probability",
                    "the reference: the same for every method"),
    cost=_cost, defaults={**_defaults(n_random=30), "image": {**_DEFAULTS.get("image", {}), "n_random": 5}},
    in_ranking=False,
    description="The prediction gap when features are removed in random order (30 repeats averaged): the "
                "reference level between PGI and PGU, the same for every explanation method (0-1; the paper "
                "reports x100).",
    reference=_REF + " Random order: an independent permutation per sample and repeat, seeded; all repeats "
                     "stacked into batched forwards.")
def pgr(inp: MetricInputs, gap: int = 10, baseline: str = "train_mean", baseline_param: float | None = None,
        abs: bool = False, pooling: str = "sum", dna_score: str = "observed", n_random: int = 30) -> MetricOutput:
    """Mean PG over ``n_random`` seeded random orders (one permutation per sample and repeat).

    ``abs``, ``pooling`` and ``dna_score`` are unused (the order ignores the attributions); they are
    accepted so that the five prediction gaps take the same parameters.
    """
    units = inp.a[0].numel() if inp.modality == "expression" else inp.a[0, 0].numel()
    n_point = units // gap
    base = make_baseline(baseline, inp, knob=baseline_param)

    def order(rep: int) -> torch.Tensor:  # repeat ``rep``'s random order: one permutation per sample
        # one generator per chunk, not per sample (unlike the ranked seeded metrics): PGR is the same reference for
        # every method and is not ranked, and the ig-expression study's 130 committed runs hold its values
        keys = torch.rand(inp.n, units, generator=inp.generator(f"pgr:{rep}"))
        return steps_from_order(keys.argsort(dim=1).to(inp.device), gap)

    p_x = inp.output(inp.x)
    p_k = torch.stack([removal_curve(inp, base, order(rep), n_point) for rep in range(n_random)], 1)
    per_repeat = _gap_score(p_x, p_k, gap, units)
    return MetricOutput(per_repeat.mean(1), curves=(p_x[:, None, None] - p_k).mean(1))
