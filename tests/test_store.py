"""The SQLite results store: round trips, content keying, resuming, concurrency, bad files."""
import multiprocessing as mp
import sqlite3
import time

import numpy as np
import pytest

from xai_core.errors import XaiError
from xai_core.store import FRAME_COLUMNS, ResultStore, params_key

CELL = dict(dataset_fp="fp-data", model_hash="h-model", method="saliency", method_params={"abs": True},
            output="target")
NAMES = dict(dataset="simu-small", model="mlp")
METRIC = dict(metric="deletion", metric_params={"steps": 10, "baseline": "zero"})


def put_scores(store, ids, scores, *, reasons=None, cell=CELL, metric=METRIC, **kw):
    store.put_scores(**NAMES, **cell, **metric, family="faithfulness", direction="higher", sample_ids=ids,
                     scores=np.asarray(scores, float), reasons=reasons or [None] * len(ids), seconds=1.0,
                     provenance={"numpy": np.__version__, "seed": 0}, **kw)


def test_params_key_is_stable_and_order_free():
    assert params_key({"a": 1, "b": [1, 2]}) == params_key({"b": [1, 2], "a": 1})
    assert params_key({"a": 1}) != params_key({"a": 2})
    assert len(params_key({})) == 16 and int(params_key({}), 16) >= 0


def test_attributions_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 3, 8, 8)).astype("f4")
    ids = [f"s{i}" for i in range(5)]
    with ResultStore(tmp_path / "sub" / "r.sqlite") as st:
        st.put_attributions(**NAMES, **CELL, sample_ids=ids, attributions=A, targets=np.arange(5),
                            seconds=2.0, provenance={"seed": 1})
    st = ResultStore(tmp_path / "sub" / "r.sqlite")
    got, missing = st.get_attributions(**CELL, sample_ids=ids)
    assert missing == [] and got.dtype == np.float32 and np.array_equal(got, A)
    order = [4, 0, 2]
    got, _ = st.get_attributions(**CELL, sample_ids=[ids[i] for i in order])
    assert np.array_equal(got, A[order])
    got, missing = st.get_attributions(**CELL, sample_ids=["s1", "x9", "s3", "x7"])
    assert got is None and missing == ["x9", "x7"]
    # another method parameter set or output is another cell
    assert st.get_attributions(**{**CELL, "method_params": {"abs": False}}, sample_ids=ids) == (None, ids)
    assert st.get_attributions(**{**CELL, "output": "c1"}, sample_ids=ids)[1] == ids
    prov = st.provenance(kind="attributions", **CELL)
    assert len(prov) == 1 and prov[0]["provenance"] == {"seed": 1} and prov[0]["seconds"] == 2.0
    assert prov[0]["rows"] == 5 and prov[0]["method_params"] == {"abs": True} and prov[0]["created"].endswith("+00:00")
    assert st.summary()["attributions"] == 5
    st.close()


def test_attributions_many_images_fast(tmp_path):
    n = 1000
    A = np.random.default_rng(0).random((n, 3, 64, 64), dtype=np.float32)
    ids = [f"img{i}" for i in range(n)]
    with ResultStore(tmp_path / "r.sqlite") as st:
        for b in range(0, n, 250):
            st.put_attributions(**NAMES, **CELL, sample_ids=ids[b:b + 250], attributions=A[b:b + 250],
                                targets=np.zeros(250, int), seconds=1.0, provenance={})
        t = time.perf_counter()
        got, missing = st.get_attributions(**CELL, sample_ids=ids[::-1])
        elapsed = time.perf_counter() - t
    assert missing == [] and np.array_equal(got, A[::-1])
    assert elapsed < 1.0, elapsed


def test_scores_round_trip_nan_se_curves(tmp_path):
    ids = ["a", "b", "c"]
    curves = np.array([[1.0, 0.5, 0.1], [1.0, 0.9, 0.2], [np.nan] * 3])
    with ResultStore(tmp_path / "r.sqlite") as st:
        put_scores(st, ids, [0.5, 0.25, np.nan], reasons=[None, None, "constant attribution"], curves=curves,
                   se=np.array([0.1, np.nan, np.nan]))
        df = st.scores_frame()
        assert list(df.columns[:len(FRAME_COLUMNS)]) == FRAME_COLUMNS
        assert df["sample"].tolist() == ids
        assert df["score"].tolist()[:2] == [0.5, 0.25] and np.isnan(df["score"].iloc[2])
        assert df["reason"].tolist() == [None, None, "constant attribution"]
        assert df["se"].iloc[0] == 0.1 and df["se"].isna().sum() == 2
        row = df.iloc[0]
        assert (row.method_key, row.metric_key) == (params_key({"abs": True}), params_key(METRIC["metric_params"]))
        assert (row.family, row.direction, row.dataset, row.model) == ("faithfulness", "higher", *NAMES.values())
        got = st.curves(**CELL, **METRIC, sample_ids=["c", "a", "b"])
        np.testing.assert_array_equal(got, curves[[2, 0, 1]])
        assert st.curves(**CELL, **METRIC, sample_ids=["a", "zz"]) is None
        assert st.missing_scores(**CELL, **METRIC, sample_ids=ids + ["d"]) == ["d"]  # NaN with reason is stored
        # a set-level score with its standard error and no curve
        put_scores(st, ["*"], [0.7], metric=dict(metric="auc", metric_params={}), se=np.array([0.05]))
        df = st.scores_frame(metrics=["auc"])
        assert df[["sample", "score", "se"]].values.tolist() == [["*", 0.7, 0.05]]
        assert st.curves(**CELL, metric="auc", metric_params={}, sample_ids=["*"]) is None
        prov = st.provenance(kind="scores", method="saliency", metric="deletion")
        assert len(prov) == 1 and prov[0]["metric_params"] == METRIC["metric_params"]
        assert prov[0]["provenance"]["seed"] == 0


def test_interrupted_run_resumes(tmp_path):
    ids = [f"s{i}" for i in range(10)]
    with ResultStore(tmp_path / "r.sqlite") as st:
        put_scores(st, ids[:5], np.arange(5))  # batch 1 of 2; then the process "dies"
    with ResultStore(tmp_path / "r.sqlite") as st:
        assert st.missing_scores(**CELL, **METRIC, sample_ids=ids) == ids[5:]
        put_scores(st, ids[5:], np.arange(5, 10))
        assert st.missing_scores(**CELL, **METRIC, sample_ids=ids) == []
        assert st.scores_frame()["score"].tolist() == list(range(10))
        prov = st.provenance(kind="scores", **CELL, **METRIC)
        assert len(prov) == 1 and prov[0]["rows"] == 10 and prov[0]["seconds"] == 2.0
        # rewriting a row replaces it (one value per key)
        put_scores(st, ["s0"], [42.0])
        df = st.scores_frame()
        assert len(df) == 10 and df.set_index("sample").loc["s0", "score"] == 42.0


def test_content_keying(tmp_path):
    ids = ["a", "b"]
    with ResultStore(tmp_path / "r.sqlite") as st:
        put_scores(st, ids, [1, 2])
        other_method = {**CELL, "method_params": {"abs": False}}
        other_metric = {**METRIC, "metric_params": {"steps": 20, "baseline": "zero"}}
        assert st.missing_scores(**other_method, **METRIC, sample_ids=ids) == ids
        assert st.missing_scores(**CELL, **other_metric, sample_ids=ids) == ids
        assert st.missing_scores(**{**CELL, "model_hash": "h2"}, **METRIC, sample_ids=ids) == ids
        assert st.missing_scores(**{**CELL, "dataset_fp": "fp2"}, **METRIC, sample_ids=ids) == ids
        # key order of the params does not matter
        same = {**METRIC, "metric_params": {"baseline": "zero", "steps": 10}}
        assert st.missing_scores(**CELL, **same, sample_ids=ids) == []
        put_scores(st, ids, [3, 4], cell=other_method)
        put_scores(st, ids, [5, 6], metric=other_metric)
        df = st.scores_frame()
        assert len(df) == 6 and df.groupby(["method_key", "metric_key"]).ngroups == 3
        s = st.summary()
        assert (s["scores"], s["methods"], s["metrics"], s["datasets"], s["models"]) == (6, 1, 1, 1, 1)


def test_scores_frame_filters(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as st:
        for method in ("saliency", "ig"):
            for metric in ("deletion", "insertion"):
                put_scores(st, ["a", "b"], [1, 2], cell={**CELL, "method": method},
                           metric={**METRIC, "metric": metric})
        st.put_scores(dataset="other", dataset_fp="fp-o", model="cnn", model_hash="h-c", method="ig",
                      method_params={}, output="target", metric="deletion", metric_params={}, family="f",
                      direction="lower", sample_ids=["z"], scores=np.array([0.0]), reasons=[None],
                      seconds=0.1, provenance={})
        assert len(st.scores_frame()) == 9
        assert set(st.scores_frame(methods=["ig"])["method"]) == {"ig"}
        assert len(st.scores_frame(methods=["ig"], metrics=["deletion"])) == 3
        assert len(st.scores_frame(dataset="simu-small", methods=["ig"], metrics=["deletion"])) == 2
        assert st.scores_frame(model="cnn")["sample"].tolist() == ["z"]
        empty = st.scores_frame(methods=[])
        assert empty.empty and list(empty.columns[:len(FRAME_COLUMNS)]) == FRAME_COLUMNS
        assert st.scores_frame(dataset="nope").empty


def _writer(path, n_batches, batch):
    with ResultStore(path) as st:
        for b in range(n_batches):
            ids = [f"s{b}_{i}" for i in range(batch)]
            put_scores(st, ids, np.random.default_rng(b).random(batch), curves=np.ones((batch, 20)))
            st.put_attributions(**NAMES, **CELL, sample_ids=ids, attributions=np.ones((batch, 3, 32, 32), "f4"),
                                targets=np.zeros(batch, int), seconds=0.1, provenance={})


def test_concurrent_writer_and_reader(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()  # the file exists before the reader opens it
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_writer, args=(str(path), 20, 50))
    proc.start()
    seen, reads = [], 0
    with ResultStore(path) as st:
        deadline = time.time() + 60
        while proc.is_alive() and time.time() < deadline:
            seen.append(len(st.scores_frame()))  # raises sqlite3.OperationalError if the database were locked
            reads += 1
        proc.join(timeout=60)
        assert proc.exitcode == 0
        assert len(st.scores_frame()) == 20 * 50 and st.summary()["attributions"] == 20 * 50
    assert reads > 0 and seen == sorted(seen) and all(n % 50 == 0 for n in seen)


def test_garbage_file_is_a_clear_error(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("this is not a database\n" * 100)
    with pytest.raises(XaiError, match="not a SQLite database"):
        ResultStore(p)
    with pytest.raises(XaiError, match="directory"):
        ResultStore(tmp_path)


def test_foreign_sqlite_and_schema_mismatch(tmp_path):
    foreign = tmp_path / "foreign.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(XaiError, match="not an xai_core results store"):
        ResultStore(foreign)
    p = tmp_path / "old.sqlite"
    ResultStore(p).close()
    con = sqlite3.connect(p)
    con.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(XaiError, match=r"old\.sqlite.*schema version 0.*--store"):
        ResultStore(p)
