"""Nothing silent: a dashboard run above ``xai_core.costs.COST_LIMIT`` passes shows one warning with the estimate
and needs a ticked confirmation before its button is enabled (the command line's ``--yes``); below the limit
nothing changes."""
from app_helpers import no_exception, open_page

FAST = ["saliency", "random"]


def _cost_warnings(at):
    return [w.value for w in at.warning if "forward/backward passes" in w.value]


def _check(at, run_key, confirm_key):
    no_exception(at)
    (warning,) = _cost_warnings(at)
    assert "passes" in warning
    (box,) = [c for c in at.checkbox if c.key == confirm_key]
    assert box.label.startswith("Run anyway (about ") and not box.value
    assert at.button(key=run_key).disabled, "the run button waits for the confirmation"
    box.check().run()
    no_exception(at)
    assert not at.button(key=run_key).disabled


def test_explanations_needs_confirmation_above_the_limit(app_store, monkeypatch):
    monkeypatch.setattr("xai_core.costs.COST_LIMIT", 1)
    at = open_page("explanations", dataset="simu-small", methods=FAST)
    _check(at, "x_run", "x_confirm")


def test_explanations_below_the_limit_is_unchanged(app_store):
    at = open_page("explanations", dataset="simu-small", methods=FAST)
    no_exception(at)
    assert not _cost_warnings(at) and not [c for c in at.checkbox if c.key == "x_confirm"]
    assert not at.button(key="x_run").disabled


def test_metrics_run_panel_needs_confirmation_above_the_limit(app_store, monkeypatch):
    monkeypatch.setattr("xai_core.costs.COST_LIMIT", 1)
    at = open_page("metrics", dataset="simu-small", methods=FAST, metrics=["sparseness"])
    at.number_input(key="metrics_n").set_value(4).run()
    _check(at, "metrics_run", "metrics_confirm")
