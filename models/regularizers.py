"""Training-time regularisers of the DNA consistency study (Majdandzic et al. 2022, protocol §3.3).

Each regulariser is a function ``fn(model, x, target, loss, **params) -> loss tensor`` that computes one
batch's training loss; ``train_model`` picks it by name from ``REGULARIZERS`` (recipe option
``regularizer``, default ``"standard"``, options in ``regularizer_params``). They act at training time only:
the trained model and how it is explained are unchanged. ``target`` is the batch's soft target: (N,) floats
in [0, 1] for single-logit binary models, (N, C) class probabilities otherwise (``soft_targets``), so mixing
two targets gives a valid soft label for both losses.

- ``standard``: plain loss;
- ``gn``: Gaussian noise N(0, σ²) added to the input (σ = 0.15, the study's in-vivo script);
- ``manifold-gn``: the same noise added to the output of a randomly chosen hidden activation;
- ``mixup``: convex combination of the batch with a shuffled copy, λ ~ Beta(α, α), α = 1 (Zhang et al.);
- ``manifold-mixup``: the same at a randomly chosen hidden activation (Verma et al.);
- ``adversarial``: PGD on the (one-hot) input in an L∞ ball of radius ε = 0.05, mixed 50/50 with the clean
  loss. The study used 10 PGD steps; the default here is one step (FGSM) to keep the CPU budget;
- ``sn``: the loss plus ``weight`` (1e-2) times the sum over the convolution and dense layers of their largest
  singular value (each weight as an (out, in·k) matrix), estimated by ``iterations`` (15) power iterations: our
  reading of the study's ``SpectralNormRegularizer(1e-2, 15)``, a penalty, not a reparametrisation.

The recipe options ``regularizer_from_epoch`` (the study's 5 clean epochs before adversarial training: 6),
``clean_plateau_patience`` (clean epochs until the validation score has not improved for that many, then the
regulariser from the clean best, with its own ``epochs`` and early stopping) and ``burn_in_epochs`` /
``burn_in_lr`` (its 2-epoch burn-in at lr 1e-3 with BatchNorm and dropout off) are applied by ``train_model``.
Early stopping restarts at the first regularised epoch, so a member trained with a regulariser keeps the weights of
its best regularised epoch, never those of a clean epoch before it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .architectures import Exp

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Regularizer = Callable[..., torch.Tensor]
DEFAULT = "standard"


def soft_targets(y: torch.Tensor, n_out: int) -> torch.Tensor:
    """Labels -> what the regularisers mix: (N,) floats for one logit, (N, C) one-hot probabilities otherwise."""
    return y.float() if n_out == 1 else F.one_hot(y.long(), n_out).float()


def make_loss(n_out: int) -> Loss:
    """``loss(logits, soft_target)``: BCE-with-logits for one logit, cross-entropy with probabilities otherwise."""
    if n_out == 1:
        return lambda z, t: F.binary_cross_entropy_with_logits(z[:, 0], t)
    return lambda z, t: F.cross_entropy(z, t)


def cut_points(model: nn.Module) -> list[int]:
    """Where a flat ``nn.Sequential`` can be split for manifold regularisers: after each hidden activation
    (ReLU or exponential), not after the last one's head. Empty for other models (input-level fallback)."""
    if not isinstance(model, nn.Sequential):
        return []
    acts = [i + 1 for i, m in enumerate(model) if isinstance(m, (nn.ReLU, Exp))]
    return [k for k in acts if k < len(model)]


def _split(model: nn.Module, x: torch.Tensor, include_input: bool = True) -> tuple[torch.Tensor, Callable]:
    """(hidden representation h at a random cut, rest) with ``rest(h)`` the model's logits; the input itself
    is one of the candidate cuts when ``include_input``."""
    cuts = ([0] if include_input else []) + cut_points(model)
    if not cuts:
        return x, model
    k = cuts[int(torch.randint(len(cuts), (1,)))]
    if k == 0:
        return x, model
    return model[:k](x), model[k:]


def _mix(h: torch.Tensor, t: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    lam = float(torch.distributions.Beta(alpha, alpha).sample()) if alpha > 0 else 1.0
    perm = torch.randperm(len(h))
    return lam * h + (1 - lam) * h[perm], lam * t + (1 - lam) * t[perm]


def standard(model: nn.Module, x: torch.Tensor, t: torch.Tensor, loss: Loss) -> torch.Tensor:
    return loss(model(x), t)


def gaussian_noise(model: nn.Module, x: torch.Tensor, t: torch.Tensor, loss: Loss, sigma: float = 0.15
                   ) -> torch.Tensor:
    return loss(model(x + sigma * torch.randn_like(x)), t)


def manifold_gaussian_noise(model: nn.Module, x: torch.Tensor, t: torch.Tensor, loss: Loss, sigma: float = 0.15
                            ) -> torch.Tensor:
    h, rest = _split(model, x)
    return loss(rest(h + sigma * torch.randn_like(h)), t)


def mixup(model: nn.Module, x: torch.Tensor, t: torch.Tensor, loss: Loss, alpha: float = 1.0) -> torch.Tensor:
    xm, tm = _mix(x, t, alpha)
    return loss(model(xm), tm)


def manifold_mixup(model: nn.Module, x: torch.Tensor, t: torch.Tensor, loss: Loss, alpha: float = 1.0
                   ) -> torch.Tensor:
    h, rest = _split(model, x)
    hm, tm = _mix(h, t, alpha)
    return loss(rest(hm), tm)


def adversarial_example(model: nn.Module, x: torch.Tensor, t: torch.Tensor, loss: Loss, epsilon: float = 0.05,
                        steps: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(PGD example within ε of x in L∞, the clean loss with its graph kept). steps = 1 is FGSM."""
    x0 = x.detach().requires_grad_(True)
    clean = loss(model(x0), t)
    (g,) = torch.autograd.grad(clean, x0, retain_graph=True)
    step = epsilon if steps <= 1 else 2.5 * epsilon / steps
    adv = (x + step * g.sign()).detach()
    for _ in range(max(0, int(steps) - 1)):
        adv.requires_grad_(True)
        (g,) = torch.autograd.grad(loss(model(adv), t), adv)
        adv = (x + (adv.detach() + step * g.sign() - x).clamp(-epsilon, epsilon)).detach()
    return adv, clean


def adversarial(model: nn.Module, x: torch.Tensor, t: torch.Tensor, loss: Loss, epsilon: float = 0.05,
                steps: int = 1, adv_weight: float = 0.5) -> torch.Tensor:
    adv, clean = adversarial_example(model, x, t, loss, epsilon, steps)
    return (1 - adv_weight) * clean + adv_weight * loss(model(adv), t)


def largest_singular_value(w: torch.Tensor, iterations: int = 15) -> torch.Tensor:
    """σ_max of ``w`` as an (out, rest) matrix by power iteration from a fixed start (deterministic); the singular
    vectors are held fixed, so the gradient is u vᵀ, as in spectral normalisation."""
    m = w.reshape(w.shape[0], -1)
    with torch.no_grad():
        v = torch.ones(m.shape[1], dtype=m.dtype, device=m.device) / m.shape[1] ** 0.5
        u = F.normalize(m @ v, dim=0)
        for _ in range(max(1, int(iterations))):
            v = F.normalize(m.T @ u, dim=0)
            u = F.normalize(m @ v, dim=0)
    return u @ m @ v


def spectral_norm_penalty(model: nn.Module, x: torch.Tensor, t: torch.Tensor, loss: Loss, weight: float = 1e-2,
                          iterations: int = 15) -> torch.Tensor:
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    return loss(model(x), t) + weight * sum(largest_singular_value(m.weight, iterations) for m in layers)


REGULARIZERS: dict[str, Regularizer] = {
    "standard": standard, "gn": gaussian_noise, "manifold-gn": manifold_gaussian_noise, "mixup": mixup,
    "manifold-mixup": manifold_mixup, "adversarial": adversarial, "sn": spectral_norm_penalty,
}


def get_regularizer(name: str, params: dict[str, Any] | None = None) -> Callable[..., torch.Tensor]:
    """``fn(model, x, target, loss)`` of regulariser ``name`` with ``params`` bound (unknown name: ValueError)."""
    if name not in REGULARIZERS:
        raise ValueError(f"unknown regularizer '{name}'; valid: {', '.join(REGULARIZERS)}")
    fn, params = REGULARIZERS[name], dict(params or {})
    return lambda model, x, t, loss: fn(model, x, t, loss, **params)
