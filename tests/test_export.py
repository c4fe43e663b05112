"""Results out: `python -m xai_core export --to anndata` on stored results of simu-small and of a user's own h5ad.

Attributions are computed into a temporary store for a few test cells, exported, read back with
``anndata.read_h5ad`` and compared with what the store holds (recomputed here from ``ev.stored_attributions``).
"""
from __future__ import annotations

import argparse
import hashlib
import sys

import numpy as np
import pandas as pd
import pytest

anndata = pytest.importorskip("anndata")

from xai_core.errors import XaiError  # noqa: E402
from xai_core.runner import EvalConfig, Evaluation  # noqa: E402
from xai_core.store import ResultStore  # noqa: E402

METHODS = ["integrated_gradients", "saliency"]


def export(argv: list[str]) -> int:
    """The CLI in-process: through ``xai_core.cli.main`` once it has the subcommand, else the same handling here."""
    from xai_core import cli

    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "export" in sub.choices:
        return cli.main(["export", *argv])
    from xai_core.cli_export import add_parser

    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers())
    args = p.parse_args(["export", *argv])
    try:
        return args.fn(args)
    except XaiError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _class_means(ds, idx, maps):
    """{(class index): (signed mean, mean |a|)} over the cells of idx, recomputed from the stored maps."""
    out = {}
    for c in np.unique(ds.y[idx]):
        a = maps[ds.y[idx] == c].astype(np.float64)
        out[int(c)] = (a.mean(0), np.abs(a).mean(0))
    return out


@pytest.fixture(scope="module")
def simu(tmp_path_factory):
    """saliency + IG on 3 test cells of class 0 and 3 of class 1, scored with two cheap metrics."""
    d = tmp_path_factory.mktemp("export")
    store = ResultStore(d / "r.sqlite")
    idx = []
    for c in (0, 1):
        ev = Evaluation(EvalConfig(dataset="simu-small", methods=",".join(METHODS), metrics="sparseness,complexity",
                                   n=3, classes=[c]), store)
        plan = ev.plan()
        ev.run(plan)
        idx += list(plan.sample_idx)
    yield d, ev, np.asarray(idx)
    store.close()


def test_export_matches_the_store(simu, capsys):
    d, ev, idx = simu
    out = d / "out" / "simu.h5ad"
    assert export(["--dataset", "simu-small", "--to", "anndata", "--out", str(out), "--per-cell",
                   "--store", str(d / "r.sqlite")]) == 0
    assert "wrote" in capsys.readouterr().out
    a = anndata.read_h5ad(out)
    ds = ev.ds
    assert a.shape == (len(ds), len(ds.feature_names))
    assert list(a.var_names) == list(ds.feature_names) and list(a.obs_names) == list(ds.sample_ids)
    np.testing.assert_array_equal(np.asarray(a.X), ds.X)
    for method in METHODS:
        maps, missing = ev.stored_attributions(method, idx)
        assert not missing
        for c, (mean, mabs) in _class_means(ds, idx, maps).items():
            col = f"xai_{method}_class_{c}"
            np.testing.assert_allclose(a.var[col].to_numpy(), mean, rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(a.var[col + "_abs"].to_numpy(), mabs, rtol=1e-5, atol=1e-7)
            assert col in a.uns["xai"]["columns"]["var"]
        assert f"xai_{method}_class_2" not in a.var  # no explained cell of class 2: skipped and listed
        assert list(a.uns["xai"]["missing"]["classes"][method]) == ["class 2", "class 3", "class 4"]
        layer = a.layers[f"xai_{method}"]
        np.testing.assert_array_equal(layer[idx], maps.reshape(len(idx), -1))
        rest = np.setdiff1d(np.arange(len(ds)), idx)
        assert np.isnan(layer[rest]).all()
        assert a.obs[f"xai_explained_{method}"].to_numpy().sum() == len(idx)
    assert list(a.obs["xai_label"].astype(str)[:3]) == [ds.class_names[k] for k in ds.y[:3]]
    assert set(a.obs["xai_split"].astype(str)) == {"train", "test"}
    pred = a.obs["xai_prediction"].astype(str).to_numpy()[idx]
    assert (pred == np.asarray(ds.class_names)[ds.y[idx]]).all()  # evaluate explains correctly classified cells
    xai = a.uns["xai"]
    r = xai["ranking"]
    assert sorted(r["methods"]) == sorted(METHODS) and r["rank_probabilities"].shape == (2, 2)
    assert np.allclose(r["rank_probabilities"].sum(1), 1)
    assert ((r["mrr_lo"] <= r["mrr"]) & (r["mrr"] <= r["mrr_hi"])).all()
    assert set(r["metrics_used"]) == {"sparseness", "complexity"}
    from xai_core.ranking import mc_mrr
    from xai_core.runner import ranking_input

    want = mc_mrr(ranking_input(ev.store.scores_frame(dataset="simu-small")), n_draws=10_000, seed=0, missing="worst")
    np.testing.assert_allclose(r["mrr"], want.table.loc[list(r["methods"]), "mrr"].to_numpy())  # as `rank` computes it
    prov = xai["provenance"]
    assert prov["dataset"]["name"] == "simu-small" and prov["dataset"]["fingerprint"] == ev.dataset_fp
    assert prov["model"]["checkpoint_hash"] == ev.model_hash
    assert set(prov["methods"]) == set(METHODS) and "n_steps" in prov["methods"]["integrated_gradients"]["params_json"]
    assert prov["versions"]["torch"] and prov["versions"]["anndata"] and prov["created"]
    assert set(xai["columns"]["obs"]) >= {"xai_label", "xai_split", "xai_prediction"}


def test_methods_filter_and_nothing_stored_for_one(simu, capsys):
    from xai_core.export import to_anndata

    d, ev, idx = simu
    a = to_anndata("simu-small", store=ev.store, methods="saliency,smoothgrad")
    assert not any(c.startswith("xai_integrated_gradients") for c in a.var.columns)
    assert "xai_saliency_class_0" in a.var and not a.layers
    assert list(a.uns["xai"]["missing"]["methods"]) == ["smoothgrad"]
    assert "fewer than two" in a.uns["xai"]["ranking"]["note"]


def test_bad_cases_say_what_to_do(simu, tmp_path, capsys):
    d, ev, idx = simu
    store = str(d / "r.sqlite")
    assert export(["--dataset", "grain", "--out", str(tmp_path / "g.h5ad"), "--store", store]) == 2
    assert "AnnData export is for expression data; use explain's attributions.npz" in capsys.readouterr().err
    assert export(["--dataset", "simu-small", "--out", str(tmp_path), "--store", store]) == 2
    assert "is a directory" in capsys.readouterr().err
    (tmp_path / "dir.h5ad").mkdir()
    assert export(["--dataset", "simu-small", "--out", str(tmp_path / "dir.h5ad"), "--store", store]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert export(["--dataset", "simu-small", "--out", str(tmp_path / "x.csv"), "--store", store]) == 2
    assert "must end in .h5ad" in capsys.readouterr().err
    assert export(["--dataset", "simu-small", "--out", str(tmp_path / "x.h5ad"), "--store",
                   str(tmp_path / "none.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "nothing stored" in err and "python -m xai_core evaluate --dataset simu-small" in err
    assert not (tmp_path / "none.sqlite").exists()  # a check never creates a store
    assert export(["--dataset", "simu-small", "--model", "lr", "--out", str(tmp_path / "x.h5ad"),
                   "--store", store]) == 2
    err = capsys.readouterr().err
    assert "nothing stored for simu-small with model lr" in err and "--model lr" in err and "model(s) mlp" in err
    assert not (tmp_path / "x.h5ad").exists()


def _user_h5ad(path):
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    n, g = 120, 40
    y = np.arange(n) % 2
    X = rng.gamma(1.0, 1.0, size=(n, g)).astype(np.float32)
    X[y == 1, :4] += 3.0
    X[X < 1.0] = 0.0
    obs = pd.DataFrame({"cell_type": pd.Categorical(np.where(y == 1, "tumour", "normal")),
                        "donor": [f"d{i % 3}" for i in range(n)]}, index=[f"c{i}" for i in range(n)])
    var = pd.DataFrame({"chrom": [f"chr{i % 5}" for i in range(g)]}, index=[f"G{i}" for i in range(g)])
    a = anndata.AnnData(X=sp.csr_matrix(X), obs=obs, var=var, uns={"lab": "mine"})
    a.write_h5ad(path)
    return a


def test_user_h5ad_exports_to_a_copy(tmp_path, monkeypatch, capsys):
    from xai_core.cli import main
    from xai_core.data import import_data
    from xai_core.data.user import remove
    from xai_core.export import to_anndata

    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "cells.h5ad"
    orig = _user_h5ad(src)
    before = _sha(src)
    try:
        ds, _, _ = import_data(src, "my-cells", label_key="cell_type", hvg=20, max_cells=80)
        assert len(ds) == 80 and len(ds.feature_names) == 20
        assert main(["train", "--dataset", "my-cells", "--epochs", "2"]) == 0
        store = ResultStore(tmp_path / "r.sqlite")
        ev = Evaluation(EvalConfig(dataset="my-cells", methods=",".join(METHODS), metrics="sparseness", n=6,
                                   only_correct=False), store)
        plan = ev.plan()
        ev.run(plan)
        idx = plan.sample_idx
        capsys.readouterr()
        out = tmp_path / "export" / "cells_xai.h5ad"
        assert export(["--dataset", "my-cells", "--out", str(out), "--per-cell",
                       "--store", str(tmp_path / "r.sqlite")]) == 0
        assert _sha(src) == before  # their file is only read
        assert export(["--dataset", "my-cells", "--out", str(src), "--store", str(tmp_path / "r.sqlite")]) == 2
        assert "never changes it" in capsys.readouterr().err and _sha(src) == before
        a = anndata.read_h5ad(out)
        assert a.shape == orig.shape and list(a.obs_names) == list(orig.obs_names)
        assert (a.obs["donor"] == orig.obs["donor"]).all() and (a.var["chrom"] == orig.var["chrom"]).all()
        assert a.uns["lab"] == "mine"
        np.testing.assert_array_equal(a.X.toarray(), orig.X.toarray())
        rows = a.obs_names.get_indexer(ds.sample_ids)
        cols = a.var_names.get_indexer(ds.feature_names)
        assert a.obs["xai_in_dataset"].sum() == 80 and a.var["xai_in_dataset"].sum() == 20
        other_genes = np.setdiff1d(np.arange(a.n_vars), cols)
        for method in METHODS:
            maps, missing = ev.stored_attributions(method, idx)
            assert not missing
            for c, (mean, mabs) in _class_means(ds, idx, maps).items():
                col = f"xai_{method}_{ds.class_names[c]}"
                v = a.var[col].to_numpy()
                np.testing.assert_allclose(v[cols], mean, rtol=1e-5, atol=1e-7)
                np.testing.assert_allclose(a.var[col + "_abs"].to_numpy()[cols], mabs, rtol=1e-5, atol=1e-7)
                assert np.isnan(v[other_genes]).all()  # genes hvg dropped
            layer = a.layers[f"xai_{method}"]
            np.testing.assert_array_equal(layer[np.ix_(rows[idx], cols)], maps)
            assert np.isnan(np.delete(layer, rows[idx], axis=0)).all()  # unexplained cells and cells not kept
            assert np.isnan(layer[:, other_genes]).all()
        assert a.obs["xai_label"].isna().sum() == 40  # the cells max_cells left out
        assert a.uns["xai"]["provenance"]["dataset"]["source_sha256"] == before
        assert a.uns["xai"]["provenance"]["dataset"]["format"] == "h5ad"
        mem = to_anndata("my-cells", store=store)  # in memory: their file read, the same columns added
        assert "donor" in mem.obs and "xai_saliency_tumour" in mem.var and not mem.layers
        np.testing.assert_allclose(mem.var["xai_saliency_tumour"], a.var["xai_saliency_tumour"], equal_nan=True)
        store.close()
    finally:
        remove("my-cells")
    assert _sha(src) == before
