"""More of "nothing silent": a cut --n is said, a multi-dataset evaluate is cost-checked before any work, and
the model paths of import-model / export are checked with one line naming the flag (exit 2)."""
import pytest

from xai_core.cli import main

DS = ["--dataset", "simu-small"]  # 400 test samples


def one_line_error(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 2, (rc, err)
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_n_larger_than_the_samples_is_said_not_silent(tmp_path, capsys):
    assert main(["explain", *DS, "--methods", "saliency", "--n", "5000", "--out", str(tmp_path / "x")]) == 0
    err = capsys.readouterr().err
    assert "--n 5000: only 400 test samples are available; using 400" in err
    assert main(["evaluate", *DS, "--methods", "saliency,random", "--metrics", "sparseness", "--n", "5000",
                 "--include-misclassified", "--dry-run", "--store", str(tmp_path / "s.sqlite"),
                 "--out", str(tmp_path / "ev")]) == 0
    err = capsys.readouterr().err
    assert "--n 5000: only 400 test samples (of those eligible) are available; using 400" in err
    # no note when --n fits
    assert main(["evaluate", *DS, "--methods", "saliency,random", "--metrics", "sparseness", "--n", "4",
                 "--include-misclassified", "--dry-run", "--store", str(tmp_path / "s.sqlite"),
                 "--out", str(tmp_path / "ev")]) == 0
    assert "are available; using" not in capsys.readouterr().err


def test_several_datasets_are_cost_checked_before_any_is_computed(tmp_path, capsys, monkeypatch):
    store, out = tmp_path / "s.sqlite", tmp_path / "ev"
    argv = ["evaluate", "--dataset", "simu-small,breast-cancer", "--methods", "saliency,random",
            "--metrics", "sparseness", "--n", "3", "--include-misclassified", "--draws", "100",
            "--store", str(store), "--out", str(out)]
    # each dataset alone costs 6 passes (3 forward + 3 backward): under the limit; both together are over it
    monkeypatch.setattr("xai_core.costs.COST_LIMIT", 8)
    line = one_line_error(capsys, argv)
    assert "evaluating 2 datasets" in line and "--yes" in line and "more than 8" in line
    assert not out.exists()
    if store.exists():  # opened, but nothing computed or stored for the first dataset
        from xai_core.store import ResultStore

        with ResultStore(store) as s:
            assert not len(s.scores_frame())
    # a dataset that alone is over the limit is refused too, before the other one runs
    monkeypatch.setattr("xai_core.costs.COST_LIMIT", 5)
    line = one_line_error(capsys, argv)
    assert "evaluating simu-small" in line and "--yes" in line
    assert not out.exists()


@pytest.mark.parametrize("argv,needle", [
    (["import-model", "{t}/nope.pt", "--name", "zz", "--dataset", "simu-small"],
     "import-model {t}/nope.pt: does not exist"),
    (["import-model", "--name", "zz", "--dataset", "simu-small"], "import-model needs the model file"),
    (["import-model", "{t}", "--name", "zz", "--dataset", "simu-small"], "is a folder"),
    (["import-model", "{t}/m.pt", "--model-meta", "{t}/nope.json", "--name", "zz", "--dataset", "simu-small"],
     "--model-meta {t}/nope.json: does not exist"),
    (["import-model", "--model-code", "{t}/nope.py:Net", "--weights", "{t}/m.pt", "--name", "zz",
      "--dataset", "simu-small"], "--model-code {t}/nope.py: does not exist"),
    (["import-model", "--model-code", "{t}/net.py:Net", "--weights", "{t}/nope.safetensors", "--name", "zz",
      "--dataset", "simu-small"], "--weights {t}/nope.safetensors: does not exist"),
    (["explain", *DS, "--model", "{t}/nope.safetensors", "--out", "{t}/x"],
     "--model {t}/nope.safetensors: does not exist"),
    (["export", *DS, "--model", "{t}/nope.safetensors", "--out", "{t}/x.h5ad", "--store", "{t}/s.sqlite"],
     "--model {t}/nope.safetensors: no such model file"),
])
def test_missing_model_paths_are_one_line_naming_the_flag(tmp_path, capsys, argv, needle):
    (tmp_path / "m.pt").write_bytes(b"x")
    (tmp_path / "net.py").write_text("class Net: pass\n")
    argv = [a.format(t=tmp_path) for a in argv]
    line = one_line_error(capsys, argv)
    assert needle.format(t=tmp_path) in line, line
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.h5ad").exists()
