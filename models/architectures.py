"""Architectures of the three studies, as flat ``nn.Sequential`` stacks.

Flat sequentials keep every module distinct (captum's DeepLift needs unshared ReLUs) and let
zennit's ``SequentialMergeBatchNorm`` canonizer fold each BatchNorm into the layer before it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from xai_core.registry import Registry


class Exp(nn.Module):
    """Exponential activation (Koo & Ploenzke 2021) for the first layer of DNA models."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``exp(x)``."""
        return torch.exp(x)


@dataclass(frozen=True)
class ArchSpec:
    """A registered architecture: its builder, options (``defaults``), training recipe and output layout."""
    name: str
    modality: str
    description: str
    build: Callable[..., nn.Module]  # build(input_shape, n_outputs, **kwargs)
    defaults: dict[str, Any] = field(default_factory=dict)  # architecture knobs
    train_defaults: dict[str, Any] = field(default_factory=dict)  # recipe for train_model
    single_logit_binary: bool = False  # binary tasks get one logit + sigmoid (DNA study)


ARCHS: Registry[ArchSpec] = Registry("model architecture")


def register_arch(name: str, modality: str, description: str, defaults: dict | None = None,
                  train_defaults: dict | None = None, single_logit_binary: bool = False):
    """Decorator adding ``build(input_shape, n_outputs, **options) -> nn.Module`` to ``ARCHS`` under ``name``."""
    return ARCHS.decorator(name, lambda fn: ArchSpec(name, modality, description, fn, defaults or {},
                                                     train_defaults or {}, single_logit_binary))


def n_outputs_for(arch: str, n_classes: int) -> int:
    """The number of outputs ``arch`` has for ``n_classes``: 1 for a binary task of a single-logit architecture."""
    return 1 if (ARCHS.get(arch).single_logit_binary and n_classes == 2) else n_classes


def build_model(arch: str, input_shape: tuple[int, ...], n_classes: int, **kwargs: Any) -> nn.Module:
    """A fresh, untrained model of architecture ``arch``.

    Parameters
    ----------
    arch : str
        The architecture's name (``ARCHS``).
    input_shape : tuple of int
        One input's shape, ``Dataset.input_shape``.
    n_classes : int
        The number of classes (a single-logit binary architecture gets 1 output for 2 classes).
    **kwargs
        Architecture options, over its ``defaults``.

    Returns
    -------
    nn.Module

    Raises
    ------
    UnknownChoice
        For an unknown architecture.
    TypeError
        For an option the architecture does not have.
    """
    spec = ARCHS.get(arch)
    unknown = set(kwargs) - set(spec.defaults)
    if unknown:
        raise TypeError(f"architecture '{arch}' has no option(s) {sorted(unknown)}; valid: {sorted(spec.defaults)}")
    return spec.build(tuple(input_shape), n_outputs_for(arch, n_classes), **{**spec.defaults, **kwargs})


MAX_PARAMETERS = 200_000_000  # 800 MB of float32 weights: far above every built-in model


def parameter_count(arch: str, input_shape: tuple[int, ...], n_classes: int, **kwargs: Any) -> int:
    """How many parameters ``build_model`` would allocate, counted on the meta device (no memory used)."""
    with torch.device("meta"):
        model = build_model(arch, input_shape, n_classes, **kwargs)
    return sum(p.numel() for p in model.parameters())


def find_conv_layers(model: nn.Module) -> list[nn.Module]:
    """The model's ``Conv1d`` and ``Conv2d`` layers, in order (GradCAM-style methods need one)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]


_SGD = dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, epochs=25, milestones=(12, 22),
            batch_size=32, patience=25)


# -- expression (§1.5) -----------------------------------------------------------------------------
@register_arch("lr", "expression", "Logistic regression with input dropout 0.2 (Bontonou et al.)",
               defaults={"dropout": 0.2}, train_defaults=_SGD)
def _lr(input_shape, n_out, dropout):
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(input_shape[0], n_out))


@register_arch("mlp", "expression", "MLP, one hidden layer of 20 units with BatchNorm (Bontonou et al.)",
               defaults={"hidden": 20, "dropout": 0.0}, train_defaults=_SGD)
def _mlp(input_shape, n_out, hidden, dropout):
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(input_shape[0], hidden), nn.BatchNorm1d(hidden),
                         nn.ReLU(), nn.Linear(hidden, n_out))


# -- images (§2.3) ---------------------------------------------------------------------------------
@register_arch("simplenet", "image",
               "SimpleNet-style CNN: 3x3 conv+BN+ReLU stacks, max-pool stages, 1x1 convs, global max-pool",
               defaults={"channels": (16, 16, "p", 32, 32, "p", 48, 48, "p", "k64", "k48"), "dropout": 0.1,
                         "bn_momentum": 0.1},
               train_defaults=dict(optimizer="adam", lr=2e-3, weight_decay=1e-4, epochs=25, batch_size=32,
                                   patience=6))
def _simplenet(input_shape, n_out, channels, dropout, bn_momentum):
    layers: list[nn.Module] = []
    c_in = input_shape[0]
    for c in channels:
        if c == "p":
            layers += [nn.MaxPool2d(2, 2), nn.Dropout2d(dropout)]
            continue
        k = 1 if isinstance(c, str) and c.startswith("k") else 3
        c_out = int(c[1:]) if isinstance(c, str) else int(c)
        layers += [nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.BatchNorm2d(c_out, eps=1e-5, momentum=bn_momentum),
                   nn.ReLU()]
        c_in = c_out
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c_in, n_out)]
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("relu"))
            nn.init.zeros_(m.bias)
    return model


# -- DNA (§3.3) ------------------------------------------------------------------------------------
_DNA_TRAIN = dict(optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=30, batch_size=128, patience=6)


def _act(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "exponential": Exp}
    if name not in acts:
        raise ValueError(f"unknown activation '{name}'; valid: {sorted(acts)}")
    return acts[name]()


def _block(c_in, c_out, k, bn, act: nn.Module, dropout, pool=None) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv1d(c_in, c_out, k, padding=k // 2)]
    layers += [nn.BatchNorm1d(c_out)] if bn else []
    layers += [act] + ([nn.Dropout(dropout)] if dropout else [])
    return layers + ([nn.MaxPool1d(pool)] if pool else [])


@register_arch("dna_deep", "sequence",
               "Deep DNA CNN: conv 24(k19)-32-48-64 with pooling, dense 96 (regularisation study)",
               defaults={"activation": "relu", "batchnorm": True, "dropout": 0.1, "dense_dropout": 0.5},
               train_defaults=_DNA_TRAIN, single_logit_binary=True)
def _dna_deep(input_shape, n_out, activation, batchnorm, dropout, dense_dropout):
    length = input_shape[1]
    layers = (_block(4, 24, 19, batchnorm, _act(activation), dropout)
              + _block(24, 32, 7, batchnorm, nn.ReLU(), dropout, pool=4)
              + _block(32, 48, 5, batchnorm, nn.ReLU(), dropout, pool=4)
              + _block(48, 64, 5, batchnorm, nn.ReLU(), dropout, pool=3))
    flat = 64 * (((length // 4) // 4) // 3)
    layers += [nn.Flatten(), nn.Linear(flat, 96)] + ([nn.BatchNorm1d(96)] if batchnorm else [])
    layers += [nn.ReLU(), nn.Dropout(dense_dropout), nn.Linear(96, n_out)]
    return nn.Sequential(*layers)


@register_arch("dna_shallow", "sequence",
               "Shallow DNA CNN: conv 24(k19), max-pool 50, conv 48(k3), dense 96 (Koo & Ploenzke)",
               defaults={"activation": "relu", "batchnorm": False, "dropout": 0.1},
               train_defaults=_DNA_TRAIN, single_logit_binary=True)
def _dna_shallow(input_shape, n_out, activation, batchnorm, dropout):
    length = input_shape[1]
    layers = (_block(4, 24, 19, batchnorm, _act(activation), dropout, pool=50)
              + _block(24, 48, 3, batchnorm, nn.ReLU(), dropout, pool=2))
    flat = 48 * ((length // 50) // 2)
    layers += [nn.Flatten(), nn.Linear(flat, 96), nn.ReLU(), nn.Dropout(dropout), nn.Linear(96, n_out)]
    return nn.Sequential(*layers)
