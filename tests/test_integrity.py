"""Nothing silent, nothing lost: damaged checkpoints, dataset cache entries and results stores give one clear
line (or are rebuilt / recomputed), nothing already stored is lost, and the next run works.

Everything damaged here is a temporary copy; the shipped files are only read."""
import argparse
import hashlib
import json
import shutil
import sqlite3

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from xai_core.models import load_model, save_checkpoint
from xai_core.models import zoo
from xai_core.models.checkpoints import META_KEY, SUMS_NAME, recorded_hashes, verify_shipped
from xai_core.errors import XaiError
from xai_core.store import ResultStore

SHIPPED = "simu-small__lr.safetensors"


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _scribble(path, offset: int, n: int, seed: int = 0) -> None:
    """Write ``n`` random bytes at ``offset`` (the file keeps its size)."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes())
    assert path.stat().st_size == size


def _header_len(path) -> int:
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def _one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


def _cli(argv, monkeypatch) -> int:
    """``xai_core.cli.main`` with the ``store`` commands present (whether or not cli.py wires them yet)."""
    from xai_core import cli, cli_store

    build = cli.build_parser

    def with_store():
        p = build()
        sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        if "store" not in sub.choices:
            cli_store.add_parser(sub)
        return p

    monkeypatch.setattr(cli, "build_parser", with_store)
    return cli.main(argv)


# ---- checkpoints --------------------------------------------------------------------------------

@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """A copy of the shipped folder (one checkpoint and SHA256SUMS), used as the shipped folder."""
    d = tmp_path / "shipped"
    d.mkdir()
    shutil.copy2(zoo.SHIPPED_DIR / SHIPPED, d / SHIPPED)
    shutil.copy2(zoo.SHIPPED_DIR / SUMS_NAME, d / SUMS_NAME)
    monkeypatch.setattr(zoo, "SHIPPED_DIR", d)
    return d


def test_shipped_hashes_recorded_for_every_shipped_checkpoint():
    sums = recorded_hashes(zoo.SHIPPED_DIR)
    files = sorted(p.name for p in zoo.SHIPPED_DIR.glob("*.safetensors"))
    assert sorted(sums) == files
    assert all(verify_shipped(zoo.SHIPPED_DIR / f) for f in files)


def test_random_bytes_in_a_shipped_checkpoint_are_refused(shipped_copy):
    path = shipped_copy / SHIPPED
    real = _sha(zoo.__file__.replace("zoo.py", f"checkpoints/{SHIPPED}"))
    model, meta = load_model("simu-small", "lr")  # the intact copy loads
    _scribble(path, _header_len(path) + 64, 32)  # inside the tensor data: safetensors itself cannot notice
    with pytest.raises(XaiError) as e:
        load_model("simu-small", "lr")
    msg = _one_line(str(e.value))
    assert SHIPPED in msg and "does not match its recorded hash" in msg and "git checkout --" in msg
    assert _sha(zoo.__file__.replace("zoo.py", f"checkpoints/{SHIPPED}")) == real  # the real file untouched
    shutil.copy2(zoo.__file__.replace("zoo.py", f"checkpoints/{SHIPPED}"), path)  # restored: works again
    model2, meta2 = load_model("simu-small", "lr")
    assert meta2["checkpoint_hash"] == meta["checkpoint_hash"]


def test_random_bytes_in_a_checkpoint_we_wrote_are_refused(tmp_path):
    model, meta = load_model("simu-small", "lr")
    assert meta["integrity"].startswith("not verified")  # shipped before tensor hashes: stated, not silent
    keep = {k: v for k, v in meta.items() if k not in ("checkpoint_hash", "path", "integrity")}
    path = save_checkpoint(model, tmp_path / "mine.safetensors", keep)
    _, ok = load_model("simu-small", str(path))
    assert ok["integrity"] == "tensors_sha256 verified"
    good = path.read_bytes()
    _scribble(path, _header_len(path) + 16, 16, seed=1)
    with pytest.raises(XaiError) as e:
        load_model("simu-small", str(path))
    msg = _one_line(str(e.value))
    assert "mine.safetensors" in msg and "damaged" in msg and "re-train" in msg
    path.write_bytes(good)
    assert load_model("simu-small", str(path))[1]["integrity"] == "tensors_sha256 verified"


def test_a_checkpoint_with_a_wrong_size_tensor_is_one_line(tmp_path):
    src = zoo.SHIPPED_DIR / "simu-small__mlp.safetensors"
    with safe_open(str(src), framework="pt") as f:
        metadata = f.metadata()
    state = load_file(str(src))
    name = next(k for k, v in state.items() if v.ndim == 2)
    state[name] = state[name][:, :-3].contiguous()  # one tensor of the wrong size
    bad = tmp_path / "wrong.safetensors"
    save_file(state, str(bad), metadata=metadata)
    assert json.loads(metadata[META_KEY])["dataset"] == "simu-small"
    with pytest.raises(XaiError) as e:
        load_model("simu-small", str(bad))
    msg = _one_line(str(e.value))
    assert "wrong.safetensors" in msg and "does not fit" in msg and "re-train" in msg
    assert load_model("simu-small", str(src))[0] is not None  # the source still loads


def test_a_checkpoint_declaring_an_enormous_model_is_refused_before_allocating(tmp_path):
    src = zoo.SHIPPED_DIR / "simu-small__mlp.safetensors"
    with safe_open(str(src), framework="pt") as f:
        metadata = f.metadata()
    meta = json.loads(metadata[META_KEY])
    meta["arch_kwargs"] = {**meta.get("arch_kwargs", {}), "hidden": 10_000_000}  # 2000 x 1e7 weights: 80 GB
    bad = tmp_path / "huge.safetensors"
    save_file(load_file(str(src)), str(bad), metadata={META_KEY: json.dumps(meta)})
    with pytest.raises(XaiError) as e:
        load_model("simu-small", str(bad))
    msg = _one_line(str(e.value))
    assert "huge.safetensors" in msg and "parameters" in msg and "200,000,000" in msg


# ---- dataset cache --------------------------------------------------------------------------------

@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _entry(cache):
    (npz,) = (cache / "datasets").glob("simu-small-*.npz")
    return npz


def test_cache_entry_with_shuffled_labels_is_rebuilt(fresh_cache, capsys):
    from xai_core.data import load_dataset

    ds = load_dataset("simu-small")
    npz = _entry(fresh_cache)
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["y"] = np.random.default_rng(0).permutation(arrays["y"])
    assert not np.array_equal(arrays["y"], ds.y)
    np.savez(npz, **arrays)  # same keys, shapes and dtypes: only the checksum can tell
    capsys.readouterr()
    again = load_dataset("simu-small")
    line = _one_line(capsys.readouterr().err)
    assert "cache entry" in line and "damaged" in line and "rebuilt" in line and str(npz.with_suffix("")) in line
    assert np.array_equal(again.y, ds.y) and again.fingerprint() == ds.fingerprint()
    third = load_dataset("simu-small")  # the rebuilt entry is used quietly
    assert capsys.readouterr().err == "" and third.fingerprint() == ds.fingerprint()


def test_truncated_cache_entry_is_rebuilt(fresh_cache, capsys):
    from xai_core.data import load_dataset

    ds = load_dataset("simu-small")
    npz = _entry(fresh_cache)
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    capsys.readouterr()
    again = load_dataset("simu-small")
    line = _one_line(capsys.readouterr().err)
    assert "damaged" in line and "rebuilt" in line
    assert again.fingerprint() == ds.fingerprint()
    assert load_dataset("simu-small").fingerprint() == ds.fingerprint() and capsys.readouterr().err == ""


def test_old_cache_entry_without_checksum_is_verified_by_reading(fresh_cache, capsys):
    from xai_core.data import load_dataset

    ds = load_dataset("simu-small")
    npz = _entry(fresh_cache)
    meta_path = npz.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta.pop("checksum")
    meta_path.write_text(json.dumps(meta))
    assert load_dataset("simu-small").fingerprint() == ds.fingerprint()  # readable: used
    npz.write_bytes(npz.read_bytes()[:100])
    capsys.readouterr()
    assert load_dataset("simu-small").fingerprint() == ds.fingerprint()
    assert "rebuilt" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("damage", ["labels", "truncate"])
def test_damaged_user_dataset_says_reimport(fresh_cache, tiny, damage):
    from xai_core.data import load_dataset, user

    ds = tiny("expression")
    user.register(ds, "mine-integrity")
    try:
        npz = fresh_cache / "user_data" / "mine-integrity" / "dataset.npz"
        if damage == "labels":
            with np.load(npz, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            arrays["y"] = arrays["y"][::-1].copy()
            np.savez(npz, **arrays)
        else:
            npz.write_bytes(npz.read_bytes()[:200])
        with pytest.raises(XaiError) as e:
            load_dataset("mine-integrity")
        msg = _one_line(str(e.value))
        assert "mine-integrity" in msg and "damaged" in msg and "import it again" in msg
        assert user.entry_of("mine-integrity") is not None  # the entry is kept, not silently dropped
        user.register(tiny("expression"), "mine-integrity")  # re-imported: works again
        assert load_dataset("mine-integrity").fingerprint() == ds.fingerprint()
    finally:
        user.remove("mine-integrity")


# ---- results store ---------------------------------------------------------------------------------

CELL = dict(dataset_fp="fp", model_hash="mh", method="saliency", method_params={}, output="logit")


def _put_attr(st, ids, A):
    st.put_attributions(dataset="d", model="m", **CELL, sample_ids=ids, attributions=A, targets=np.zeros(len(ids)),
                        seconds=1.0, provenance={})


def test_corrupted_blob_is_not_used_and_is_recomputed(tmp_path, monkeypatch, capsys):
    from xai_core.runner import EvalConfig, Evaluation

    path = tmp_path / "r.sqlite"
    monkeypatch.setenv("XAI_CORE_STORE", str(path))
    store = ResultStore(path)
    ev = Evaluation(EvalConfig(dataset="simu-small", methods="saliency", metrics="all", n=6), store)
    idx = ev.ds.test_idx[:6]
    first = ev.attributions("saliency", idx).cpu().numpy()
    sid = ev.ds.sample_ids[idx[2]]
    con = sqlite3.connect(path)
    (data,) = con.execute("SELECT data FROM attributions WHERE sample_id = ?", (sid,)).fetchone()
    flipped = bytes(b ^ 0xFF for b in data[:8]) + data[8:]  # same length: only the checksum can tell
    con.execute("UPDATE attributions SET data = ? WHERE sample_id = ?", (flipped, sid))
    con.commit()
    con.close()
    capsys.readouterr()
    arr, missing = store.get_attributions(**{**dict(dataset_fp=ev.dataset_fp, model_hash=ev.model_hash,
                                                    method="saliency", method_params=ev.method_key("saliency"),
                                                    output="logit")}, sample_ids=[ev.ds.sample_ids[i] for i in idx])
    assert arr is None and missing == [sid]  # never returned
    line = _one_line(capsys.readouterr().err)
    assert "checksum" in line and sid in line
    again = ev.attributions("saliency", idx).cpu().numpy()  # recomputed (alone: batch-size float noise only)
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-7)
    assert np.array_equal(np.delete(again, 2, 0), np.delete(first, 2, 0))  # the intact rows were reused as stored
    capsys.readouterr()
    assert np.array_equal(ev.attributions("saliency", idx).cpu().numpy(), again)
    assert capsys.readouterr().err == ""  # the replaced row verifies
    assert store.summary()["attributions"] == 6  # nothing else was lost
    store.close()


def test_old_store_is_migrated_and_its_rows_accepted(tmp_path):
    path = tmp_path / "old.sqlite"
    A = np.arange(12, dtype="f4").reshape(3, 4)
    with ResultStore(path) as st:
        _put_attr(st, ["a", "b", "c"], A)
    con = sqlite3.connect(path)  # make it look like a version-1 store (no checksum column)
    con.execute("ALTER TABLE attributions DROP COLUMN checksum")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with ResultStore(path) as st:
        got, missing = st.get_attributions(**CELL, sample_ids=["a", "b", "c"])
        assert missing == [] and np.array_equal(got, A)
        _put_attr(st, ["d"], A[:1])
        assert st.get_attributions(**CELL, sample_ids=["d", "a"])[1] == []
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    assert con.execute("SELECT COUNT(*) FROM attributions WHERE checksum IS NULL").fetchone()[0] == 3
    con.close()


def _filled_store(path, n_scores=3000):
    rng = np.random.default_rng(0)
    with ResultStore(path) as st:
        ids = [f"att-{i}" for i in range(20)]
        _put_attr(st, ids, rng.random((20, 50), dtype=np.float32))
        sids = [f"score-sample-{i:05d}" for i in range(n_scores)]
        st.put_scores(dataset="d", model="m", **CELL, metric="deletion", metric_params={}, family="faithfulness",
                      direction="higher", sample_ids=sids, scores=rng.random(n_scores), reasons=[None] * n_scores,
                      seconds=1.0, provenance={})
    return ids, sids


def _garble_a_scores_page(path, marker: bytes = b"score-sample-") -> int:
    """Garbage over the second leaf page of the table whose rows hold ``marker`` (found by the sample ids);
    returns its number."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[16:18], "big")
    size = 65536 if size == 1 else size
    pages = [i for i in range(1, len(raw) // size)
             if raw[i * size] == 0x0D and marker in raw[i * size:(i + 1) * size]]
    assert len(pages) >= 3
    page = pages[1]
    garbage = np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes()
    with open(path, "r+b") as f:
        f.seek(page * size)
        f.write(b"\xff" + garbage[1:])
    return page


def test_damaged_attributions_page_is_one_line_not_a_raw_sqlite_error(tmp_path):
    path = tmp_path / "results.sqlite"
    ids = [f"many-att-{i:04d}" for i in range(400)]
    with ResultStore(path) as st:
        _put_attr(st, ids, np.random.default_rng(1).random((400, 50), dtype=np.float32))
    _garble_a_scores_page(path, marker=b"many-att-")
    with ResultStore(path) as st:
        for read in (st.get_attributions, st.missing_attributions):
            with pytest.raises(XaiError, match="store check"):
                read(**CELL, sample_ids=ids)


def test_damaged_store_page_is_one_line_and_repair_keeps_the_readable_rows(tmp_path, monkeypatch, capsys):
    path = tmp_path / "results.sqlite"
    monkeypatch.setenv("XAI_CORE_STORE", str(path))
    ids, sids = _filled_store(path)
    assert not (tmp_path / "results.sqlite-wal").exists()
    _garble_a_scores_page(path)
    damaged_bytes = _sha(path)
    capsys.readouterr()
    rc = _cli(["rank", "--store", str(path), "--out", str(tmp_path / "rank")], monkeypatch)
    err = _one_line(capsys.readouterr().err)
    assert rc == 2 and str(path) in err and "damaged" in err and "store repair" in err
    assert "internal error" not in err
    with pytest.raises(XaiError, match="store check"):
        with ResultStore(path) as st:
            st.scores_frame()
    assert _sha(path) == damaged_bytes  # a failing command changes nothing

    assert _cli(["store", "check", "--store", str(path)], monkeypatch) == 2
    out = capsys.readouterr()
    assert "problem" in out.out and "store repair" in out.err

    assert _cli(["store", "repair", "--store", str(path)], monkeypatch) == 0
    report = capsys.readouterr().out
    assert "rows kept" in report and "rows lost" in report
    (old,) = tmp_path.glob("results.sqlite.damaged-*")
    assert _sha(old) == damaged_bytes  # the damaged file is kept as it was
    with ResultStore(path) as st:
        got, missing = st.get_attributions(**CELL, sample_ids=ids)
        assert missing == [] and got.shape == (20, 50)  # every attribution row was readable: all kept
        kept = st.scores_frame()
        assert 0 < len(kept) < len(sids) and set(kept["sample"]) <= set(sids)
        lost = [s for s in sids if s not in set(kept["sample"])]
        assert st.missing_scores(**CELL, metric="deletion", metric_params={}, sample_ids=sids) == lost
        st.put_scores(dataset="d", model="m", **CELL, metric="deletion", metric_params={}, family="faithfulness",
                      direction="higher", sample_ids=lost, scores=np.ones(len(lost)), reasons=[None] * len(lost),
                      seconds=1.0, provenance={})  # the next run recomputes what was lost
        assert len(st.scores_frame()) == len(sids)
    assert f"scores {len(kept)}" in report and f"scores {len(lost)}" in report
    assert _cli(["store", "check", "--store", str(path)], monkeypatch) == 0
    assert "ok" in capsys.readouterr().out


def test_store_check_reports_a_failing_blob(tmp_path, monkeypatch, capsys):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as st:
        _put_attr(st, ["a", "b"], np.ones((2, 8), "f4"))
    assert _cli(["store", "check", "--store", str(path)], monkeypatch) == 0
    con = sqlite3.connect(path)
    con.execute("UPDATE attributions SET data = zeroblob(32) WHERE sample_id = 'a'")
    con.commit()
    con.close()
    capsys.readouterr()
    assert _cli(["store", "check", "--store", str(path)], monkeypatch) == 2
    assert "1 of 2 row(s) fail their checksum" in capsys.readouterr().out
    assert _cli(["store", "repair", "--store", str(path)], monkeypatch) == 0
    with ResultStore(path) as st:
        assert st.get_attributions(**CELL, sample_ids=["a", "b"])[1] == ["a"]
    assert _cli(["store", "check", "--store", str(path)], monkeypatch) == 0


def test_corrupted_curve_is_not_used_and_old_curves_are_accepted(tmp_path, monkeypatch, capsys):
    path = tmp_path / "c.sqlite"
    metric = dict(metric="deletion", metric_params={})
    C = np.arange(12, dtype=float).reshape(3, 4)

    def put(st, ids, curves):
        st.put_scores(dataset="d", model="m", **CELL, **metric, family="faithfulness", direction="higher",
                      sample_ids=ids, scores=np.ones(len(ids)), reasons=[None] * len(ids), seconds=1.0,
                      provenance={}, curves=curves)

    with ResultStore(path) as st:
        put(st, ["a", "b", "c"], C)
    con = sqlite3.connect(path)  # a store written before curves had a checksum: the column is added on open
    con.execute("ALTER TABLE scores DROP COLUMN curve_checksum")
    con.commit()
    con.close()
    with ResultStore(path) as st:
        assert np.array_equal(st.curves(**CELL, **metric, sample_ids=["a", "b", "c"]), C)  # old rows accepted
        put(st, ["b"], C[1:2])  # a fresh write carries a checksum
    con = sqlite3.connect(path)
    assert con.execute("SELECT COUNT(*) FROM scores WHERE curve_checksum IS NULL").fetchone()[0] == 2
    con.execute("UPDATE scores SET curve = ? WHERE sample_id = 'b'", (np.zeros(4).tobytes(),))
    con.commit()
    con.close()
    capsys.readouterr()
    with ResultStore(path) as st:
        assert st.curves(**CELL, **metric, sample_ids=["a", "b"]) is None  # the bad curve is never used
        err = capsys.readouterr().err
        assert "checksum" in err and "deletion" in err and str(path) in err
        assert np.array_equal(st.curves(**CELL, **metric, sample_ids=["c", "a"]), C[[2, 0]])
        assert capsys.readouterr().err == ""
    assert _cli(["store", "check", "--store", str(path)], monkeypatch) == 2
    assert "1 of 3 curve(s) fail their checksum" in capsys.readouterr().out
    assert _cli(["store", "repair", "--store", str(path)], monkeypatch) == 0
    with ResultStore(path) as st:
        assert st.missing_scores(**CELL, **metric, sample_ids=["a", "b", "c"]) == ["b"]  # recomputed next run
    assert _cli(["store", "check", "--store", str(path)], monkeypatch) == 0
