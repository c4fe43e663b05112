"""The linear fast path's per-step sums: one sparse (samples x steps, genes) matrix times Wᵀ, against scattering the
(samples, genes, hidden) products it replaced, side by side on the same inputs.

Cumulative removal on an expression model whose first layer is linear (pixel flipping, IROF, the prediction gaps)
needs, per sample and removal step, the sum of d_j W[:, j] over the genes removed at that step
(``xai_core.metrics.fastpath``). Both ways give the same sums bit for bit (checked here as in
``tests/test_metrics_fastpath.py``); the script prints the median milliseconds per sample of each, interleaved, and
their ratio (which way the metrics take depends on the number of outputs: ``SPARSE_MIN_OUTPUTS``), at the shapes of
the simulated studies (SIMU1: 15,000 genes, 33 classes; SimuA–C: 50,000 genes, 2 classes; an MLP's 20 hidden units),
one torch thread.

    .venv/bin/python benchmarks/linear_fast_path.py            # R = 7
    .venv/bin/python benchmarks/linear_fast_path.py --quick    # R = 3
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import interleaved
from xai_core.metrics.fastpath import SPARSE_MIN_OUTPUTS, _sparse_step_sums

SHAPES = [("SIMU1 LR", 15_000, 33), ("SIMU1 MLP", 15_000, 20), ("SimuA LR", 50_000, 2)]
SAMPLES = 16  # per call (a chunk of the metric)
GENES_PER_STEP = 10


def scattered(d: torch.Tensor, steps: torch.Tensor, n_bins: int, w_t: torch.Tensor) -> torch.Tensor:
    """The replaced way: materialise every product d_j W[:, j], then scatter them into their steps."""
    h = w_t.shape[1]
    sums = torch.zeros(d.shape[0], n_bins, h, dtype=d.dtype)
    return sums.scatter_add_(1, steps[:, :, None].expand(-1, -1, h), d[:, :, None] * w_t[None])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    torch.set_num_threads(1)
    print(f"# linear fast path step sums, R = {repeats}, {SAMPLES} samples per call, torch {torch.__version__}, "
          "1 thread")
    print("| shape | genes | outputs | scattered ms/sample | sparse ms/sample | ratio | identical | the metrics use |")
    print("|---|---|---|---|---|---|---|---|")
    for name, genes, outputs in SHAPES:
        g = torch.Generator().manual_seed(0)
        d = torch.randn(SAMPLES, genes, generator=g)
        w_t = torch.randn(genes, outputs, generator=g)
        n_steps = genes // GENES_PER_STEP
        steps = torch.stack([torch.randperm(genes, generator=g) // GENES_PER_STEP for _ in range(SAMPLES)])
        call = (d, steps, n_steps + 1, w_t)
        same = torch.equal(scattered(*call), _sparse_step_sums(*call))
        old, new = interleaved(lambda c=call: scattered(*c), lambda c=call: _sparse_step_sums(*c), repeats)
        print(f"| {name} | {genes:,} | {outputs} | {1000 * old / SAMPLES:.2f} | {1000 * new / SAMPLES:.2f} | "
              f"{old / new:.2f}x | {'yes' if same else 'NO'} | "
              f"{'sparse' if outputs >= SPARSE_MIN_OUTPUTS else 'scattered'} |")


if __name__ == "__main__":
    main()
