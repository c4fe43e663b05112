"""The explainer registry and the one call shape every method shares.

Each method is a function ``fn(ctx, x, target, **params) -> attribution`` (or ``(attribution, extras)``)
registered with: the modalities it supports, default parameters (per modality where they differ),
its cost in forward/backward passes per sample, the name of its internal batching knob (a parameter),
whether it is a control (a floor every method must beat) and, for a composite such as the aggregate,
the parameter that lists its component methods. Code that treats controls or composites apart asks
``is_control`` / ``controls`` / ``is_composite`` / ``composites`` / ``components`` here, never a name.

The batch sizes a run can set are ``xai_core.batching.BatchKnobs``, one name and one default each (``BATCH``).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..batching import BATCH
from ..errors import NotApplicable, UnknownChoice, XaiError
from ..params import check_params, param_range, range_text
from ..progress import ProgressFn, notify
from ..registry import Registry
from .context import ExplainContext

Cost = Callable[[dict[str, Any], "ExplainContext"], tuple[float, float]]


@dataclass(frozen=True)
class ExplainerSpec:
    """A registered attribution method: function, modalities, defaults, cost, what it wraps (``register_explainer``)."""
    name: str
    label: str
    family: str
    modalities: frozenset[str]
    fn: Callable[..., Any]
    defaults: dict[str, dict[str, Any]]  # "*" = all modalities, then per-modality overrides
    cost: Cost
    batch_param: str | None
    wraps: str
    description: str
    needs_conv: bool = False
    version: int = 1  # bump when the computation changes: stored attributions are keyed by it
    needs_eager: bool = False  # hooks or layer access: refused for TorchScript / torch.export models
    control: bool = False  # a reference every method must beat (random noise): never a component, never "real"
    components_param: str | None = None  # a composite: the parameter listing its component methods (comma list)
    seeded: bool = False  # its maps change with the run's seed (noise, samples): stored maps are keyed by the seed

    @property
    def composite(self) -> bool:
        """Whether the method combines the maps of other methods (its components)."""
        return self.components_param is not None

    def components(self, params: dict[str, Any] | None = None) -> list[str]:
        """The methods this composite combines, from ``params`` (its defaults for a key not given); [] if it
        is not a composite."""
        if self.components_param is None:
            return []
        value = (params or {}).get(self.components_param, self.defaults.get("*", {}).get(self.components_param))
        return split_methods(value) if isinstance(value, str) else [str(v).strip() for v in value or []]

    def depends_on_seed(self, params: dict[str, Any] | None = None) -> bool:
        """Whether the maps change with the run's seed: a seeded method, or a composite with a seeded component.

        Parameters
        ----------
        params : dict, optional
            The method's parameters (a composite's components are read from them).

        Returns
        -------
        bool
        """
        return self.seeded or any(EXPLAINERS.get(c).seeded for c in self.components(params) if c in EXPLAINERS.names())

    def params_for(self, modality: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The method's parameters for ``modality``: defaults, then ``overrides`` (unknown or bad values refused)."""
        params = {**self.defaults.get("*", {}), **self.defaults.get(modality, {})}
        unknown = set(overrides or {}) - set(params)
        if unknown:
            raise UnknownChoice(f"parameter of {self.name}", ", ".join(sorted(unknown)), params)
        check_params(self.name, params, overrides)
        return {**params, **(overrides or {})}

    def info(self) -> dict[str, Any]:
        """Machine-readable metadata, for ``python -m xai_core methods`` and docs/explainers.md."""
        keys = list(dict.fromkeys(k for per in self.defaults.values() for k in per))
        ranges = {k: r for k in keys if (r := param_range(self.name, k)) is not None}
        return {"name": self.name, "label": self.label, "family": self.family, "modalities": sorted(self.modalities),
                "control": self.control, "composite": self.composite, "components": self.components(),
                "seeded": self.depends_on_seed(),
                "needs_conv": self.needs_conv, "needs_eager": self.needs_eager, "wraps": self.wraps,
                "description": self.description, "batch_param": self.batch_param, "version": self.version,
                "defaults": {m: dict(p) for m, p in self.defaults.items()},
                "ranges": {k: {"lo": lo, "hi": hi, "lo_open": lo_open, "text": range_text(lo, hi, lo_open)}
                           for k, (lo, hi, lo_open) in ranges.items()}}


EXPLAINERS: Registry[ExplainerSpec] = Registry("method")


def register_explainer(name: str, *, label: str, family: str, modalities: tuple[str, ...], cost: Cost,
                       wraps: str, description: str, defaults: dict[str, dict[str, Any]] | None = None,
                       batch_param: str | None = None, needs_conv: bool = False, version: int = 1,
                       needs_eager: bool = False, control: bool = False, components_param: str | None = None,
                       seeded: bool = False):
    """Register ``fn(ctx, x, target, **params)`` as method ``name`` (a decorator returning ``fn`` unchanged).

    Parameters
    ----------
    name
        The method's name (CLI, store keys, ``--param name.key=value``).
    label
        Its name for people (dashboard, tables).
    family
        gradient, path, lrp, cam, perturbation, surrogate, control or aggregate.
    modalities
        The data it applies to (expression, image, sequence).
    cost
        ``cost(params, ctx) -> (forward, backward)`` passes per sample.
    wraps
        The library call it adapts (provenance).
    description
        One line on what it computes.
    defaults
        Default parameters: ``"*"`` for all modalities, then per-modality overrides.
    batch_param
        The parameter that batches the method's own passes (memory against speed); it must be one of its
        parameters.
    needs_conv
        Needs a convolutional layer (CAM methods).
    version
        Bump when the computation changes: stored attributions are keyed by it.
    needs_eager
        Hooks or reads layers: refused for TorchScript / torch.export models.
    control
        A reference every method must beat (the random control): never a component of a composite and
        left out where only real methods count.
    components_param
        For a composite (the aggregate): the parameter, with a default for all modalities (``"*"``), that lists
        the methods it combines (a comma list).
    seeded
        Its maps change with the run's seed (noise draws, random samples or baselines): stored maps are then
        keyed by the seed. A composite depends on the seed when a component does. ``tests/test_seed_keys.py``
        checks, for every method not declared seeded, that two seeds give identical maps.
    """
    star = (defaults or {}).get("*", {})
    declared = {k for per in (defaults or {}).values() for k in per}
    if batch_param is not None and batch_param not in declared:
        raise ValueError(f"method {name}: batch_param '{batch_param}' is not one of its parameters")
    if components_param is not None and components_param not in star:
        raise ValueError(f"method {name}: components_param '{components_param}' needs a default for all modalities")
    return EXPLAINERS.decorator(name, lambda fn: ExplainerSpec(
        name, label, family, frozenset(modalities), fn, defaults or {}, cost, batch_param, wraps,
        description, needs_conv, version, needs_eager, control, components_param, seeded))


def split_methods(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (blanks dropped)."""
    return [m.strip() for m in text.split(",") if m.strip()]


def components(method: str, params: dict[str, Any] | None = None) -> list[str]:
    """The methods ``method`` combines, read from its ``params``; [] when it is not a composite.

    The one place that knows how a composite names its components.

    Parameters
    ----------
    method : str
        A registered method.
    params : dict, optional
        Its parameters; the default is used for a key not given.

    Returns
    -------
    list of str

    Raises
    ------
    UnknownChoice
        For an unknown method.
    """
    return EXPLAINERS.get(method).components(params)


def component_params(method: str, methods: list[str]) -> dict[str, str]:
    """The parameters that make composite ``method`` combine ``methods`` (to merge into its parameters)."""
    spec = EXPLAINERS.get(method)
    if spec.components_param is None:
        raise XaiError(f"method '{method}' does not combine other methods")
    return {spec.components_param: ",".join(methods)}


def is_control(method: str) -> bool:
    """Whether ``method`` is a registered control (e.g. ``random``); False for an unknown name.

    Parameters
    ----------
    method : str
        A method's name.

    Returns
    -------
    bool
    """
    return method in EXPLAINERS and EXPLAINERS.get(method).control


def is_composite(method: str) -> bool:
    """Whether ``method`` is a registered composite (e.g. ``aggregate``); False for an unknown name.

    Parameters
    ----------
    method : str
        A method's name.

    Returns
    -------
    bool
    """
    return method in EXPLAINERS and EXPLAINERS.get(method).composite


def controls() -> list[str]:
    """The registered controls, in registration order."""
    return [s.name for s in EXPLAINERS.values() if s.control]


def composites() -> list[str]:
    """The registered composites, in registration order."""
    return [s.name for s in EXPLAINERS.values() if s.composite]


def plain_methods(methods: list[str]) -> list[str]:
    """``methods`` without controls and composites: those a composite may combine, in the given order.

    Parameters
    ----------
    methods : list of str
        Method names.

    Returns
    -------
    list of str
    """
    return [m for m in methods if not is_control(m) and not is_composite(m)]


def check_applicable(spec: ExplainerSpec, ctx: ExplainContext) -> None:
    """Raise ``NotApplicable`` when method ``spec`` does not fit the context (modality, eager model, conv layer)."""
    if ctx.modality not in spec.modalities:
        valid = [s.name for s in EXPLAINERS.values() if ctx.modality in s.modalities]
        raise NotApplicable(f"method '{spec.name}' does not apply to {ctx.modality} data; "
                            f"valid choices: {', '.join(valid)}")
    if spec.needs_eager and not ctx.eager:
        raise NotApplicable(f"method '{spec.name}' needs an eager model (it hooks the model's layers), and this one "
                            f"is TorchScript or an exported program; load the model as safetensors + architecture "
                            f"or --model-code")
    if spec.needs_conv and not ctx.has_conv:
        raise NotApplicable(f"method '{spec.name}' needs a convolutional model; this model has no conv layer")


def _fits(spec: ExplainerSpec, ctx: ExplainContext) -> bool:
    return (ctx.modality in spec.modalities and (ctx.has_conv or not spec.needs_conv)
            and (ctx.eager or not spec.needs_eager))


def applicable_methods(ctx: ExplainContext) -> list[str]:
    """Every method that runs on this model; a composite only when all of its default components do.

    Parameters
    ----------
    ctx : ExplainContext
        The model and its data.

    Returns
    -------
    list of str
        In registration order.
    """
    out = []
    for s in EXPLAINERS.values():
        parts = s.components()
        if _fits(s, ctx) and all(p in EXPLAINERS and _fits(EXPLAINERS.get(p), ctx) for p in parts):
            out.append(s.name)
    return out


def resolve_methods(spec: str | list[str], ctx: ExplainContext) -> list[str]:
    """``"all"`` -> every applicable method; ``"a,b"`` -> checked list.

    Parameters
    ----------
    spec : str or list of str
        ``"all"``, a comma list or a list of names.
    ctx : ExplainContext
        The model and its data.

    Returns
    -------
    list of str

    Raises
    ------
    UnknownChoice
        For an unknown method.
    NotApplicable
        For a method that does not fit the data or model.
    """
    if spec == "all" or spec == ["all"]:
        return applicable_methods(ctx)
    names = [m.strip() for m in (spec.split(",") if isinstance(spec, str) else spec) if m.strip()]
    for m in names:
        check_applicable(EXPLAINERS.get(m), ctx)
    return names


def estimate_cost(method: str, ctx: ExplainContext, n: int, **overrides: Any) -> dict[str, float]:
    """Forward and backward passes of ``method`` for ``n`` samples.

    Parameters
    ----------
    method : str
        A registered method.
    ctx : ExplainContext
        The model and its data.
    n : int
        The number of samples.
    **overrides
        Method parameters, as for ``explain``.

    Returns
    -------
    dict of str to float
        ``forward_per_sample``, ``backward_per_sample``, ``forward``, ``backward``.
    """
    spec = EXPLAINERS.get(method)
    fwd, bwd = spec.cost(spec.params_for(ctx.modality, overrides), ctx)
    return {"forward_per_sample": fwd, "backward_per_sample": bwd, "forward": fwd * n, "backward": bwd * n}


@dataclass
class Explanation:
    """What ``explain`` returns.

    Attributes
    ----------
    method : str
        The method's name.
    attributions : Tensor
        Of the input's shape.
    params : dict
        The parameters used (defaults and overrides).
    seconds : float
        Time taken.
    extras : dict
        What the method reported besides the map (concatenated over batches).
    """
    method: str
    attributions: torch.Tensor  # the input's shape
    params: dict[str, Any]
    seconds: float
    extras: dict[str, Any] = field(default_factory=dict)


def explain(ctx: ExplainContext, x: torch.Tensor | np.ndarray, target, method: str, /,
            explain_batch: int = BATCH.explain_batch, progress: ProgressFn | None = None, *,
            batch_size: int | None = None, **overrides: Any) -> Explanation:
    """Attribute ``method`` for inputs ``x`` and class ``target``; batches of ``explain_batch`` samples.

    The result has the input's shape. The first four arguments are positional-only, so a method parameter may
    itself be called ``method`` (IG's quadrature).

    Parameters
    ----------
    ctx : ExplainContext
        The model and its data (``make_context``).
    x : Tensor or ndarray
        Inputs (N, ...).
    target : Tensor or ndarray or int
        The class explained, per input or one for all; single-logit binary models always explain their one output.
    method : str
        A registered method (``EXPLAINERS``).
    explain_batch : int
        Samples per call of the method.
    progress : ProgressFn, optional
        Gets ``Progress(n_done, n, "explain", method=method)`` after each batch.
    batch_size : int, optional
        The old name of ``explain_batch``; when given, wins.
    **overrides
        The method's parameters (checked against its defaults and ranges).

    Returns
    -------
    Explanation

    Raises
    ------
    UnknownChoice
        For an unknown method or parameter.
    NotApplicable
        For a method that does not fit the data or model.
    XaiError
        For a parameter value of the wrong type or out of range.
    """
    step = explain_batch if batch_size is None else batch_size
    spec = EXPLAINERS.get(method)
    check_applicable(spec, ctx)
    params = spec.params_for(ctx.modality, overrides)
    x = torch.as_tensor(x, dtype=torch.float32, device=ctx.device)
    target = ctx.resolve_target(target)
    if target.ndim == 0:
        target = target.expand(len(x))
    chunks, extras = [], {}
    t0 = time.perf_counter()
    for i in range(0, len(x), step):
        out = spec.fn(ctx, x[i:i + step], target[i:i + step], **params)
        attr, ext = out if isinstance(out, tuple) else (out, {})
        chunks.append(attr.detach())
        for k, v in ext.items():
            extras.setdefault(k, []).append(v)
        notify(progress, min(i + step, len(x)), len(x), "explain", method=method)
    extras = {k: (np.concatenate(v) if isinstance(v[0], np.ndarray) else v) for k, v in extras.items()}
    attr = chunks[0] if len(chunks) == 1 else (torch.cat(chunks) if chunks else torch.zeros_like(x))
    if attr.shape != x.shape:
        raise RuntimeError(f"{method} returned shape {tuple(attr.shape)} for input {tuple(x.shape)}")
    return Explanation(method, attr, params, time.perf_counter() - t0, extras)
