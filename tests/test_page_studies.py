"""Studies page (AppTest) on sample results built with the StudyResult API in a temporary docs folder: the
committed run's facts, comparisons, claims, tables and one figure per entry; the quick fallback; a clear message
for a broken results.json; a live quick re-run of a tiny registered study. And each figure builder."""
from __future__ import annotations

import numpy as np
import pytest
from app_helpers import no_exception, open_page, plotly_figures

from dashboard import studies_view
from xai_core.figures import studies as figs
from xai_core.studies import STUDIES, StudyResult, register_study, write_result

KINDS = ["bar", "scatter", "line", "heatmap", "images", "logos"]


def sample_figures(r: StudyResult, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    methods = ["saliency", "integrated gradients", "smoothgrad"]
    r.figure("auc", "Ground-truth recovery per method", "bar",
             {"x": methods, "series": {"ours": [0.71, 0.83, 0.78], "paper": [0.7, 0.86, 0.8]},
              "error": {"ours": [0.03, 0.02, 0.04]}, "x_title": "method", "y_title": "AUROC"}, caption="Bars: mean.")
    x = rng.normal(size=30)
    r.figure("de_vs_ig", "Differential expression against IG rank", "scatter",
             {"x": x, "y": 0.8 * x + rng.normal(0, 0.3, 30), "label": [f"G{i}" for i in range(30)],
              "group": ["marker" if i < 5 else "other" for i in range(30)], "highlight": ["G0", "G3"],
              "x_title": "DE score", "y_title": "IG score", "line": [[-2, -1.6], [2, 1.6]]}, caption="Dashed: fit.")
    r.figure("curve", "Accuracy as genes are removed", "line",
             {"x": [0, 10, 20, 50], "series": {"IG": [0.9, 0.7, 0.5, 0.3], "random": [0.9, 0.88, 0.85, 0.8]},
              "band": {"IG": [[0.88, 0.65, 0.45, 0.25], [0.92, 0.75, 0.55, 0.35]]},
              "x_title": "genes removed", "y_title": "accuracy"})
    r.figure("agree", "Agreement between methods", "heatmap",
             {"x": methods, "y": methods, "z": [[1, 0.4, -0.2], [0.4, 1, 0.5], [-0.2, 0.5, 1]], "title": "ρ"})
    mask = np.zeros((16, 16), int)
    mask[4:9, 5:11] = 1
    r.figure("maps", "Heatmaps on one kernel", "images",
             {"panels": [{"title": "input", "z": rng.random((16, 16)), "kind": "image", "outline": mask},
                         {"title": "saliency", "z": rng.normal(size=(16, 16)), "kind": "map", "outline": mask},
                         {"title": "integrated gradients", "z": rng.normal(size=(16, 16)), "kind": "map"}]})
    r.figure("logo", "Attribution logos", "logos",
             {"sequence": "ACGT" * 10, "pwm_ic": [0.0] * 15 + [1.8] * 8 + [0.0] * 17,
              "maps": {"saliency": rng.normal(size=(40, 4)), "deeplift": rng.normal(size=(40, 4))}})


def sample_result(name: str = "ig-expression", mode: str = "full", title: str = "Sample study",
                  shift: float = 0.0) -> StudyResult:
    r = StudyResult(name, title, "§1", "Someone et al. (2023), A paper", mode,
                    command=f"python -m xai_core study {name}" + (" --quick" if mode == "quick" else ""),
                    started="2025-01-01T10:00:00", duration_s=754.2,
                    machine={"platform": "Linux-x86_64", "cpus": 16, "memory_gib": 125.0, "device": "cpu"},
                    protocol={"datasets": ["simu1", "simu2"], "seeds": 5, "baseline": "zeros"},
                    summary=["IG recovers the planted genes well.", "Costs ~$0 and nothing is struck through."],
                    timings={"train": 600.0, "explain": 150.0})
    r.compare("AUROC, simu1", 0.83 + shift, 0.86, ours_sd=0.02, paper_sd=0.01, verdict="agrees",
              explanation="Within one sd.", group="Recovery")
    r.compare("AUROC, simu2", 0.61 + shift, 0.80, verdict="differs", explanation="Fewer epochs.", group="Recovery")
    r.compare("Test accuracy", 92.0 + shift, 95.0, unit="%", verdict="partly", explanation="Smaller model.",
              group="Models")
    r.claim("IG finds the true biomarkers.", "agrees", "AUROC 0.83 on simu1.")
    r.claim("Global rankings hide local ones.", "not tested", "Not in this run.")
    r.table("recovery", "Recovery per dataset", ["dataset", "auroc", "note"],
            [["simu1", 0.83, "ok"], ["simu2", 0.61, 3]], note="Mean over seeds.")
    r.table("models", "Models", ["model", "accuracy"], [["mlp", 92.0], ["linear", None]])
    sample_figures(r)
    return r


@pytest.fixture
def docs(tmp_path, monkeypatch):
    d = tmp_path / "docs"
    monkeypatch.setattr(studies_view, "DOCS_DIR", d)
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))  # live runs go here
    return d


def tables_with(at, column: str):
    return [t.value for t in at.table if column in t.value.columns]


def test_page_shows_a_committed_run(app_store, docs):
    r = sample_result()
    write_result(r, docs / "ig-expression")
    at = open_page("studies", study_pick="ig-expression")
    no_exception(at)
    assert at.title[0].value.startswith("Studies")
    assert at.radio(key="study_pick").options == ["Sample study", *(studies_view.title(n) for n in
                                                                     studies_view.study_names()[1:])]
    text = " ".join(m.value for m in at.markdown)
    for fact in ("Someone et al.", "**Mode:** full", "12 min 34 s", "16 CPUs", "python -m xai_core study ig-expression",
                 "2025-01-01T10:00:00", "IG recovers the planted genes", "\\$0"):
        assert fact in text, fact
    cmp_tables = tables_with(at, "verdict")
    assert len(cmp_tables) == 2  # grouped: Recovery, Models
    assert list(cmp_tables[0]["quantity"]) == ["AUROC, simu1", "AUROC, simu2"]
    assert cmp_tables[0]["ours"][0] == "0.83 ± 0.02" and "agrees" in cmp_tables[0]["verdict"][0]
    assert "differs" in cmp_tables[0]["verdict"][1] and cmp_tables[1]["quantity"][0] == "Test accuracy (%)"
    (claims,) = tables_with(at, "claim")
    assert "not tested" in claims["our run"][1] and claims["evidence"][0] == "AUROC 0.83 on simu1."
    frames = [d.value for d in at.dataframe]
    assert [list(f.columns) for f in frames] == [["dataset", "auroc", "note"], ["model", "accuracy"]]
    labels = {d.label for d in at.get("download_button")}
    assert "Download the comparisons (CSV)" in labels
    shown = plotly_figures(at)
    assert len(shown) == len(r.figures) == len(KINDS)
    assert [f["layout"]["title"]["text"] for f in shown] == [f["title"] for f in r.figures]
    assert "Dashed: fit." in [c.value for c in at.caption]
    assert not at.tabs  # no live run yet


def test_quick_run_is_shown_when_no_full_run_is_committed(app_store, docs):
    write_result(sample_result("grain-explainers", "quick", "Grain study"), docs / "grain-explainers" / "quick")
    at = open_page("studies", study_pick="grain-explainers")
    no_exception(at)
    assert any("No full run is committed yet" in i.value and "python -m xai_core study grain-explainers" in i.value
               for i in at.info)
    assert "**Mode:** quick" in " ".join(m.value for m in at.markdown)
    assert len(plotly_figures(at)) == len(KINDS)


def test_a_broken_results_file_gives_a_clear_message(app_store, docs):
    (docs / "dna-consistency").mkdir(parents=True)
    (docs / "dna-consistency" / "results.json").write_text('{"study": "dna-consistency", "title": ')
    at = open_page("studies", study_pick="dna-consistency")
    no_exception(at)
    (w,) = [w.value for w in at.warning]
    assert "dna-consistency/results.json" in w and "python -m xai_core study dna-consistency" in w
    assert "JSONDecodeError" in w
    (docs / "dna-consistency" / "results.json").write_text('{"study": "dna-consistency"}')  # valid JSON, not a result
    at = open_page("studies", study_pick="dna-consistency")
    no_exception(at)
    assert any("could not be read" in w.value for w in at.warning)


@pytest.fixture
def tiny_study():
    """A study that runs in milliseconds; ``fail`` makes its next run raise."""
    state = {"fail": False, "runs": 0}

    @register_study("tiny-study", title="Tiny study", section="§0", paper="Nobody (2024)")
    def run(ctx):
        if state["fail"]:
            raise RuntimeError("the tiny study broke")
        ctx.step(0.5, "half way")
        state["runs"] += 1
        full = sample_result("tiny-study", "quick", "Tiny study", shift=0.01)
        for part in ("summary", "tables", "comparisons", "claims", "figures"):
            setattr(ctx.result, part, getattr(full, part))
        ctx.step(1.0, "done")

    yield state
    STUDIES.remove("tiny-study")


def test_live_quick_rerun_shows_beside_the_committed_run_and_persists(app_store, docs, tiny_study):
    write_result(sample_result("tiny-study", "full", "Tiny study"), docs / "tiny-study")
    at = open_page("studies", study_pick="tiny-study")
    no_exception(at)
    assert len(plotly_figures(at)) == len(KINDS) and not at.tabs
    at.button(key="study_live_tiny-study").click().run()
    no_exception(at)
    assert tiny_study["runs"] == 1
    assert (studies_view.live_dir("tiny-study") / "results.json").exists()
    assert any("Live quick run finished" in s.value for s in at.success)
    assert [t.label for t in at.tabs] == ["Committed full run", "Live quick run"]
    assert len(plotly_figures(at)) == 2 * len(KINDS)  # both runs drawn, unique keys
    vs = next(d.value for d in at.dataframe if "live (quick)" in d.value.columns)
    np.testing.assert_allclose(vs["live − committed"], [0.01] * 3, atol=1e-9)
    assert "same verdict" in " ".join(m.value for m in at.markdown)

    again = open_page("studies", study_pick="tiny-study")  # a fresh session reads the live run back from disk
    no_exception(again)
    assert [t.label for t in again.tabs] == ["Committed full run", "Live quick run"]
    assert tiny_study["runs"] == 1

    tiny_study["fail"] = True
    again.button(key="study_live_tiny-study").click().run()
    assert not again.exception
    assert any("the tiny study broke" in e.value for e in [*again.error, *again.warning])
    assert [t.label for t in again.tabs] == ["Committed full run", "Live quick run"]  # what was shown stays
    assert len(plotly_figures(again)) == 2 * len(KINDS)


def test_builders_draw_every_kind():
    r = sample_result()
    by = {f["kind"]: f for f in r.to_dict()["figures"]}
    assert set(by) == set(figs.BUILDERS) == set(KINDS)

    bar = figs.build(by["bar"])
    assert [t.type for t in bar.data] == ["bar", "bar"] and [t.name for t in bar.data] == ["ours", "paper"]
    assert list(bar.data[0].error_y.array) == [0.03, 0.02, 0.04] and bar.data[1].error_y.array is None

    sc = figs.build(by["scatter"])
    assert [t.name for t in sc.data] == ["marker", "other", "highlighted", "fit"]
    assert list(sc.data[2].text) == ["G0", "G3"] and sc.data[3].mode == "lines"
    assert len(sc.data[0].x) == 5 and len(sc.data[1].x) == 25
    flags = figs.scatter({"x": [1, 2, 3], "y": [1, 2, 3], "label": ["a", "b", "c"], "highlight": [False, True, False]})
    assert [t.name for t in flags.data] == ["points", "highlighted"] and list(flags.data[-1].text) == ["b"]

    ln = figs.build(by["line"])
    assert [t.fill for t in ln.data] == [None, "tonexty", None, None]
    assert [t.name for t in ln.data if t.showlegend is not False] == ["IG", "random"]

    hm = figs.build(by["heatmap"])
    (h,) = hm.data
    assert h.type == "heatmap" and h.zmid == 0 and h.zmax == -h.zmin and list(h.x) == r.figures[3]["data"]["x"]

    im = figs.build(by["images"])
    assert [t.type for t in im.data] == ["image", "scatter", "heatmap", "scatter", "heatmap"]
    maps = [t for t in im.data if t.type == "heatmap"]
    assert maps[0].zmax == maps[1].zmax == -maps[0].zmin  # alike magnitudes: one shared symmetric scale
    assert maps[0].colorscale[0][1] != maps[0].colorscale[-1][1]

    lg = figs.build(by["logos"])
    assert {t.name for t in lg.data if t.showlegend} == {"A", "C", "G", "T"}
    assert any(s.type == "path" and s.name == "planted motif (bits)" for s in lg.layout.shapes)  # the motif track

    with pytest.raises(ValueError, match="known kinds"):
        figs.build({"name": "x", "kind": "pie", "data": {}})


def test_builders_cope_with_missing_values_and_unlike_scales():
    bar = figs.bar({"x": ["a", "b"], "series": {"s": [1.0, None], "paper": [None, None]}})
    assert len(bar.data) == 1 and np.isnan(bar.data[0].y[1])  # a series without numbers is left out
    im = figs.images({"panels": [{"title": "small", "z": [[0.001, -0.002]], "kind": "map"},
                                 {"title": "large", "z": [[10.0, -20.0]], "kind": "map"}]})
    a, b = im.data
    assert a.zmax < 1 < b.zmax  # each map on its own scale
    assert any("own symmetric scale" in ann.text for ann in im.layout.annotations)
    seq = figs.heatmap({"x": ["a"], "y": ["b"], "z": [[0.5]]})
    assert seq.data[0].zmid is None
