"""A seeded metric's score of a sample does not depend on which samples share its chunk: every per-sample draw
(perturbed copies, random subsets, random orders, the other class, a random baseline) comes from that sample's
own generator (the seed, the sample's id and the use), so a fixed run, an adaptive run's small rounds and a
resumed remainder score a sample alike."""
import numpy as np
import pytest
import torch

from xai_core.explainers import explain, make_context
from xai_core.metrics import METRICS, build_inputs, compute_metric
from xai_core.models import build_model
from tests.conftest import make_dataset

# (metric, modality, parameters): every seeded per-sample draw, and both seeded baselines
CASES = [
    ("max_sensitivity", "expression", {"nr_samples": 3}),
    ("avg_sensitivity", "image", {"nr_samples": 3}),
    ("max_sensitivity", "sequence", {"nr_samples": 3}),  # nucleotide substitutions
    ("noise_consistency", "expression", {"n_draws": 3}),
    ("faithfulness_correlation", "expression", {"nr_runs": 12}),
    ("faithfulness_correlation", "image", {"nr_runs": 12}),
    ("random_logit", "expression", {}),
    ("pixel_flipping", "expression", {"baseline": "uniform_noise"}),
    ("pixel_flipping", "sequence", {"baseline": "dinuc_shuffle"}),
]
# seeded metrics whose draws are over the set of samples (bootstraps) or the model (randomised layers), and PGR:
# the same reference for every method, not ranked, its values held by ig-expression's committed runs, so its draws
# stay one generator per chunk
SET_LEVEL = {"feature_agreement_global", "model_parameter_randomisation", "pgr"}


def test_every_seeded_per_sample_metric_is_covered():
    seeded = {n for n in METRICS.names() if METRICS.get(n).seeded and METRICS.get(n).scope == "sample"
              and not METRICS.get(n).population and not METRICS.get(n).of_set}
    assert seeded - SET_LEVEL <= {c[0] for c in CASES}, seeded - SET_LEVEL - {c[0] for c in CASES}


def _inputs(modality: str, n: int = 6):
    """An untrained model on a tiny 4-class dataset (random_logit's other class is then a real draw)."""
    torch.manual_seed(0)
    ds = make_dataset(modality, n=40, n_classes=4)
    arch = {"expression": "mlp", "image": "simplenet", "sequence": "dna_deep"}[modality]
    ctx = make_context(build_model(arch, ds.input_shape, ds.n_classes).eval(), ds)
    idx = np.asarray(ds.test_idx[:n])
    a = explain(ctx, torch.as_tensor(ds.X[idx]), torch.as_tensor(ds.y[idx]), "saliency").attributions
    return build_inputs(ds, ctx, idx, a, "saliency", {})


@pytest.mark.parametrize("metric,modality,params", CASES, ids=[f"{c[0]}-{c[1]}-{c[2].get('baseline', '')}"
                                                                 for c in CASES])
def test_a_samples_score_does_not_depend_on_its_chunk(metric, modality, params):
    inp = _inputs(modality)
    whole = compute_metric(metric, inp, strict=True, **params).scores
    order = [5, 3, 4]  # other companions, other order
    part = compute_metric(metric, inp.subset(order), strict=True, **params).scores
    alone = compute_metric(metric, inp.subset([4]), strict=True, **params).scores
    # equal up to float32 rounding of other batch shapes (a changed draw moves a score by far more)
    np.testing.assert_allclose(part, whole[order], rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(alone, whole[[4]], rtol=1e-5, atol=1e-6, equal_nan=True)
    inp.seed = 3  # and the draws do follow the seed
    other = compute_metric(metric, inp, strict=True, **params).scores
    assert not np.allclose(other, whole, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_scores_of_a_seeded_baseline_are_keyed_by_its_draws():
    from xai_core.metrics.perturb import baseline_draws_key
    assert baseline_draws_key({"baseline": "uniform_noise"})["_baseline_draws"] == 2
    assert baseline_draws_key({"baseline": "dinuc_shuffle", "k": 1})["_baseline_draws"] == 2
    assert baseline_draws_key({"baseline": "mean"}) == {"baseline": "mean"}
    assert {n for n in METRICS.names() if METRICS.get(n).version == 2} >= {c[0] for c in CASES} - {"pixel_flipping"}
