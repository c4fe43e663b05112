"""The consistency metrics' bootstrap: reusing per-sequence terms vs recomputing the metric on every resample.

spherical_kld scores its bootstrap resamples as weighted multisets of points computed once
(``spherical_kl_weighted``); the old way resampled the maps and recomputed everything per resample. Both sides
run interleaved on the same random maps (N sequences of length L, n_boot resamples, the same draws); the script
prints medians, their ratio, and that the two give the same standard error.

    .venv/bin/python benchmarks/bootstrap_reuse.py [--n 500] [--length 200] [--n-boot 20] [--repeats 5]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import interleaved
from xai_core.metrics.consistency import spherical_kl, spherical_kl_weighted, spherical_points


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--n-boot", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    print(f"# bootstrap reuse, spherical_kld, N = {args.n}, L = {args.length}, n_boot = {args.n_boot}, "
          f"R = {args.repeats}, {datetime.date.today()}")
    print(f"# {platform.platform()}, nproc={os.cpu_count()}, torch {torch.__version__}, threads 2")
    rng = np.random.default_rng(0)
    a = torch.as_tensor(rng.normal(size=(args.n, 4, args.length)).astype("f4"))
    g = torch.Generator().manual_seed(0)
    draws = [torch.randint(0, args.n, (args.n,), generator=g) for _ in range(args.n_boot)]
    counts = torch.stack([torch.bincount(d, minlength=args.n).double() for d in draws])
    group = torch.arange(args.n).repeat_interleave(args.length)

    def reuse() -> np.ndarray:
        pts = spherical_points(a)
        return spherical_kl_weighted(pts, counts, 0.1, group=group).numpy()

    def recompute() -> np.ndarray:
        return np.array([spherical_kl(spherical_points(a[d]), 0.1) for d in draws])

    same = np.allclose(reuse(), recompute(), rtol=1e-9, atol=1e-12)
    t_reuse, t_old = interleaved(reuse, recompute, args.repeats)
    print("| side | median s | ratio to recomputing |")
    print("|---|---|---|")
    print(f"| recompute per resample | {t_old:.3f} | 1.00 |")
    print(f"| reuse per-sequence terms | {t_reuse:.3f} | {t_reuse / t_old:.2f} |")
    print(f"# same bootstrap values: {same}")


if __name__ == "__main__":
    main()
