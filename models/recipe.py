"""The training recipe: its options, their defaults and valid ranges (``check_recipe``), the batch augmentations
(``AUGMENTS``) and the training precision (``training_dtype``); what ``train_model`` (``models/training.py``, which
re-exports these names) trains with. The options themselves are described in ``models/training.py``'s docstring.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xai_core.errors import XaiError

from .architectures import ARCHS
from .regularizers import REGULARIZERS

__all__ = ["AUGMENTS", "DEFAULT_DTYPE", "DTYPES", "OPTIONAL_RECIPE", "Augment", "check_augment", "check_recipe",
           "reverse_complement", "training_dtype", "with_reverse_complement"]

# recipe option ``dtype`` -> the torch dtype a model is trained in (the returned model is float32 either way)
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
DEFAULT_DTYPE = "float32"
_REGULARIZER_DEFAULTS: dict[str, Any] = {"regularizer": "standard", "regularizer_params": {}, "augment": "none",
                                         "dtype": DEFAULT_DTYPE}


def reverse_complement(x: torch.Tensor) -> torch.Tensor:
    """The reverse complement of one-hot DNA (N, 4, L) over ACGT: the positions reverse, and flipping the channel
    axis swaps A<->T and C<->G (an involution).

    Parameters
    ----------
    x : Tensor
        (N, 4, L) one-hot sequences, channels in the order A, C, G, T.

    Returns
    -------
    Tensor
        The same shape.
    """
    return x.flip(1, 2)


def with_reverse_complement(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch and its reverse complement, labels repeated: (2N, 4, L) inputs, (2N,) labels."""
    return torch.cat([x, reverse_complement(x)]), torch.cat([y, y])


@dataclass(frozen=True)
class Augment:
    """A training-batch augmentation (recipe option ``augment``).

    Attributes
    ----------
    name : str
        The recipe value.
    modality : str or None
        The only modality it applies to (None: any).
    channels : int or None
        The number of input channels it needs (4 for one-hot ACGT), None when any.
    fn : callable or None
        ``fn(x, y) -> (x, y)`` on one batch; None leaves the batch as it is.
    """
    name: str
    modality: str | None = None
    channels: int | None = None
    fn: Any = None


AUGMENTS: dict[str, Augment] = {a.name: a for a in (
    Augment("none"),
    Augment("reverse_complement", "sequence", 4, with_reverse_complement),
)}


# recipe option -> (kind, lo, hi, lo_open, hi_open); "int" excludes booleans and fractions
_RECIPE_RANGES: dict[str, tuple[str, float | None, float | None, bool, bool]] = {
    "lr": ("float", 0, 10, True, False), "momentum": ("float", 0, 1, False, True),
    "weight_decay": ("float", 0, 1, False, False), "epochs": ("int", 1, 100_000, False, False),
    "batch_size": ("int", 1, 1_000_000, False, False), "patience": ("int", 1, 100_000, False, False),
    "burn_in_epochs": ("int", 0, 100_000, False, False), "burn_in_lr": ("float", 0, 10, True, False),
    "regularizer_from_epoch": ("int", 1, 100_000, False, False),
    "clean_plateau_patience": ("int", 0, 100_000, False, False),
}
# Options a recipe takes without listing them among its defaults, so that recipes (and the checkpoint keys and
# reports that record them) without these options stay as they were: a burn-in of ``burn_in_epochs`` at
# ``burn_in_lr`` with BatchNorm and dropout off (the DNA study's recipe), and the regulariser applied only from
# epoch ``regularizer_from_epoch`` (plain loss before: the study's clean epochs before adversarial training), or,
# with ``clean_plateau_patience`` N > 0, only once the plain-loss phase has gone N epochs without a better
# validation score (its best weights restored; the regularised phase then has its own ``epochs``). Either way early
# stopping restarts at the first regularised epoch: the weights kept are the best regularised epoch's.
OPTIONAL_RECIPE: dict[str, Any] = {"burn_in_epochs": 0, "burn_in_lr": 1e-3, "regularizer_from_epoch": 1,
                                   "clean_plateau_patience": 0}


def _recipe_errors() -> tuple[type, type]:
    """User errors (one CLI line) that are also the TypeError / ValueError library callers catch."""
    class UnknownOption(XaiError, TypeError):
        pass

    class BadValue(XaiError, ValueError):
        pass

    return UnknownOption, BadValue


def _bound(x) -> str:
    """A range bound as the error message shows it (``1_000_000``, ``0.5``)."""
    return f"{int(x):_}" if x >= 100_000 else f"{x:g}"


def check_recipe(arch: str, overrides: dict[str, Any], flag: str = "--set") -> dict[str, Any]:
    """The training recipe of ``arch`` with ``overrides``, every value checked for type and range.

    Errors are ``XaiError`` naming ``flag``, the option and the valid range, before any work (an unknown option
    is also a ``TypeError``, a bad value also a ``ValueError``).

    Parameters
    ----------
    arch : str
        The architecture's name (its ``train_defaults``).
    overrides : dict
        Recipe options to change (``epochs``, ``lr``, ``batch_size``, ``regularizer``, ``augment``, ``dtype``,
        ...).
    flag : str
        How error messages name the options' source (``--set``).

    Returns
    -------
    dict
        The full recipe.

    Raises
    ------
    XaiError
        For an unknown option or a value out of range.
    """
    UnknownOption, XaiError = _recipe_errors()
    base = {**_REGULARIZER_DEFAULTS, **ARCHS.get(arch).train_defaults}
    unknown = set(overrides) - set(base) - set(OPTIONAL_RECIPE)
    if unknown:
        raise UnknownOption(f"{flag}: unknown training option(s) {', '.join(sorted(unknown))}; valid: "
                       f"{', '.join(sorted({*base, *OPTIONAL_RECIPE}))}")
    if overrides.get("clean_plateau_patience") and {**base, **overrides}["regularizer"] == "standard":
        raise XaiError(f"{flag} clean_plateau_patience delays a regularizer, but the regularizer is 'standard'; "
                       f"set regularizer too, or leave clean_plateau_patience out")
    if overrides.get("burn_in_epochs") and {**base, **overrides}.get("milestones"):
        raise XaiError(f"{flag} burn_in_epochs and milestones both set the learning rate; use one of them")
    for key, v in overrides.items():
        if key in _RECIPE_RANGES:
            kind, lo, hi, lo_open, hi_open = _RECIPE_RANGES[key]
            is_int = isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
            ok = is_int if kind == "int" else (is_int or isinstance(v, (float, np.floating))) and np.isfinite(v)
            ok = ok and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
            if not ok:
                what = "a whole number" if kind == "int" else "a finite number"
                rng = f"{'(' if lo_open else '['}{_bound(lo)}, {_bound(hi)}{')' if hi_open else ']'}"
                raise XaiError(f"{flag} {key} must be {what} in {rng}, got {v!r}")
        elif key == "optimizer" and v not in ("sgd", "adam"):
            raise XaiError(f"{flag} optimizer must be sgd or adam, got {v!r}")
        elif key == "milestones" and not (isinstance(v, (list, tuple)) and all(
                isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in v)):
            raise XaiError(f"{flag} milestones must be a list of epochs >= 1, e.g. [12, 22], got {v!r}")
        elif key == "regularizer" and v not in REGULARIZERS:
            raise XaiError(f"{flag} regularizer: unknown regularizer {v!r}; valid: {', '.join(REGULARIZERS)}")
        elif key == "augment":
            if v not in AUGMENTS:
                raise XaiError(f"{flag} augment: unknown augmentation {v!r}; valid: {', '.join(AUGMENTS)}")
            need = AUGMENTS[v].modality
            if need is not None and need != ARCHS.get(arch).modality:
                raise XaiError(f"{flag} augment {v!r} is for {need} data only; model '{arch}' is for "
                               f"{ARCHS.get(arch).modality} data (use augment 'none')")
        elif key == "dtype" and v not in DTYPES:
            raise XaiError(f"{flag} dtype must be one of {', '.join(DTYPES)}, got {v!r}")
        elif key == "regularizer_params" and not isinstance(v, dict):
            raise XaiError(f"{flag} regularizer_params must be a JSON object, e.g. {{\"sigma\": 0.15}}, got {v!r}")
    return {**base, **overrides}


def check_augment(name: str, ds) -> Any:
    """The batch function of augmentation ``name`` for ``ds`` (None for ``"none"``), refused with one line when it
    does not apply to that data.

    Parameters
    ----------
    name : str
        A key of ``AUGMENTS``.
    ds : Dataset
        The training data.

    Returns
    -------
    callable or None
        ``fn(x, y) -> (x, y)`` on one batch.

    Raises
    ------
    XaiError
        For an unknown name, data of another modality, or inputs with another number of channels (also a
        ``ValueError``).
    """
    _, BadValue = _recipe_errors()
    if name not in AUGMENTS:
        raise BadValue(f"training option augment: unknown augmentation {name!r}; valid: {', '.join(AUGMENTS)}")
    aug = AUGMENTS[name]
    if aug.modality is not None and ds.modality != aug.modality:
        raise BadValue(f"training option augment {name!r} is for {aug.modality} data only; '{ds.name}' is "
                       f"{ds.modality} (use augment 'none')")
    if aug.channels is not None and ds.input_shape[0] != aug.channels:
        raise BadValue(f"training option augment {name!r} needs one-hot inputs with {aug.channels} channels (ACGT); "
                       f"'{ds.name}' has {ds.input_shape[0]}")
    return aug.fn


def training_dtype(recipe: dict[str, Any], device: str = "cpu") -> torch.dtype:
    """The torch dtype of a recipe's ``dtype`` option (default float32), refused where the device lacks it.

    Parameters
    ----------
    recipe : dict
        A training recipe (``check_recipe``); a missing ``dtype`` is float32.
    device : str
        Where the model is trained.

    Returns
    -------
    torch.dtype

    Raises
    ------
    XaiError
        For an unknown dtype, or float64 on Apple's MPS (which has no float64); also a ``ValueError``.
    """
    _, BadValue = _recipe_errors()
    name = recipe.get("dtype", DEFAULT_DTYPE)
    if name not in DTYPES:
        raise BadValue(f"training option dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    if DTYPES[name] == torch.float64 and str(device).startswith("mps"):
        raise BadValue("training option dtype float64: Apple's MPS device has no float64; train on device cpu "
                       "(or cuda), or use dtype float32")
    return DTYPES[name]
