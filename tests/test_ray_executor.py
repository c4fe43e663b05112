"""The Ray executor on a real local Ray cluster (2 CPUs, started once for this module).

The same grid (simu-small; saliency, SmoothGrad (stochastic) and the aggregate composite; sparseness,
faithfulness correlation (seeded random subsets) and the set-level global feature agreement; n = 8, metric chunks
of 2) is run in-process and with ``--executor ray``: the stored maps and scores agree, every cell is written once,
a worker killed with SIGKILL while chunks run is restarted and the run completes, a rerun on a complete store
submits nothing, an adaptive run (``--until decided``) reaches the same decision on the same scores, and bad flags
are refused with one line before any work.
"""
from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np
import pandas as pd
import pytest
import ray
import torch  # pinned in requirements-test.txt: CI runs these tests on a local Ray cluster

from xai_core.cli import main
from xai_core.executors import ExecutorOptions, prepare
from xai_core.runner import EvalConfig, Evaluation
from xai_core.store import ResultStore

METHODS, METRICS = ["saliency", "smoothgrad", "aggregate"], ["sparseness", "faithfulness_correlation",
                                                              "feature_agreement_global"]
N, BATCH = 8, 2
GRID = ["evaluate", "--dataset", "simu-small", "--methods", ",".join(METHODS), "--metrics", ",".join(METRICS),
        "--n", str(N), "--batch-size", str(BATCH), "--yes"]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("local")
    assert main([*GRID, "--store", str(d / "r.sqlite"), "--out", str(d / "out")]) == 0
    return d / "r.sqlite"


@pytest.fixture(scope="module")
def ray_store(tmp_path_factory, cluster):
    d = tmp_path_factory.mktemp("ray")
    assert main([*GRID, "--store", str(d / "r.sqlite"), "--out", str(d / "out"), "--executor", "ray"]) == 0
    return d / "r.sqlite"


def _evaluation(store: ResultStore) -> tuple[Evaluation, object]:
    ev = Evaluation(EvalConfig(dataset="simu-small", methods=METHODS, metrics=METRICS, n=N, batch_size=BATCH),
                    store)
    return ev, ev.plan()


def _stored(path) -> tuple[dict[str, np.ndarray], pd.DataFrame, dict[tuple, int]]:
    """Every map of the plan's methods and components, the plan's scores, and rows written per cell."""
    with ResultStore(path) as store:
        ev, plan = _evaluation(store)
        methods = list(dict.fromkeys(plan.methods + [c for m in plan.methods for c in ev.composite_parts(m)]))
        maps = {m: ev.stored_attributions(m, plan.sample_idx)[0] for m in methods}
        scores = ev.scores(plan).set_index(["method", "metric", "sample"])["score"].sort_index()
        written = {}
        for m in methods:
            written[(m, "(explain)")] = sum(p["rows"] for p in store.provenance(kind="attributions", method=m,
                                                                                  **_key(ev, m)))
        for m in plan.methods:
            for metric in plan.metrics:
                key = ev.score_key(m, metric, plan.sample_idx)
                written[(m, metric)] = sum(p["rows"] for p in store.provenance(
                    kind="scores", method=m, method_params=key["method_params"], metric=metric,
                    metric_params=key["metric_params"]))
    return maps, scores, written


def _key(ev, method):
    return {"method_params": ev.attribution_key(method)["method_params"]}


def _same_numbers(a, b) -> None:
    maps_a, scores_a, _ = _stored(a)
    maps_b, scores_b, written = _stored(b)
    assert set(maps_a) == set(maps_b) and len(maps_a) == 6  # 3 methods + aggregate's other components
    for m in maps_a:
        assert maps_a[m] is not None and maps_b[m] is not None, m
        assert np.allclose(maps_a[m], maps_b[m], rtol=1e-5, atol=1e-6), m
    assert scores_a.index.equals(scores_b.index) and len(scores_a) == 3 * (2 * N + 1)
    assert np.allclose(scores_a.to_numpy(float), scores_b.to_numpy(float), rtol=1e-4, atol=1e-6, equal_nan=True)
    # every cell written exactly once: N rows per map cell and per-sample score cell, one for the set-level one
    assert all(rows == (1 if metric == "feature_agreement_global" else N) for (_, metric), rows in written.items()), \
        written


def test_ray_stores_the_same_numbers_as_in_process(local_store, ray_store):
    _same_numbers(local_store, ray_store)


def test_a_rerun_on_a_complete_store_submits_nothing(ray_store, cluster):
    events = []
    with ResultStore(ray_store) as store, prepare(ExecutorOptions("ray")) as runner:
        ev, plan = _evaluation(store)
        runner.run(ev, plan, progress=events.append)
    assert events and all(e.cached for e in events), [e for e in events if not e.cached][:3]
    assert len(events) == len(METHODS) * (1 + len(METRICS))  # one 'stored' event per cell, nothing computed
    _same_numbers(ray_store, ray_store)  # and still written once


def test_resume_after_a_killed_worker(local_store, cluster, tmp_path):
    killed: list[int] = []
    with ResultStore(tmp_path / "r.sqlite") as store, prepare(ExecutorOptions("ray", workers=2)) as runner:
        pids = runner.worker_pids()

        def kill_while_running(e):
            if not killed and e.stage == "metric" and not e.cached:  # chunks of every method are queued now
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        ev, plan = _evaluation(store)
        runner.run(ev, plan, progress=kill_while_running)
        after = runner.worker_pids()
    assert killed and after[0] != pids[0] and after[1] == pids[1]  # the killed worker was restarted
    _same_numbers(local_store, tmp_path / "r.sqlite")


@pytest.mark.parametrize("extra, needle", [
    (["--executor", "dask"], "unknown executor 'dask'; valid choices: local, ray"),
    (["--workers", "2"], "--workers only applies with --executor ray"),
    (["--executor", "ray", "--population-seeds", "1"], "use --executor local with it"),
    (["--executor", "ray", "--address", "127.0.0.1:1"], "no Ray cluster reachable there"),
    (["--executor", "ray", "--address", "nohost"], "--address 'nohost' must be auto or HOST:PORT"),
    (["--executor", "ray", "--address", "ray://10.0.0.5:10001"], "Ray Client addresses are not supported"),
])
def test_bad_flags_are_one_line_before_any_work(extra, needle, tmp_path, capsys):
    code = main([*GRID, "--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err and needle in err[-1], err
    assert not (tmp_path / "r.sqlite").exists()  # nothing was loaded or computed


def test_ray_missing_is_named_with_its_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as on a machine without it
    code = main([*GRID, "--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "out"), "--executor", "ray"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install ray==2.60.0" in err, err


ADAPTIVE = ["evaluate", "--dataset", "simu-small", "--methods", "saliency,input_x_gradient,smoothgrad,random",
            "--metrics", "sparseness,pixel_flipping", "--until", "decided", "--n", "12", "--round", "4",
            "--min-samples", "4", "--top-k", "2", "--draws", "2000", "--batch-size", str(BATCH), "--yes"]


def test_until_decided_on_ray_reaches_the_same_decision_on_the_same_scores(cluster, tmp_path):
    """Each round's steps go to the workers together (every method of a metric at once); the rounds, the samples,
    the stop, the racing and the ranking are those of the in-process run, on the same stored scores."""
    runs = {}
    threads = torch.get_num_threads()
    for executor in ("local", "ray"):
        d = tmp_path / executor
        torch.set_num_threads(1)  # as each worker: the same kernels, the same rounding
        try:
            assert main([*ADAPTIVE, "--store", str(d / "r.sqlite"), "--out", str(d / "out"), "--executor",
                         executor]) == 0
        finally:
            torch.set_num_threads(threads)
        decision = json.loads((d / "out" / "decision.json").read_text())
        scores = pd.read_csv(d / "out" / "scores.csv", dtype={"sample": str})
        runs[executor] = decision, scores.set_index(["method", "metric", "sample"])["score"].sort_index()
    (a, sa), (b, sb) = runs["local"], runs["ray"]
    for key in ("stopped_because", "samples", "samples_per_method", "top_k", "raced_out", "not_computed"):
        assert a[key] == b[key], key
    assert [r["samples"] for r in a["rounds"]] == [r["samples"] for r in b["rounds"]]
    assert b["p_leader"] == pytest.approx(a["p_leader"], abs=0.02)  # Monte Carlo over scores equal to ~1e-6
    assert sa.index.equals(sb.index) and len(sa) == 2 * 4 * a["samples"]
    np.testing.assert_allclose(sb.to_numpy(float), sa.to_numpy(float), rtol=1e-5, atol=1e-7)
