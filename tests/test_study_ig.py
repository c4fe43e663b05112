"""The ig-expression study: its building blocks against closed forms, and the quick protocol end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xai_core.data import load_dataset
from xai_core.explainers.context import make_context
from xai_core.studies import load_result
from xai_core.studies.expression_protocol import (adaptive_ig, class_balanced, diffuse, diffusion_for,
                                                  fold_diffusion, groups_for)
from xai_core.studies.ig_reference import verdict
from tests.test_study_reproduce import quick_run


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The quick study in a fresh run cache, run once per session (test_study_reproduce compares its numbers)."""
    return quick_run("ig-expression", tmp_path_factory)


def test_fold_diffusion_is_the_diffused_model():
    ds = load_dataset("simu-small")
    A = diffusion_for(ds)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(ds.X.shape[1], 5)).eval()
    x = torch.as_tensor(ds.X[:7])
    expected = model(torch.as_tensor(diffuse(ds.X[:7], A)))
    dense = A.to_dense() if A.layout != torch.strided else A
    assert torch.allclose(dense, dense.T, atol=1e-6)  # Â is symmetric, so x Â = Â x
    assert torch.allclose(fold_diffusion(model, A)(x), expected, atol=1e-4)


def test_adaptive_ig_meets_completeness_and_spends_steps_only_where_needed():
    ds = load_dataset("simu-small")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(ds.X.shape[1], 20), torch.nn.ReLU(), torch.nn.Linear(20, 5)).eval()
    ctx = make_context(model, ds, output="probability")
    x = torch.as_tensor(ds.X[ds.test_idx[:40]]) * 3
    y = torch.as_tensor(ds.y[ds.test_idx[:40]])
    base = torch.zeros_like(x)
    res = adaptive_ig(ctx, x, y, base, tol_pp=0.1, start=2, max_steps=1024)
    with torch.no_grad():
        gap = (ctx.forward(x) - ctx.forward(base)).gather(1, y[:, None])[:, 0]
    err = 100 * (res.attributions.sum(1) - gap).abs().numpy()
    assert (err <= 0.1 + 1e-6).all()
    np.testing.assert_allclose(err, res.error_pp, atol=1e-4)
    assert res.steps.min() < res.steps.max()  # some samples needed more steps than others
    assert res.evaluations == int((2 * res.steps - 2).sum())  # each sample tried 2, 4, ..., its final steps


def test_class_balanced_mean_and_verdicts():
    assert class_balanced(np.array([1.0, 3.0, 10.0]), np.array([0, 0, 1])) == pytest.approx(6.0)
    assert verdict(99.0, 0.1, 99.05, 0.01) == "agrees"
    assert verdict(80.0, None, 72.84, 0.41) == "partly"
    assert verdict(50.0, None, 72.84, 0.41) == "differs"


def test_simuA_groups_follow_the_head_convention():
    ds = load_dataset("simu-small")
    g = groups_for(ds, ds.test_idx, head_convention=True)
    assert set(g.truth) == set(range(ds.n_classes))
    assert all(len(v) == 100 for v in g.truth.values())


def test_quick_study_writes_results_with_paper_protocol(quick):
    result, out = quick
    assert result.duration_s > 0  # the < 2 min budget is measured by CI and reported, not asserted (noisy machines)
    data = json.loads((out / "results.json").read_text())
    assert load_result(out / "results.json").study == "ig-expression"
    assert (out / "README.md").read_text().startswith("# Integrated Gradients on gene expression")
    tables = {t["name"]: t for t in data["tables"]}
    for name in ("accuracy", "prediction_gaps", "feature_agreement", "ig_steps", "timing", "real_stability",
                 "real_markers", "explainers"):
        assert name in tables, name
    steps = tables["ig_steps"]
    assert all(row[6] <= 1.0 + 1e-9 for row in steps["rows"])  # completeness within 1 pp for every sample
    claims = {c["claim"]: c["verdict"] for c in data["claims"]}
    assert len(claims) == 5 and all(v in ("agrees", "partly", "differs", "not tested") for v in claims.values())
    rows = {(r[0], r[1]): r for r in tables["explainers"]["rows"]}
    # the random control must be far below IG on the simulated ground truth
    assert rows[("random", "lr")][2] < rows[("integrated_gradients", "lr")][2] - 20


def test_prediction_gaps_order_is_sane(quick):
    result, _ = quick
    pg = {(r[0], r[1]): r for r in next(t for t in result.tables if t["name"] == "prediction_gaps")["rows"]}
    for row in pg.values():
        pgu, pgi, pgr = (float(str(row[i]).split()[0]) for i in (2, 4, 6))
        assert pgi > pgr > pgu


@pytest.mark.parametrize("arch", ["lr", "mlp"])
def test_hidden_ig_equals_captum_ig(arch):
    """IG integrated in the first layer's output is IG on the input (chain rule), same quadrature."""
    ds = load_dataset("simu-small")
    torch.manual_seed(1)
    layers = ([torch.nn.Dropout(0.2), torch.nn.Linear(ds.X.shape[1], 5)] if arch == "lr" else
              [torch.nn.Linear(ds.X.shape[1], 20), torch.nn.BatchNorm1d(20), torch.nn.ReLU(), torch.nn.Linear(20, 5)])
    model = torch.nn.Sequential(*layers).eval()
    ctx = make_context(model, ds, output="probability")
    x = torch.as_tensor(ds.X[ds.test_idx[:12]]) * 2
    y = torch.as_tensor(ds.y[ds.test_idx[:12]])
    base = ctx.class_means[1].expand_as(x).contiguous()
    fast = adaptive_ig(ctx, x, y, base, tol_pp=0.5, start=8, hidden=True)
    slow = adaptive_ig(ctx, x, y, base, tol_pp=0.5, start=8, hidden=False)
    np.testing.assert_array_equal(fast.steps, slow.steps)
    torch.testing.assert_close(fast.attributions, slow.attributions, atol=1e-6, rtol=1e-4)
    np.testing.assert_allclose(fast.error_pp, slow.error_pp, atol=1e-3)


def test_a_stage_computes_only_its_parts_and_the_full_run_reuses_its_model_runs(tmp_path, monkeypatch):
    """parts=models (a stage of a long run) writes the model tables only and says so; the run with every part
    afterwards takes the model runs from the run cache instead of training again."""
    from xai_core.studies import run_study
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    few = dict(datasets="simu-small", archs="lr", seeds=1, diffuse_seeds=1, real="breast-cancer", real_seeds=1)
    stage = run_study("ig-expression", quick=True, out_dir=tmp_path / "stage", parts="models", **few)
    tables = {t["name"] for t in stage.tables}
    assert {"accuracy", "prediction_gaps", "feature_agreement"} <= tables
    assert not tables & {"real_stability", "real_markers", "explainers"}
    assert any("only part of the study (models)" in s for s in stage.summary)
    full = run_study("ig-expression", quick=True, out_dir=tmp_path / "full", **few)
    assert {"real_stability", "explainers"} <= {t["name"] for t in full.tables}
    assert full.protocol["runs reused from the run cache"].startswith("1 of 1")
    assert not any("only part" in s for s in full.summary)


def test_claims_leave_a_unit_to_a_living_holder_and_take_over_from_a_stopped_one(tmp_path):
    import os
    import socket
    import subprocess
    import time

    from xai_core.studies.claims import STALE_S, Claims
    claims = Claims(tmp_path)
    assert claims.take("a") and not claims.held_elsewhere("a")  # this process's own claim
    claims.release("a")
    other = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "b.claim").write_text(json.dumps({"host": socket.gethostname(), "pid": other.pid}))
        assert claims.held_elsewhere("b") and not claims.take("b")
    finally:
        other.kill()
        other.wait()
    assert claims.take("b")  # its holder stopped
    (tmp_path / "c.claim").write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert not claims.take("c")  # another host's fresh claim
    old = time.time() - STALE_S - 10
    os.utime(tmp_path / "c.claim", (old, old))
    assert claims.take("c")


def test_a_stage_waits_for_a_model_run_another_process_is_computing(tmp_path, monkeypatch):
    """Two stages on one cache: a run claimed by another living process is not computed again; the stage comes
    back to it and uses the result that process writes."""
    import socket
    import subprocess
    import threading

    from xai_core.studies import run_study
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    few = dict(datasets="simu-small", archs="lr", seeds=1, diffuse_seeds=1, parts="models")
    first = run_study("ig-expression", quick=True, out_dir=tmp_path / "a", **few)
    run_file, = (tmp_path / "cache" / "studies" / "ig-expression" / "runs").glob("*.json")
    saved = run_file.read_text()
    run_file.unlink()
    holder = subprocess.Popen(["sleep", "60"])  # "another process", alive while it computes
    claim = run_file.with_suffix(".claim")
    claim.write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid}))

    def finish():  # what the other process does when its run is done
        run_file.write_text(saved)
        claim.unlink()
        holder.kill()
        holder.wait()
    timer = threading.Timer(3.0, finish)
    timer.start()
    try:
        second = run_study("ig-expression", quick=True, out_dir=tmp_path / "b", **few)
    finally:
        timer.join()
    assert second.protocol["runs reused from the run cache"].startswith("1 of 1")
    assert second.tables[0]["rows"] == first.tables[0]["rows"]
    assert not claim.exists()


def test_committed_runs_resume_a_study_on_a_machine_without_its_cache(tmp_path, monkeypatch):
    """A run committed beside the full study's results is used where this machine's run cache lacks it; a
    damaged one is named and computed again; quick runs never write there."""
    from xai_core.studies import ig_expression, run_study
    committed = tmp_path / "committed"
    monkeypatch.setattr(ig_expression, "COMMITTED_RUNS", committed)
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    few = dict(datasets="simu-small", archs="lr", seeds=1, diffuse_seeds=1, parts="models")
    first = run_study("ig-expression", quick=True, out_dir=tmp_path / "a", **few)
    assert not committed.exists()  # quick: this machine's cache only
    run_file, = (tmp_path / "cache" / "studies" / "ig-expression" / "runs").glob("*.json")
    committed.mkdir()
    (committed / run_file.name).write_text(run_file.read_text())
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "other-machine"))  # its datasets regenerate, same content
    again = run_study("ig-expression", quick=True, out_dir=tmp_path / "b", **few)
    assert again.protocol["runs reused from the run cache"].startswith("1 of 1")
    assert again.tables[0]["rows"] == first.tables[0]["rows"]
    (committed / run_file.name).write_text('{"accuracy": 1.0}')  # incomplete
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "third-machine"))
    with pytest.warns(UserWarning, match="damaged or incomplete; it is computed again"):
        third = run_study("ig-expression", quick=True, out_dir=tmp_path / "c", **few)
    assert third.protocol["runs reused from the run cache"] == "none"


def test_only_full_study_runs_at_its_defaults_are_committed(tmp_path, monkeypatch):
    """A full-mode run with other knobs (a sample cap, fewer epochs, a dataset the study does not list) writes
    this machine's run cache only; docs/studies keeps the full study's runs at its defaults. Stages keep it."""
    from xai_core.studies import ig_expression, run_study
    from xai_core.studies.ig_expression import FULL, is_full_run
    assert is_full_run("simu1", "lr", 9, dict(FULL))
    assert is_full_run("simuA", "diffuse_mlp", 2, {**FULL, "parts": ["models"], "datasets": ["simuA"], "seeds": 3})
    assert not is_full_run("simu1", "lr", 10, dict(FULL))  # beyond the study's 10 seeds
    assert not is_full_run("simu1", "diffuse_lr", 3, dict(FULL))  # the Diffuse models have 3
    assert not is_full_run("simu1", "lr", 0, {**FULL, "max_samples": 1000})
    assert not is_full_run("simu-small", "lr", 0, dict(FULL))
    committed = tmp_path / "committed"
    monkeypatch.setattr(ig_expression, "COMMITTED_RUNS", committed)
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    run_study("ig-expression", quick=False, out_dir=tmp_path / "a", datasets="simu-small", archs="lr", seeds=1,
              diffuse_seeds=1, parts="models", epochs=2, max_samples=40, n_random=3, pgr_samples=20)
    assert len(list((tmp_path / "cache" / "studies" / "ig-expression" / "runs").glob("*.json"))) == 1
    assert not committed.exists()
