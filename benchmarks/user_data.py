"""Your own data at scale: a 100,000 cells x 20,000 genes sparse h5ad imported, trained on and explained.

Writes a sparse h5ad (CSR, anndata's on-disk encoding) row block by row block, then runs each stage in a
fresh Python process and prints its wall time and peak resident memory (``ru_maxrss`` of that process):

1. ``import``: ``python -m xai_core import FILE --name ... --label-key cell_type`` (reads the CSR arrays,
   standardises lazily, writes the memory-mapped registry entry);
2. ``train``: the built-in MLP on the imported data (``--epochs``, default 1: the point is memory, not accuracy);
3. ``explain``: ``python -m xai_core explain --n 256`` with saliency and Integrated Gradients.

Target (issue "Your own data"): peak RSS at most 2 GB above the sparse matrix's own size.

    .venv/bin/python benchmarks/user_data.py                      # 100k x 20k, density 0.05
    .venv/bin/python benchmarks/user_data.py --cells 20000 --genes 5000   # quicker
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere: the repository is not installed


def write_h5ad(path: Path, n_cells: int, n_genes: int, density: float, n_types: int = 8, seed: int = 0,
               block: int = 5000) -> int:
    """A sparse h5ad with cell types that differ in a few marker genes; returns the sparse bytes
    (data+indices+indptr)."""
    import anndata
    import h5py
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_types, size=n_cells)
    obs = pd.DataFrame({"cell_type": pd.Categorical([f"type{t}" for t in labels])},
                       index=[f"cell{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=[f"GENE{j}" for j in range(n_genes)])
    anndata.AnnData(X=sp.csr_matrix((n_cells, n_genes), dtype=np.float32), obs=obs, var=var).write_h5ad(path)
    markers = rng.choice(n_genes, size=(n_types, 20), replace=False)
    nnz_per_row = max(1, int(density * n_genes))
    with h5py.File(path, "r+") as f:
        g = f["X"]
        for k in ("data", "indices", "indptr"):
            del g[k]
        total = n_cells * nnz_per_row
        d = g.create_dataset("data", shape=(total,), dtype="float32", chunks=(min(total, 1 << 20),))
        ind = g.create_dataset("indices", shape=(total,), dtype="int32", chunks=(min(total, 1 << 20),))
        g.create_dataset("indptr", data=np.arange(n_cells + 1, dtype=np.int64) * nnz_per_row)
        for i in range(0, n_cells, block):
            rows = range(i, min(i + block, n_cells))
            cols = np.empty((len(rows), nnz_per_row), dtype=np.int32)
            vals = rng.gamma(1.5, 1.0, size=(len(rows), nnz_per_row)).astype(np.float32)
            for r_i, r in enumerate(rows):
                c = rng.choice(n_genes, size=nnz_per_row, replace=False)
                c[:10] = markers[labels[r], :10]  # each type expresses its markers strongly
                vals[r_i, :10] += 4.0
                c_sorted = np.argsort(c)
                cols[r_i], vals[r_i] = c[c_sorted], vals[r_i][c_sorted]
            d[i * nnz_per_row:(i + len(rows)) * nnz_per_row] = np.log1p(vals).ravel()
            ind[i * nnz_per_row:(i + len(rows)) * nnz_per_row] = cols.ravel()
    return total * 4 + total * 4 + (n_cells + 1) * 8


def stage(argv: list[str]) -> None:
    """Run one CLI command in this process and report wall time and peak RSS as JSON on the last line."""
    from xai_core.cli import main

    t0 = time.perf_counter()
    rc = main(argv)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"rc": rc, "seconds": time.perf_counter() - t0, "peak_rss": peak}))


def run_stage(argv: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--stage", json.dumps(argv)], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        sys.exit(f"stage {argv[0]} failed:\n{out.stdout}\n{out.stderr}")
    res = json.loads(lines[-1])
    if res["rc"] != 0:
        sys.exit(f"stage {argv[0]} exited {res['rc']}:\n{out.stderr}")
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", type=int, default=100_000)
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--density", type=float, default=0.05)
    p.add_argument("--explain", type=int, default=256)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--stage", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.stage:
        return stage(json.loads(args.stage))
    gb = 1024 ** 3
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, XAI_CORE_CACHE=str(tmp / "cache"), XAI_CORE_STORE=str(tmp / "store.sqlite"))
        h5 = tmp / "cells.h5ad"
        t0 = time.perf_counter()
        sparse_bytes = write_h5ad(h5, args.cells, args.genes, args.density)
        print(f"{args.cells:,} cells x {args.genes:,} genes, density {args.density}: sparse matrix "
              f"{sparse_bytes / gb:.2f} GB (dense would be {args.cells * args.genes * 4 / gb:.1f} GB), "
              f"file {h5.stat().st_size / gb:.2f} GB, written in {time.perf_counter() - t0:.0f} s")
        name = "bench-cells"
        rows = [("import", run_stage(["import", str(h5), "--name", name, "--label-key", "cell_type"], env)),
                ("train", run_stage(["train", "--dataset", name, "--arch", "mlp", "--epochs", str(args.epochs)], env)),
                ("explain", run_stage(["explain", "--dataset", name, "--methods", "saliency,integrated_gradients",
                                       "--n", str(args.explain), "--out", str(tmp / "explain")], env))]
        print(f"{'stage':<8} {'seconds':>8} {'peak RSS GB':>12} {'above sparse GB':>16}")
        for stage_name, r in rows:
            print(f"{stage_name:<8} {r['seconds']:>8.1f} {r['peak_rss'] / gb:>12.2f} "
                  f"{(r['peak_rss'] - sparse_bytes) / gb:>16.2f}")
        worst = max(r["peak_rss"] for _, r in rows) - sparse_bytes
        print(f"largest peak above the sparse matrix: {worst / gb:.2f} GB (target <= 2 GB): "
              f"{'met' if worst <= 2 * gb else 'NOT met'}")


if __name__ == "__main__":
    main()
