"""The whole path on a user's own files, through the CLI in-process: import -> train -> explain -> evaluate -> rank.

One small real file per format (CSV, sparse h5ad, an image folder with masks, FASTA with motif sites), with a
signal a model can learn, so the localisation metrics have something to find.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xai_core.cli import main


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XAI_CORE_STORE", str(tmp_path / "store.sqlite"))
    yield tmp_path
    from xai_core.data import DATASETS

    for name in [n for n, s in DATASETS._entries.items() if s.size == "user"]:
        DATASETS.remove(name)


def _expression(n=120, g=40, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.gamma(1.0, 1.0, size=(n, g)).astype(np.float32)
    X[y == 1, :4] += 3.0  # genes G0-G3 mark class "tumour"
    return X, np.where(y == 1, "tumour", "normal"), [f"G{i}" for i in range(g)]


def write_csv(path):
    X, labels, genes = _expression()
    df = pd.DataFrame(X, columns=genes, index=[f"cell{i}" for i in range(len(X))])
    df.insert(0, "label", labels)
    df.to_csv(path, index_label="cell")
    (path.parent / "markers.csv").write_text("class,gene\n" + "".join(f"tumour,G{i}\n" for i in range(4)))
    return path


def write_h5ad(path):
    import anndata
    import scipy.sparse as sp

    X, labels, genes = _expression(seed=1)
    X[X < 1.0] = 0.0
    ad = anndata.AnnData(X=sp.csr_matrix(X), obs=pd.DataFrame({"cell_type": pd.Categorical(labels)},
                                                               index=[f"c{i}" for i in range(len(X))]),
                         var=pd.DataFrame(index=genes))
    ad.write_h5ad(path)
    return path


def write_images(root, n=24, size=32):
    from PIL import Image

    rng = np.random.default_rng(2)
    for cls in ("healthy", "lesion"):
        (root / "imgs" / cls).mkdir(parents=True)
        (root / "masks" / cls).mkdir(parents=True)
        for i in range(n):
            img = (rng.random((size, size, 3)) * 80).astype(np.uint8)
            mask = np.zeros((size, size), dtype=np.uint8)
            if cls == "lesion":
                r, c = rng.integers(4, size - 12, 2)
                img[r:r + 8, c:c + 8] = [230, 60, 60]
                mask[r:r + 8, c:c + 8] = 255
            Image.fromarray(img).save(root / "imgs" / cls / f"{cls}{i}.png")
            Image.fromarray(mask).save(root / "masks" / cls / f"{cls}{i}.png")
    return root / "imgs", root / "masks"


def write_fasta(root, n=80, length=120):
    rng = np.random.default_rng(3)
    motif = "GGGGCGGGGC"  # an SP1-like site planted in the positives
    lines, sites = [], ["id,start,end,name"]
    for i in range(n):
        seq = list(rng.choice(list("ACGT"), size=length))
        label = i % 2
        if label:
            s = int(rng.integers(0, length - len(motif)))
            seq[s:s + len(motif)] = motif
            sites.append(f"s{i},{s},{s + len(motif)},SP1")
        lines += [f">s{i} label={label}", "".join(seq)]
    (root / "seqs.fa").write_text("\n".join(lines) + "\n")
    (root / "sites.csv").write_text("\n".join(sites) + "\n")
    return root / "seqs.fa", root / "sites.csv"


def _path(tmp, name, import_args, arch, methods, metrics, capsys, n_eval=6):
    assert main(["import", *import_args, "--name", name]) == 0
    printed = capsys.readouterr().out
    assert f"as '{name}'" in printed and "classes:" in printed
    assert main(["datasets", "--json"]) == 0
    assert name in {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert main(["train", "--dataset", name, "--arch", arch, "--epochs", "4"]) == 0
    assert main(["explain", "--dataset", name, "--methods", methods, "--n", "6", "--out", str(tmp / "ex")]) == 0
    with np.load(tmp / "ex" / "attributions.npz", allow_pickle=False) as z:
        a = z[methods.split(",")[0]]
    assert a.shape[0] == 6 and np.isfinite(a).all() and np.abs(a).sum() > 0
    manifest = json.loads((tmp / "ex" / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == name
    assert main(["evaluate", "--dataset", name, "--methods", methods + ",random", "--metrics", metrics,
                 "--n", str(n_eval), "--include-misclassified", "--out", str(tmp / "ev")]) == 0
    scores = pd.read_csv(tmp / "ev" / "scores.csv")
    assert set(scores["metric"]) == set(metrics.split(","))
    assert scores["score"].notna().any()
    assert main(["rank", "--scores", str(tmp / "ev" / "scores.csv"), "--out", str(tmp / "rk")]) == 0
    ranking = pd.read_csv(tmp / "rk" / "ranking.csv")
    assert len(ranking) == len(methods.split(",")) + 1
    capsys.readouterr()
    return scores


def test_csv_whole_path(user_cache, capsys):
    path = write_csv(user_cache / "cells.csv")
    scores = _path(user_cache, "my-csv", [str(path), "--markers", str(path.parent / "markers.csv")], "mlp",
                   "saliency,integrated_gradients", "sparseness,pixel_flipping,precision_at_k", capsys)
    assert scores.loc[scores.metric == "precision_at_k", "score"].notna().any()


def test_h5ad_whole_path(user_cache, capsys):
    path = write_h5ad(user_cache / "cells.h5ad")
    _path(user_cache, "my-h5ad", [str(path), "--label-key", "cell_type"], "mlp",
          "saliency,integrated_gradients", "sparseness,pixel_flipping", capsys)
    from xai_core.data import SparseRows, load_dataset

    assert isinstance(load_dataset("my-h5ad").X, SparseRows)


def test_image_folder_whole_path(user_cache, capsys):
    imgs, masks = write_images(user_cache)
    scores = _path(user_cache, "my-images", [str(imgs), "--masks", str(masks), "--option", "size=32"], "simplenet",
                   "saliency,gradcam", "sparseness,relevance_mass_accuracy", capsys, n_eval=16)
    assert scores.loc[scores.metric == "relevance_mass_accuracy", "score"].notna().any()


def test_fasta_whole_path(user_cache, capsys):
    fa, sites = write_fasta(user_cache)
    scores = _path(user_cache, "my-seqs", [str(fa), "--motifs", str(sites)], "dna_shallow",
                   "saliency,integrated_gradients", "sparseness,motif_auroc", capsys)
    assert scores.loc[scores.metric == "motif_auroc", "score"].notna().any()


def test_reimport_of_a_changed_file_is_a_new_dataset(user_cache, capsys):
    """Same name, edited file: new fingerprint, the old model is not picked up, and stored results are not reused."""
    from xai_core.models.zoo import trained_checkpoints
    from xai_core.data import load_dataset

    path = write_csv(user_cache / "cells.csv")
    assert main(["import", str(path), "--name", "lab"]) == 0
    fp1 = load_dataset("lab").fingerprint()
    assert main(["import", str(path), "--name", "lab"]) == 0
    assert "unchanged since the last import" in capsys.readouterr().out
    assert main(["train", "--dataset", "lab", "--epochs", "1"]) == 0
    df = pd.read_csv(path)
    df.loc[0, "G5"] = 99.0
    df.to_csv(path, index=False)
    assert main(["import", str(path), "--name", "lab"]) == 0
    fp2 = load_dataset("lab").fingerprint()
    assert fp1 != fp2
    assert trained_checkpoints("lab", fp2) == []  # the model of the old content is not used for the new
    assert main(["explain", "--dataset", "lab", "--methods", "saliency", "--n", "2",
                 "--out", str(user_cache / "x")]) == 2
    assert "train one" in capsys.readouterr().err


def test_remove_and_bundled_names_refused(user_cache, capsys):
    path = write_csv(user_cache / "cells.csv")
    assert main(["import", str(path), "--name", "grain"]) == 2
    assert "bundled dataset" in capsys.readouterr().err
    assert main(["import", str(path), "--name", "tmp-one"]) == 0
    assert main(["datasets", "--remove", "tmp-one"]) == 0
    assert main(["datasets", "--remove", "tmp-one"]) == 2
    assert main(["datasets", "--remove", "grain"]) == 2
    assert "cannot be removed" in capsys.readouterr().err
    assert main(["explain", "--dataset", "tmp-one", "--n", "2", "--out", str(user_cache / "y")]) == 2


def test_image_csv_hash_covers_the_listed_images(user_cache):
    """Editing an image a CSV points at makes a new dataset, although the CSV itself is unchanged."""
    from PIL import Image

    from xai_core.data import import_data

    imgs, _ = write_images(user_cache, n=4, size=20)
    rows = ["path,label"] + [f"{p.relative_to(user_cache)},{p.parent.name}" for p in sorted(imgs.rglob("*.png"))]
    csv = user_cache / "list.csv"
    csv.write_text("\n".join(rows) + "\n")
    ds1, e1, reused = import_data(csv, "from-csv", size=16)
    assert not reused and ds1.X.shape == (8, 3, 16, 16)
    assert import_data(csv, "from-csv", size=16)[2]  # unchanged: reused
    first = sorted(imgs.rglob("*.png"))[0]
    Image.fromarray(np.full((20, 20, 3), 255, dtype=np.uint8)).save(first)
    ds2, e2, reused = import_data(csv, "from-csv", size=16)
    assert not reused and e2["content_hash"] != e1["content_hash"] and ds2.fingerprint() != ds1.fingerprint()


def test_format_detection_tells_tables_fasta_and_image_lists_apart(tmp_path):
    from xai_core.data import detect_format

    (tmp_path / "seqs.txt").write_text(">a label=1\nACGT\n")
    (tmp_path / "list.csv").write_text("path,label\na.png,x\n")
    (tmp_path / "cells.csv").write_text("cell,label,G1\nc1,a,1.0\n")
    assert detect_format(tmp_path / "seqs.txt").name == "fasta"
    assert detect_format(tmp_path / "list.csv").name == "image-csv"
    assert detect_format(tmp_path / "cells.csv").name == "table"


def test_python_api_from_files_and_register(user_cache):
    """The Python entry points: build a Dataset from a file, register it, use it by name."""
    import xai_core
    from xai_core.data import load_dataset

    ds = xai_core.from_table(write_csv(user_cache / "cells.csv"))
    assert ds.name == "cells" and ds.input_shape == (40,) and ds.class_names == ["normal", "tumour"]
    entry = xai_core.register(ds, "api-cells")
    back = load_dataset("api-cells")
    assert entry["fingerprint"] == back.fingerprint() == ds.fingerprint()
    assert np.array_equal(back.X, ds.X) and back.sample_ids == ds.sample_ids
    fa, _ = write_fasta(user_cache)
    seqs = xai_core.from_fasta(fa, name="api-seqs")
    assert seqs.X.shape == (80, 4, 120) and seqs.class_names == ["0", "1"]
