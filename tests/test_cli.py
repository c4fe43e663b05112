"""The command line: listings, explain outputs, and one-line errors that name the valid choices."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from xai_core.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    p = subprocess.run([sys.executable, "-m", "xai_core", *args], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": ROOT}, timeout=600)
    return p.returncode, p.stdout, p.stderr


def test_datasets_json_lists_every_modality():
    rc, out, _ = run("datasets", "--json")
    assert rc == 0
    rows = json.loads(out)
    names = {r["name"] for r in rows}
    assert {"simu-small", "simu1", "simu2", "simuA", "simuB", "simuC", "pbmc68k", "breast-cancer", "grain",
            "dna-motifs", "dna-motifs-small"} <= names
    assert {r["modality"] for r in rows} == {"expression", "image", "sequence"}
    assert all(r["description"] for r in rows)


@pytest.mark.parametrize("args,needle", [
    (["explain", "--dataset", "nope", "--out", "x"], "unknown dataset 'nope'; valid choices: breast-cancer"),
    (["explain", "--dataset", "simu-small", "--methods", "saliency,magic", "--out", "x"],
     "unknown method 'magic'; valid choices: "),
    (["explain", "--dataset", "simu-small", "--methods", "gradcam", "--out", "x"],
     "method 'gradcam' does not apply to expression data; valid choices: "),
    (["explain", "--dataset", "simu-small", "--model", "resnet", "--out", "x"],
     "no checkpoint of model 'resnet' for dataset 'simu-small' (shipped: mlp"),
    (["explain", "--dataset", "simu-small", "--methods", "saliency", "--param", "saliency.foo=1", "--out", "x"],
     "unknown parameter of saliency 'foo'"),
])
def test_user_mistakes_get_one_line_without_traceback(args, needle):
    rc, out, err = run(*args)
    assert rc == 2
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], err


def test_explain_writes_attributions_and_manifest(tmp_path, capsys):
    rc = main(["explain", "--dataset", "simu-small", "--methods", "saliency,integrated_gradients,aggregate",
               "--n", "6", "--param", "integrated_gradients.n_steps=16", "--out", str(tmp_path)])
    assert rc == 0
    with np.load(tmp_path / "attributions.npz", allow_pickle=False) as z:
        assert set(z.files) == {"saliency", "integrated_gradients", "aggregate"}
        assert z["saliency"].shape == (6, 2000)
        assert np.isfinite(z["aggregate"]).all()
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["dataset"]["name"] == "simu-small" and len(m["dataset"]["fingerprint"]) == 16
    assert len(m["model"]["checkpoint_hash"]) == 16 and m["model"]["arch"] == "mlp"
    assert m["methods"]["integrated_gradients"]["params"]["n_steps"] == 16
    assert m["methods"]["integrated_gradients"]["completeness_rel_error"]["max"] >= 0
    assert m["methods"]["saliency"]["cost"]["forward"] == 6
    assert len(m["sample_ids"]) == 6 and m["versions"]["captum"] == "0.9.0"
    assert m["methods"]["saliency"]["seconds"] >= 0
