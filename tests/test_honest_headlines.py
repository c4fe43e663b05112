"""Honest headlines: the controls floor (P(method above the random control) and its flag) on synthetic scores
with a known answer, the headline worded by P(rank 1), and both carried by ``ranking.csv`` and the CLI."""
import numpy as np
import pandas as pd
import pytest

from xai_core.cli import main
from xai_core.ranking import CONTROL_FLOOR, mc_mrr
from xai_core.ranking_words import floor_sentence, headline

METRICS = ["pixel_flipping", "sparseness", "roc_auc"]


def synthetic(means: dict[str, float], n: int = 12, sd: float = 0.3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"dataset": "toy", "model": "m", "method": meth, "metric": met, "sample": str(s),
                          "score": mu + rng.normal(0, sd)}
                         for meth, mu in means.items() for met in METRICS for s in range(n)])


def test_controls_floor_known_answer():
    # saliency far above random; smoothgrad drawn from the same distribution as random
    res = mc_mrr(synthetic({"saliency": 3.0, "smoothgrad": 0.0, "random": 0.0}), n_draws=4000)
    t = res.table
    assert t.at["saliency", "p_above_control"] == pytest.approx(1.0)
    assert not t.at["saliency", "not_better_than_random"]
    assert t.at["smoothgrad", "p_above_control"] < CONTROL_FLOOR
    assert t.at["smoothgrad", "not_better_than_random"]
    assert np.isnan(t.at["random", "p_above_control"]) and not t.at["random", "not_better_than_random"]
    assert res.params["controls"] == ["random"] and res.params["control_floor"] == CONTROL_FLOOR
    text = floor_sentence(res)
    assert text.startswith("SmoothGrad is not better than the random control on these metrics")
    assert "95 %" in text and "Saliency" not in text


def test_no_floor_columns_without_a_control_and_no_sentence_when_all_beat_it():
    res = mc_mrr(synthetic({"saliency": 1.0, "smoothgrad": 0.0}), n_draws=500)
    assert "p_above_control" not in res.table.columns and floor_sentence(res) is None
    res = mc_mrr(synthetic({"saliency": 3.0, "smoothgrad": 2.0, "random": 0.0}), n_draws=500)
    assert floor_sentence(res) is None


def table(p1: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"method": list(p1), "p_rank_1": list(p1.values())})


@pytest.mark.parametrize("p1, expected", [
    ({"deeplift": 0.93, "saliency": 0.07}, "DeepLIFT ranks first (first in 93 % of the draws)."),
    ({"deeplift": 0.62, "saliency": 0.38}, "DeepLIFT leads, but is first in only 62 % of the draws."),
    ({"saliency": 0.22, "deeplift": 0.25, "random": 0.2, "lime": 0.33},
     "Not decided: LIME is first in 33 % of the draws, DeepLIFT in 25 %."),
    ({"deeplift": 0.90, "saliency": 0.10}, "DeepLIFT ranks first (first in 90 % of the draws)."),
    ({"deeplift": 0.50, "saliency": 0.50}, "DeepLIFT leads, but is first in only 50 % of the draws."),
])
def test_headline_worded_by_p_rank_1(p1, expected):
    assert headline(table(p1)) == expected


def test_headline_of_a_result_and_a_custom_label():
    res = mc_mrr(synthetic({"saliency": 3.0, "smoothgrad": 0.0, "random": 0.0}), n_draws=1000)
    assert headline(res) == "Saliency (gradient) ranks first (first in 100 % of the draws)."
    assert headline(res, label=str.upper).startswith("SALIENCY ranks first")
    with pytest.raises(Exception, match="p_rank_1"):
        headline(pd.DataFrame({"method": ["a", "b"], "borda": [1.0, 2.0]}))


def test_ranking_csv_and_cli_carry_the_floor_and_the_headline(tmp_path, capsys):
    scores = synthetic({"saliency": 3.0, "smoothgrad": 0.0, "random": 0.0})
    scores.to_csv(tmp_path / "scores.csv", index=False)
    assert main(["rank", "--scores", str(tmp_path / "scores.csv"), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "toy/m: Saliency (gradient) ranks first (first in 100 % of the draws)." in out
    assert "toy/m: SmoothGrad is not better than the random control on these metrics" in out
    csv = pd.read_csv(tmp_path / "r" / "ranking.csv").set_index("method")
    assert {"p_above_control", "not_better_than_random"} <= set(csv.columns)
    assert bool(csv.at["smoothgrad", "not_better_than_random"]) and not csv.at["saliency", "not_better_than_random"]
    assert headline(csv) == headline(mc_mrr(scores, missing="worst"))
    assert floor_sentence(csv) is not None


# -- the dashboard side: page sentences, banner, links, Studies page, first-load message --------------------------
def test_separation_note_known_answer():
    from dashboard.evaluate import separation_note

    rng = np.random.default_rng(1)
    close = pd.DataFrame([{"method": m, "metric": "pixel_flipping", "sample": str(s), "score": rng.normal(0.5, 0.1)}
                          for m in ("saliency", "smoothgrad", "random") for s in range(10)])
    note = separation_note(close, "pixel_flipping")
    assert note and "within each other's 95 % intervals" in note and "10 samples" in note
    apart = close.assign(score=close["score"] + close["method"].map({"saliency": 0, "smoothgrad": 5, "random": 10}))
    assert separation_note(apart, "pixel_flipping") is None


@pytest.mark.parametrize("meta, weak", [
    ({"n_classes": 2, "test_accuracy": 0.68, "test_balanced_accuracy": 0.66}, True),  # the old DNA model
    ({"n_classes": 2, "test_balanced_accuracy": 0.85, "test_auroc": 0.74}, True),
    ({"n_classes": 2, "test_balanced_accuracy": 0.84, "test_auroc": 0.93}, False),
    ({"n_classes": 10, "test_balanced_accuracy": 0.67}, False),  # pbmc68k: chance is 0.1
    ({"checks": {"chance_level": True}}, True),
    ({}, False),
])
def test_model_quality_rule(meta, weak):
    from dashboard.quality import assess

    assert bool(assess(meta)) is weak


def test_weak_model_banner_on_every_page(app_store, monkeypatch):
    import streamlit as st
    from app_helpers import no_exception, open_page

    from dashboard import quality

    monkeypatch.setattr(quality, "assess", lambda meta: "test balanced accuracy 0.55, where chance is 0.50")
    for page in ("home", "metrics"):
        at = open_page(page)
        no_exception(at)
        assert any("close to chance" in w.value and "explain a weak model" in w.value for w in at.warning), page
    monkeypatch.setattr(quality, "assess", lambda meta: None)
    st.cache_data.clear()
    at = open_page("home")
    assert not any("close to chance" in w.value for w in at.warning)


def test_unknown_dataset_or_model_in_a_link_is_named():
    from app_helpers import APP
    from streamlit.testing.v1 import AppTest

    for params, word in (({"dataset": "nope"}, "nope"), ({"dataset": "simu-small", "model": "nope-model"},
                                                         "nope-model")):
        at = AppTest.from_file(APP, default_timeout=300)
        for k, v in params.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception
        assert any(word in w.value for w in at.warning), [w.value for w in at.warning]


def test_studies_duration_and_ranking_facts(tmp_path, monkeypatch):
    from dashboard import studies_view
    from xai_core.studies import StudyResult

    (tmp_path / "RUNS.md").write_text("| study | command | wall clock | when | notes |\n|---|---|---|---|---|\n"
                                      "| toy | `x` | 43 min 46 s (2,626 s) | 2026-11-24 09:30 UTC | n |\n")
    monkeypatch.setattr(studies_view, "DOCS_DIR", tmp_path)
    r = StudyResult("toy", "Toy", "§1", "paper", "full", duration_s=106.0, timings={"metrics": 2900.0})
    line = studies_view.duration_line(r)
    assert "43 min 46 s" in line and "reusing runs cached by earlier ones" in line and "1 min 46 s" in line
    r.duration_s = 2626.0
    assert studies_view.duration_line(r) == "**Duration:** 43 min 46 s"
    # a staged run of hours: its wall clock in hours and minutes
    (tmp_path / "RUNS.md").write_text("| study | command | wall clock | when | notes |\n|---|---|---|---|---|\n"
                                      "| toy | `x` | 216 min 0 s of wall clock in two sessions | 2026-11-30 | n |\n")
    r.duration_s = 4752.0
    line = studies_view.duration_line(r)
    assert "**3 h 36 min**" in line and "1 h 19 min" in line
    # stage times: the computation's when they add up to it (cached runs keep their times) ...
    r.timings = {"models": 20000.0, "report": 1.0}
    assert studies_view.stage_caption(r).startswith("Time per stage when it was computed")
    # ... but a re-render from a results store says they are its own, and points at the computation's wall clock
    r.timings = {"metrics": 0.3, "pooling": 46.4}
    cap = studies_view.stage_caption(r)
    assert "of the invocation that wrote this file" in cap and "3 h 36 min in all" in cap and "46.4 s" in cap


def test_first_build_message(tmp_path, monkeypatch):
    from dashboard import state

    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path))
    msg = state.first_build_message("grain")
    assert msg and "for the first time" in msg and f"about {state.BUILD_SECONDS['grain']} s" in msg
    from xai_core.data import load_dataset

    load_dataset("simu-small")
    assert state.first_build_message("simu-small") is None
    assert state.first_build_message("no-such-dataset") is None


def test_method_ranking_page_words_the_headline_and_the_floor_like_the_engine(app_store):
    from app_helpers import no_exception, open_page

    from dashboard import state
    from xai_core.runner import ranking_input
    from xai_core.store import ResultStore

    at = open_page("method_ranking", methods=["saliency", "random"], metrics=["sparseness", "complexity"],
                   eval_n=4, rank_agg=True)
    assert any(t.label.startswith("Include Aggregate (mean of ") for t in at.toggle)
    (run,) = [b for b in at.button if b.key == "ranking_run"]
    run.click().run()
    no_exception(at)
    with ResultStore(app_store) as store:
        frame = ranking_input(store.scores_frame(dataset="simu-small"))
    res = mc_mrr(frame, n_draws=10_000, dist="normal", seed=0, missing="worst")
    agg = next(t.label for t in at.toggle if t.label.startswith("Include ")).removeprefix("Include ")
    label = lambda m: agg if m == "aggregate" else state.method_label(m)  # noqa: E731
    assert any(headline(res, label) in m.value for m in at.markdown), [m.value for m in at.markdown][:8]
    floor = floor_sentence(res, label)
    assert (floor is None and not any("not better than" in w.value for w in at.warning)) or \
        any(floor == w.value for w in at.warning)
    shown = next(d.value for d in at.dataframe if "mrr" in d.value.columns)
    assert {"p_above_control", "not_better_than_random"} <= set(shown.columns)


def test_one_duration_format_for_the_report_and_the_page():
    """The study report's run table and the Studies page word durations the same way (hours from 60 min on);
    the report adds the seconds."""
    from xai_core.studies.report import duration_text
    assert duration_text(None) == "—"
    assert duration_text(42.25) == "42.2 s"
    assert duration_text(1903) == "31 min 43 s" and duration_text(1903, total=True) == "31 min 43 s (1903 s)"
    assert duration_text(12960) == "3 h 36 min" and duration_text(4752, total=True) == "1 h 19 min (4752 s)"


def test_reproduce_line_names_one_out_folder():
    """A study run with --out gets a reproduce line with the DIR placeholder only, not two --out options."""
    from xai_core.studies.report import without_out
    cmd = "python -m xai_core study grain-explainers --set n_robust=32 --out /tmp/stage --compare old.json"
    assert without_out(cmd) == "python -m xai_core study grain-explainers --set n_robust=32"
    quoted = "python -m xai_core study x --set 'k=a b'"
    assert without_out("python -m xai_core study x --out=/a --set 'k=a b'") == quoted
