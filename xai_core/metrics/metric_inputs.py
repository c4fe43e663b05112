"""What a metric receives: one batch of samples, their attributions and the model, with the shared helpers
(model output in chunks, re-explaining, per-sample seeds, subsets) every metric calls through
``MetricInputs``; and the forward batch size chosen for an input shape."""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..batching import BATCH
from ..errors import NotApplicable, UnknownChoice
from ..explainers.context import ExplainContext


def auto_forward_batch(input_shape: tuple[int, ...], device: torch.device | str = "cpu") -> int:
    """Rows per forward pass: about 2^18 input values on a CPU, 2^24 on a GPU (a power of two in [16, 4096]).

    Measured on the shipped CNN (2 CPU threads): 3x64x64 images run faster per image in batches of 16-32
    than of 128-256 (activations stay in cache); the small DNA and expression models hardly care.
    """
    elements = 1 << (24 if torch.device(device).type == "cuda" else 18)
    numel = max(1, int(np.prod(input_shape)))
    rows = max(16, min(4096, elements // numel))
    return 1 << (rows.bit_length() - 1)


@dataclass
class MetricInputs:
    """Everything a metric may use for one batch of samples and one explanation method.

    ``x``, ``a``, ``target`` live on the model's device.

    Attributes
    ----------
    ctx : ExplainContext
        The model and its training statistics.
    x : Tensor
        Inputs (N, ...).
    a : Tensor
        Their attributions, of the same shape.
    target : Tensor
        The model output that was explained (for single-logit binary models it is 0: the positive logit).
    label : Tensor
        The true class.
    method : str
        The explanation method.
    method_params : dict
        Its parameters.
    explain_fn : callable, optional
        ``(x, target, ctx=None) -> attributions``: re-explains with the same method (robustness metrics).
    sample_ids : list of str, optional
        One id per sample; ``"0"``, ``"1"``, ... when not given.
    masks : Tensor, optional
        (N, H, W) bool lesion masks.
    pwm : Tensor, optional
        (N, 4, L) generating PWMs.
    feature_sets : dict of int to ndarray, optional
        Class index -> informative feature indices.
    feature_groups : ndarray, optional
        (G,) group id per feature, -1 = none.
    class_names : list of str, optional
        The name of each class index.
    population : list of Tensor, optional
        The same samples' maps from other models (training seeds).
    forward_batch : int
        Inputs per forward pass (memory); 0 = auto (``auto_forward_batch``).
    seed : int
        Seeds the metric's random draws (``generator``).
    extras : dict
        Anything else a metric may need.
    """

    ctx: ExplainContext
    x: torch.Tensor
    a: torch.Tensor
    target: torch.Tensor
    label: torch.Tensor
    method: str = ""
    method_params: dict[str, Any] = field(default_factory=dict)
    explain_fn: Callable[..., torch.Tensor] | None = None  # (x, target, ctx=None) -> attributions
    sample_ids: list[str] | None = None
    masks: torch.Tensor | None = None  # (N, H, W) bool
    pwm: torch.Tensor | None = None  # (N, 4, L)
    feature_sets: dict[int, np.ndarray] | None = None  # class index -> informative feature indices
    feature_groups: np.ndarray | None = None  # (G,) group id per feature, -1 = none
    class_names: list[str] | None = None
    population: list[torch.Tensor] | None = None  # the same samples' maps from other models (training seeds)
    forward_batch: int = BATCH.forward_batch  # inputs per forward pass (memory); 0 = auto (``auto_forward_batch``)
    seed: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Default the sample ids to ``"0"``, ``"1"``, ... and an auto ``forward_batch`` to ``auto_forward_batch``."""
        if self.sample_ids is None:
            self.sample_ids = [str(i) for i in range(len(self.x))]
        if not self.forward_batch:
            self.forward_batch = auto_forward_batch(tuple(self.x.shape[1:]), self.x.device)

    @property
    def n(self) -> int:
        """The number of samples."""
        return len(self.x)

    @property
    def modality(self) -> str:
        """The data's modality."""
        return self.ctx.modality

    @property
    def device(self) -> torch.device:
        """The device of ``x``."""
        return self.x.device

    # -- model passes ---------------------------------------------------------------------------
    @torch.no_grad()
    def output(self, x: torch.Tensor, target: torch.Tensor | None = None, kind: str = "probability",
               model: nn.Module | None = None) -> torch.Tensor:
        """The model's output for ``target`` (default: the explained output), batched; shape (len(x),).

        Parameters
        ----------
        x : Tensor
            Inputs; may hold several perturbations per sample stacked along dim 0 (length K*N); ``target`` is then
            repeated to match.
        target : Tensor, optional
            The outputs to read (default the explained ones).
        kind : str
            "probability" (softmax, or sigmoid for one logit) or "logit".
        model : nn.Module, optional
            Another model (default the context's).

        Returns
        -------
        Tensor
            (len(x),).

        Raises
        ------
        UnknownChoice
            For another ``kind``.
        """
        model = model or self.ctx.model
        t = self.target if target is None else target
        if len(t) != len(x):
            t = t.repeat(len(x) // len(t))
        outs = []
        for i in range(0, len(x), self.forward_batch):
            z = model(x[i:i + self.forward_batch])
            if kind == "probability":
                z = torch.sigmoid(z) if z.shape[1] == 1 else torch.softmax(z, dim=1)
            elif kind != "logit":
                raise UnknownChoice("model output", kind, ["probability", "logit"])
            outs.append(z.gather(1, t[i:i + self.forward_batch, None])[:, 0])
        return torch.cat(outs) if outs else torch.zeros(0, device=x.device)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, model: nn.Module | None = None) -> torch.Tensor:
        """Predicted class, batched (single-logit models: logit > 0).

        Parameters
        ----------
        x : Tensor
            Inputs.
        model : nn.Module, optional
            Another model (default the context's).

        Returns
        -------
        Tensor
            (len(x),) class indices.
        """
        model = model or self.ctx.model
        preds = []
        for i in range(0, len(x), self.forward_batch):
            z = model(x[i:i + self.forward_batch])
            preds.append((z[:, 0] > 0).long() if z.shape[1] == 1 else z.argmax(1))
        return torch.cat(preds)

    def explain(self, x: torch.Tensor, target: torch.Tensor | None = None, ctx: ExplainContext | None = None
                ) -> torch.Tensor:
        """Re-explain ``x`` with the same method and parameters (optionally with another model's ctx).

        Parameters
        ----------
        x : Tensor
            Inputs; K perturbations of the N samples may be stacked step-major, as in ``output``.
        target : Tensor, optional
            The outputs to explain (default the explained ones, repeated to match ``x``).
        ctx : ExplainContext, optional
            Another model's context (``with_model``).

        Returns
        -------
        Tensor
            Attributions of the shape of ``x``.

        Raises
        ------
        NotApplicable
            When no explanation function was given.
        """
        if self.explain_fn is None:
            raise NotApplicable("this metric re-explains inputs, but no explanation function was given")
        t = self.target if target is None else target
        if len(t) != len(x):  # K perturbations of the N samples stacked step-major, as in ``output``
            t = t.repeat(len(x) // len(t))
        return self.explain_fn(x, t, ctx=ctx)

    def with_model(self, model: nn.Module) -> ExplainContext:
        """A copy of the explain context around another model (randomisation checks).

        Parameters
        ----------
        model : nn.Module
            The other model.

        Returns
        -------
        ExplainContext
        """
        return replace(self.ctx, model=model, extras=dict(self.ctx.extras))

    def generator(self, salt: str = "") -> torch.Generator:
        """A generator seeded by the seed, the sample ids and ``salt``: reruns on the same samples give the same
        draws. For draws over the whole set (bootstraps); a per-sample draw takes ``sample_generators``.

        Parameters
        ----------
        salt : str
            Distinguishes the draws of different uses.

        Returns
        -------
        torch.Generator
            On the CPU.
        """
        key = zlib.crc32(("|".join(self.sample_ids or []) + "#" + salt).encode())
        g = torch.Generator(device="cpu")
        g.manual_seed(self.seed * 1_000_003 + key)
        return g

    def sample_generators(self, salt: str = "") -> list[torch.Generator]:
        """One generator per sample, seeded by the seed, that sample's id and ``salt``: a sample's draws are the
        same whichever samples share its chunk (a fixed run, an adaptive round, a resumed remainder).

        Parameters
        ----------
        salt : str
            Distinguishes the draws of different uses.

        Returns
        -------
        list of torch.Generator
            On the CPU, in the order of the samples.
        """
        ids = self.sample_ids or [str(i) for i in range(self.n)]
        return [torch.Generator(device="cpu").manual_seed(self.seed * 1_000_003 + zlib.crc32(f"{i}#{salt}".encode()))
                for i in ids]

    def per_sample(self, salt: str, draw: Callable[[torch.Generator], torch.Tensor], dim: int = 0) -> torch.Tensor:
        """``draw`` called once per sample on its own generator (``sample_generators``), stacked along ``dim``.

        Parameters
        ----------
        salt : str
            Distinguishes the draws of different uses.
        draw : callable
            One sample's draw from its generator.
        dim : int
            Where the sample dimension goes.

        Returns
        -------
        Tensor
            On the CPU.
        """
        return torch.stack([draw(g) for g in self.sample_generators(salt)], dim=dim)

    def subset(self, idx: torch.Tensor | np.ndarray | list[int]) -> MetricInputs:
        """The same inputs restricted to some samples (``population`` and masks follow).

        Parameters
        ----------
        idx : Tensor or ndarray or list of int
            The samples to keep.

        Returns
        -------
        MetricInputs
        """
        idx_t = torch.as_tensor(np.asarray(idx), dtype=torch.long, device=self.x.device)
        pick = lambda t: None if t is None else t[idx_t]  # noqa: E731
        ids = [self.sample_ids[i] for i in idx_t.tolist()]
        pop = None if self.population is None else [p[idx_t] for p in self.population]
        return replace(self, x=self.x[idx_t], a=self.a[idx_t], target=self.target[idx_t], label=self.label[idx_t],
                       sample_ids=ids, masks=pick(self.masks), pwm=pick(self.pwm), population=pop)
