"""The metric registry and the one call shape every metric shares.

A metric is a function ``fn(inp: MetricInputs, **params)`` registered with machine-readable metadata
(Quantus-style): its family, whether higher or lower is better, the modalities it applies to, what it
needs (explanations only, re-running the model, re-explaining, ground truth), whether it scores each
sample or the whole set of maps, and its cost in model passes per sample.

Return values:
- ``scope="sample"``: a tensor or array of shape (N,), or ``MetricOutput`` (scores, curves, reasons);
- ``scope="set"``: a float, or ``MetricOutput`` with one score (and its standard error when known).

``compute_metric`` wraps every call: a metric that cannot be computed (a modality it does not support,
missing ground truth, NaN or all-zero attributions) yields NaN with a reason, never an exception.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.dataset import MODALITIES
from ..errors import NotApplicable, UnknownChoice, XaiError
from ..params import check_params
from ..registry import Registry
from .metric_inputs import MetricInputs

FAMILIES = ("faithfulness", "robustness", "complexity", "localisation", "consistency", "randomisation")
NEEDS = ("explanation", "model", "reexplain")  # what a metric costs beyond the attributions
GROUND_TRUTH = ("masks", "pwm", "feature_sets")

Cost = Callable[[dict[str, Any], "MetricInputs | None"], dict[str, float]]


@dataclass(frozen=True)
class CurveAxes:
    """The per-sample curve a metric returns (``MetricOutput.curves``) as the Metrics page draws it.

    Attributes
    ----------
    x
        What the steps along the curve are (the x axis).
    y
        What the curve measures at each step (the y axis).
    good
        What a good explanation does to the curve, in a few words.
    """

    x: str
    y: str
    good: str


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: its function and machine-readable metadata (``register_metric``)."""
    name: str
    label: str
    family: str
    direction: str  # "higher" or "lower" is better
    modalities: frozenset[str]
    fn: Callable[..., Any]
    defaults: dict[str, dict[str, Any]]  # "*" = all modalities, then per-modality overrides
    needs: str  # one of NEEDS
    scope: str  # "sample" or "set"
    ground_truth: str | None  # one of GROUND_TRUTH, or None
    cost: Cost  # params, inputs -> {"forward": passes per sample, "explain": re-explanations per sample}
    description: str
    reference: str  # paper / Quantus class it follows, and how it differs
    needs_conv: bool = False
    in_ranking: bool = True  # False for references that score every method alike (e.g. PGR's random order)
    population: bool = False  # uses ``inp.population`` (maps of other training seeds); its key includes them
    version: int = 1  # bump when the computation changes: stored scores are keyed by it
    curve: CurveAxes | None = None  # a perturbation curve per sample, drawn on the Metrics page with these axes
    of_set: bool = False  # per-sample scores that depend on the whole evaluated set (a global order over it)
    seeded: bool = False  # its scores or standard errors change with the run's seed: stored scores keyed by it

    def depends_on_seed(self, params: dict[str, Any] | None = None) -> bool:
        """Whether the scores (or their standard errors) change with the run's seed: a seeded metric, or one whose
        parameters choose a seeded option (a random perturbation baseline, gene clusters; ``SEEDED_VALUES``).

        Parameters
        ----------
        params : dict, optional
            The metric's parameters.

        Returns
        -------
        bool
        """
        return self.seeded or any(str(v) in SEEDED_VALUES.get(k, ()) for k, v in (params or {}).items())

    def params_for(self, modality: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The metric's parameters for ``modality``: defaults, then ``overrides`` (unknown or bad values refused)."""
        params = {**self.defaults.get("*", {}), **self.defaults.get(modality, {})}
        unknown = set(overrides or {}) - set(params)
        if unknown:
            raise UnknownChoice(f"parameter of metric {self.name}", ", ".join(sorted(unknown)), params)
        check_params(self.name, params, overrides)
        return {**params, **(overrides or {})}

    def info(self) -> dict[str, Any]:
        """Machine-readable metadata, for the CLI and the dashboard's help tooltips."""
        return {"name": self.name, "label": self.label, "family": self.family, "direction": self.direction,
                "modalities": sorted(self.modalities), "needs": self.needs, "scope": self.scope,
                "ground_truth": self.ground_truth, "in_ranking": self.in_ranking, "description": self.description,
                "reference": self.reference, "seeded": self.seeded}


METRICS: Registry[MetricSpec] = Registry("metric")
# parameter values that make any metric depend on the seed (filled where the option is defined: the random
# perturbation baselines in perturb.py, IROF's gene clusters in faithfulness.py)
SEEDED_VALUES: dict[str, set[str]] = {}


def _no_cost(params, inp):
    return {"forward": 0.0, "explain": 0.0}


def register_metric(name: str, *, label: str, family: str, direction: str, modalities: Sequence[str] = MODALITIES,
                    needs: str = "explanation", scope: str = "sample", ground_truth: str | None = None,
                    cost: Cost = _no_cost, defaults: dict[str, dict[str, Any]] | None = None,
                    description: str = "", reference: str = "", needs_conv: bool = False, in_ranking: bool = True,
                    population: bool = False, version: int = 1, curve: CurveAxes | None = None,
                    of_set: bool = False, seeded: bool = False):
    """Register ``fn(inp: MetricInputs, **params)`` as metric ``name`` (a decorator returning ``fn`` unchanged).

    Parameters
    ----------
    name : str
        The metric's name (CLI, store keys, ``--metric-param name.key=value``).
    label : str
        Its name for people (dashboard, tables).
    family : str
        One of ``FAMILIES``: faithfulness, robustness, complexity, localisation, consistency, randomisation.
    direction : str
        ``"higher"`` or ``"lower"``: which is better.
    modalities : sequence of str
        The data it applies to (default all of ``MODALITIES``).
    needs : str
        What it costs beyond the attributions: ``"explanation"``, ``"model"`` (re-runs the model) or
        ``"reexplain"`` (re-explains inputs).
    scope : str
        ``"sample"`` (one score per sample) or ``"set"`` (one score for the whole set of maps).
    ground_truth : str, optional
        ``"masks"``, ``"pwm"`` or ``"feature_sets"`` when it needs ground truth.
    cost : callable
        ``cost(params, inp) -> {"forward": passes per sample, "explain": re-explanations per sample}``; default
        no cost.
    defaults : dict, optional
        Default parameters: ``"*"`` for all modalities, then per-modality overrides.
    description : str
        One line on what it measures.
    reference : str
        The paper / Quantus class it follows, and how it differs.
    needs_conv : bool
        Needs a convolutional model.
    in_ranking : bool
        False for references that score every method alike (e.g. PGR's random order): left out of rankings.
    population : bool
        Uses ``inp.population`` (maps of other training seeds); its key includes them.
    version : int
        Bump when the computation changes: stored scores are keyed by it.
    curve : CurveAxes, optional
        The axes of the perturbation curve it returns per sample, drawn on the Metrics page.
    of_set : bool
        Its per-sample scores depend on the whole evaluated set (e.g. one feature order from all samples' maps):
        stored scores are then keyed by the set, like those of a ``scope="set"`` metric.
    seeded : bool
        Its scores or their standard errors change with the run's seed (random draws, bootstrap resamples,
        randomised layers): stored scores are then keyed by the seed. (A score of a seeded method's maps is keyed
        by the seed through the method's key already.) ``tests/test_seed_keys.py`` checks every metric not
        declared seeded.

    Returns
    -------
    callable
        The decorator.

    Raises
    ------
    ValueError
        For an unknown family, direction, ``needs``, scope or ground truth, or a name registered already.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}")
    if direction not in ("higher", "lower"):
        raise ValueError("direction must be 'higher' or 'lower'")
    if needs not in NEEDS or scope not in ("sample", "set") or ground_truth not in (None, *GROUND_TRUTH):
        raise ValueError(f"bad metadata for metric {name}")
    return METRICS.decorator(name, lambda fn: MetricSpec(
        name, label, family, direction, frozenset(modalities), fn, defaults or {}, needs, scope, ground_truth,
        cost, description, reference, needs_conv, in_ranking, population, version, curve, of_set, seeded))


@dataclass
class MetricOutput:
    """What a metric function may return instead of bare scores.

    Attributes
    ----------
    scores : Tensor or ndarray or float
        (N,) for ``scope="sample"``; one score for ``scope="set"``.
    curves : Tensor or ndarray, optional
        (N, T): e.g. the perturbation curve per sample.
    reasons : list of str or None, optional
        Why a score is NaN, per sample.
    se : float, optional
        Standard error of a set-level score (bootstrap), when known.
    extras : dict
        Anything else the metric reports.
    """
    scores: torch.Tensor | np.ndarray | float
    curves: torch.Tensor | np.ndarray | None = None  # (N, T): e.g. the perturbation curve per sample
    reasons: list[str | None] | None = None  # why a score is NaN, per sample
    se: float | None = None  # standard error of a set-level score (bootstrap), when known
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricResult:
    """What ``compute_metric`` returns.

    Attributes
    ----------
    metric, family, direction, scope : str
        The metric and its registered metadata.
    scores : ndarray
        (N,) for sample scope, (1,) for set scope; NaN where the metric cannot score.
    reasons : list of str or None
        Why a score is NaN, per score.
    params : dict
        The parameters used.
    seconds : float
        Time taken.
    se : ndarray, optional
        (1,): the standard error of a set-level score, when known.
    curves : ndarray, optional
        (N, T) per-sample curves.
    extras : dict
        Anything else the metric reported.
    """
    metric: str
    family: str
    direction: str
    scope: str
    scores: np.ndarray  # (N,) for sample scope, (1,) for set scope
    reasons: list[str | None]
    params: dict[str, Any]
    seconds: float
    se: np.ndarray | None = None
    curves: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """The mean of the finite scores (NaN when there is none)."""
        s = self.scores[np.isfinite(self.scores)]
        return float(s.mean()) if len(s) else float("nan")


def _as_np(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().double().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


def invalid_attributions(a: torch.Tensor) -> list[str | None]:
    """Per sample: why its attribution cannot be scored (non-finite, all zero), or None."""
    if not len(a):
        return []
    peak = a.reshape(len(a), -1).abs().amax(dim=1)  # NaN where a value is NaN, inf where one is infinite: one pass
    finite, nonzero = torch.stack([torch.isfinite(peak), peak > 0]).tolist()
    return [None if f and z else ("attribution has NaN or infinite values" if not f else "attribution is all zero")
            for f, z in zip(finite, nonzero)]


def missing_ground_truth(spec: MetricSpec, inp: MetricInputs) -> str | None:
    """Why ``spec`` cannot score ``inp`` for lack of the ground truth it needs, or None."""
    need = spec.ground_truth
    if need is None:
        return None
    have = {"masks": inp.masks, "pwm": inp.pwm, "feature_sets": inp.feature_sets}[need]
    if have is None or (need == "feature_sets" and not len(have)):
        what = {"masks": "lesion masks", "pwm": "planted-motif PWMs", "feature_sets": "known informative genes"}[need]
        return f"needs {what} as ground truth; this dataset has none"
    return None


def not_applicable_reason(spec: MetricSpec, inp: MetricInputs) -> str | None:
    """Why metric ``spec`` does not apply to ``inp`` (modality, conv layer, ground truth), or None."""
    if inp.modality not in spec.modalities:
        return f"{spec.name} does not apply to {inp.modality} data (applies to {', '.join(sorted(spec.modalities))})"
    if spec.needs_conv and not inp.ctx.has_conv:
        return f"{spec.name} needs a convolutional model"
    return missing_ground_truth(spec, inp)


def applicable_metrics(inp_or_modality: MetricInputs | str, has_gt: set[str] | None = None) -> list[str]:
    """Metric names that apply: by modality, and by the ground truth at hand when ``has_gt`` is given.

    Parameters
    ----------
    inp_or_modality : MetricInputs or str
        Inputs, or a modality.
    has_gt : set of str, optional
        The ground truth at hand (``masks``, ``pwm``, ``feature_sets``); None does not filter by it.

    Returns
    -------
    list of str
        In registration order.
    """
    modality = inp_or_modality if isinstance(inp_or_modality, str) else inp_or_modality.modality
    return [s.name for s in METRICS.values() if modality in s.modalities
            and (has_gt is None or s.ground_truth is None or s.ground_truth in has_gt)]


def _nan_result(spec: MetricSpec, n: int, reason: str, params: dict) -> MetricResult:
    k = n if spec.scope == "sample" else 1
    return MetricResult(spec.name, spec.family, spec.direction, spec.scope, np.full(k, np.nan), [reason] * k,
                        params, 0.0)


def compute_metric(name: str, inp: MetricInputs, *, strict: bool = False, **overrides: Any) -> MetricResult:
    """Run metric ``name`` on ``inp``; never raises for data it cannot score (NaN + reason instead).

    A modality it does not support, missing ground truth, NaN or all-zero attributions, and errors inside the
    metric give NaN with a reason; invalid samples are left out of the call and get their reasons back in
    place.

    Parameters
    ----------
    name : str
        A registered metric (``METRICS``).
    inp : MetricInputs
        The samples and their attributions (``build_inputs``).
    strict : bool
        Re-raise unexpected exceptions (tests).
    **overrides
        The metric's parameters.

    Returns
    -------
    MetricResult

    Raises
    ------
    UnknownChoice
        For an unknown metric or parameter name (user mistakes raise).
    XaiError
        For a parameter value of the wrong type or out of range.
    """
    spec = METRICS.get(name)
    params = spec.params_for(inp.modality, overrides)
    reason = not_applicable_reason(spec, inp)
    if reason:
        return _nan_result(spec, inp.n, reason, params)
    bad = invalid_attributions(inp.a)
    ok = [i for i, b in enumerate(bad) if b is None]
    if spec.scope == "set" and len(ok) < 2:
        return _nan_result(spec, inp.n, "fewer than two valid attribution maps", params)
    if not ok:
        return _nan_result(spec, inp.n, bad[0] or "no samples", params)
    run = inp if len(ok) == inp.n else inp.subset(ok)
    t0 = time.perf_counter()
    try:
        out = spec.fn(run, **params)
    except (NotApplicable, XaiError) as e:
        return _nan_result(spec, inp.n, str(e), params)
    except Exception as e:  # a metric failing on odd data must not end an evaluation
        if strict:
            raise
        return _nan_result(spec, inp.n, f"error: {type(e).__name__}: {e}", params)  # retried on the next run
    seconds = time.perf_counter() - t0
    if not isinstance(out, MetricOutput):
        out = MetricOutput(out)
    scores = _as_np(out.scores).reshape(-1)
    reasons = list(out.reasons) if out.reasons is not None else [None] * len(scores)
    reasons = [r if (r is not None or np.isfinite(s)) else "metric undefined for this sample"
               for r, s in zip(reasons, scores)]
    curves = None if out.curves is None else _as_np(out.curves)
    if spec.scope == "set":
        se = None if out.se is None else np.array([float(out.se)])
        return MetricResult(spec.name, spec.family, spec.direction, "set", scores[:1], reasons[:1], params, seconds,
                            se=se, extras=out.extras)
    if len(ok) < inp.n:  # put the valid samples' scores back among the invalid ones
        full = np.full(inp.n, np.nan)
        full[ok] = scores
        full_reasons = list(bad)
        for j, i in enumerate(ok):
            full_reasons[i] = reasons[j]
        if curves is not None:
            c = np.full((inp.n, curves.shape[1]), np.nan)
            c[ok] = curves
            curves = c
        scores, reasons = full, full_reasons
    return MetricResult(spec.name, spec.family, spec.direction, "sample", scores, reasons, params, seconds,
                        curves=curves, extras=out.extras)


def estimate_metric_cost(name: str, inp: MetricInputs | None, modality: str, n: int,
                         explain_cost: tuple[float, float] = (1.0, 1.0), **overrides: Any) -> dict[str, float]:
    """Forward and backward passes for ``n`` samples.

    The metric's own forwards plus its re-explanations priced at the method's (forward, backward) cost per sample.

    Parameters
    ----------
    name : str
        A registered metric.
    inp : MetricInputs, optional
        The inputs, when the cost depends on them.
    modality : str
        The data's modality (for the parameters' defaults).
    n : int
        The number of samples.
    explain_cost : tuple of (float, float)
        The method's forward and backward passes per sample (``estimate_cost``).
    **overrides
        The metric's parameters.

    Returns
    -------
    dict of str to float
        ``forward``, ``backward``, ``explain_calls``.
    """
    spec = METRICS.get(name)
    c = spec.cost(spec.params_for(modality, overrides), inp)
    fwd = c.get("forward", 0.0) + c.get("explain", 0.0) * explain_cost[0]
    bwd = c.get("explain", 0.0) * explain_cost[1]
    return {"forward": fwd * n, "backward": bwd * n, "explain_calls": c.get("explain", 0.0) * n}
