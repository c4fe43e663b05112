"""Model selection page (AppTest, no browser): empty state, a tiny population trained and scored from the
page, the scatter's traces, reopening without a click, and opening a member's explanations."""
from app_helpers import no_exception, open_page, plotly_figures


TINY = dict(sel_size="custom", sel_members=3, sel_epochs=1, sel_n=8)


def _values(v):
    """A trace array as a list (plotly 6 writes numeric arrays as base64 typed arrays)."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def _scatter(at):
    figs = [f for f in plotly_figures(at) if any(t.get("name") == "members" for t in f["data"])]
    assert len(figs) == 1
    return figs[0]


def test_page_with_nothing_trained_explains_and_offers_the_button(app_store, pop_cache):
    at = open_page("model_selection", dataset="simu-small")
    no_exception(at)
    assert "Consistency" in " ".join(m.value for m in at.markdown)
    assert [b for b in at.button if b.key == "sel_run"]
    assert any("Nothing to show yet" in i.value for i in at.info)
    assert not plotly_figures(at)


def test_tiny_population_trains_scores_draws_and_opens_explanations(app_store, pop_cache):
    at = open_page("model_selection", dataset="simu-small")
    at.radio(key="sel_size").set_value("custom").run()
    at.number_input(key="sel_members").set_value(3)
    at.number_input(key="sel_epochs").set_value(1)
    at.number_input(key="sel_n").set_value(8).run()
    at.button(key="sel_run").click().run()
    no_exception(at)
    fig = _scatter(at)
    names = [t["name"] for t in fig["data"]]
    assert names[0] == "members" and "Pareto front" in names and "selected model" in names
    members = fig["data"][0]
    x = _values(members["x"])
    assert len(x) == 3 and all(0 <= v <= 100 for v in x)
    assert {c[0] for c in members["customdata"]} == {p.stem.split("__pop-")[1] for p in
                                                      pop_cache.glob("app_models/simu-small__pop-*.safetensors")}
    assert len(at.selectbox(key="sel_member").options) == 3

    # keyboard alternative to clicking a point, then open that member's explanations
    other = members["customdata"][-1][0]
    at.selectbox(key="sel_member").set_value(other).run()
    no_exception(at)
    at.button(key="sel_open").click().run()
    no_exception(at)
    want = str(pop_cache / "app_models" / f"simu-small__pop-{other}.safetensors")
    assert at.session_state["model"] == want
    assert "Model selection" not in [t.value for t in at.title]  # switched to the Explanations page

    # a fresh session with the same settings draws from the stored results, without a click
    again = open_page("model_selection", dataset="simu-small", **TINY)
    no_exception(again)
    assert not [b for b in again.button if b.key == "sel_run"]
    assert len(_values(_scatter(again)["data"][0]["x"])) == 3
