"""The model-quality rules (xai_core.model_quality): per-class recall and one-vs-rest AUROC on the test split, the
classes at or near chance named with their numbers, the cache of those numbers, the dashboard's banner on every page
and the report's model summary.

Real models: a tiny linear classifier trained here with torch on data where one rare class cannot be told from a
common one (so the model never predicts it) and on data where every class is separable; and the shipped pbmc68k
and simu-small checkpoints.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from xai_core.data import Dataset, load_dataset
from xai_core.model_quality import (CLASS_AUROC_FLOOR, RECALL_MARGIN, cached_class_quality, class_quality,
                                    class_warning, model_weakness, quality_file, weak_classes)
from xai_core.models import load_model


def _three_classes(separable: bool, seed: int = 0) -> Dataset:
    """Class 0 (40 %) is shifted on feature 0; class 2 (10 %) is shifted on feature 2 only when ``separable``, and
    otherwise drawn exactly as class 1 (50 %)."""
    rng = np.random.default_rng(seed)
    n = 600
    y = rng.choice(3, size=n, p=[0.4, 0.5, 0.1])
    X = rng.normal(size=(n, 8)).astype("f4")
    X[y == 0, 0] += 4.0
    X[y == 1, 1] += 4.0
    X[y == 2, 1] += 4.0  # like class 1 ...
    if separable:
        X[y == 2, 1] -= 4.0  # ... unless it is separable: then its own feature
        X[y == 2, 2] += 4.0
    cut = 400
    return Dataset("three", "expression", X, y, ["common A", "common B", "rare C"], [f"g{i}" for i in range(8)],
                   np.arange(cut), np.arange(cut, n))


def _trained(ds: Dataset, seed: int = 0) -> nn.Module:
    """A linear classifier trained with Adam on the training split (a real, tiny model)."""
    torch.manual_seed(seed)
    model = nn.Linear(ds.X.shape[1], ds.n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x = torch.as_tensor(ds.X[ds.train_idx])
    y = torch.as_tensor(ds.y[ds.train_idx], dtype=torch.long)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def _rule_holds(q: dict) -> None:
    """Every flagged class meets the rule and every class that meets it is flagged."""
    flagged = {w["index"] for w in weak_classes(q)}
    for c in range(len(q["classes"])):
        rec, auc = q["recall"][c], q["auroc"][c]
        meets = (rec is not None and rec < q["chance"] + RECALL_MARGIN) or (auc is not None and auc < CLASS_AUROC_FLOOR)
        assert (c in flagged) == meets, (q["classes"][c], rec, auc)


def test_a_class_at_chance_is_named_with_its_numbers():
    ds = _three_classes(separable=False)
    q = class_quality(_trained(ds), ds)
    _rule_holds(q)
    test_y = ds.y[ds.test_idx]
    assert q["n"] == [int((test_y == c).sum()) for c in range(3)] and q["n_test"] == len(ds.test_idx)
    weak = weak_classes(q)
    assert [w["class"] for w in weak] == ["rare C"], q
    assert weak[0]["recall"] < 1 / 3 + RECALL_MARGIN
    text = class_warning(q)
    assert "rare C" in text and f"recall {weak[0]['recall']:.2f}" in text and "where chance is 0.33" in text
    assert "common A" not in text and "1 of 3 classes" in text


def test_no_warning_when_every_class_is_recognised():
    ds = _three_classes(separable=True)
    q = class_quality(_trained(ds), ds)
    _rule_holds(q)
    assert weak_classes(q) == [] and class_warning(q) is None
    assert min(q["recall"]) > q["chance"] + RECALL_MARGIN and min(q["auroc"]) > CLASS_AUROC_FLOOR


def test_shipped_models(tmp_path):
    """pbmc68k's 10-class model and simu-small's 5-class model, as shipped: the rule, and the numbers recomputed by
    hand from the model's predictions."""
    for name in ("pbmc68k", "simu-small"):
        ds = load_dataset(name)
        model, meta = load_model(name, None, ds=ds)
        q = class_quality(model, ds)
        _rule_holds(q)
        with torch.no_grad():
            pred = model(torch.as_tensor(ds.X[ds.test_idx])).argmax(1).numpy()
        y = ds.y[ds.test_idx]
        for c in range(ds.n_classes):
            if (y == c).any():
                assert q["recall"][c] == pytest.approx(float((pred[y == c] == c).mean()))
        if name == "simu-small":
            assert class_warning(q) is None
        else:  # the shipped pbmc68k model: balanced accuracy ~0.67 as a whole, yet some T-cell types never predicted
            assert model_weakness({**meta, "n_classes": ds.n_classes}) is None
            names = [w["class"] for w in weak_classes(q)]
            assert names and all(q["recall"][ds.class_names.index(n)] < 0.2 for n in names)
            assert all(n in class_warning(q) for n in names)


def test_the_numbers_are_cached_and_a_damaged_entry_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path))
    ds = _three_classes(separable=False)
    model = _trained(ds)
    q = cached_class_quality(model, ds, "hash1")
    path = quality_file(ds.name, "hash1", ds.fingerprint())
    assert path.exists() and json.loads(path.read_text())["quality"] == q
    assert cached_class_quality(None, ds, "hash1") == q  # read back: the model is not run (it is None here)
    path.write_text(path.read_text().replace('"rare C"', '"rare X"'))  # the checksum no longer matches
    assert cached_class_quality(model, ds, "hash1") == q
    assert cached_class_quality(model, ds, "hash2") == q and quality_file(ds.name, "hash2", ds.fingerprint()).exists()


@pytest.mark.parametrize("meta, weak", [
    ({"n_classes": 2, "test_balanced_accuracy": 0.66}, True),
    ({"n_classes": 2, "test_balanced_accuracy": 0.85, "test_auroc": 0.74}, True),
    ({"n_classes": 10, "test_balanced_accuracy": 0.67}, False),
    ({}, False),
])
def test_whole_model_rule(meta, weak):
    assert bool(model_weakness(meta)) is weak


def test_banner_names_the_classes_on_every_page(app_store):
    from app_helpers import no_exception, open_page

    for page in ("home", "data_model"):
        at = open_page(page, dataset="pbmc68k")
        no_exception(at)
        shown = [w.value for w in at.warning if "Model quality per class" in w.value]
        assert len(shown) == 1 and "at or near chance" in shown[0] and "one-vs-rest AUROC" in shown[0], page
    at = open_page("home", dataset="simu-small")
    assert not any("Model quality per class" in w.value for w in at.warning)


def test_report_model_summary_names_the_classes(tmp_path):
    from xai_core.report import build_report, report_data
    from xai_core.runner import EvalConfig, Evaluation
    from xai_core.store import ResultStore

    with ResultStore(tmp_path / "empty.sqlite") as store:
        ev = Evaluation(EvalConfig(dataset="pbmc68k"), store)
        report, html = build_report(ev)
    data = report_data(html)
    q = data["data"]["per_class"]
    names = [w["class"] for w in data["data"]["weak_classes"]]
    assert names and q["classes"] == ev.ds.class_names
    assert data["model_quality"]["class_warning"] == class_warning(q)
    assert any(all(n in w for n in names) for w in report.warnings)  # the banner under the title
    assert all(n in html for n in names) and "Quality per class" in html
