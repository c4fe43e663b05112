"""Training stopped part way continues where it stopped and ends with the weights of a run never stopped."""
from __future__ import annotations

import pytest
import torch

from conftest import make_dataset
from xai_core.models import resume as resume_state
from xai_core.models.cached import train_cached
from xai_core.models.training import train_model

# the DNA paper recipe's moving parts in small: burn-in (BatchNorm and dropout off), dropout after it, a
# regulariser that draws noise, its start after a clean plateau, and early stopping
RECIPE = dict(epochs=4, patience=2, burn_in_epochs=1, burn_in_lr=1e-3, lr=1e-2, regularizer="gn",
              clean_plateau_patience=1)
KW = dict(seed=3, arch_kwargs={"batchnorm": True})


class Stop(Exception):
    pass


def stop_after(n: int):
    def progress(e) -> None:
        if e.stage == "train" and (e.stats or {}).get("epoch") == n:
            raise Stop
    return progress


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture(scope="module")
def ds():
    return make_dataset("sequence", n=60)


@pytest.fixture(scope="module")
def whole(ds):
    return train_model(ds, "dna_deep", **KW, **RECIPE)


@pytest.mark.parametrize("stopped_at", [2, 3])
def test_a_stopped_run_resumes_to_the_weights_of_one_never_stopped(ds, whole, tmp_path, stopped_at):
    state = tmp_path / "run.partial"
    with pytest.raises(Stop):
        train_model(ds, "dna_deep", **KW, progress=stop_after(stopped_at), resume=state, **RECIPE)
    assert state.exists()
    seen = []
    model, rep = train_model(ds, "dna_deep", **KW, progress=lambda e: seen.append((e.stats or {}).get("epoch")),
                             resume=state, **RECIPE)
    ref_model, ref = whole
    assert same(model, ref_model)
    assert [(h["train_loss"], h["val_score"]) for h in rep.history] == [(h["train_loss"], h["val_score"])
                                                                        for h in ref.history]
    assert (rep.best_epoch, rep.epochs_run, rep.test_auroc) == (ref.best_epoch, ref.epochs_run, ref.test_auroc)
    assert seen[0] == stopped_at  # the epoch being trained when it stopped is trained again, the earlier ones not


def test_a_state_of_another_run_or_a_damaged_one_is_named_and_training_starts_over(ds, whole, tmp_path):
    state = tmp_path / "run.partial"
    with pytest.raises(Stop):
        train_model(ds, "dna_deep", seed=4, arch_kwargs={"batchnorm": True}, progress=stop_after(2), resume=state,
                    **RECIPE)
    with pytest.warns(UserWarning, match="belongs to another run"):
        model, _ = train_model(ds, "dna_deep", **KW, resume=state, **RECIPE)
    assert same(model, whole[0])
    state.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="cannot be read"):
        model, _ = train_model(ds, "dna_deep", **KW, resume=state, **RECIPE)
    assert same(model, whole[0])


def test_the_state_is_read_without_unpickling_objects(ds, tmp_path):
    """weights_only: a state holding an arbitrary object is refused, not executed."""
    state = tmp_path / "run.partial"
    torch.save({"identity": "x", "model": {}, "optimizer": {}, "loop": Stop()}, state)
    with pytest.warns(UserWarning, match="cannot be read"):
        assert resume_state.load(state, "x") is None


def test_train_cached_keeps_the_state_while_training_and_removes_it_after(ds, whole, tmp_path):
    path = tmp_path / "m.safetensors"
    with pytest.raises(Stop):
        train_cached(ds, "dna_deep", path, **KW, recipe=RECIPE, progress=stop_after(2), resume=True)
    partial = tmp_path / "m.safetensors.partial"
    assert partial.exists() and not path.exists()
    got = train_cached(ds, "dna_deep", path, **KW, recipe=RECIPE, resume=True, load="cpu")
    assert got.trained and path.exists() and not partial.exists()
    assert same(got.model, whole[0])
