"""Figure builders of the Metrics and Method ranking pages, on small hand-made frames (no streamlit)."""
import numpy as np
import pandas as pd
import pytest

from xai_core.figures import metrics as fm
from xai_core.figures import ranking as fr


def frame(rows):
    return pd.DataFrame(rows, columns=["method", "metric", "sample", "score", "se"])


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    rows = [(m, "pf", f"s{i}", v, np.nan) for m, mu in (("saliency", 0.5), ("ig", 0.8), ("random", 0.1))
            for i, v in enumerate(mu + 0.05 * rng.standard_normal(5))]
    rows += [("dead", "pf", f"s{i}", np.nan, np.nan) for i in range(5)]  # a method no metric can score
    rows[0] = ("saliency", "pf", "s0", np.nan, np.nan)  # one NaN sample
    return frame(rows)


@pytest.mark.parametrize("kind,trace", [("violin", "violin"), ("box", "box")])
def test_distribution_one_trace_per_scored_method_with_points(scores, kind, trace):
    fig = fm.score_distribution(scores, "pf", kind=kind, direction="higher",
                                methods=["saliency", "ig", "random", "dead"])
    assert [t.type for t in fig.data] == [trace] * 3
    assert [t.name for t in fig.data] == [fm.method_label(m) for m in ("saliency", "ig", "random")]
    assert len(fig.data[0].y) == 4 and np.isfinite(fig.data[0].y).all()  # the NaN sample is left out
    assert (fig.data[0].points if kind == "violin" else fig.data[0].boxpoints) == "all"
    assert list(fig.layout.xaxis.categoryarray) == [fm.method_label(m) for m in ("saliency", "ig", "random", "dead")]
    assert "higher is better" in fig.layout.yaxis.title.text
    assert any("dead" in a.text for a in fig.layout.annotations)


def test_distribution_lower_is_better_and_bad_kind(scores):
    fig = fm.score_distribution(scores, "pf", direction="lower")
    assert "lower is better" in fig.layout.yaxis.title.text and "lower is better" in fig.layout.title.text
    with pytest.raises(ValueError):
        fm.score_distribution(scores, "pf", kind="bars")


def test_set_level_metric_is_a_point_with_its_interval():
    f = frame([("a", "kld", "*", 2.0, 0.5), ("b", "kld", "*", 3.0, np.nan), ("c", "kld", "*", np.nan, np.nan)])
    fig = fm.score_distribution(f, "kld")
    assert [t.type for t in fig.data] == ["scatter", "scatter"]
    assert fig.data[0].error_y.array[0] == pytest.approx(1.96 * 0.5)
    assert fig.data[1].error_y.array[0] == 0  # NaN standard error -> no bar


def test_curve_summary_nan_aware_and_trims_the_empty_tail():
    c = np.array([[1.0, 0.5, 0.2, np.nan], [1.0, 0.7, np.nan, np.nan]])
    mean, lo, hi = fm.curve_summary(c)
    assert len(mean) == 3  # the all-NaN last step is cut
    np.testing.assert_allclose(mean, [1.0, 0.6, 0.2])
    assert lo[0] == hi[0] == 1.0  # no spread
    assert lo[2] == hi[2] == 0.2  # one sample: no band
    assert lo[1] < 0.6 < hi[1]
    assert len(fm.curve_summary(np.full((2, 3), np.nan))[0]) == 0


def test_perturbation_curves_band_and_line_per_method():
    rng = np.random.default_rng(1)
    curves = {"saliency": np.cumprod(rng.uniform(0.6, 0.9, (6, 10)), 1), "random": np.ones((6, 10)),
              "missing": None, "all_nan": np.full((6, 10), np.nan)}
    fig = fm.perturbation_curves(curves, "pixel_flipping")
    assert [t.type for t in fig.data] == ["scatter"] * 4
    bands, lines = fig.data[0::2], fig.data[1::2]
    assert all(b.fill == "toself" and b.showlegend is False for b in bands)
    assert [t.name for t in lines] == [fm.method_label("saliency"), fm.method_label("random")]
    np.testing.assert_allclose(lines[0].y, curves["saliency"].mean(0))
    assert "removal step" in fig.layout.xaxis.title.text


def test_mrr_intervals_sorted_best_on_top_with_asymmetric_bars():
    t = pd.DataFrame({"mrr": [0.4, 0.9, 0.6], "mrr_lo": [0.3, 0.8, 0.6], "mrr_hi": [0.5, 1.0, 0.7]},
                     index=pd.Index(["b", "a", "aggregate"], name="method"))
    fig = fr.mrr_intervals(t, aggregate="aggregate", components=["a"])
    (tr,) = fig.data
    assert list(tr.y) == ["a", "aggregate", "b"] and list(tr.x) == [0.9, 0.6, 0.4]
    np.testing.assert_allclose(tr.error_x.array, [0.1, 0.1, 0.1])
    np.testing.assert_allclose(tr.error_x.arrayminus, [0.1, 0.0, 0.1])
    assert fig.layout.yaxis.autorange == "reversed"
    assert tr.marker.symbol[1] == "diamond" and tr.marker.color[1] == fr.AGGREGATE_COLOUR
    assert tr.marker.color[0] == fr.COMPONENT_COLOUR and tr.marker.color[2] == fm.GREY
    assert "higher is better" in fig.layout.xaxis.title.text
    # the axis names methods by their labels; the trace keeps the identifiers (hover shows both)
    assert list(fig.layout.yaxis.ticktext) == [fm.method_label(m) for m in ("a", "aggregate", "b")]
    real = fr.mrr_intervals(t.rename(index={"a": "integrated_gradients"}))
    assert "Integrated Gradients" in " ".join(real.layout.yaxis.ticktext)
    assert "integrated_gradients" not in real.layout.yaxis.ticktext
    assert real.data[0].customdata[0][2] == fm.method_label("integrated_gradients")


def test_rank_probability_heatmap_in_percent():
    p = pd.DataFrame([[0.75, 0.25], [0.25, 0.75]], index=["a", "b"], columns=[1, 2])
    (h,) = fr.rank_probability_heatmap(p).data
    assert h.type == "heatmap" and list(h.x) == ["1st", "2nd"] and list(h.y) == ["a", "b"]
    np.testing.assert_allclose(h.z, [[75, 25], [25, 75]])
    assert (h.zmin, h.zmax) == (0, 100)


def test_metric_rank_heatmap_labels_directions():
    r = pd.DataFrame({"pf": [1, 2.5, 2.5], "complexity": [3, 1, 2]}, index=["a", "b", "c"])
    (h,) = fr.metric_rank_heatmap(r, {"pf": "higher", "complexity": "lower"}).data
    assert list(h.x) == ["pf ↑", "Complexity (entropy) ↓"] and h.text[1][0] == "2.5"  # registry labels


def test_agreement_heatmap_symmetric_scale_and_w_in_title():
    c = pd.DataFrame([[1, 0.5, np.nan], [0.5, 1, -0.2], [np.nan, -0.2, 1]], index=list("xyz"), columns=list("xyz"))
    fig = fr.agreement_heatmap(c, w=0.42, p_value=0.01)
    (h,) = fig.data
    assert (h.zmin, h.zmax, h.zmid) == (-1, 1, 0)
    np.testing.assert_array_equal(np.asarray(h.z, float), np.asarray(h.z, float).T)
    assert h.text[0][2] == "n/a"
    assert "Kendall's W = 0.42" in fig.layout.title.text
    assert "n/a" in fr.agreement_heatmap(c, w=float("nan")).layout.title.text


def test_score_bars_order_follows_direction():
    v = pd.Series({"a": 2.0, "b": 1.0, "c": 3.0})
    assert list(fr.score_bars(v, label="mean rank", higher_better=False).data[0].y) == ["b", "a", "c"]
    assert list(fr.score_bars(v, label="borda", higher_better=True).data[0].y) == ["c", "a", "b"]


def test_aggregate_vs_components_one_trace_per_method_aggregate_first():
    r = pd.DataFrame({"pf": [1.0, 2.0, 3.0, 4.0], "sp": [4.0, 3.0, 1.5, 1.5]},
                     index=["saliency", "aggregate", "random", "ig"])
    fig = fr.aggregate_vs_components(r, "aggregate", ["saliency", "ig", "smoothgrad"])
    assert [t.name for t in fig.data] == ["aggregate", "saliency (component)", "ig (component)", "random"]
    assert fig.data[0].marker.symbol == "diamond" and fig.data[0].mode == "lines+markers"
    assert fig.data[1].marker.symbol != fig.data[2].marker.symbol  # components told apart
    np.testing.assert_allclose(fig.data[0].y, [2.0, 3.0])
    assert list(fig.layout.xaxis.ticktext) == ["pf", "sp"] and fig.layout.yaxis.autorange == "reversed"
