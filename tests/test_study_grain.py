"""The grain-explainers study (docs/protocols/grain-explainers.md §2) in quick mode: what it writes, and that its
numbers are the engine's (the ranking is mc_mrr on the stored scores, the score table the stored means)."""
import json
import math

import numpy as np
import pytest

VERDICTS = {"agrees", "partly", "differs", "not comparable", "not tested"}
CLAIMS = ("invariant augmentations", "best on every metric", "mean of explanations", "EpsilonPlusFlat")


def num(cell) -> float:
    """The leading number of a table cell ("0.812 ± 0.013" -> 0.812)."""
    return float(str(cell).split("±")[0].strip())


@pytest.fixture(scope="module")
def grain(tmp_path_factory):
    """The quick study with its results store kept, run once per session (test_study_reproduce compares it)."""
    from tests.test_study_reproduce import quick_run

    return quick_run("grain-explainers", tmp_path_factory)


def _table(result, name):
    return next(t for t in result.tables if t["name"] == name)


def test_writes_results_and_report_quickly(grain):
    result, out = grain
    assert (out / "results.json").exists() and (out / "README.md").exists()
    assert (out / "results.json").stat().st_size < 1_000_000
    saved = json.loads((out / "results.json").read_text())
    assert saved["study"] == "grain-explainers" and saved["mode"] == "quick"
    assert result.duration_s > 0  # the < 2 min budget is measured (CI log, docs) rather than asserted
    readme = (out / "README.md").read_text()
    assert "## The study's claims" in readme and "Monte Carlo MRR ranking" in readme
    for key in ("dataset", "model", "samples", "methods", "metrics", "augmentations", "seed"):
        assert key in result.protocol
    assert {"explain", "metrics", "ranking", "pooling", "normalisation"} <= set(result.timings)


def test_claims_cover_the_four_claims_with_valid_verdicts(grain):
    result, _ = grain
    assert len(result.claims) == 4
    for key, claim in zip(CLAIMS, result.claims):
        assert key in claim["claim"]
        assert claim["verdict"] in VERDICTS
        assert claim["verdict"] != "not tested" and any(ch.isdigit() for ch in claim["evidence"])
    for c in result.comparisons:
        assert c["verdict"] in VERDICTS and c["paper"] is None and len(c["explanation"]) > 20
    assert 3 <= len(result.summary) <= 6


def test_tables_have_finite_numbers_for_every_method(grain):
    from xai_core.studies.grain_explainers import STUDY_METRICS

    result, _ = grain
    methods = result.protocol["methods"]
    assert "aggregate" in methods and "lrp_epsilon_plus_flat" in methods
    scores = _table(result, "scores")
    assert sorted(r[0] for r in scores["rows"]) == sorted(methods)
    assert len(scores["columns"]) == 1 + len(STUDY_METRICS)
    for row in scores["rows"]:
        assert all(math.isfinite(num(c)) for c in row[1:]), row
    aug = _table(result, "augmentation")
    assert sorted(r[0] for r in aug["rows"]) == sorted(methods)
    assert all(math.isfinite(num(c)) for r in aug["rows"] for c in r[1:4])
    pool = _table(result, "pooling_methods")
    assert sorted(r[0] for r in pool["rows"]) == sorted(methods)
    assert all(-1 <= num(r[1]) <= 1 for r in pool["rows"])
    norm = _table(result, "normalisation_values")
    assert len(norm["rows"]) == 5  # raw + the four normalisations
    assert len(_table(result, "normalisation_metrics")["rows"]) >= 1
    assert len(_table(result, "aggregate_normalisation")["rows"]) == 4


def test_ranking_is_mc_mrr_on_the_stored_scores(grain):
    from xai_core.ranking import mc_mrr
    from xai_core.runner import ranking_input
    from xai_core.store import ResultStore
    from xai_core.studies.grain_explainers import QUICK

    result, out = grain
    with ResultStore(out / "results.sqlite") as store:
        frame = store.scores_frame(dataset="grain")
    assert set(frame["method"]) == set(result.protocol["methods"])
    expected = mc_mrr(ranking_input(frame), n_draws=QUICK["draws"], seed=0, missing="worst").table
    fig = next(f for f in result.figures if f["name"] == "mrr")["data"]
    assert fig["x"] == list(expected.index)
    np.testing.assert_allclose(fig["series"]["E[MRR]"], expected["mrr"].to_numpy(), rtol=0, atol=1e-12)
    ranking = _table(result, "ranking")
    for row in ranking["rows"]:
        assert row[0] == int(expected.loc[row[1], "rank"])
        assert abs(num(row[2]) - expected.loc[row[1], "mrr"]) < 5e-3
    # the score table's means are the stored per-image scores' means
    scores = _table(result, "scores")
    metrics = [c.rsplit(" ", 1)[0] for c in scores["columns"][1:]]
    from xai_core.metrics import METRICS

    label_to_name = {METRICS.get(m).label: m for m in frame["metric"].unique()}
    for row in scores["rows"]:
        for label, cell in zip(metrics, row[1:]):
            sel = frame[(frame["method"] == row[0]) & (frame["metric"] == label_to_name[label])]["score"]
            assert num(cell) == pytest.approx(sel.mean(), rel=5e-3, abs=1e-3)


def test_figures_hold_their_data(grain):
    result, _ = grain
    figs = {f["name"]: f for f in result.figures}
    assert {"mrr", "robustness", "maps", "metric_ranks"} <= set(figs)
    methods = result.protocol["methods"]
    rob = figs["robustness"]["data"]
    assert set(rob["series"]) == {"invariant (colour)", "equivariant (geometry)"}
    assert all(len(v) == len(methods) for v in rob["series"].values())
    panels = figs["maps"]["data"]["panels"]
    assert panels[0]["kind"] == "image" and 5 <= len(panels) <= 7
    z = np.asarray(panels[1]["z"], dtype=float)
    assert z.ndim == 2 and np.isfinite(z).all() and np.abs(z).max() == pytest.approx(1.0)
    assert np.asarray(panels[0]["outline"]).sum() > 0  # a lesion image, its mask outlined
    heat = figs["metric_ranks"]["data"]
    z = np.asarray(heat["z"], dtype=float)
    assert z.shape == (len(heat["y"]), len(heat["x"])) and z.min() >= 1 and z.max() <= len(methods)


@pytest.mark.parametrize("device,why", [("tpu", "must be cpu, cuda"),
                                        pytest.param("cuda", "no CUDA device", marks=pytest.mark.skipif(
                                            __import__("torch").cuda.is_available(), reason="this machine has CUDA"))])
def test_a_device_the_machine_lacks_is_refused_before_work(tmp_path, device, why):
    from xai_core.errors import XaiError
    from xai_core.studies import run_study

    with pytest.raises(XaiError, match=f"study option device={device}: .*{why}"):
        run_study("grain-explainers", quick=True, out_dir=tmp_path / "out", device=device)
    assert not (tmp_path / "out").exists()
