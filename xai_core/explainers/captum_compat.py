"""Everything xai_core takes from captum's private modules, in one place.

captum's ``DeepLift`` applies its rescale rule (multiplier = Δout / Δin) only to the module classes listed in
the private dict ``captum.attr._core.deep_lift.SUPPORTED_NON_LINEAR`` (ReLU, ELU, Sigmoid, Tanh, Softplus,
max-pooling, Softmax); through any other module it passes the plain gradient, as if the module were linear.
Our DNA models use an exponential first-layer activation (``xai_core.models.architectures.Exp``, Koo &
Ploenzke 2021). Without the rule, DeepLIFT through ``exp`` is a gradient times a difference and loses its
summation-to-delta property. captum has no public way to declare a new nonlinearity, so
``use_rescale_rule_for_exp`` adds ``Exp -> nonlinear`` (captum's own rescale rule) to that dict; it is
idempotent and called wherever a ``DeepLift`` is built (``gradient.deeplift``). The entry stays for the rest of
the process, as captum's dict is global.

``tests/test_captum_compat.py`` fails loudly if captum renames or moves these names, or changes the rule.
"""
from __future__ import annotations

from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR, nonlinear

from xai_core.models.architectures import Exp


def use_rescale_rule_for_exp() -> None:
    """Make captum's DeepLift treat ``Exp`` with its rescale rule, as it treats ReLU or Sigmoid (idempotent)."""
    SUPPORTED_NON_LINEAR.setdefault(Exp, nonlinear)
