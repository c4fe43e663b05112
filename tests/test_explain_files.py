"""The explanation files: the Explanations page's zip download holds what `explain` writes, with the stored maps;
`explain` refuses an output path that is a file before computing anything."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from app_helpers import no_exception, open_page
from xai_core.cli import main
from xai_core.explain_files import stored_bundle
from xai_core.runner import EvalConfig, Evaluation
from xai_core.store import ResultStore


def test_bundle_holds_the_stored_maps_and_the_explain_manifest(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as store:
        ev = Evaluation(EvalConfig(dataset="simu-small"), store)
        idx = ev.ds.test_idx[:3]
        for m in ("saliency", "integrated_gradients"):
            ev.attributions(m, idx)
        data = stored_bundle(ev, ["saliency", "integrated_gradients"], idx, np.zeros(len(ev.ds), dtype=int))
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert sorted(z.namelist()) == ["attributions.npz", "manifest.json"]
            man = json.loads(z.read("manifest.json"))
            with np.load(io.BytesIO(z.read("attributions.npz")), allow_pickle=False) as npz:
                for m in ("saliency", "integrated_gradients"):
                    stored, _ = ev.stored_attributions(m, idx)
                    assert np.array_equal(npz[m], stored)
    assert man["dataset"]["fingerprint"] == ev.dataset_fp and man["model"]["checkpoint_hash"] == ev.model_hash
    assert man["sample_ids"] == [ev.ds.sample_ids[i] for i in idx]
    assert set(man["methods"]) == {"saliency", "integrated_gradients"}
    # the same keys as the manifest `explain` writes
    assert main(["explain", "--dataset", "simu-small", "--methods", "saliency", "--n", "2",
                 "--out", str(tmp_path / "cli")]) == 0
    cli = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert set(man) == set(cli)


def test_explain_refuses_a_file_as_output_before_any_work(tmp_path, capsys):
    f = tmp_path / "taken"
    f.write_text("x")
    assert main(["explain", "--dataset", "simu-small", "--n", "2", "--out", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_explanations_page_offers_the_download(app_store):
    at = open_page("explanations", dataset="simu-small", methods=["saliency"])
    no_exception(at)
    if any(b.key == "x_run" for b in at.button):  # maps not stored yet: compute them
        at.button(key="x_run").click().run()
        no_exception(at)
    labels = [b.proto.label for b in at.get("download_button")]
    assert any("attributions.npz + manifest.json" in lab for lab in labels), labels
