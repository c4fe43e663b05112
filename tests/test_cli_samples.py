"""``python -m xai_core explain --samples ID,...``: exactly the named samples, in order; bad ids named with how to
list the valid ones (``--list-samples``); and the command a report prints for its drawn maps reproduces the stored
maps (run in-process, compared with np.allclose).
"""
from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from xai_core.cli import main
from xai_core.data import load_dataset
from xai_core.explainers import AGGREGATE, component_params
from xai_core.report import Selection, build_report, report_data
from xai_core.runner import EvalConfig, Evaluation
from xai_core.store import ResultStore

DS = ["--dataset", "simu-small"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_samples_are_explained_exactly_and_in_order(tmp_path):
    ds = load_dataset("simu-small")
    ids = [ds.sample_ids[ds.test_idx[5]], ds.sample_ids[ds.train_idx[0]], ds.sample_ids[ds.test_idx[0]]]
    out = tmp_path / "maps"
    assert main(["explain", *DS, "--methods", "saliency", "--samples", ",".join(ids + ids[:1]), "--out",
                 str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["sample_ids"] == ids and man["split"] == "test+train"  # duplicates dropped, order kept
    assert man["labels"] == [int(ds.y[ds.sample_ids.index(s)]) for s in ids]
    assert np.load(out / "attributions.npz")["saliency"].shape == (3, *ds.input_shape)


@pytest.mark.parametrize("argv, needles", [
    (["--samples", "nope-1,cell0"], ["--samples", "unknown sample id(s) of simu-small: nope-1", "--list-samples"]),
    (["--samples", " , "], ["--samples names no sample", "--list-samples"]),
    (["--samples", "x", "--n", "4"], ["--samples", "without --n and --split"]),
    (["--samples", "x", "--split", "train"], ["--samples", "without --n and --split"]),
])
def test_bad_samples_are_one_line(argv, needles, tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["explain", *DS, "--methods", "saliency", *argv, "--out", str(out)]) == 2
    line = _one_line(capsys)
    assert all(n in line for n in needles), line
    assert not out.exists()


def test_out_is_needed_unless_listing(capsys):
    assert main(["explain", *DS, "--methods", "saliency"]) == 2
    assert "--out" in _one_line(capsys)


def test_list_samples(capsys):
    ds = load_dataset("simu-small")
    assert main(["explain", *DS, "--list-samples", "--n", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split("\t") == ["sample_id", "class", "split"]
    assert [ln.split("\t")[0] for ln in lines[1:]] == [ds.sample_ids[i] for i in ds.test_idx[:3]]
    assert all(ln.split("\t")[1] in ds.class_names and ln.endswith("\ttest") for ln in lines[1:])
    assert main(["explain", *DS, "--list-samples", "--split", "train"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + len(ds.train_idx)


def test_the_report_command_reproduces_the_drawn_maps(tmp_path):
    """Maps stored for hand-picked samples (not the first test ones) and the aggregate of two methods; the report's
    explain command, run in-process, gives the same numbers as the store."""
    methods = ["saliency", "integrated_gradients", "deeplift", "random"]
    store = ResultStore(tmp_path / "results.sqlite")
    try:
        ev = Evaluation(EvalConfig(dataset="simu-small"), store)
        ds = ev.ds
        idx = np.array([ds.test_idx[7], ds.test_idx[2], ds.test_idx[11]])
        for m in methods:
            ev.attributions(m, idx)
        comps = ["saliency", "integrated_gradients", "deeplift"]
        ev.with_config(method_params={AGGREGATE: component_params(AGGREGATE, comps)}).attributions(AGGREGATE, idx)
        samples = [ds.sample_ids[i] for i in idx]
        _, html = build_report(ev, Selection(methods=methods, samples=samples, aggregate=True,
                                             sections=("explanations", "provenance")))
        data = report_data(html)
        assert data["explanations"]["methods"] == [*methods, AGGREGATE] and data["explanations"]["samples"] == samples
        cmd = next(c for k, c in data["provenance"]["commands"].items() if k.startswith("explanations"))
        assert cmd in html  # printed in the report
        argv = shlex.split(cmd)
        assert argv[:3] == ["python", "-m", "xai_core"]
        argv[argv.index("--out") + 1] = str(tmp_path / "maps")
        assert main(argv[3:]) == 0
        got = np.load(tmp_path / "maps" / "attributions.npz")
        assert json.loads((tmp_path / "maps" / "manifest.json").read_text())["sample_ids"] == samples
        ev_agg = ev.with_config(method_params={AGGREGATE: component_params(AGGREGATE, comps)})
        for m in [*methods, AGGREGATE]:
            stored, miss = ev_agg.stored_attributions(m, idx)
            assert not miss
            np.testing.assert_allclose(got[m], stored, rtol=1e-4, atol=1e-5, err_msg=m)
    finally:
        store.close()


def test_report_of_maps_only(tmp_path, capsys):
    """Maps stored from the Explanations page and nothing scored: ``report`` without --methods or --samples draws
    those maps (the stored methods, the first samples holding all of them) and prints their explain command."""
    with ResultStore(tmp_path / "results.sqlite") as store:
        ev = Evaluation(EvalConfig(dataset="simu-small"), store)
        idx = np.array([ev.ds.test_idx[4], ev.ds.test_idx[9]])
        for m in ("saliency", "random"):
            ev.attributions(m, idx)
        ev.attributions("saliency", np.array([ev.ds.test_idx[1]]))  # one more sample, of one method only
    out = tmp_path / "maps-only.html"
    assert main(["report", "--dataset", "simu-small", "--store", str(tmp_path / "results.sqlite"), "--out",
                 str(out)]) == 0
    data = report_data(out.read_text(encoding="utf-8"))
    ids = [ev.ds.sample_ids[i] for i in idx]
    assert data["explanations"]["methods"] == ["saliency", "random"] and data["explanations"]["samples"] == ids
    assert data["scored_cells"] == 0 and not data.get("ranking")
    assert f"--samples {','.join(ids)}" in next(c for k, c in data["provenance"]["commands"].items()
                                                 if k.startswith("explanations"))
