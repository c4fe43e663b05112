"""The registries own their facts: controls and composites, curve axis labels, the batch knobs, and the
``methods`` listing with its generated page (docs/explainers.md)."""
import inspect
import json
from pathlib import Path

import pytest
import torch
from app_helpers import no_exception, open_page

import xai_core.explainers as E
from xai_core.figures.metrics import CURVES
from tests.conftest import make_dataset
from tests.metric_helpers import random_model_inputs
from xai_core import cli_methods
from xai_core.batching import BATCH
from xai_core.cli import main
from xai_core.errors import XaiError
from xai_core.metrics import METRICS, CurveAxes, build_inputs, compute_metric
from xai_core.models import build_model
from xai_core.runner import EvalConfig

ROOT = Path(__file__).resolve().parents[1]

# what the Metrics page drew before the labels moved into the metric specs: they must not change
PAGE_CURVES = {
    "pixel_flipping": ("removal step (most relevant features removed first)",
                       "confidence / original confidence", "a good map makes the curve fall fast"),
    "irof": ("segments removed (most relevant first)", "confidence / original confidence",
             "a good map makes the curve fall fast"),
    "region_perturbation": ("regions removed (most relevant first)", "drop in confidence f(x) − f(x_k)",
                            "a good map makes the drop large early"),
    "pgi_local": ("chunks removed (most important first)", "drop in class probability",
                  "a good map gives a large drop"),
    "pgi_global": ("chunks removed (most important first, one order for all samples)", "drop in class probability",
                   "a good map gives a large drop"),
    "pgu_local": ("chunks removed (least important first)", "drop in class probability",
                  "a good map gives a small drop"),
    "pgu_global": ("chunks removed (least important first, one order for all samples)", "drop in class probability",
                   "a good map gives a small drop"),
    "pgr": ("chunks removed (random order)", "drop in class probability", "the reference: the same for every method"),
}


# -- controls and composites -------------------------------------------------------------------------------------

def test_controls_and_composites_come_from_the_specs():
    assert E.controls() == ["random"] and E.RANDOM == "random"
    assert E.composites() == ["aggregate"] and E.AGGREGATE == "aggregate"
    assert E.is_control("random") and not E.is_control("saliency") and not E.is_control("no_such_method")
    assert E.is_composite("aggregate") and not E.is_composite("random") and not E.is_composite("no_such_method")
    default = E.EXPLAINERS.get("aggregate").defaults["*"]["methods"]
    assert E.components("aggregate") == default.split(",")
    assert E.components("aggregate", {"methods": " saliency, random ,,"}) == ["saliency", "random"]
    assert E.components("saliency") == [] and E.components("random", {"methods": "x"}) == []
    assert E.component_params("aggregate", ["a", "b"]) == {"methods": "a,b"}
    with pytest.raises(XaiError, match="does not combine"):
        E.component_params("saliency", ["a"])
    assert E.plain_methods(["random", "saliency", "aggregate", "unknown"]) == ["saliency", "unknown"]
    info = E.EXPLAINERS.get("aggregate").info()
    assert info["composite"] and not info["control"] and info["components"] == default.split(",")


def test_register_explainer_checks_its_facts():
    with pytest.raises(ValueError, match="batch_param 'chunk' is not one of its parameters"):
        E.base.register_explainer("test_bad_batch", label="x", family="gradient", modalities=("image",),
                                  cost=lambda p, c: (1.0, 1.0), wraps="x", description="x", batch_param="chunk",
                                  defaults={"*": {"n": 1}})(lambda ctx, x, t, n: x)
    with pytest.raises(ValueError, match="needs a default for all modalities"):
        E.base.register_explainer("test_bad_composite", label="x", family="aggregate", modalities=("image",),
                                  cost=lambda p, c: (1.0, 1.0), wraps="x", description="x",
                                  components_param="methods", defaults={"image": {"methods": "saliency"}}
                                  )(lambda ctx, x, t, methods: x)
    assert "test_bad_batch" not in E.EXPLAINERS and "test_bad_composite" not in E.EXPLAINERS
    for spec in E.EXPLAINERS.values():  # every declared internal batch knob is one of the method's parameters
        if spec.batch_param:
            assert any(spec.batch_param in per for per in spec.defaults.values()), spec.name


# -- curve axis labels ---------------------------------------------------------------------------------------------

def test_every_curve_metric_carries_its_axis_labels_and_the_page_reads_them():
    curved = {s.name: s.curve for s in METRICS.values() if s.curve is not None}
    assert set(curved) == set(PAGE_CURVES)
    for name, c in curved.items():
        assert isinstance(c, CurveAxes) and c.x.strip() and c.y.strip() and c.good.strip(), name
    assert dict(CURVES) == PAGE_CURVES  # the dashboard draws exactly what it drew before
    assert "sparseness" not in CURVES and "no_such_metric" not in CURVES
    assert CURVES.get("no_such_metric", ("step", "curve value", "")) == ("step", "curve value", "")


@pytest.mark.parametrize("modality", ["expression", "sequence"])
def test_metrics_that_declare_a_curve_return_one(modality):
    inp = random_model_inputs(modality, n=4)
    names = [s.name for s in METRICS.values() if s.curve is not None and modality in s.modalities]
    assert names
    for name in names:
        res = compute_metric(name, inp)
        assert res.curves is not None and res.curves.shape[0] == 4, name


# -- the batch knobs -----------------------------------------------------------------------------------------------

def _default(fn, name):
    return inspect.signature(fn).parameters[name].default


def test_one_name_and_one_default_per_batch_knob():
    assert (BATCH.explain_batch, BATCH.batch_size, BATCH.forward_batch) == (32, 32, 0)
    assert _default(E.explain, "explain_batch") == BATCH.explain_batch
    assert _default(E.explain_many, "explain_batch") == BATCH.explain_batch
    assert _default(build_inputs, "explain_batch") == BATCH.explain_batch
    assert _default(build_inputs, "forward_batch") == BATCH.forward_batch
    cfg = EvalConfig(dataset="simu-small")
    assert (cfg.explain_batch, cfg.batch_size, cfg.forward_batch) == (32, 32, 0)


def test_the_old_batch_size_name_still_works():
    ds = make_dataset("expression")
    model = build_model("mlp", ds.input_shape, ds.n_classes).eval()
    ctx = E.make_context(model, ds)
    x, t = torch.as_tensor(ds.X[:6]), torch.as_tensor(ds.y[:6])
    seen = []
    a = E.explain(ctx, x, t, "saliency", batch_size=4, progress=lambda e: seen.append(e.done)).attributions
    assert seen == [4, 6]
    torch.testing.assert_close(a, E.explain(ctx, x, t, "saliency", explain_batch=4).attributions)
    many = E.explain_many(ctx, x, t, ["saliency"], batch_size=4)
    torch.testing.assert_close(many["saliency"].attributions, a)


# -- python -m xai_core methods, docs/explainers.md ----------------------------------------------------------------

def test_methods_command_lists_kind_and_parameters(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if not ln.startswith(" ")}
    assert set(lines) == {n for n in E.EXPLAINERS.names() if not n.startswith("test_")}
    assert " control " in lines["random"] and " composite " in lines["aggregate"]
    assert "internal_batch_size=1024, in [1, 1048576], batch" in out
    assert main(["methods", "--modality", "expression"]) == 0
    assert "gradcam" not in capsys.readouterr().out
    assert main(["methods", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["random"]["control"] and rows["aggregate"]["composite"]
    assert rows["integrated_gradients"]["batch_param"] == "internal_batch_size"
    assert rows["integrated_gradients"]["ranges"]["n_steps"]["text"] == "in [1, 4096]"
    assert main(["methods", "--modality", "nope"]) == 2
    assert "unknown modality 'nope'; valid choices: expression, image, sequence" in capsys.readouterr().err


def test_docs_explainers_md_is_up_to_date():
    """Regenerate with: python -m xai_core methods --markdown > docs/explainers.md"""
    committed = (ROOT / "docs" / "explainers.md").read_text()
    assert committed == cli_methods.markdown(cli_methods.rows()), \
        "docs/explainers.md is stale: python -m xai_core methods --markdown > docs/explainers.md"



def test_docs_metrics_md_is_up_to_date(capsys):
    """Regenerate with: python -m xai_core metrics --markdown > docs/metrics.md (the order is stable run to run)."""
    assert main(["metrics", "--markdown"]) == 0
    assert (ROOT / "docs" / "metrics.md").read_text() == capsys.readouterr().out, \
        "docs/metrics.md is stale: python -m xai_core metrics --markdown > docs/metrics.md"

# -- the pages ask the registry ------------------------------------------------------------------------------------

def test_explanations_page_adds_the_aggregate_of_the_chosen_non_control_methods(app_store):
    at = open_page("explanations", dataset="simu-small", methods=["saliency", "input_x_gradient", "random"],
                   x_aggregate=True)
    no_exception(at)
    (plan,) = [d.value for d in at.dataframe if "status" in d.value.columns]
    assert list(plan["method"]) == ["Saliency (gradient)", "Input x Gradient", "Random (control)",
                                    "Aggregate: mean of Saliency (gradient), Input x Gradient"]  # named by parts
    at.button(key="x_run").click().run()
    no_exception(at)
    assert not [i for i in at.info if "needs at least two non-control methods" in i.value]
    at = open_page("explanations", dataset="simu-small", methods=["saliency", "random"], x_aggregate=True)
    no_exception(at)
    assert [i for i in at.info if "needs at least two non-control methods" in i.value]
