"""Retrain a committed DNA population member with another epoch cap and compare its weights bit for bit.

A member that early stopping ended before its cap trains identically under a larger one (nothing in a run depends
on the cap until it is reached): the check behind re-keying the members without BatchNorm if their cap is raised
(docs/studies/RUNS.md). Needs the machine kind (CPU kernels) the member was trained on, and one thread, as the study.

    .venv/bin/python scripts/dna_cap_check.py CHECKPOINT [--epochs 300]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xai_core.data.registry import load_dataset
from xai_core.models.checkpoints import load_checkpoint
from xai_core.models.training import train_model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--epochs", type=int, default=300)
    a = ap.parse_args(argv)
    if not a.checkpoint.is_file():
        ap.error(f"no checkpoint at {a.checkpoint}")
    torch.set_num_threads(1)
    committed, meta = load_checkpoint(a.checkpoint)
    ds = load_dataset(meta["dataset"])
    model, rep = train_model(ds, meta["arch"], seed=meta["seed"], arch_kwargs=meta["arch_kwargs"],
                             **{**meta["recipe"], "epochs": a.epochs})
    same = all(torch.equal(x, y) for x, y in zip(model.state_dict().values(), committed.state_dict().values()))
    print(f"cap {a.epochs}: best epoch {rep.best_epoch} of {rep.epochs_run}, test AUROC {rep.test_auroc:.6f}; "
          f"committed: {meta['best_epoch']} of {meta['epochs_run']}, {meta['test_auroc']:.6f}; "
          f"weights identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
