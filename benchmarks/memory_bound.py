"""Memory is bounded by the batch-size knobs: evaluate 1,000 grain images and report peak memory.

Runs the evaluation grid in a fresh subprocess per setting (so peak RSS is that run's own) on the first
1,000 correctly classified grain images (train + test), with a cheap method and perturbation metrics, for
two settings of ``--batch-size`` / ``--forward-batch``. Peak RSS should follow the knobs, not the number of
images: the inputs and maps of all 1,000 images take ~100 MB; each metric call holds one batch of
perturbed inputs at a time.

    .venv/bin/python benchmarks/memory_bound.py            # n = 1000
    .venv/bin/python benchmarks/memory_bound.py --n 200
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import json, resource, sys, time, warnings
    warnings.filterwarnings("ignore")
    import torch
    torch.set_num_threads(2)
    from xai_core.runner import EvalConfig, Evaluation
    from xai_core.store import ResultStore
    n, bs, fb, metrics, store = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    t0 = time.perf_counter()
    ev = Evaluation(EvalConfig(dataset="grain", methods="saliency", metrics=metrics, n=n, split="all",
                               batch_size=bs, forward_batch=fb), ResultStore(store))
    plan = ev.plan()
    scores = ev.run(plan)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": len(plan.sample_idx), "rows": len(scores), "nan": int(scores["score"].isna().sum()),
                      "peak_mb": peak_mb, "seconds": time.perf_counter() - t0}))
""")


def run(n: int, bs: int, fb: int, metrics: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(bs), str(fb), metrics, f"{d}/r.sqlite"],
                             cwd=ROOT, capture_output=True, text=True,
                             env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--metrics", default="pixel_flipping,region_perturbation,sparseness,complexity,roc_auc")
    args = ap.parse_args()
    print(f"# memory bound: grain, saliency, metrics {args.metrics}")
    print("| samples | --batch-size | --forward-batch | score rows | NaN | peak RSS (MB) | seconds |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for bs, fb in [(16, 32), (64, 256)]:
        r = run(args.n, bs, fb, args.metrics)
        print(f"| {r['n']} | {bs} | {fb} | {r['rows']} | {r['nan']} | {r['peak_mb']:.0f} | {r['seconds']:.1f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
