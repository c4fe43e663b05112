"""Evaluation metrics: faithfulness, robustness, complexity, localisation, consistency, randomisation.

Every metric is registered with its family, direction, modalities, needs, scope and cost; see ``base``.
"""
from . import (agreement, complexity, consistency, faithfulness, gaps, localisation, randomisation,  # noqa: F401
               robustness)
from .base import (FAMILIES, METRICS, CurveAxes, MetricOutput, MetricResult, MetricSpec, applicable_metrics,
                   compute_metric, estimate_metric_cost, register_metric)
from .metric_inputs import MetricInputs
from .inputs import build_inputs, class_feature_sets, make_explain_fn

__all__ = ["FAMILIES", "METRICS", "CurveAxes", "MetricInputs", "MetricOutput", "MetricResult", "MetricSpec",
           "applicable_metrics", "compute_metric", "estimate_metric_cost", "register_metric", "build_inputs",
           "class_feature_sets", "make_explain_fn"]
