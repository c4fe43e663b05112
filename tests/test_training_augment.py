"""Reverse-complement augmentation, a training-recipe option (``augment``), and the shipped recipes."""
import numpy as np
import pytest
import torch

from tests.conftest import make_dataset
from xai_core.data.jaspar import reverse_complement_string
from xai_core.errors import XaiError
from xai_core.models import train_cached, train_model
from xai_core.models import training
from xai_core.models.checkpoints import read_metadata
from xai_core.models.regularizers import REGULARIZERS
from xai_core.models.ship import SHIPPED, recipe_changes
from xai_core.models.training import (
    AUGMENTS, check_augment, check_recipe, reverse_complement, with_reverse_complement,
)

ACGT = "ACGT"


def one_hot(seqs: list[str]) -> torch.Tensor:
    return torch.stack([torch.eye(4)[[ACGT.index(c) for c in s]].T for s in seqs])


def strings(x: torch.Tensor) -> list[str]:
    return ["".join(ACGT[i] for i in row) for row in x.argmax(1).tolist()]


def test_reverse_complement_is_the_exact_complement_reversed():
    seqs = ["AACGTTGCAT", "GGGATCCTTA", "ACGTACGTAA"]
    x = one_hot(seqs)
    rc = reverse_complement(x)
    assert rc.shape == x.shape == (3, 4, 10)
    assert strings(rc) == [reverse_complement_string(s) for s in seqs]  # A<->T, C<->G, positions reversed
    assert strings(rc)[0] == "ATGCAACGTT"
    assert torch.equal(reverse_complement(rc), x)  # an involution
    assert torch.equal(rc.sum(1), x.sum(1).flip(1))  # still one-hot at every position


def test_the_augmented_batch_holds_each_sequence_and_its_reverse_complement():
    x, y = one_hot(["AACG", "TTGC"]), torch.tensor([1, 0])
    xx, yy = with_reverse_complement(x, y)
    assert xx.shape == (4, 4, 4) and yy.tolist() == [1, 0, 1, 0]
    assert strings(xx) == ["AACG", "TTGC", "CGTT", "GCAA"]


def test_default_recipe_has_no_augmentation_and_the_regularizer_population_is_unchanged():
    for arch in ("mlp", "dna_shallow", "dna_deep", "simplenet"):
        assert check_recipe(arch, {})["augment"] == "none"
    assert AUGMENTS["none"].fn is None
    assert "reverse_complement" not in REGULARIZERS  # the DNA consistency study's population


def test_default_recipe_trains_as_before(monkeypatch):
    """No augmentation by default: the same weights as an explicit ``augment: none``, and the batch function is
    never called."""
    ds = make_dataset("sequence", n=40)
    a, _ = train_model(ds, "dna_shallow", seed=0, epochs=2, batch_size=8)
    b, _ = train_model(ds, "dna_shallow", seed=0, epochs=2, batch_size=8, augment="none")
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    c, _ = train_model(ds, "dna_shallow", seed=0, epochs=2, batch_size=8, augment="reverse_complement")
    assert not all(torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())


def test_reverse_complement_reaches_every_training_batch(monkeypatch):
    ds = make_dataset("sequence", n=40)  # 32 training rows, 10 % of them for validation
    seen = []
    build = training.build_model

    def spy(*args, **kwargs):
        model = build(*args, **kwargs)
        model.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].clone()) if m.training else None)
        return model

    monkeypatch.setattr(training, "build_model", spy)
    train_model(ds, "dna_shallow", seed=0, epochs=1, batch_size=8, augment="reverse_complement")
    probe, *seen = seen  # train_model's first call asks the output shape of two zero inputs
    assert probe.shape == (2, 4, 200) and not probe.any()
    assert seen and all(len(x) % 2 == 0 for x in seen)
    for x in seen:
        half = len(x) // 2
        assert torch.equal(x[half:], x[:half].flip(1, 2))
    assert sum(len(x) for x in seen) == 2 * (len(ds.train_idx) - round(0.1 * len(ds.train_idx)))


def test_unknown_augmentation_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="unknown augmentation 'flip'; valid: none, reverse_complement"):
        check_recipe("dna_shallow", {"augment": "flip"})
    with pytest.raises(XaiError, match="--set augment"):
        check_recipe("dna_shallow", {"augment": "flip"})
    with pytest.raises(XaiError, match="unknown augmentation"):
        train_model(make_dataset("sequence", n=40), "dna_shallow", epochs=1, augment="rc")


@pytest.mark.parametrize("modality, arch", [("expression", "mlp"), ("image", "simplenet")])
def test_reverse_complement_on_other_data_is_refused(modality, arch):
    with pytest.raises(ValueError, match=f"for sequence data only; model '{arch}' is for {modality} data"):
        check_recipe(arch, {"augment": "reverse_complement"})
    with pytest.raises(XaiError, match="for sequence data only"):
        train_model(make_dataset(modality, n=40), arch, epochs=1, augment="reverse_complement")
    with pytest.raises(XaiError, match=f"'tiny' is {modality}"):
        check_augment("reverse_complement", make_dataset(modality, n=40))


def test_reverse_complement_needs_four_channels():
    ds = make_dataset("sequence", n=20)
    ds.X = np.concatenate([ds.X, ds.X[:, :1]], axis=1)  # five channels: not ACGT
    with pytest.raises(XaiError, match="4 channels"):
        check_augment("reverse_complement", ds)
    assert check_augment("none", ds) is None


def test_the_checkpoint_records_the_augmentation(tmp_path):
    ds = make_dataset("sequence", n=40)
    path = tmp_path / "m.safetensors"
    rep = train_cached(ds, "dna_shallow", path, recipe={"epochs": 1, "augment": "reverse_complement"}).report
    assert rep.recipe["augment"] == "reverse_complement"
    meta = read_metadata(path)
    assert meta["recipe"]["augment"] == "reverse_complement" and meta["recipe"]["epochs"] == 1
    assert recipe_changes("dna_shallow", meta["recipe"]) == "augment reverse_complement, epochs 1"
    assert recipe_changes("dna_shallow", check_recipe("dna_shallow", {})) == "default"


def test_shipped_recipes_are_valid_and_dna_motifs_small_ships_the_augmented_shallow_net():
    for _ds, arch, _, *recipe in SHIPPED:
        check_recipe(arch, recipe[0] if recipe else {})
    (entry,) = [e for e in SHIPPED if e[0] == "dna-motifs-small"]
    assert entry[1] == "dna_shallow" and entry[2] == {"activation": "exponential"}
    assert entry[3] == {"lr": 0.003, "batch_size": 32, "epochs": 60, "patience": 10, "augment": "reverse_complement"}
