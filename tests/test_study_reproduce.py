"""The three quick studies reproduce their committed numbers (docs/determinism.md).

Each quick study runs once per test session, as ``python -m xai_core study NAME --quick`` does (``run_study``, a
fresh model and run cache, the generated datasets shared), and every leaf of its ``results.json`` is compared with
the committed ``docs/studies/NAME/quick/results.json``: numbers within rel 1e-3 or abs 1e-6
(``determinism.REL_TOL`` / ``ABS_TOL``; other CPU kernels moved fixed-weight numbers by up to 8.4e-5), texts word
for word with the numbers in them within the same tolerance (or one unit of their last printed digit), everything
else equal. Only the invocation's time, machine, command and provenance, and the entries a study lists as
``volatile`` (time, cache state), are left out; the few a study states a wider tolerance for (``tolerances``, with
the reason: grain's random control) are held to that.

CI runs on another machine than the one that wrote the files, which is what these tests are for. The
dna-consistency quick population is trained, and in float32 a CPU whose kernels round differently (or another
thread count) trains other weights; the quick study therefore trains it in float64, where those roundings stay
below float32's resolution, and every one of its numbers is compared on every machine. The one stated exception
is another torch version, whose kernels and initialisation may change: its trained numbers are then skipped with
the reason (the training-free ones, the protocol and the shipped checkpoint scored as a reference, still are
compared).

``quick_run`` is shared with tests/test_study_{dna,grain,ig}.py, so each study runs once per session.
"""
from __future__ import annotations

import copy
import json
import random

import numpy as np
import pytest
import torch

from xai_core import cli
from xai_core.data import cache_dir
from xai_core.determinism import ABS_TOL, REL_TOL, compare_results, leaves, record, reproducible
from xai_core.studies import DOCS, load_result, run_study

STUDIES = ("ig-expression", "grain-explainers", "dna-consistency")
OPTIONS = {"grain-explainers": lambda out: {"store": str(out / "results.sqlite")}}  # kept for test_study_grain


def quick_run(name: str, tmp_path_factory) -> tuple:
    """(result read back from its results.json, output folder) of ``study NAME --quick``, run once per session.

    The run's model and run cache is a fresh folder (nothing trained earlier is reused); the generated datasets
    are shared with the test cache (they are keyed by content)."""
    root = tmp_path_factory.getbasetemp() / "quick-studies"
    out = root / name
    if not (out / "results.json").exists():
        cache = root / f"{name}-cache"
        cache.mkdir(parents=True, exist_ok=True)
        shared = cache_dir() / "datasets"
        shared.mkdir(parents=True, exist_ok=True)
        if not (cache / "datasets").exists():
            (cache / "datasets").symlink_to(shared, target_is_directory=True)
        out.mkdir(parents=True, exist_ok=True)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("XAI_CORE_CACHE", str(cache))
            run_study(name, quick=True, out_dir=out, **OPTIONS.get(name, lambda o: {})(out))
    return load_result(out / "results.json"), out


def committed(name: str) -> dict:
    return json.loads((DOCS / name / "quick" / "results.json").read_text())


def rerun(name: str, tmp_path_factory) -> dict:
    return json.loads((quick_run(name, tmp_path_factory)[1] / "results.json").read_text())


def report(diffs) -> str:
    return f"{len(diffs)} numbers moved against the committed results:\n" + "\n".join(f"  {d}" for d in diffs[:40])


# -- the comparison itself -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", STUDIES)
def test_the_comparison_catches_a_moved_number(name):
    """A committed file agrees with itself; moving any one number, a number in a sentence or a verdict is caught."""
    base = committed(name)
    assert compare_results(base, copy.deepcopy(base)) == []
    wider = tuple(base.get("tolerances") or ())  # held to the wider tolerance the study states for them
    numbers = [p for p, v in leaves(base).items() if isinstance(v, float) and abs(v) > 1e-3 and not p.startswith(wider)]
    assert len(numbers) > 20
    rng = np.random.default_rng(0)
    for path in rng.choice(numbers, size=5, replace=False):
        for factor, caught in ((1 + 10 * REL_TOL, True), (1 + REL_TOL / 10, False)):
            moved = _set(copy.deepcopy(base), path, leaves(base)[path] * factor)
            diffs = compare_results(base, moved)
            assert [d.path for d in diffs] == ([path] if caught else []), (path, factor, diffs)
    claim = base["claims"][0]
    moved = copy.deepcopy(base)
    moved["claims"][0]["verdict"] = "differs" if claim["verdict"] != "differs" else "agrees"
    assert [d.why for d in compare_results(base, moved)] == ["text differs"]


def test_numbers_in_sentences_and_volatile_entries():
    a = {"summary": ["r = -0.226 (p = 0.59) over 8 models"], "duration_s": 3.0, "volatile": ["tables/timing"],
         "tables": [{"name": "timing", "rows": [[1.0]]}, {"name": "t", "rows": [[0.5, "1.000 ± 7.9e-17"]]}]}
    b = copy.deepcopy(a)
    b["duration_s"], b["tables"][0]["rows"] = 99.0, [[7.0]]  # time: not compared
    b["summary"], b["tables"][1]["rows"][0][1] = ["r = -0.227 (p = 0.59) over 8 models"], "1.000 ± 1.4e-16"
    assert compare_results(a, b) == []  # a last-digit rounding, and noise far below ABS_TOL
    b["summary"] = ["r = -0.715 (p = 0.046) over 8 models"]
    diffs = compare_results(a, b)
    assert [d.path for d in diffs] == ["summary[0]"] and "-0.226 vs -0.715" in diffs[0].why
    for words in ("r = -0.226 (p = 0.59) over 9 models", "r = -0.226 (p = 0.59) over 8 model"):
        assert [d.why[:4] for d in compare_results(a, {**a, "summary": [words]})] == [
            "numb" if "9 models" in words else "text"]  # a count moved by one, a word changed
    b["tables"][1]["rows"][0][0] = 0.5 * (1 + 2 * REL_TOL)
    assert "tables/t/rows[0][0]" in [d.path for d in compare_results(a, b)]
    assert [d.why for d in compare_results(a, {**a, "extra": 1})] == ["not in the committed"]
    assert compare_results({"x": 0.0}, {"x": ABS_TOL / 2}) == [] and compare_results({"x": 0.0}, {"x": 2 * ABS_TOL})


def test_reproducible_fixes_and_restores_the_settings():
    threads = torch.get_num_threads()
    with reproducible(seed=3, threads=1) as rec:
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        a = (torch.rand(3), np.random.rand(), random.random())
        assert rec["seed"] == 3 and rec["torch_threads"] == 1 and rec["cpu_capability"]
        assert rec["versions"]["torch"] == torch.__version__
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()
    with reproducible(seed=3, threads=1):
        b = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    assert record()["seed"] is None
    with pytest.raises(ValueError, match="threads"):
        with reproducible(threads=0):
            pass


# -- the studies against their committed numbers --------------------------------------------------------------
@pytest.mark.parametrize("name", ["ig-expression", "grain-explainers"])
def test_quick_study_reproduces_its_committed_numbers(name, tmp_path_factory):
    new, old = rerun(name, tmp_path_factory), committed(name)
    assert new["provenance"]["determinism"]["torch_threads"] == 1
    diffs = compare_results(old, new)
    assert not diffs, report(diffs) + f"\ncommitted on {old['provenance']['determinism']['cpu']}, re-run on " \
        f"{new['provenance']['determinism']['cpu']}; regenerate with python -m xai_core study {name} --quick " \
        "if the change is intended"


def test_dna_numbers_that_pass_through_no_training_reproduce(tmp_path_factory):
    new, old = rerun("dna-consistency", tmp_path_factory), committed("dna-consistency")
    a, b = ({"protocol": d["protocol"], "tables": [t for t in d["tables"] if t["name"] == "reference"],
             "volatile": d["volatile"]} for d in (old, new))
    assert a["tables"], "the committed quick run scores the shipped checkpoint as a reference"
    diffs = compare_results(a, b)
    assert not diffs, report(diffs)


def test_dna_trained_numbers_reproduce(tmp_path_factory):
    """Every number of the float64-trained quick population, on any CPU and thread count (docs/determinism.md
    measured ATen's default kernels, oneDNN SSE4.1 and two threads). Its float32-rounded weights may differ in a
    last bit (their hashes then differ) without moving a number beyond the tolerance."""
    new, old = rerun("dna-consistency", tmp_path_factory), committed("dna-consistency")
    mine, theirs = new["provenance"]["trained_weights"], old["provenance"]["trained_weights"]
    assert list(mine) == list(theirs)  # the same population
    assert old["protocol"]["training"]["precision"].startswith("float64"), "the quick population trains in float64"
    here, there = (d["provenance"]["determinism"] for d in (new, old))
    if here["versions"]["torch"] != there["versions"]["torch"]:
        pytest.skip(f"torch {here['versions']['torch']} here, {there['versions']['torch']} in the committed run: "
                    "another torch may change its kernels or the initial weights' draws, so the population's "
                    "trained numbers are compared only with the same torch (docs/determinism.md)")
    diffs = compare_results(old, new)
    other = [m for m in mine if mine[m] != theirs[m]]
    assert not diffs, report(diffs) + f"\n{len(other)} of {len(mine)} members' float32 weights differ from the " \
        f"committed run's (committed on {there['cpu']} {there['cpu_capability']}, re-run on {here['cpu']} " \
        f"{here['cpu_capability']}); regenerate with python -m xai_core study dna-consistency --quick if the " \
        "change is intended"


def test_cli_compare_refuses_bad_results_before_work(tmp_path, capsys):
    grain = DOCS / "grain-explainers" / "quick" / "results.json"
    for target, words in ((tmp_path / "none.json", "cannot read a results.json"),
                          (grain, "results of study 'grain-explainers'")):
        rc = cli.main(["study", "ig-expression", "--quick", "--out", str(tmp_path / "o"), "--compare", str(target)])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and words in err and "docs/studies/ig-expression" in err
        assert not (tmp_path / "o").exists()  # refused before any work


def test_cli_compare_reports_what_moved(tmp_path_factory, tmp_path, capsys, monkeypatch):
    """--compare against this session's own ig-expression run with one number moved: exit 1, and that number
    alone is listed (so every other number of the CLI's re-run agreed)."""
    _, out = quick_run("ig-expression", tmp_path_factory)  # also warms the run cache the CLI run below reuses
    moved = json.loads((out / "results.json").read_text())
    moved["tables"][0]["rows"][0][3] *= 1.01  # the first accuracy
    (tmp_path / "moved.json").write_text(json.dumps(moved))
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path_factory.getbasetemp() / "quick-studies" / "ig-expression-cache"))
    rc = cli.main(["study", "ig-expression", "--quick", "--out", str(tmp_path / "rerun"), "--compare",
                   str(tmp_path / "moved.json")])
    err = capsys.readouterr().err
    assert rc == 1 and "--compare: 1 entry differs" in err and "tables/accuracy/rows[0][3]" in err, err


def test_committed_quick_reports_state_the_command():
    for name in STUDIES:
        readme = (DOCS / name / "quick" / "README.md").read_text()
        assert f"`python -m xai_core study {name} --quick`" in readme, name
        assert committed(name)["command"] == f"python -m xai_core study {name} --quick"


def _set(data: dict, path: str, value):
    """``data`` with the leaf at ``path`` (a ``leaves`` path) replaced by ``value``."""
    node, parts = data, _split(path)
    for part in parts[:-1]:
        node = _child(node, part)
    last = parts[-1]
    if isinstance(node, list):
        node[_index(node, last)] = value
    else:
        node[last] = value
    return data


def _split(path: str) -> list[str]:
    out = []
    for seg in path.split("/"):
        head, *idx = seg.split("[")
        out += ([head] if head else []) + [f"[{i}" for i in idx]
    return out


def _index(node: list, part: str) -> int:
    if part.startswith("["):
        return int(part[1:].rstrip("]"))
    return next(i for i, x in enumerate(node) if (isinstance(x, dict) and part in (x.get("name"), x.get("quantity"),
                                                                                    x.get("claim")))
                or (isinstance(x, list) and x and x[0] == part))


def _child(node, part: str):
    return node[_index(node, part)] if isinstance(node, list) else node[part]


def test_set_helper_round_trips():
    data = {"tables": [{"name": "t", "rows": [[1.0, 2.0]]}], "x": {"y": [0.5]}}
    for path in leaves(data):
        if not path.endswith("/name"):  # a name is the key of its list item
            assert leaves(_set(copy.deepcopy(data), path, 7.0))[path] == 7.0
