"""Shared work on one store: leases claimed, waited for, renewed, and taken over after a holder is killed."""
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from xai_core.errors import XaiError
from xai_core.leases import Leases, cell_name, shared
from xai_core.store import ResultStore

KEY = dict(dataset_fp="fp", model_hash="mh", method="saliency", method_params={}, output="logit",
           metric="sparseness", metric_params={})
IDS = [f"s{i:03d}" for i in range(40)]


def _missing(path):
    store = ResultStore(path)
    return lambda ids: store.missing_scores(sample_ids=ids, **KEY)


def _store_rows(store, ids, value=1.0):
    store.put_scores(dataset="d", model="m", family="complexity", direction="higher", sample_ids=list(ids),
                     scores=np.full(len(ids), value), reasons=[None] * len(ids), seconds=0.0, provenance={},
                     **KEY)


def _worker(path, name, out, per_row):
    """Compute the cell's rows with sharing, in chunks of 4, as the runner does; report which rows it computed."""
    store = ResultStore(path)
    mine = []
    with Leases(path, ttl=2.0) as leases:
        for ids in shared(leases, cell_name(**KEY), IDS, _missing(path), chunk=4, poll=0.05):
            time.sleep(per_row * len(ids))
            _store_rows(store, ids)
            mine.extend(ids)
    out.put((name, mine))


def test_claims_are_exclusive_and_released(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    cell = cell_name(**KEY)
    with Leases(path) as a, Leases(path) as b:
        assert a.claim(cell, IDS[:10]) == IDS[:10]
        assert b.claim(cell, IDS[5:15]) == IDS[10:15]  # rows 5..9 are a's
        assert set(b.held_elsewhere(cell, IDS[:15])) == set(IDS[:10])
        assert a.claim(cell, IDS[:3]) == IDS[:3]  # renewing your own is fine
        a.release(cell, IDS[:10])
        assert b.claim(cell, IDS[:10]) == IDS[:10]
        other = cell_name(**{**KEY, "metric": "entropy"})
        assert a.claim(other, IDS[:10]) == IDS[:10]  # another cell is another lease


def test_bad_ttl_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    for bad in (0, -1, "10"):
        with pytest.raises(XaiError, match="ttl"):
            Leases(path, ttl=bad)


def test_heartbeat_keeps_a_live_lease_and_expiry_frees_a_dead_one(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    cell = cell_name(**KEY)
    with Leases(path, ttl=0.6) as a, Leases(path, ttl=0.6) as b:
        a.claim(cell, IDS[:5])
        time.sleep(1.5)  # longer than ttl: only the heartbeat keeps it
        assert b.claim(cell, IDS[:5]) == []
        a._stop.set()  # the holder stops renewing, as a killed process would
        a._beat.join()
        time.sleep(0.8)
        assert b.claim(cell, IDS[:5]) == IDS[:5]


def test_shared_without_leases_yields_the_missing_rows_once(tmp_path):
    path = tmp_path / "r.sqlite"
    store = ResultStore(path)
    _store_rows(store, IDS[:30])
    assert list(shared(None, "c", IDS, _missing(path))) == [IDS[30:]]
    _store_rows(store, IDS[30:])
    assert list(shared(None, "c", IDS, _missing(path))) == []


def test_two_processes_compute_each_row_once(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(path, n, out, 0.1)) for n in ("a", "b")]
    for p in procs:
        p.start()
    got = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert sorted(got["a"] + got["b"]) == IDS  # every row computed once: no row twice, none lost
    assert got["a"] and got["b"], got  # and the two runs split the cell between them
    assert _missing(path)(IDS) == []


def test_rows_of_a_killed_holder_are_taken_over(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    slow = ctx.Process(target=_worker, args=(path, "slow", out, 1.0))  # claims all rows, stores 4 per 4 s
    slow.start()
    cell = cell_name(**KEY)
    with Leases(path, ttl=2.0) as probe:
        deadline = time.time() + 60
        while not probe.held_elsewhere(cell, IDS) and time.time() < deadline:
            time.sleep(0.05)
        assert probe.held_elsewhere(cell, IDS), "the slow worker never claimed its rows"
    os.kill(slow.pid, signal.SIGKILL)  # kill -9: no release, no more heartbeats
    slow.join()
    store = ResultStore(path)
    t0 = time.time()
    done = []
    with Leases(path, ttl=2.0) as leases:
        for ids in shared(leases, cell, IDS, _missing(path), poll=0.05):
            _store_rows(store, ids)
            done.extend(ids)
    assert _missing(path)(IDS) == []
    assert sorted(done) == IDS  # the dead holder stored nothing, so this run computed every row, once
    assert time.time() - t0 < 10  # waited about one ttl, not forever


def _evaluate(path, out, cache):
    """One real evaluation on the shared store; reports how many rows it wrote (computed) per kind."""
    os.environ["XAI_CORE_CACHE"] = cache
    import torch

    from xai_core.runner import EvalConfig, Evaluation

    torch.set_num_threads(1)
    written = {"maps": 0, "scores": 0}

    class Counting(ResultStore):
        def put_attributions(self, **kw):
            written["maps"] += len(kw["sample_ids"])
            return super().put_attributions(**kw)

        def put_scores(self, **kw):
            written["scores"] += len(kw["sample_ids"])
            return super().put_scores(**kw)

    cfg = EvalConfig(dataset="simu-small", methods=["saliency", "integrated_gradients"],
                     metrics=["sparseness", "pixel_flipping"], n=24, explain_batch=4, batch_size=4)
    frame = Evaluation(cfg, Counting(path)).run()
    out.put((written, len(frame)))


def test_two_evaluations_on_one_store_share_the_work(tmp_path):
    """Two real evaluations of the same grid started together: every map and score is computed once in all."""
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_evaluate, args=(path, out, os.environ["XAI_CORE_CACHE"])) for _ in range(2)]
    for p in procs:
        p.start()
    got = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [rows for _, rows in got] == [2 * 2 * 24] * 2  # both see every score
    assert sum(c["maps"] for c, _ in got) == 2 * 24, got  # each map computed once over both runs
    assert sum(c["scores"] for c, _ in got) == 2 * 2 * 24, got  # each score computed once over both runs
