"""Add your data page (AppTest, no browser) on a private cache folder: import a small CSV by its path, see the
preview, use it in the sidebar, train a first model, re-import changed data under the same name (no stale
model or evaluation), remove it; a bad CSV gives one error and the page keeps working. Plus the parts without
a page: safe zip extraction, the preview summary on a lazy sparse matrix, the option widgets' help parsing."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from app_helpers import no_exception, open_page

from dashboard import add_data_view as view
from dashboard import uploads
from dashboard.import_options import help_choices, help_default


@pytest.fixture
def user_cache(tmp_path, monkeypatch, app_store):
    """A private XAI_CORE_CACHE (user datasets, uploads, trained models) and results store."""
    root = tmp_path / "cache"
    root.mkdir()
    monkeypatch.setenv("XAI_CORE_CACHE", str(root))
    return root


def write_csv(path: Path, n: int = 60, genes: int = 12, classes=("A", "B"), shift: float = 3.0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = np.array([classes[i % len(classes)] for i in range(n)])
    X = rng.normal(size=(n, genes))
    X[y == classes[-1], :3] += shift
    lines = ["id,label," + ",".join(f"G{j}" for j in range(genes))]
    lines += [f"cell{i},{y[i]}," + ",".join(f"{v:.4f}" for v in X[i]) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def page_at_path(path: Path):
    at = open_page("add_data", dataset=None)
    at.radio(key="ad_source").set_value("a path on this machine").run()
    at.text_input(key="ad_path").input(str(path)).run()
    return at


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def sidebar_dataset(at) -> str:
    return at.sidebar.selectbox(key="dataset").value


def test_import_preview_use_train_and_remove(user_cache, tmp_path):
    csv = write_csv(tmp_path / "my cells.csv")
    at = page_at_path(csv)
    no_exception(at)
    assert any("**table**" in i.value for i in at.info), [i.value for i in at.info]
    assert at.text_input(key="ad_name").value == "my-cells"
    at.button(key="ad_import").click().run()
    no_exception(at)
    assert any("Imported **my-cells**" in s.value for s in at.success)
    assert metric(at, "Samples") == "60" and metric(at, "Input") == "12" and metric(at, "Classes") == "2"
    assert metric(at, "Train / test") == "45 / 15"
    assert any("orientation" in m.value and "cells x genes" in m.value for m in at.markdown)
    assert at.dataframe[0].value.shape[0] == 6  # a few rows, first genes
    assert "my-cells" in at.sidebar.selectbox(key="dataset").options[-1]  # listed last, "(expression, yours)"
    assert "yours" in at.sidebar.selectbox(key="dataset").format_func("my-cells")

    at.button(key="ad_use").click().run()
    no_exception(at)
    assert sidebar_dataset(at) == "my-cells"

    assert at.number_input(key="ad_epochs").value == 10  # the page's default; a second on 60 cells
    at.button(key="ad_train").click().run()
    no_exception(at)
    assert any("test accuracy" in s.value for s in at.success), [s.value for s in at.success]
    assert not any("chance level" in w.value for w in at.warning)  # separable classes
    model = at.session_state["model"]
    assert model.endswith(".safetensors") and "my-cells__mlp" in model
    assert sidebar_dataset(at) == "my-cells"

    at.button(key="ad_rm_my-cells").click().run()
    no_exception(at)
    assert any("Removed **my-cells**" in s.value for s in at.success)
    assert sidebar_dataset(at) == "simu-small"
    assert "my-cells" not in at.sidebar.selectbox(key="dataset").options
    assert not (user_cache / "user_data" / "my-cells").exists()


@pytest.mark.parametrize("bad", ["one class", "ragged"])
def test_bad_csv_shows_one_error_and_the_page_keeps_working(user_cache, tmp_path, bad):
    path = tmp_path / "bad.csv"
    if bad == "one class":
        write_csv(path, classes=("A",))
    else:
        write_csv(path)
        lines = path.read_text().splitlines()
        lines[5] = lines[5] + ",1.0,2.0"
        path.write_text("\n".join(lines) + "\n")
    at = page_at_path(path)
    at.button(key="ad_import").click().run()
    assert not at.exception
    assert len(at.error) == 1, [e.value for e in at.error]
    assert "bad.csv" in at.error[0].value
    assert not (user_cache / "user_data" / "bad").exists()
    # still usable: a good file imports in the same session
    good = write_csv(tmp_path / "good.csv")
    at.text_input(key="ad_path").input(str(good)).run()
    at.button(key="ad_import").click().run()
    no_exception(at)
    assert metric(at, "Samples") == "60"


def test_changed_file_under_the_same_name_is_not_served_stale(user_cache, tmp_path):
    """Evaluation and predictions are keyed on the user dataset's fingerprint (and the checkpoint's version):
    a changed file re-imported under the same name gets a new evaluation; old models are no longer offered."""
    from dashboard import state
    from dashboard.training import train_and_save
    from xai_core.data import import_data

    csv = write_csv(tmp_path / "cells.csv", seed=0)
    import_data(csv, "cells")
    fp1 = state.fingerprint("cells")
    path1, _ = train_and_save("cells", "mlp", 0, 1)
    ev1 = state.evaluation("cells", str(path1), 0)
    assert state.model_choices("cells") == [str(path1)]
    write_csv(csv, n=80, seed=1)
    import_data(csv, "cells")
    fp2 = state.fingerprint("cells")
    assert fp2 != fp1
    assert state.model_choices("cells") == []  # trained on the old content
    path2, _ = train_and_save("cells", "mlp", 0, 1)
    assert path2 == path1  # same file name, new content
    ev2 = state.evaluation("cells", str(path2), 0)
    assert ev2 is not ev1 and len(ev2.ds) == 80 and ev2.ds.fingerprint() == fp2
    assert state.predictions("cells", str(path2), 0)["pred"].shape == (80,)
    assert "cells" in state.dataset_names()  # the user part is not cached
    from xai_core.data import remove_user_dataset

    remove_user_dataset("cells")
    assert "cells" not in state.dataset_names()


def test_zip_is_extracted_safely(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    good = tmp_path / "imgs.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("imgs/a/1.png", b"x")
        z.writestr("imgs/b/1.png", b"y")
        z.writestr("__MACOSX/imgs/a/._1.png", b"junk")
    root = uploads.save_upload("imgs.zip", good.read_bytes())
    assert root.name == "imgs" and sorted(p.name for p in root.iterdir()) == ["a", "b"]
    assert str(root).startswith(str(tmp_path / "cache" / "uploads"))
    assert not any("MACOSX" in str(p) for p in root.parent.rglob("*"))

    from xai_core.data import UserDataError

    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as z:
        z.writestr("ok/a.png", b"x")
        z.writestr("../../evil.txt", b"pwned")
    with pytest.raises(UserDataError, match="outside"):
        uploads.extract_zip(slip, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil.txt").exists()

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/zeros.bin", b"\0" * (4 << 20))
    with pytest.raises(UserDataError, match="GiB|inflates"):
        uploads.extract_zip(bomb, tmp_path / "out2", max_bytes=1 << 20)
    assert not (tmp_path / "out2").exists()


def test_summary_of_a_lazy_sparse_matrix_reads_only_a_few_rows():
    import scipy.sparse as sp

    from xai_core.data import Dataset, SparseRows
    from xai_core.data.preview import summarize

    rng = np.random.default_rng(0)
    n = 500
    X = SparseRows(sp.random(n, 300, density=0.05, format="csr", random_state=0, dtype=np.float32))
    y = rng.integers(0, 3, n)
    ds = Dataset("lazy", "expression", X, y, ["a", "b", "c"], [f"g{i}" for i in range(300)], np.arange(400),
                 np.arange(400, n), params={"orientation": "cells x genes"})
    s = summarize(ds)  # SparseRows refuses to be densified whole (TypeError)
    assert s["lazy"] and s["shape"] == [n, 300] and s["orientation"] == "cells x genes"
    assert sum(c["count"] for c in s["classes"]) == n and s["split"] == {"train": 400, "test": 100,
                                                                          "how": "given by the dataset"}
    assert len(s["rows"]["values"]) == 6 and len(s["rows"]["genes"]) == 8
    assert not s["ground_truth"]["present"]


def test_option_help_is_read_into_choices():
    assert help_choices("how images become square: resize (stretch, default), crop (centre square) or pad") \
        == (["resize", "crop", "pad"], "resize")
    assert help_choices("auto (default), 'cells x genes' or 'genes x cells'") == \
        (["auto", "cells x genes", "genes x cells"], "auto")
    assert help_choices("the obs column holding the labels") == ([], None)
    assert help_default("fraction held out (default 0.25)") == "0.25"
    assert view.default_name(Path("/x/My cells (v2).csv.gz")) == "My-cells-v2"


def write_fasta(path: Path, n: int = 40, length: int = 120, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        seq = "".join(rng.choice(list("ACGT"), length))
        if i % 2:
            seq = seq[:50] + "TGACTCA" + seq[57:]
        lines += [f">s{i} label={i % 2}", seq]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_image_folder(root: Path, per_class: int = 6) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("healthy", "spotted"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray((rng.random((16, 16)) * 255).astype("uint8")).save(root / c / f"{i}.png")
    return root


@pytest.mark.parametrize("kind", ["fasta", "image-folder", "h5ad"])
def test_other_formats_preview(user_cache, tmp_path, kind):
    if kind == "fasta":
        path = write_fasta(tmp_path / "seqs.fa")
    elif kind == "image-folder":
        path = write_image_folder(tmp_path / "imgs")
    else:
        import anndata
        import pandas as pd

        rng = np.random.default_rng(0)
        obs = pd.DataFrame({"cell_type": ["T", "B"] * 20, "batch": ["x"] * 40}, index=[f"c{i}" for i in range(40)])
        path = tmp_path / "cells.h5ad"
        anndata.AnnData(rng.normal(size=(40, 10)).astype("f4"), obs=obs,
                        var=pd.DataFrame(index=[f"g{i}" for i in range(10)])).write_h5ad(path)
    at = page_at_path(path)
    no_exception(at)
    assert any(f"**{kind}**" in i.value for i in at.info), [i.value for i in at.info]
    if kind == "h5ad":  # the obs columns are offered for the label key
        box = at.selectbox(key="ad_opt_h5ad_label_key")
        assert {"cell_type", "batch"} <= set(box.options)
        box.set_value("cell_type").run()
    at.button(key="ad_import").click().run()
    no_exception(at)
    assert metric(at, "Classes") == "2"
    if kind == "fasta":
        assert metric(at, "Input") == "4 × 120" and at.dataframe[0].value.shape[0] >= 2
    elif kind == "image-folder":
        assert metric(at, "Input").endswith("× 64 × 64") and at.get("plotly_chart")


def test_ground_truth_file_by_path_shows_in_the_preview(user_cache, tmp_path):
    csv = write_csv(tmp_path / "cells.csv")
    markers = tmp_path / "markers.csv"
    markers.write_text("class,gene\nB,G0\nB,G1\nB,G2\nA,G5\n")
    at = page_at_path(csv)
    at.text_input(key="ad_opt_table_markers").input(str(markers)).run()
    at.button(key="ad_import").click().run()
    no_exception(at)
    truth = [m.value for m in at.markdown if m.value.startswith("**Ground truth:**")]
    assert truth and "marker" in truth[0] and "none given" not in truth[0], truth


def test_data_model_page_trains_the_first_model_of_your_data(user_cache, tmp_path):
    """A dataset imported with the CLI (no model yet) is listed on Home under 'Your datasets', and the Data &
    model page offers the training panel instead of stopping."""
    from xai_core.cli import main

    assert main(["import", str(write_csv(tmp_path / "lab.csv")), "--name", "lab-cells"]) == 0
    home = open_page(None, dataset=None)
    no_exception(home)
    assert any(s.value == "Your datasets" for s in home.subheader)
    assert any("**lab-cells**" in m.value for m in home.markdown)
    at = open_page("data_model", dataset="lab-cells")
    no_exception(at)
    assert any("has no model yet" in i.value for i in at.info)
    at.number_input(key="tr_epochs").set_value(3).run()
    at.button(key="tr_go").click().run()
    no_exception(at)
    assert at.sidebar.selectbox(key="model").value.endswith(".safetensors")  # the new model is chosen
    assert not any("has no model yet" in i.value for i in at.info)
    assert any(m.label == "Test accuracy" for m in at.metric)  # the full page now opens with it
