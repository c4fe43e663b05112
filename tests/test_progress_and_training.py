"""The one cached-training function (``xai_core.models.train_cached``) and the one progress event
(``xai_core.progress.Progress``), with the dashboard's one adapter (``dashboard.progress``)."""
import pytest
import torch

from dashboard.progress import as_shown, follow, training_text
from tests.conftest import make_dataset
from xai_core.errors import XaiError
from xai_core.explainers import explain_many, make_context
from xai_core.models import build_model, train_cached, train_model
from xai_core.models.checkpoints import read_metadata
from xai_core.progress import Progress, as_progress_fn, notify

RECIPE = {"epochs": 3}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


@pytest.fixture
def ds():
    return make_dataset("expression", n=80)


def test_trains_once_then_loads_the_same_weights(ds, tmp_path):
    path = tmp_path / "m.safetensors"
    events = []
    first = train_cached(ds, "mlp", path, seed=3, recipe=RECIPE, progress=events.append, load="cpu",
                         extra_meta={"population_member": "x"})
    assert first.trained and first.report is not None and path.exists()
    assert first.meta["integrity"] == "tensors_sha256 verified"
    assert read_metadata(path)["population_member"] == "x"
    plain, _ = train_model(ds, "mlp", seed=3, **RECIPE)  # the same weights as training without the cache
    assert _same(first.model.state_dict(), plain.state_dict())
    stamp = path.stat().st_mtime_ns

    again_events = []
    again = train_cached(ds, "mlp", path, seed=3, recipe=RECIPE, progress=again_events.append, load="cpu")
    assert not again.trained and again.report is None and again_events == []
    assert path.stat().st_mtime_ns == stamp
    assert _same(again.model.state_dict(), first.model.state_dict())
    assert again.meta["checkpoint_hash"] == first.meta["checkpoint_hash"]
    assert train_cached(ds, "mlp", path, seed=3, recipe=RECIPE).model is None  # not loaded unless asked


def test_reuse_rule_and_forced_training(ds, tmp_path):
    path = tmp_path / "m.safetensors"
    train_cached(ds, "lr", path, recipe={"epochs": 1})
    fits = train_cached(ds, "lr", path, recipe={"epochs": 1},
                        reuse=lambda meta: meta["dataset_fingerprint"] == ds.fingerprint())
    assert not fits.trained
    other = train_cached(ds, "lr", path, recipe={"epochs": 1}, reuse=lambda meta: meta.get("study") == "elsewhere")
    assert other.trained
    assert train_cached(ds, "lr", path, recipe={"epochs": 1}, reuse=False).trained


def test_an_unreadable_checkpoint_is_retrained_or_refused(ds, tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(XaiError, match="not a readable safetensors checkpoint"):
        train_cached(ds, "lr", path, recipe={"epochs": 1}, damaged="raise", load="cpu")
    assert path.read_bytes() == b"not a checkpoint"  # refused: left as it was
    fixed = train_cached(ds, "lr", path, recipe={"epochs": 1}, damaged="retrain", load="cpu")
    assert fixed.trained and read_metadata(path)["arch"] == "lr"


def test_damaged_tensors_are_refused_on_load(ds, tmp_path):
    path = tmp_path / "m.safetensors"
    train_cached(ds, "lr", path, recipe={"epochs": 1})
    raw = bytearray(path.read_bytes())
    raw[-4:] = bytes(b ^ 0xFF for b in raw[-4:])  # flip the last weight bytes; the metadata still reads
    path.write_bytes(bytes(raw))
    with pytest.raises(XaiError, match="does not match the tensor hash"):
        train_cached(ds, "lr", path, recipe={"epochs": 1}, load="cpu")


def test_training_events_arrive_in_order(ds, tmp_path):
    events = []
    train_cached(ds, "mlp", tmp_path / "m.safetensors", recipe={"epochs": 4, "patience": 10},
                 progress=events.append)
    assert all(isinstance(e, Progress) and e.stage == "train" for e in events)
    assert (events[0].done, events[0].total) == (0, 1)  # training starts
    epochs = events[1:]
    assert [e.done for e in epochs] == [1, 2, 3, 4] and {e.total for e in epochs} == {4}
    assert all(0 <= e.done <= e.total for e in events)
    assert [e.fraction for e in epochs] == sorted(e.fraction for e in epochs) and epochs[-1].finished
    assert {"train_loss", "val_score"} <= set(epochs[0].stats)


def test_explain_events_per_method_in_order(ds):
    model = build_model("mlp", ds.input_shape, ds.n_classes).eval()
    ctx = make_context(model, ds)
    events = []
    x = torch.as_tensor(ds.X[:10])
    explain_many(ctx, x, ds.y[:10], ["saliency", "input_x_gradient"], explain_batch=4, progress=events.append)
    for m in ("saliency", "input_x_gradient"):
        mine = [e for e in events if e.method == m]
        assert [e.done for e in mine] == [4, 8, 10] and all(e.total == 10 and e.stage == "explain" for e in mine)


def test_progress_reads_like_the_former_dicts_and_adapts_old_callbacks():
    e = Progress(3, 4, "metric", method="saliency", metric="sparseness")
    assert e["done"] == 3 and e["stage"] == "metric" and e.get("metric") == "sparseness"
    assert e.get("cached") is False and Progress(1, 2, "explain").get("metric") is None
    with pytest.raises(KeyError):
        e["nope"]
    assert e.fraction == 0.75 and Progress(5, 4).fraction == 1.0 and Progress(1, 0).fraction == 0.0

    seen = []
    fn = as_progress_fn(lambda fraction, message: seen.append((fraction, message)))  # run_study's old form
    notify(fn, 0.5, 1.0, "study", "half way")
    notify(None, 1, 1)  # nothing to call: no error
    assert seen == [(0.5, "half way")]
    new = seen.append
    assert as_progress_fn(new) is new and as_progress_fn(None) is None


class _Bar:
    def __init__(self):
        self.drawn = []

    def progress(self, value, text=None):
        self.drawn.append((value, text))


def test_dashboard_adapter_draws_clipped_fractions_and_skips_the_training_start():
    bar = _Bar()
    update = follow(bar, training_text)
    update(Progress(0, 1, "train"))  # starts: the bar keeps its text
    update(Progress(2, 5, "train", stats={"train_loss": 0.5, "val_score": 0.75}))
    assert bar.drawn == [(0.4, "epoch 2/5 · loss 0.500 · validation 0.750")]
    plain = follow(bar, as_shown)
    plain(Progress(1.5, 1.0, "study", "over the top"))
    assert bar.drawn[-1] == (1.0, "over the top")
