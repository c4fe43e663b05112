"""What every explainer receives beside the inputs: the model (wrapped to output probabilities when asked),
the data statistics methods draw on (means, bounds, baselines, feature groups), the device and the seed
(``ExplainContext``), and how one is made for a model and a dataset (``make_context``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.lazy import column_stats, is_lazy
from ..errors import UnknownChoice


class ProbabilityOutput(nn.Module):
    """Wraps a model so it outputs class probabilities (softmax, or sigmoid for one logit)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities of the wrapped model for ``x``."""
        z = self.model(x)
        return torch.sigmoid(z) if z.shape[1] == 1 else torch.softmax(z, dim=1)


@dataclass
class ExplainContext:
    """What methods need beyond the model: data statistics, bounds, feature groups, seed.

    Made by ``make_context`` from training data only.

    Attributes
    ----------
    model : nn.Module
        The model, in eval mode.
    modality : str
        The data's modality.
    input_shape : tuple of int
        One input's shape.
    train_mean : Tensor
        The mean training input.
    class_means : Tensor
        (C, *input_shape): the mean training input of each class.
    low, high : Tensor
        Per-channel input minimum and maximum, broadcastable to one input.
    baseline_pool : Tensor
        Training inputs for GradientShap's baseline distribution.
    feature_groups : ndarray, optional
        (G,) group id per feature (pathways).
    train_X : ndarray, optional
        Training inputs (a seeded subsample for a lazy sparse matrix).
    seed : int
        The seed of stochastic methods.
    output : str
        ``"logit"`` or ``"probability"``: what ``forward`` returns.
    extras : dict
        Notes (e.g. ``train_X_note`` for sparse data).
    """

    model: nn.Module
    modality: str
    input_shape: tuple[int, ...]
    train_mean: torch.Tensor
    class_means: torch.Tensor  # (C, *input_shape)
    low: torch.Tensor  # per-channel input minimum, broadcastable to one input
    high: torch.Tensor
    baseline_pool: torch.Tensor  # training inputs for GradientShap's baseline distribution
    feature_groups: np.ndarray | None = None
    train_X: np.ndarray | None = None
    seed: int = 0
    output: str = "logit"
    extras: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def forward(self) -> nn.Module:
        """The module methods explain: the model for ``output="logit"``, else its probabilities."""
        return self.model if self.output == "logit" else ProbabilityOutput(self.model)

    @cached_property
    def n_outputs(self) -> int:
        """The model's number of outputs (1 for a single-logit binary model)."""
        with torch.no_grad():
            return int(self.model(self.train_mean[None].to(self.device)).shape[1])

    @cached_property
    def device(self) -> torch.device:
        """The device the model's parameters are on."""
        return next(self.model.parameters()).device

    @cached_property
    def has_conv(self) -> bool:
        """Whether the model has a ``Conv1d`` or ``Conv2d`` layer (CAM methods need one)."""
        return any(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in self.model.modules())

    @cached_property
    def eager(self) -> bool:
        """False for TorchScript and exported (fx graph) models: their layers cannot take module hooks."""
        return not any(isinstance(m, (torch.jit.ScriptModule, torch.fx.GraphModule)) for m in self.model.modules())

    def resolve_target(self, target: torch.Tensor | np.ndarray | int) -> torch.Tensor:
        """Targets as a long tensor; single-logit binary models always explain their one output."""
        t = torch.as_tensor(target, dtype=torch.long, device=self.device)
        return torch.zeros_like(t) if self.n_outputs == 1 else t


def make_context(model: nn.Module, ds, seed: int = 0, output: str = "logit", n_baselines: int = 64) -> ExplainContext:
    """Context from a ``Dataset`` (training statistics only, never test data).

    Parameters
    ----------
    model : nn.Module
        The model (put in eval mode).
    ds : Dataset
        The data; only its training rows are read (streamed for a lazy sparse matrix).
    seed : int
        Seeds the baseline pool and stochastic methods.
    output : str
        ``"logit"`` or ``"probability"``: explain the model's logits or its class probabilities.
    n_baselines : int
        How many training inputs form the baseline pool.

    Returns
    -------
    ExplainContext

    Raises
    ------
    UnknownChoice
        For an ``output`` other than ``logit`` and ``probability``.
    """
    if output not in ("logit", "probability"):
        raise UnknownChoice("model output", output, ["logit", "probability"])
    model.eval()
    device = next(model.parameters()).device
    if is_lazy(ds.X):
        return _lazy_context(model, ds, seed, output, n_baselines, device)
    Xtr = ds.X[ds.train_idx]
    ytr = ds.y[ds.train_idx]
    class_means = np.stack([Xtr[ytr == c].mean(0) if (ytr == c).any() else Xtr.mean(0)
                            for c in range(ds.n_classes)])
    reduce_axes = (0,) + tuple(range(2, Xtr.ndim)) if ds.modality == "image" else (0,)
    low, high = Xtr.min(axis=reduce_axes), Xtr.max(axis=reduce_axes)
    if ds.modality == "image":  # per-channel bounds shaped (C, 1, 1)
        low, high = low[:, None, None], high[:, None, None]
    rng = np.random.default_rng(seed)
    pool = Xtr[rng.choice(len(Xtr), size=min(n_baselines, len(Xtr)), replace=False)]
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)  # noqa: E731
    return ExplainContext(model=model, modality=ds.modality, input_shape=ds.input_shape,
                          train_mean=t(Xtr.mean(0)), class_means=t(class_means), low=t(low), high=t(high),
                          baseline_pool=t(pool), feature_groups=ds.feature_groups, train_X=Xtr, seed=seed,
                          output=output)


LAZY_TRAIN_SAMPLE = 2048  # dense training rows kept for clustering/diffusion when X is a large sparse matrix


def _lazy_context(model: nn.Module, ds, seed: int, output: str, n_baselines: int, device) -> ExplainContext:
    """Context for a lazy sparse matrix (``SparseRows``): exact statistics streamed over every training row,
    and a seeded dense subsample of at most ``LAZY_TRAIN_SAMPLE`` training rows standing in for ``train_X``
    (gene clusters, diffusion) so no step densifies the whole matrix."""
    mean, class_means, low, high = column_stats(ds.X, ds.train_idx, ds.y, ds.n_classes)
    rng = np.random.default_rng(seed)
    tr = ds.train_idx
    sub = np.sort(rng.choice(tr, size=min(LAZY_TRAIN_SAMPLE, len(tr)), replace=False))
    train_X = ds.X[sub]
    pool = train_X[rng.choice(len(sub), size=min(n_baselines, len(sub)), replace=False)]
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)  # noqa: E731
    return ExplainContext(model=model, modality=ds.modality, input_shape=ds.input_shape, train_mean=t(mean),
                          class_means=t(class_means), low=t(low), high=t(high), baseline_pool=t(pool),
                          feature_groups=ds.feature_groups, train_X=train_X, seed=seed, output=output,
                          extras={"train_X_note": f"{len(sub)} of {len(tr)} training rows (sparse data)"})
