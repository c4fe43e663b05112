"""The batch sizes a run can set: one named set of knobs, one default each (no heavy imports, so that the
command line can read the defaults without loading torch)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchKnobs:
    """The batch sizes of a run: memory against speed, one name and one default each.

    A method's own internal batch (IG's ``internal_batch_size``, the noise tunnel's ``nt_samples_batch_size``,
    occlusion's and the surrogates' ``perturbations_per_eval``) is one of its parameters, named by its spec's
    ``batch_param``; its default is the method's.

    Attributes
    ----------
    explain_batch
        Samples per explainer call: ``explain`` / ``explain_many`` (``batch_size`` is its old name, still
        accepted there), ``EvalConfig.explain_batch``, ``build_inputs`` (re-explanations inside a metric)
        and ``python -m xai_core explain --batch-size``. The seeded methods (SmoothGrad, VarGrad, LIME,
        KernelSHAP, GradientSHAP) draw their noise per sample (``explainers.seeding``), so no map depends on it.
    batch_size
        Samples per metric call (``EvalConfig.batch_size``, ``evaluate --batch-size``).
    forward_batch
        Inputs per forward pass inside a metric (``MetricInputs.forward_batch``, ``evaluate --forward-batch``);
        0 = chosen by input size (``metrics.base.auto_forward_batch``).
    """

    explain_batch: int = 32
    batch_size: int = 32
    forward_batch: int = 0


BATCH = BatchKnobs()
