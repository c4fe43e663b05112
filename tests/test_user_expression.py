"""A user's own expression data: .h5ad (dense, CSR, CSC, layers), CSV/TSV tables in both orientations,
marker genes and gene sets, hvg / max_cells, one test per bad input, and the import_data round trip."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from xai_core.data import SparseRows, UserDataError, load_dataset
from xai_core.data import expression_h5ad, load_expression as le
from xai_core.data.importers import detect_format

N, G = 48, 12
CLASSES = ["B", "NK", "T"]
GENES = [f"G{i}" for i in range(G)]
CELLS = [f"cell{i}" for i in range(N)]


@pytest.fixture(scope="module")
def expr():
    """Log-normalised-looking values with many zeros, labels B/NK/T, a split column."""
    rng = np.random.default_rng(0)
    counts = rng.poisson(rng.gamma(0.6, 2.0, G), size=(N, G)).astype(np.float32)
    X = np.log1p(counts).astype(np.float32)
    labels = np.array(CLASSES * (N // 3))
    split = np.where(np.arange(N) % 4 == 0, "test", "train")
    return X, labels, split


def make_adata(expr, sparse=None):
    import anndata

    X, labels, split = expr
    M = X if sparse is None else (sp.csr_matrix(X) if sparse == "csr" else sp.csc_matrix(X))
    obs = pd.DataFrame({"cell_type": pd.Categorical(labels), "split": split, "batch": "b1"}, index=CELLS)
    ad = anndata.AnnData(M, obs=obs, var=pd.DataFrame(index=GENES))
    ad.layers["counts"] = np.expm1(X) if sparse is None else sp.csr_matrix(np.expm1(X))
    return ad


def write_h5ad(tmp_path, expr, sparse=None, name="cells.h5ad"):
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_adata(expr, sparse).write_h5ad(path)
    return path


def dense(ds):
    return ds.X[np.arange(len(ds))] if isinstance(ds.X, SparseRows) else ds.X


def check_basic(ds, expr):
    X, labels, split = expr
    assert ds.modality == "expression" and ds.X.shape == (N, G)
    assert ds.class_names == CLASSES and ds.feature_names == GENES and ds.sample_ids == CELLS
    assert [ds.class_names[c] for c in ds.y] == list(labels)


# -- h5ad -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sparse", [None, "csr", "csc"])
def test_h5ad_reads_values_labels_and_split(tmp_path, expr, sparse):
    X, labels, split = expr
    path = write_h5ad(tmp_path, expr, sparse)
    assert detect_format(path).name == "h5ad"
    ds = le.from_h5ad(path, "cells", label_key="cell_type", split_key="split", standardize=False)
    check_basic(ds, expr)
    assert isinstance(ds.X, SparseRows) == (sparse is not None)
    np.testing.assert_allclose(dense(ds), X, rtol=1e-6)
    np.testing.assert_array_equal(ds.test_idx, np.flatnonzero(split == "test"))
    assert ds.params["split"].startswith("given") and ds.params["label_key"] == "cell_type"
    # standardised: undoing the training statistics gives the source values back
    st = le.from_h5ad(path, "cells", label_key="cell_type", split_key="split")
    assert st.params["standardized"] and isinstance(st.X, SparseRows) == (sparse is not None)
    tr = X[st.train_idx]
    sd = np.where(tr.std(axis=0) < 1e-8, 1.0, tr.std(axis=0))
    np.testing.assert_allclose(dense(st) * sd + tr.mean(axis=0), X, atol=1e-4)
    # a layer instead of X
    lay = le.from_h5ad(path, "cells", label_key="cell_type", layer="counts", standardize=False)
    np.testing.assert_allclose(dense(lay), np.expm1(X), rtol=1e-5)
    assert lay.params["layer"] == "counts" and lay.params["split"].startswith("stratified")


def test_from_anndata_keeps_sparse_and_never_densifies(expr):
    ad = make_adata(expr, "csr")
    ds = le.from_anndata(ad, "cell_type", name="mem", standardize=False)
    assert isinstance(ds.X, SparseRows) and (ds.X.csr != ad.X).nnz == 0
    with pytest.raises(TypeError):
        np.asarray(ds.X)  # SparseRows refuses to densify whole
    check_basic(ds, expr)


def test_h5ad_missing_obs_key_lists_columns(tmp_path, expr):
    path = write_h5ad(tmp_path, expr)
    with pytest.raises(UserDataError) as e:
        le.from_h5ad(path, "cells", label_key="celltype")
    msg = str(e.value)
    assert "cells.h5ad" in msg and "'celltype'" in msg and "'cell_type'" in msg and "'batch'" in msg
    with pytest.raises(UserDataError, match="no layer 'raw'.*'counts'"):
        le.from_h5ad(path, "cells", label_key="cell_type", layer="raw")


def test_h5ad_not_hdf5(tmp_path):
    path = tmp_path / "fake.h5ad"
    path.write_text("cell,gene\n1,2\n")
    assert detect_format(path).name == "h5ad"  # the reader then explains
    with pytest.raises(UserDataError, match=r"fake\.h5ad: is not an HDF5 file"):
        le.from_h5ad(path, "x", label_key="y")


def test_h5ad_dense_larger_than_memory(tmp_path, expr, monkeypatch):
    path = write_h5ad(tmp_path, expr)
    monkeypatch.setattr(expression_h5ad, "_available_memory", lambda: 1000)
    with pytest.raises(UserDataError, match=r"cells\.h5ad: the dense X needs .*max_cells.*sparse"):
        le.from_h5ad(path, "cells", label_key="cell_type")
    path2 = write_h5ad(tmp_path, expr, "csr", name="sparse.h5ad")  # the sparse file is not refused
    assert le.from_h5ad(path2, "cells", label_key="cell_type").X.shape == (N, G)


def test_hvg_and_max_cells(tmp_path, expr, monkeypatch):
    path = write_h5ad(tmp_path, expr, "csr")
    ds = le.from_h5ad(path, "cells", label_key="cell_type", hvg=5, max_cells=30, seed=3)
    assert ds.X.shape == (30, 5) and isinstance(ds.X, SparseRows)
    assert ds.params["hvg"]["genes_kept"] == 5 and ds.params["max_cells"]["cells_kept"] == 30
    assert np.bincount(ds.y).tolist() == [10, 10, 10]
    assert set(ds.sample_ids) <= set(CELLS)
    again = le.from_h5ad(path, "cells", label_key="cell_type", hvg=5, max_cells=30, seed=3)
    assert again.sample_ids == ds.sample_ids and again.feature_names == ds.feature_names
    # a dense X is read in chunks of rows, keeping the subsample
    monkeypatch.setattr(expression_h5ad, "H5_CHUNK_ROWS", 7)
    dense_path = write_h5ad(tmp_path, expr, name="dense.h5ad")
    sub = le.from_h5ad(dense_path, "cells", label_key="cell_type", max_cells=30, seed=3, standardize=False)
    assert sub.sample_ids == ds.sample_ids
    np.testing.assert_array_equal(sub.X, expr[0][[CELLS.index(c) for c in sub.sample_ids]])
    with pytest.raises(UserDataError, match="max_cells=4 is too few for 3 classes"):
        le.from_h5ad(path, "cells", label_key="cell_type", max_cells=4)


def test_hvg_matches_scanpy_seurat(expr):
    import anndata
    import scanpy as sc

    rng = np.random.default_rng(1)  # enough genes per bin for no ties at the cut
    X = np.log1p(rng.poisson(rng.gamma(0.8, 2.0, 300), size=(200, 300))).astype(np.float32)
    rows = np.arange(0, 200, 2)
    ours = le.highly_variable(sp.csr_matrix(X), rows, 40, chunk=33)
    np.testing.assert_array_equal(ours, le.highly_variable(X, rows, 40))  # dense and sparse agree
    ad = anndata.AnnData(X[rows])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.highly_variable_genes(ad, n_top_genes=40, flavor="seurat")
    np.testing.assert_array_equal(ours, np.flatnonzero(ad.var["highly_variable"].to_numpy()))
    with pytest.raises(UserDataError, match="log-normalised"):
        le.highly_variable(np.expm1(X) * 100, rows, 6)


# -- tables ---------------------------------------------------------------------------------------------
def write_cells_x_genes(tmp_path, expr, name="cells.csv"):
    X, labels, split = expr
    df = pd.DataFrame(X, columns=GENES, index=pd.Index(CELLS, name="cell_id"))
    df.insert(3, "label", labels)
    df.to_csv(tmp_path / name)
    return tmp_path / name


def write_genes_x_cells(tmp_path, expr):
    X, labels, split = expr
    pd.DataFrame(X.T, index=pd.Index(GENES, name="gene"), columns=CELLS).to_csv(tmp_path / "genes.tsv", sep="\t")
    pd.DataFrame({"id": CELLS[::-1], "label": labels[::-1], "split": split[::-1]}).to_csv(
        tmp_path / "labels.csv", index=False)
    return tmp_path / "genes.tsv", tmp_path / "labels.csv"


def test_tables_in_both_orientations_give_the_same_numbers(tmp_path, expr):
    X, labels, split = expr
    csv_path = write_cells_x_genes(tmp_path, expr)
    a = le.from_table(csv_path, "a", standardize=False)
    check_basic(a, expr)
    assert a.params["orientation"] == "cells x genes" and "label column 'label'" in a.params["orientation_detected"]
    tsv, lab = write_genes_x_cells(tmp_path, expr)
    assert detect_format(tsv).name == "table"
    b = le.from_table(tsv, "b", labels=lab, standardize=False)
    check_basic(b, expr)
    assert b.params["orientation"] == "genes x cells" and "column names" in b.params["orientation_detected"]
    np.testing.assert_allclose(a.X, X, rtol=1e-6)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(b.test_idx, np.flatnonzero(split == "test"))  # the label file's split
    # cells x genes with the labels in a separate file (ids in the first column)
    pd.DataFrame(X, columns=GENES, index=CELLS).to_csv(tmp_path / "nolabel.csv")
    c = le.from_table(tmp_path / "nolabel.csv", "c", labels=lab, standardize=False)
    assert c.params["orientation"] == "cells x genes" and "first-column" in c.params["orientation_detected"]
    np.testing.assert_array_equal(c.X, a.X)


def test_markers_and_gene_sets(tmp_path, expr):
    csv_path = write_cells_x_genes(tmp_path, expr)
    (tmp_path / "markers.csv").write_text("class,gene\nB,G1\nB,G4\nNK,G2\nT,G0\nT,NOTAGENE\n")
    (tmp_path / "markers.gmt").write_text("B\tdesc\tG1\tG4\nNK\tna\tG2\nT\t\tG0\tNOTAGENE\n")
    (tmp_path / "sets.gmt").write_text("p1\tx\tG0\tG1\tG2\np2\tx\tG2\tG3\tABSENT\n")
    for m in ("markers.csv", "markers.gmt"):
        ds = le.from_table(csv_path, "m", markers=tmp_path / m, gene_sets=tmp_path / "sets.gmt")
        fs = ds.ground_truth.feature_sets
        assert {k: v.tolist() for k, v in fs.items()} == {"B": [1, 4], "NK": [2], "T": [0]}
        assert ds.ground_truth.strength == "weak" and "marker" in ds.ground_truth.note
        assert ds.params["markers"]["dropped"] == {"T": ["NOTAGENE"]}
    assert ds.feature_groups.tolist() == [0, 0, 0, 1] + [-1] * (G - 4)
    assert ds.params["gene_sets"]["names"] == ["p1", "p2"]
    (tmp_path / "bad.csv").write_text("B,G1\nMono,G2\n")
    with pytest.raises(UserDataError, match=r"bad\.csv: marker class 'Mono' is not a class.*'B', 'NK', 'T'"):
        le.from_table(csv_path, "m", markers=tmp_path / "bad.csv")


BAD_TABLES = {
    "ragged": ("id,G0,G1,label\nc1,1,2,A\nc2,1,2,3,A\n", r"line 3 has 5 fields but the header has 4"),
    "non-numeric": ("id,G0,G1,label\nc1,1,2,A\nc2,1,x7,A\nc3,1,2,B\nc4,1,2,B\n",
                    r"non-numeric value 'x7' at row 'c2', column 'G1'"),
    "nan": ("id,G0,G1,label\nc1,1,2,A\nc2,1,nan,A\nc3,1,2,B\nc4,1,2,B\n", r"NaN or infinite.*'G1'"),
    "inf": ("id,G0,G1,label\nc1,1,2,A\nc2,inf,1,A\nc3,1,2,B\nc4,1,2,B\n", r"NaN or infinite.*'G0'"),
    "duplicated genes": ("id,G0,G0,label\nc1,1,2,A\nc2,1,2,A\nc3,1,2,B\nc4,1,2,B\n", r"duplicated gene names: 'G0'"),
    "one class": ("id,G0,G1,label\nc1,1,2,A\nc2,1,2,A\nc3,1,2,A\n", r"one class only \('A'\)"),
    "one sample": ("id,G0,G1,label\nc1,1,2,A\nc2,1,2,A\nc3,1,2,B\n", r"fewer than 2 samples: 'B' \(1\)"),
    "no label column": ("id,G0,G1,type\nc1,1,2,A\nc2,1,2,A\n", r"no label column 'label'.*'type'"),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_bad_tables_are_refused_with_the_file_and_problem(tmp_path, case):
    text, problem = BAD_TABLES[case]
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(UserDataError, match=problem) as e:
        le.from_table(path, "bad")
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_import_data_round_trip(tmp_path, expr, monkeypatch):
    from xai_core.data import user

    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    try:
        for src, opts in ((write_h5ad(tmp_path, expr, "csr"), {"label_key": "cell_type", "hvg": 8}),
                          (write_cells_x_genes(tmp_path, expr), {})):
            ds, entry, reused = user.import_data(src, "my-cells", **opts)
            assert not reused and entry["format"] == ("h5ad" if src.suffix == ".h5ad" else "table")
            back = load_dataset("my-cells")
            np.testing.assert_array_equal(dense(back), dense(ds))
            np.testing.assert_array_equal(back.y, ds.y)
            assert back.feature_names == ds.feature_names and back.sample_ids == ds.sample_ids
            assert isinstance(back.X, SparseRows) == isinstance(ds.X, SparseRows)
            assert user.import_data(src, "my-cells", **opts)[2]  # unchanged: reused
    finally:
        if user.entry_of("my-cells") is not None:
            user.remove("my-cells")
