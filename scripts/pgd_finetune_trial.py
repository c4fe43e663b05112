"""Fine-tune a trained DNA member with the study's PGD regulariser and print the loss and validation AUROC.

The trial behind the paper preset's clean plateau for the PGD members without BatchNorm (docs/studies/RUNS.md):
a converged member survives 10-step PGD at lr 1e-3 (mixed loss 1.54 -> 0.62, validation 0.971 -> 0.962 in two
epochs), while one after 5 clean epochs is held at chance loss. Same validation split as the member's training.

    .venv/bin/python scripts/pgd_finetune_trial.py CHECKPOINT [--lr 1e-3] [--epochs 2] [--steps 10]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xai_core.data.registry import load_dataset
from xai_core.models.checkpoints import load_checkpoint
from xai_core.models.regularizers import adversarial, make_loss, soft_targets
from xai_core.models.training import _split_validation, evaluate_model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    a = ap.parse_args(argv)
    if not a.checkpoint.is_file():
        ap.error(f"no checkpoint at {a.checkpoint}")
    torch.set_num_threads(1)
    model, meta = load_checkpoint(a.checkpoint)
    ds = load_dataset(meta["dataset"])
    tr, va = _split_validation(ds, 0.1, int(meta["seed"]))
    print(f"start: validation AUROC {evaluate_model(model, ds.X[va], ds.y[va])['auroc']:.4f}", flush=True)
    X, y = torch.as_tensor(ds.X[tr]).float(), torch.as_tensor(ds.y[tr])
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss, gen = make_loss(1), torch.Generator().manual_seed(0)
    for ep in range(1, a.epochs + 1):
        model.train()
        perm, run, t0 = torch.randperm(len(X), generator=gen), [], time.perf_counter()
        for k, i in enumerate(range(0, len(perm), a.batch_size)):
            b = perm[i:i + a.batch_size]
            step = adversarial(model, X[b], soft_targets(y[b], 1).float(), loss, epsilon=0.05, steps=a.steps)
            opt.zero_grad()
            step.backward()
            opt.step()
            run.append(float(step.detach()))
            if k % 20 == 19:
                print(f"epoch {ep} batch {k + 1}: mixed loss {np.mean(run[-20:]):.4f}", flush=True)
        val = evaluate_model(model, ds.X[va], ds.y[va])["auroc"]
        print(f"epoch {ep}: validation AUROC {val:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
