"""One progress event for the whole engine: ``Progress``, and ``ProgressFn``, the callback that receives it.

Training (``xai_core.models.train_model`` and ``train_cached``), explaining (``explain``, ``explain_many``),
the evaluation grid (``Evaluation.run`` / ``attributions``), model selection and the studies all report
through a ``ProgressFn``: ``progress(Progress(done, total, stage, message, ...))``. The CLI turns the events
into tqdm bars or lines, the dashboard into ``st.progress`` (``dashboard.progress``).

Stages: ``"train"`` (``done`` epochs of ``total``, ``stats`` the epoch's ``train_loss`` and ``val_score``;
``Progress(0, 1, "train")`` announces that training starts), ``"explain"`` (samples of ``method``), ``"metric"``
(samples of ``method`` x ``metric``), ``"study"`` and ``"selection"`` (``done`` is a fraction of ``total``
= 1 and ``message`` says what runs). ``cached`` marks a step served from the results store.
"""
from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from tqdm import tqdm


@dataclass(frozen=True)
class Progress:
    """How far a piece of work has come: ``done`` of ``total`` in ``stage``, and a message.

    Events can also be read like the dicts the evaluation grid sent before (``e["done"]``, ``e.get("metric")``),
    so callbacks written for those keep working.

    Attributes
    ----------
    done, total : float
        How much is done, of how much (epochs, samples, or a fraction of 1).
    stage : str
        What kind of work: ``train``, ``explain``, ``metric``, ``study``, ``selection``.
    message : str
        A line for the user.
    method, metric : str or None
        The method and metric at work, where there is one.
    cached : bool
        The step was served from the results store.
    stats : mapping of str to float
        Numbers of the step (for ``train``: the epoch's ``train_loss`` and ``val_score``).
    """

    done: float
    total: float
    stage: str = ""
    message: str = ""
    method: str | None = None
    metric: str | None = None
    cached: bool = False
    stats: Mapping[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """``done / total`` clipped to [0, 1] (0 while ``total`` is not positive)."""
        return min(max(self.done / self.total, 0.0), 1.0) if self.total > 0 else 0.0

    @property
    def finished(self) -> bool:
        """Whether ``done`` has reached ``total``."""
        return self.done >= self.total

    def __getitem__(self, key: str) -> Any:
        """``e["done"]``: a field by name, like the dicts sent before (``KeyError`` for an unknown name)."""
        if key not in _FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key`` like ``dict.get``: ``default`` for an unknown name or an unset (None) field.

        Parameters
        ----------
        key : str
            A field's name.
        default : object
            What to return instead.

        Returns
        -------
        object
        """
        value = getattr(self, key, None) if key in _FIELDS else None
        return default if value is None else value


_FIELDS = frozenset(f.name for f in fields(Progress))

ProgressFn = Callable[[Progress], None]


def notify(progress: ProgressFn | None, done: float, total: float, stage: str = "", message: str = "",
           **details: Any) -> None:
    """Send ``Progress(done, total, stage, message, **details)`` to ``progress`` (nothing when it is None).

    Parameters
    ----------
    progress : ProgressFn or None
        The callback.
    done, total : float
        How much is done, of how much.
    stage : str
        What kind of work: ``train``, ``explain``, ``metric``, ``study``, ``selection``.
    message : str
        A line for the user.
    **details
        Further ``Progress`` fields: ``method``, ``metric``, ``cached``, ``stats``.
    """
    if progress is not None:
        progress(Progress(done, total, stage, message, **details))


def as_progress_fn(fn: Callable[..., None] | None) -> ProgressFn | None:
    """A ``ProgressFn`` for ``fn``; a callback of the older ``(fraction, message)`` form (two positional
    parameters, as ``run_study`` and the model selection took) is wrapped to get ``(e.fraction, e.message)``.

    Parameters
    ----------
    fn : callable or None
        A ``ProgressFn`` or a ``(fraction, message)`` callback; None gives None.
    """
    if fn is None or _required_positional(fn) != 2:
        return fn

    def legacy(e: Progress) -> None:
        fn(e.fraction, e.message)

    return legacy


def _required_positional(fn: Callable[..., Any]) -> int | None:
    """How many positional parameters ``fn`` requires (None when it takes any number or is not inspectable)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: treated as a ProgressFn
        return None
    n = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            n += 1
    return n


@contextmanager
def epoch_bar(desc: str) -> Iterator[ProgressFn]:
    """A terminal bar over training epochs (stderr), fed by ``"train"`` events; closed on exit.

    Parameters
    ----------
    desc : str
        The bar's label, e.g. ``"train mlp on simu-small"``.

    Yields
    ------
    ProgressFn
        The callback to pass as ``progress=`` to ``train_model`` or ``train_cached``.
    """
    bar = tqdm(total=None, desc=desc, unit="epoch", file=sys.stderr)

    def progress(e: Progress) -> None:
        if not e.done:  # training starts
            return
        bar.total = e.total
        bar.update(1)
        bar.set_postfix(loss=f"{e.stats['train_loss']:.4f}", val=f"{e.stats['val_score']:.4f}")

    try:
        yield progress
    finally:
        bar.close()
