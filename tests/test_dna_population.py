"""The dna-consistency population: committed checkpoints that a run on another machine resumes from, claims that
let two processes train one population, and the training-only stage."""
import json
import socket
import subprocess
import sys

import pytest
import torch

from xai_core.errors import XaiError
from xai_core.models.checkpoints import read_metadata
from xai_core.studies import dna_population as pop
from xai_core.studies import run_study
from xai_core.studies.claims import Claims
from xai_core.studies.dna_population import CONFIGS, Spec, commits, member_key, train_member
from tests.conftest import make_dataset

CFG = {**CONFIGS["quick"], "epochs": 1, "dtype": "float32"}
SPEC = Spec("dna_shallow", "relu", True, "standard", 0)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A fresh cache and a fresh committed folder."""
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pop, "COMMITTED", tmp_path / "committed")
    monkeypatch.setattr(pop, "PUBLISH_MIN_AUROC", 0.0)  # tiny data: commit whatever trains
    return tmp_path


def test_a_member_below_the_target_auroc_is_not_committed(places, monkeypatch):
    """A collapsed training (here: any, with the bar above 100 %) stays in the cache and is named, never committed."""
    monkeypatch.setattr(pop, "PUBLISH_MIN_AUROC", 100.5)
    ds = make_dataset("sequence", n=60)
    with pytest.warns(UserWarning, match="is not committed"):
        path, trained = train_member(ds, SPEC, CFG, commit=True)
    assert trained and path.exists() and not (places / "committed" / path.name).exists()


def test_a_committed_member_is_resumed_on_another_machine_and_a_damaged_one_trained_again(places, monkeypatch):
    ds = make_dataset("sequence", n=60)
    path, trained = train_member(ds, SPEC, CFG, commit=True)
    shared = places / "committed" / path.name
    assert trained and path.parent == places / "cache" / "studies" / "dna-consistency"
    assert shared.read_bytes() == path.read_bytes()
    assert not list(shared.parent.glob(".*.tmp"))

    monkeypatch.setenv("XAI_CORE_CACHE", str(places / "other-machine"))  # an empty cache: the committed one
    assert train_member(ds, SPEC, CFG) == (shared, False)
    assert not member_key(ds, SPEC, CFG)[0].exists()  # nothing was trained here
    assert train_member(ds, SPEC, {**CFG, "lr": 1e-3}) [1]  # another recipe: not this member, trained

    raw = bytearray(shared.read_bytes())
    raw[-1] ^= 0xFF  # a flipped bit in the tensors: the metadata still reads, the hash does not match
    shared.write_bytes(bytes(raw))
    monkeypatch.setenv("XAI_CORE_CACHE", str(places / "third-machine"))
    with pytest.warns(UserWarning, match="is damaged"):
        again, trained = train_member(ds, SPEC, CFG, commit=True)
    assert trained and again.parent == places / "third-machine" / "studies" / "dna-consistency"
    assert shared.read_bytes() == again.read_bytes()  # committed again, whole


def test_a_cached_member_is_committed_when_a_committing_run_finds_it(places):
    ds = make_dataset("sequence", n=60)
    path, _ = train_member(ds, SPEC, CFG)  # trained by a run that does not commit
    assert not (places / "committed").exists()
    assert train_member(ds, SPEC, CFG, commit=True) == (path, False)
    assert (places / "committed" / path.name).read_bytes() == path.read_bytes()


def test_a_member_claimed_by_a_living_process_is_left_to_it(places):
    ds = make_dataset("sequence", n=60)
    path = member_key(ds, SPEC, CFG)[0]
    claims = Claims(path.parent)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path.parent.mkdir(parents=True)
        (path.parent / f"{path.stem}.claim").write_text(json.dumps({"host": socket.gethostname(), "pid": other.pid}))
        assert train_member(ds, SPEC, CFG, claims=claims) is None and not path.exists()
    finally:
        other.kill()
        other.wait()
    assert train_member(ds, SPEC, CFG, claims=claims) == (path, True)  # its holder stopped: trained here
    assert not (path.parent / f"{path.stem}.claim").exists()  # and the claim released


def test_only_the_paper_recipe_is_committed():
    paper = CONFIGS["paper"]
    member = Spec("dna_deep", "exponential", False, "sn", 0)
    assert commits(paper, member) and commits(paper, Spec("dna_deep", "relu", True, "adversarial", 7))
    assert not commits({**paper, "lr": 1e-3}, member)  # an overridden recipe
    assert not commits({**paper, "epochs": 8}, member)
    assert not commits(paper, Spec("dna_deep", "relu", True, "dropconnect", 0))  # not in the grid
    assert not commits(CONFIGS["full"], Spec("dna_deep", "relu", True, "standard", 0))
    assert not commits(CONFIGS["quick"], SPEC)
    assert not commits({**paper, "lr_nobn": 1e-2}, member)


def test_the_paper_preset_trains_every_member_without_batchnorm_at_its_slower_rate():
    """ReLU members without BatchNorm collapse at 1e-2 as the exponential ones do: both stay at ``lr_nobn``; the
    members with BatchNorm keep the paper's 1e-2 (so their committed checkpoints keep their keys)."""
    paper = CONFIGS["paper"]
    rates = {(a, bn): pop._recipe(paper, Spec("dna_deep", a, bn, "gn", 0))["lr"]
             for a in ("relu", "exponential") for bn in (True, False)}
    assert rates == {("relu", True): 1e-2, ("exponential", True): 1e-2, ("relu", False): 1e-3,
                     ("exponential", False): 1e-3}
    assert pop._recipe(CONFIGS["full"], Spec("dna_deep", "relu", False, "gn", 0))["lr"] == CONFIGS["full"]["lr"]



def test_the_spectral_norm_penalty_of_members_without_batchnorm_starts_after_the_burn_in():
    """From the first epoch it kills a ReLU member without BatchNorm (validation AUROC 0.5 in epoch 2); with
    BatchNorm it trains from the start, so those members keep their recipe (and committed keys)."""
    paper = CONFIGS["paper"]
    for act in ("relu", "exponential"):
        assert pop._recipe(paper, Spec("dna_deep", act, False, "sn", 1))["regularizer_from_epoch"] == 3
        assert "regularizer_from_epoch" not in pop._recipe(paper, Spec("dna_deep", act, True, "sn", 1))
        assert "regularizer_from_epoch" not in pop._recipe(paper, Spec("dna_deep", act, False, "gn", 1))
    assert not commits({**paper, "sn_from_epoch_nobn": 1}, Spec("dna_deep", "relu", False, "sn", 0))
    assert "regularizer_from_epoch" not in pop._recipe(CONFIGS["full"], Spec("dna_deep", "relu", False, "sn", 0))



def test_the_pgd_members_without_batchnorm_train_clean_until_their_validation_stalls():
    """After 5 clean epochs at 1e-3 a member without BatchNorm is far from converged and PGD holds it at chance
    loss; these members train clean to a plateau first. The BatchNorm PGD members keep their recipe (and keys)."""
    paper = CONFIGS["paper"]
    for act in ("relu", "exponential"):
        nobn = pop._recipe(paper, Spec("dna_deep", act, False, "adversarial", 0))
        assert nobn["clean_plateau_patience"] == 10 and nobn["regularizer_params"]["steps"] == 10
        assert "clean_plateau_patience" not in pop._recipe(paper, Spec("dna_deep", act, True, "adversarial", 0))
        assert "clean_plateau_patience" not in pop._recipe(paper, Spec("dna_deep", act, False, "sn", 0))
    assert not commits({**paper, "pgd_clean_plateau_nobn": 5}, Spec("dna_deep", "relu", False, "adversarial", 0))
    assert "clean_plateau_patience" not in pop._recipe(CONFIGS["full"], Spec("dna_deep", "relu", False,
                                                                              "adversarial", 0))

def test_a_training_stage_reports_the_members_and_commits_nothing_in_quick_mode(places):
    out = places / "out"
    run_study("dna-consistency", quick=True, out_dir=out, seeds=[0], regularizers=["standard"],
              activations=["relu"], parts=["train"])
    res = json.loads((out / "results.json").read_text())
    table = next(t for t in res["tables"] if t["name"] == "training")
    assert [row[0] for row in table["rows"]] == ["relu-bn-standard-s0"] and table["rows"][0][6] == "now"
    assert 0 <= table["rows"][0][3] <= 100 and "A training stage" in res["summary"][0]
    assert not (places / "committed").exists()
    path = member_key(make_dataset("sequence", n=2), SPEC, CONFIGS["quick"])[0].parent  # the cache's folder
    assert [read_metadata(p)["population_member"] for p in path.glob("*.safetensors")] == ["relu-bn-standard-s0"]


@pytest.mark.parametrize("parts", [["score"], ["train", "plot"], [], "[train]", "score"])
def test_parts_without_training_are_refused_before_work(places, parts):
    with pytest.raises(XaiError, match="parts must be"):
        run_study("dna-consistency", quick=True, out_dir=places / "out", parts=parts)
    assert not (places / "out").exists()


@pytest.mark.parametrize("device,why", [("tpu", "must be cpu, cuda"),
                                        pytest.param("cuda", "no CUDA device", marks=pytest.mark.skipif(
                                            torch.cuda.is_available(), reason="this machine has CUDA"))])
def test_a_device_the_machine_lacks_is_refused_before_work(places, device, why):
    with pytest.raises(XaiError, match=f"study option device={device}: .*{why}"):
        run_study("dna-consistency", quick=True, out_dir=places / "out", seeds=[0], regularizers=["standard"],
                  activations=["relu"], parts=["train"], device=device)
    assert not (places / "cache").exists() and not (places / "out").exists()


def test_the_device_trains_the_member_and_is_not_part_of_its_key(places, monkeypatch):
    """``device`` reaches ``train_cached``; the member's key (so what a run on another device reuses) ignores it."""
    seen = []
    real = pop.train_cached
    monkeypatch.setattr(pop, "train_cached", lambda *a, **k: seen.append(k["device"]) or real(*a, **k))
    ds = make_dataset("sequence", n=60)
    path, trained = train_member(ds, SPEC, {**CFG, "device": "cpu"})
    assert trained and seen == ["cpu"]
    assert member_key(ds, SPEC, {**CFG, "device": "cuda"})[0] == path
    assert train_member(ds, SPEC, {**CFG, "device": "cuda"}) == (path, False) and seen == ["cpu"]  # reused
