"""Scale-out of the Ray executor: the same evaluation grid with 1 worker and with 2 workers, side by side.

One local Ray cluster is started with as many CPUs as the most workers asked for; the workers are warmed first
(package imports, dataset and model loaded: one untimed run), then each worker count runs the whole grid on a
fresh results store, interleaved (1, 2, 2, 1, ...), ``--repeats`` times. Printed: the median wall time per worker
count, the speed-up over one worker, the in-process (``--executor local``) time of the same grid for reference,
the load average before and after, whether every run stored the same scores, and per run how many workers were
occupied on average (the seconds the chunks took inside the workers, as stored, over the wall time): on a machine whose
cores other work takes, 2 occupied workers do not make a run faster, and this number tells a scheduling bottleneck
from a lack of free cores.

    .venv/bin/python benchmarks/ray_scaleout.py [--dataset grain] [--n 16] [--batch-size 4] [--workers 1,2]
        [--repeats 3]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray

from xai_core.executors import ExecutorOptions, prepare
from xai_core.runner import EvalConfig, Evaluation
from xai_core.store import ResultStore

METHODS = "saliency,integrated_gradients,smoothgrad,input_x_gradient,lrp_epsilon_plus_flat,gradcam,random"
METRICS = "sparseness,pixel_flipping,faithfulness_correlation,max_sensitivity"  # ~38,000 passes at n = 16


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _one(args, executor: str, workers: int | None, root: Path, tag: str) -> tuple[float, float, np.ndarray]:
    """Seconds of one whole run on a fresh store (planning excluded), the seconds its chunks took inside the
    workers (as stored with each chunk), and its scores in a fixed order."""
    cfg = EvalConfig(dataset=args.dataset, methods=args.methods, metrics=args.metrics, n=args.n,
                     batch_size=args.batch_size)
    with ResultStore(root / f"{tag}.sqlite") as store, prepare(ExecutorOptions(executor, workers=workers)) as run:
        ev = Evaluation(cfg, store)
        plan = ev.plan()
        t0 = time.perf_counter()
        scores = run.run(ev, plan)
        took = time.perf_counter() - t0
        busy = sum(p["seconds"] for kind in ("attributions", "scores") for p in store.provenance(kind=kind))
    return took, busy, scores.sort_values(["method", "metric", "sample"])["score"].to_numpy(float)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="grain")
    ap.add_argument("--methods", default=METHODS)
    ap.add_argument("--metrics", default=METRICS)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4, help="samples per metric chunk (a Ray task)")
    ap.add_argument("--workers", default="1,2", help="worker counts to compare (the first is the reference)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-local", action="store_true", help="skip the in-process reference run")
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    warnings.filterwarnings("ignore")
    print(f"# Ray scale-out, {args.dataset}, n = {args.n}, {len(args.methods.split(','))} methods x "
          f"{len(args.metrics.split(','))} metrics, metric chunks of {args.batch_size}, R = {args.repeats}, "
          f"{datetime.date.today()}")
    print(f"# {platform.platform()}, nproc={os.cpu_count()}, ray {ray.__version__}, one torch thread per worker")
    print(f"# load average before (1, 5, 15 min): {_load()}")
    ray.init(num_cpus=max(counts), include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    times: dict[int, list[float]] = {w: [] for w in counts}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _one(args, "ray", max(counts), root, "warm")  # imports, dataset and model on every worker (kept after)
        for r in range(args.repeats):
            for w in (counts if r % 2 == 0 else counts[::-1]):
                took, busy, scores = _one(args, "ray", w, root, f"w{w}-r{r}")
                times[w].append(took)
                results.append(scores)
                print(f"#   repeat {r + 1}, {w} worker(s): {took:.1f} s, chunks {busy:.1f} s inside the workers = "
                      f"{busy / took:.2f} workers occupied on average (load {_load()})", flush=True)
        local = None if args.no_local else _one(args, "local", None, root, "local")
    ray.shutdown()
    same = all(np.allclose(s, results[0], rtol=1e-4, atol=1e-6, equal_nan=True) for s in results)
    if local is not None:
        same = same and np.allclose(local[2], results[0], rtol=1e-4, atol=1e-6, equal_nan=True)
    ref = statistics.median(times[counts[0]])
    print("| workers | median s | runs (s) | speed-up over " + f"{counts[0]} |")
    print("|---|---|---|---|")
    for w in counts:
        med = statistics.median(times[w])
        print(f"| {w} | {med:.1f} | {', '.join(f'{t:.1f}' for t in times[w])} | {ref / med:.2f}x |")
    if local is not None:
        print(f"# in-process (--executor local, this process's torch threads): {local[0]:.1f} s")
    print(f"# same scores in every run: {same}")
    print(f"# load average after (1, 5, 15 min): {_load()}")


if __name__ == "__main__":
    main()
