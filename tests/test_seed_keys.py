"""The run's seed reaches the store's keys exactly where it changes a result.

A method or metric declared seeded (``register_explainer(..., seeded=True)``, ``register_metric(..., seeded=True)``,
or a seeded parameter value such as a random perturbation baseline) is keyed by the seed, so a run with another
seed computes it anew instead of serving the seed-0 result. Everything else is shared between seeds, which is only
right when it really is seed-free: checked here for every registered method and metric on the three modalities.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from xai_core.data import load_dataset
from xai_core.explainers import EXPLAINERS, explain, make_context
from xai_core.metrics import METRICS, compute_metric
from xai_core.metrics.inputs import build_inputs
from xai_core.models import load_model
from xai_core.runner import EvalConfig, Evaluation
from xai_core.store import ResultStore

DATASETS = ("simu-small", "dna-motifs-small", "grain")
OTHER_SEED = 7
LIGHT = {"augmentation_invariant": {"n_values": 2}, "augmentation_equivariant": {"n_values": 2}}  # fewer re-explains


@pytest.fixture(scope="module", params=DATASETS)
def two_seeds(request):
    ds = load_dataset(request.param)
    model, _ = load_model(request.param, None, device="cpu", ds=ds)
    test = ds.test_idx
    idx = test[ds.y[test] == 1][:2] if ds.modality == "sequence" else test[:2]
    return ds, idx, make_context(model, ds, seed=0), make_context(model, ds, seed=OTHER_SEED)


def _maps(ctx, ds, idx, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return explain(ctx, torch.as_tensor(ds.X[idx]), torch.as_tensor(ds.y[idx]), method).attributions


def test_methods_not_declared_seeded_give_the_same_maps_under_another_seed(two_seeds):
    ds, idx, ctx0, ctx7 = two_seeds
    seed_free = [m for m in EXPLAINERS.names() if ds.modality in EXPLAINERS.get(m).modalities
                 and not EXPLAINERS.get(m).depends_on_seed(EXPLAINERS.get(m).params_for(ds.modality))]
    assert "saliency" in seed_free and "smoothgrad" not in seed_free and "aggregate" not in seed_free
    moved = [m for m in seed_free if not torch.equal(_maps(ctx0, ds, idx, m), _maps(ctx7, ds, idx, m))]
    assert not moved, f"{moved} change with the seed: declare them seeded=True (register_explainer)"


def test_the_seeded_methods_do_change_with_the_seed(two_seeds):
    """The declaration is not a blanket: a seeded method's maps really move with the seed (else it costs reruns)."""
    ds, idx, ctx0, ctx7 = two_seeds
    for m in ("smoothgrad", "random"):
        assert EXPLAINERS.get(m).depends_on_seed()
        assert not torch.equal(_maps(ctx0, ds, idx, m), _maps(ctx7, ds, idx, m))


def test_metrics_not_declared_seeded_give_the_same_scores_under_another_seed(two_seeds):
    ds, idx, ctx0, ctx7 = two_seeds
    maps = _maps(ctx0, ds, idx, "saliency")
    moved, checked = [], []
    for name in METRICS.names():
        spec = METRICS.get(name)
        if ds.modality not in spec.modalities or spec.population or spec.depends_on_seed(spec.params_for(ds.modality)):
            continue
        got = []
        for seed, ctx in ((0, ctx0), (OTHER_SEED, ctx7)):
            inp = build_inputs(ds, ctx, idx, maps, "saliency", {}, seed=seed)
            inp.extras["global_attr"] = maps.reshape(len(maps), -1).sum(0).reshape(maps.shape[1:])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = compute_metric(name, inp, **LIGHT.get(name, {}))
            got.append((np.asarray(res.scores, float), None if res.se is None else np.asarray(res.se, float)))
        (s0, e0), (s7, e7) = got
        checked.append(name)
        same = np.array_equal(s0, s7, equal_nan=True) and (e0 is None) == (e7 is None) and (
            e0 is None or np.array_equal(e0, e7, equal_nan=True))
        if not same:
            moved.append(name)
    assert len(checked) >= 8, checked
    assert not moved, f"{moved} change with the seed: declare them seeded=True (register_metric)"


def test_seeded_parameter_values_make_any_metric_seeded():
    pf = METRICS.get("pixel_flipping")
    assert not pf.depends_on_seed(pf.params_for("sequence"))
    assert pf.depends_on_seed({**pf.params_for("sequence"), "baseline": "dinuc_shuffle"})
    assert METRICS.get("irof").depends_on_seed(METRICS.get("irof").params_for("expression"))
    assert not METRICS.get("irof").depends_on_seed(METRICS.get("irof").params_for("image"))
    agg = EXPLAINERS.get("aggregate")
    assert agg.depends_on_seed() and not agg.depends_on_seed({"methods": "saliency,integrated_gradients"})


def test_a_second_seed_in_the_same_store_recomputes_only_what_depends_on_the_seed(tmp_path):
    cfg = dict(dataset="simu-small", methods=["saliency", "smoothgrad"],
               metrics=["sparseness", "faithfulness_correlation"], n=2)
    with ResultStore(tmp_path / "r.sqlite") as store:
        ev0 = Evaluation(EvalConfig(**cfg, seed=0), store)
        s0 = ev0.run()
        ev1 = Evaluation(EvalConfig(**cfg, seed=1), store)
        idx = ev1.plan().sample_idx
        assert "_seed" not in ev0.method_key("smoothgrad") and ev1.method_key("smoothgrad")["_seed"] == 1
        assert "_seed" not in ev1.method_key("saliency")
        # before the seed-1 run: the seed-free maps are already there, the seeded ones are not
        assert ev1.stored_attributions("saliency", idx)[0] is not None
        assert ev1.stored_attributions("smoothgrad", idx)[0] is None
        assert ev1.missing_scores("saliency", "sparseness", idx) == []
        assert len(ev1.missing_scores("saliency", "faithfulness_correlation", idx)) == 2
        s1 = ev1.run()
        sg0 = ev0.stored_attributions("smoothgrad", idx)[0]
        sg1 = ev1.stored_attributions("smoothgrad", idx)[0]
        assert not np.array_equal(sg0, sg1)  # new noise draws, not the seed-0 maps read back
        np.testing.assert_array_equal(ev0.stored_attributions("saliency", idx)[0],
                                      ev1.stored_attributions("saliency", idx)[0])
    for s in (s0, s1):
        assert len(s) == 2 * 2 * 2 and s["score"].notna().all()
    key = ["method", "metric", "sample"]
    both = s0.merge(s1, on=key, suffixes=("_0", "_1"))
    both = both.set_index(["method", "metric"]).sort_index()
    same = both["score_0"].eq(both["score_1"])
    assert same.loc[("saliency", "sparseness")].all()
    assert not same.loc[("saliency", "faithfulness_correlation")].all()
