"""Bad input fails early and clearly: exit code 2, one line on stderr naming the flag (or key) and the valid
range or choices, no traceback, nothing written, and the next good command still works.

Almost every case fails before any work (milliseconds); the few that run use ``simu-small``.
"""
import hashlib
import math

import numpy as np
import pandas as pd
import pytest

from xai_core.cli import main

DS = ["--dataset", "simu-small"]


def one_line_error(capsys, argv):
    rc = main(argv)
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.strip().splitlines() if ln.strip()]
    assert rc == 2, (rc, cap.err)
    assert "Traceback" not in cap.err
    assert len(lines) == 1, cap.err
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.fixture
def paths(tmp_path):
    f = tmp_path / "a_file.txt"
    f.write_text("not a folder")
    d = tmp_path / "a_dir"
    d.mkdir()
    bad_csv = tmp_path / "bad_scores.csv"
    pd.DataFrame({"method": ["a"], "metric": ["m"], "value": [1.0]}).to_csv(bad_csv, index=False)
    return {"FILE": str(f), "DIR": str(d), "OUT": str(tmp_path / "out"), "STORE": str(tmp_path / "s.sqlite"),
            "BADCSV": str(bad_csv), "NOFILE": str(tmp_path / "missing.csv")}


def fill(argv, paths):
    return [paths.get(a, a) for a in argv]


# (argv, what the one line must contain: the flag or key, and the valid range / choices)
EXPLAIN = [
    (["--n", "-1"], ["--n:", ">= 1", "got -1"]),
    (["--n", "0"], ["--n:", ">= 1"]),
    (["--n", "ten"], ["--n:", "got ten"]),
    (["--batch-size", "0"], ["--batch-size:", ">= 1"]),
    (["--batch-size", "-8"], ["--batch-size:", ">= 1"]),
    (["--seed", "-1"], ["--seed:", "[0, "]),
    (["--seed", "1.5"], ["--seed:", "whole number"]),
    (["--methods", ",,,"], ["--methods", "no method", "all or a comma list"]),
    (["--methods", " , "], ["--methods", "no method"]),
    (["--methods", "saliency,magic"], ["--methods", "unknown method 'magic'", "valid choices: ", "saliency"]),
    (["--param", "integrated_gradients.n_steps=100000000"], ["--param", "integrated_gradients.n_steps",
                                                             "[1, 4096]", "got 100000000"]),
    (["--param", "integrated_gradients.n_steps=1e8"], ["integrated_gradients.n_steps", "[1, 4096]", "got 1e+08"]),
    (["--param", "integrated_gradients.n_steps=1.5"], ["integrated_gradients.n_steps", "integer"]),  # deg must be...
    (["--param", "integrated_gradients.n_steps=0"], ["integrated_gradients.n_steps", "[1, 4096]"]),
    (["--param", "smoothgrad.noise_level=NaN"], ["smoothgrad.noise_level", "finite", ">= 0"]),
    (["--param", "occlusion.stride=0"], ["occlusion.stride", "[1, "]),  # range() arg 3 must not be zero
    (["--param", "lime.n_samples=-5"], ["lime.n_samples", "[1, "]),
    (["--param", "gradcam.relu=1"], ["gradcam.relu", "true, false"]),
    (["--param", "integrated_gradients.method=3"], ["integrated_gradients.method", "string"]),
    (["--param", "saliency"], ["--param 'saliency'", "method.key=value"]),
    (["--param", "nope.x=1"], ["--param", "unknown method 'nope'", "valid choices"]),
    (["--methods", "saliency", "--param", "integrated_gradients.n_steps=8"], ["--param", "not among the methods"]),
    (["--split", "valid"], ["--split:", "invalid choice", "test"]),
    (["--out", "FILE"], ["--out", "is a file"]),
]

TRAIN = [
    (["--set", "lr=NaN"], ["--set lr", "(0, 10]", "nan"]),
    (["--set", "lr=0"], ["--set lr", "(0, 10]"]),
    (["--set", "lr=-0.1"], ["--set lr", "(0, 10]"]),
    (["--set", "epochs=0"], ["--set epochs", "[1, "]),
    (["--set", "epochs=2.5"], ["--set epochs", "whole number"]),
    (["--set", "batch_size=-1"], ["--set batch_size", "[1, "]),
    (["--set", "batch_size=0"], ["--set batch_size", "[1, "]),
    (["--set", "momentum=1"], ["--set momentum", "[0, 1)"]),
    (["--set", "optimizer=rmsprop"], ["--set optimizer", "sgd or adam"]),
    (["--set", "bogus=1"], ["--set", "unknown training option", "bogus", "valid: ", "lr"]),
    (["--set", "lr"], ["--set 'lr'", "key=value"]),
    (["--epochs", "0"], ["--epochs:", "[1, "]),
    (["--epochs", "-3"], ["--epochs:", "[1, "]),
    (["--seed", "-2"], ["--seed:", "[0, "]),
    (["--arch-option", "hidden=100000000"], ["--arch-option hidden", "[1, 1_000_000]"]),
    (["--arch-option", "hidden=0"], ["--arch-option hidden", "[1, 1_000_000]"]),
    (["--arch-option", "dropout=1.5"], ["--arch-option dropout", "[0, 1)"]),
    (["--arch-option", "width=3"], ["--arch-option", "unknown option", "hidden"]),
    (["--out", "DIR"], ["--out", "is a folder"]),
]

EVALUATE = [
    (["--n", "0"], ["--n:", ">= 1"]),
    (["--n", "-1"], ["--n:", ">= 1"]),
    (["--batch-size", "0"], ["--batch-size:", ">= 1"]),
    (["--forward-batch", "-1"], ["--forward-batch:", "[0, "]),
    (["--seed", "-1"], ["--seed:", "[0, "]),
    (["--draws", "0"], ["--draws:", "[1, 1_000_000]"]),
    (["--draws", "100000000"], ["--draws:", "[1, 1_000_000]"]),
    (["--population-seeds", "-1"], ["--population-seeds:", "[0, 100]"]),
    (["--population-epochs", "0"], ["--population-epochs:", "[1, "]),
    (["--methods", ",,"], ["--methods", "no method"]),
    (["--metrics", ","], ["--metrics", "no metric"]),
    (["--metrics", "sparseness,nope"], ["--metrics", "unknown metric 'nope'", "valid choices"]),
    (["--param", "integrated_gradients.n_steps=100000000"], ["--param integrated_gradients.n_steps", "[1, 4096]"]),
    (["--metric-param", "pixel_flipping.fraction=2"], ["--metric-param pixel_flipping.fraction", "<= 1"]),
    (["--metric-param", "max_sensitivity.nr_samples=0"], ["max_sensitivity.nr_samples", "[1, "]),
    (["--metric-param", "ranking_stability.n_boot=1e9"], ["ranking_stability.n_boot", "[0, "]),
    (["--metric-param", "nope.k=1"], ["--metric-param", "unknown metric 'nope'"]),
    (["--metric-param", "sparseness.bogus=1"], ["unknown parameter of metric sparseness 'bogus'"]),
    (["--weight", "robustness=inf"], ["--weight", "finite number >= 0"]),
    (["--weight", "robustness=-1"], ["--weight", "finite number >= 0"]),
    (["--store", "DIR"], ["--store", "is a folder"]),
    (["--out", "FILE"], ["--out", "is a file"]),
    (["--dataset", ","], ["--dataset", "no dataset"]),
]

RANK = [
    (["--draws", "0"], ["--draws:", "[1, 1_000_000]"]),
    (["--draws", "-5"], ["--draws:", "[1, 1_000_000]"]),
    (["--seed", "-1"], ["--seed:", "[0, "]),
    (["--scores", "NOFILE"], ["--scores", "no such file"]),
    (["--scores", "BADCSV"], ["--scores", "lacks column(s)", "score", "dataset"]),
    (["--scores", "DIR"], ["--scores", "no such file"]),
    (["--store", "NOFILE"], ["--store", "no results store"]),
    (["--metrics", ",", "--scores", "BADCSV"], ["--metrics", "no metric"]),
    (["--weight", "robustness=nan", "--scores", "BADCSV"], ["--weight", "finite"]),
    (["--out", "FILE", "--scores", "BADCSV"], ["--out", "is a file"]),
]

STUDY = [
    (["ig-expression", "--quick", "--set", "nope=1"], ["--set", "unknown option(s) of study ig-expression: nope",
                                                       "valid: ", "seeds"]),
    (["ig-expression", "--quick", "--set", "seeds=-1"], ["--set", "seeds", ">= 1"]),
    (["grain-explainers", "--quick", "--set", "draws=0"], ["--set", "draws", ">= 1"]),
    (["dna-consistency", "--quick", "--set", "lr=0"], ["--set", "lr", "> 0"]),
    (["dna-consistency", "--quick", "--set", "lr=NaN"], ["--set", "lr", "finite"]),
    (["ig-expression", "--quick", "--set", "seeds"], ["--set 'seeds'", "key=value"]),
    (["ig-expression", "--quick", "--seed", "-1"], ["--seed:", "[0, "]),
    (["ig-expression", "--quick", "--out", "FILE"], ["--out", "is a file"]),
    (["ig-expression", "--quick", "--set", "parts=models,nope"], ["parts must name some of", "models, real, compare",
                                                                  "nope"]),
    (["nope"], ["unknown study 'nope'", "ig-expression"]),
]

CASES = ([pytest.param(["explain", *DS, *a, *([] if "--out" in a else ["--out", "OUT"])], n, id=f"explain{i}")
          for i, (a, n) in enumerate(EXPLAIN)]
         + [pytest.param(["train", *DS, *a, *([] if "--out" in a else ["--out", "OUT"])], n, id=f"train{i}")
            for i, (a, n) in enumerate(TRAIN)]
         + [pytest.param(["evaluate", *([] if "--dataset" in a else DS), *a,
                          *([] if "--out" in a else ["--out", "OUT"]),
                          *([] if "--store" in a else ["--store", "STORE"])], n, id=f"evaluate{i}")
            for i, (a, n) in enumerate(EVALUATE)]
         + [pytest.param(["rank", *a, *([] if "--out" in a else ["--out", "OUT"])], n, id=f"rank{i}")
            for i, (a, n) in enumerate(RANK)]
         + [pytest.param(["study", *a], n, id=f"study{i}") for i, (a, n) in enumerate(STUDY)])


@pytest.mark.parametrize("argv, needles", CASES)
def test_bad_input_is_one_line_before_any_work(paths, capsys, argv, needles):
    line = one_line_error(capsys, fill(argv, paths))
    for needle in needles:
        assert needle in line, (needle, line)
    assert not (paths["OUT"] and __import__("os").path.exists(paths["OUT"])), "nothing is written"


def test_flag_types_report_the_flag_and_range():
    import argparse

    from xai_core.cli_common import float_range, int_range, positive_int

    assert positive_int("3") == 3 and positive_int("1e3") == 1000
    for bad in ("-1", "0", "1.5", "x", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive whole number >= 1"):
            positive_int(bad)
    assert int_range(0, 10)("10") == 10
    with pytest.raises(argparse.ArgumentTypeError, match=r"in \[0, 10\], got 11"):
        int_range(0, 10)("11")
    f = float_range(0, 1, lo_open=True)
    assert f("0.5") == 0.5
    for bad in ("0", "inf", "nan", "2"):
        with pytest.raises(argparse.ArgumentTypeError, match="finite number > 0 and <= 1"):
            f(bad)


def test_param_validation_in_the_specs():
    from xai_core.errors import XaiError
    from xai_core.explainers import EXPLAINERS
    from xai_core.metrics import METRICS

    ig = EXPLAINERS.get("integrated_gradients")
    assert ig.params_for("expression", {"n_steps": 16})["n_steps"] == 16
    with pytest.raises(XaiError, match=r"integrated_gradients.n_steps must be an integer in \[1, 4096\], got 1e\+08"):
        ig.params_for("expression", {"n_steps": 1e8})
    with pytest.raises(XaiError, match="must be an integer"):
        ig.params_for("expression", {"n_steps": True})
    mpr = METRICS.get("model_parameter_randomisation")
    assert mpr.params_for("image", {"max_layers": None, "seed": 3})["seed"] == 3
    with pytest.raises(XaiError, match="max_layers must be an integer >= 1"):
        mpr.params_for("image", {"max_layers": 0})
    assert METRICS.get("augmentation_invariant").params_for("image", {"k": 5})["k"] == 5  # a float default takes 5
    assert METRICS.get("sparseness").params_for("image", {"pooling": "sum"})["pooling"] == "sum"  # None default
    assert EXPLAINERS.get("integrated_gradients").needs_eager is False or True  # the spec keeps its fields


def test_training_recipe_checks_keep_library_exception_types():
    from xai_core.models.training import check_recipe
    from xai_core.errors import XaiError

    with pytest.raises(TypeError, match="unknown training option"):
        check_recipe("mlp", {"regulariser": "gn"})
    with pytest.raises(ValueError, match="unknown regularizer"):
        check_recipe("mlp", {"regularizer": "nope"})
    with pytest.raises(XaiError, match=r"lr must be a finite number in \(0, 10\]"):
        check_recipe("mlp", {"lr": math.inf})
    assert check_recipe("mlp", {"lr": 0.01, "epochs": 2})["lr"] == 0.01


def test_study_options_are_checked_before_work():
    from xai_core.errors import XaiError
    from xai_core.studies import check_study_options, run_study

    check_study_options("grain-explainers", {"store": "x.sqlite", "draws": 100})
    check_study_options("dna-consistency", {"threads": 2, "lr": 1e-3})
    with pytest.raises(XaiError, match="unknown option"):
        run_study("ig-expression", quick=True, out_dir="/nonexistent/never", nope=1)


def test_model_too_large_is_refused_before_training(paths, capsys):
    line = one_line_error(capsys, ["train", *DS, "--arch-option", "hidden=1000000", "--out", paths["OUT"] + ".st"])
    assert "--arch-option" in line and "parameters" in line and "at most" in line


def test_ranking_treats_infinite_scores_as_missing():
    from xai_core.ranking import mc_mrr
    from xai_core.ranking_frame import check_frame

    df = pd.DataFrame({"method": ["a", "a", "b", "b", "c", "c"], "metric": ["m"] * 6,
                       "sample": ["1", "2"] * 3, "score": [0.5, 0.6, np.inf, np.inf, 0.1, 0.2]})
    checked = check_frame(df)
    assert checked["score"].isna().sum() == 2 and checked["reason"].str.contains("non-finite").sum() == 2
    res = mc_mrr(df, n_draws=200, missing="worst")
    assert res.table.index[0] == "a" and res.table.loc["b", "rank"] == 3
    neg = df.assign(score=[0.5, 0.6, -np.inf, -np.inf, 0.1, 0.2])
    assert mc_mrr(neg, n_draws=50, missing="worst").table.loc["b", "rank"] == 3
    with_se = pd.DataFrame({"method": ["a", "b"], "metric": ["s", "s"], "sample": ["*", "*"],
                            "score": [0.1, 0.9], "se": [0.0, np.inf]})
    assert check_frame(with_se)["score"].isna().tolist() == [False, True]


def test_rank_cli_with_inf_scores(tmp_path, capsys):
    rows = []
    for meth, vals in (("a", [0.5, 0.6]), ("b", [np.inf, np.inf]), ("c", [0.1, 0.2])):
        for metric in ("sparseness", "complexity"):
            for s, v in zip(("1", "2"), vals):
                rows.append({"dataset": "d", "model": "m", "method": meth, "metric": metric, "sample": s,
                             "score": v, "direction": "higher", "family": "complexity"})
    pd.DataFrame(rows).to_csv(tmp_path / "scores.csv", index=False)
    rc = main(["rank", "--scores", str(tmp_path / "scores.csv"), "--draws", "200", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 0 and "infinite score(s) treated as missing" in err
    table = pd.read_csv(tmp_path / "r" / "ranking.csv").set_index("method")
    assert table["rank"].idxmin() == "a" and table.loc["b", "rank"] == 3
    line = one_line_error(capsys, ["rank", "--scores", str(tmp_path / "scores.csv"), "--metrics", "nope",
                                   "--out", str(tmp_path / "r2")])
    assert "--metrics" in line and "no scores for metric(s) nope" in line and "sparseness" in line


def test_cost_guard_asks_for_yes(tmp_path, capsys, monkeypatch):

    # the real threshold: LIME and KernelSHAP with 100,000 samples each on 400 samples
    line = one_line_error(capsys, ["explain", *DS, "--methods", "lime,kernel_shap", "--n", "400",
                                   "--param", "lime.n_samples=100000", "--param", "kernel_shap.n_samples=100000",
                                   "--out", str(tmp_path / "big")])
    assert "--yes" in line and "passes" in line
    assert not (tmp_path / "big").exists()
    monkeypatch.setattr("xai_core.costs.COST_LIMIT", 10)
    line = one_line_error(capsys, ["explain", *DS, "--methods", "saliency", "--n", "8", "--out", str(tmp_path / "x")])
    assert "--yes" in line and "more than 10" in line
    assert main(["explain", *DS, "--methods", "saliency", "--n", "8", "--yes", "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "attributions.npz").exists()


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_commands_leave_the_store_intact_and_good_ones_still_work(tmp_path, capsys, monkeypatch):

    store = tmp_path / "s.sqlite"
    base = ["evaluate", *DS, "--methods", "saliency,random", "--metrics", "sparseness,complexity", "--n", "3",
            "--include-misclassified", "--draws", "200", "--store", str(store)]
    assert main([*base, "--out", str(tmp_path / "ev")]) == 0
    capsys.readouterr()
    before = _digest(store)
    scores_before = pd.read_csv(tmp_path / "ev" / "scores.csv")
    for bad in (["--draws", "0"], ["--n", "-1"], ["--weight", "complexity=-1"],
                ["--param", "saliency.x=1"], ["--methods", ",,"]):
        one_line_error(capsys, [*base, *bad, "--out", str(tmp_path / "ev_bad")])
    monkeypatch.setattr("xai_core.costs.COST_LIMIT", 1)
    line = one_line_error(capsys, [*base, "--out", str(tmp_path / "ev_bad")])
    assert "--yes" in line
    monkeypatch.setattr("xai_core.costs.COST_LIMIT", 5e7)
    assert not (tmp_path / "ev_bad").exists()
    assert _digest(store) == before
    # the store still serves a good command: rank it, and re-evaluate from it
    assert main(["rank", "--store", str(store), "--draws", "100", "--out", str(tmp_path / "r")]) == 0
    assert main([*base, "--out", str(tmp_path / "ev2")]) == 0
    again = pd.read_csv(tmp_path / "ev2" / "scores.csv")
    pd.testing.assert_frame_equal(scores_before.sort_values(list(scores_before.columns)).reset_index(drop=True),
                                  again.sort_values(list(again.columns)).reset_index(drop=True))


def test_help_still_exits_zero(capsys):
    assert main(["explain", "--help"]) == 0
    assert "--yes" in capsys.readouterr().out
