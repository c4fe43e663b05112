"""Each perturbation metric's time divided by the time of the bare batched forward passes it makes.

The forward passes a metric makes are counted, not estimated: a forward pre-hook on the model records
the number of input rows of every call during one metric run. The "bare" side then pushes the same number
of rows (random inputs of the same shape) through the same model in the same chunk size. Both sides run
interleaved, R rounds, and the script prints medians and their ratio. Target: ratio <= 1.25.

    .venv/bin/python benchmarks/metric_overhead.py                 # all modalities, R = 7
    .venv/bin/python benchmarks/metric_overhead.py --quick         # R = 3
    .venv/bin/python benchmarks/metric_overhead.py --modalities image --metrics pixel_flipping --repeats 15
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import interleaved, parse_args
from xai_core.metrics import METRICS, compute_metric
from xai_core.metrics.perturb import FAST_PATH

DATA = {"image": "grain", "expression": "simu-small", "sequence": "dna-motifs-small"}
N_SAMPLES = 32
PERTURBATION = ["pixel_flipping", "region_perturbation", "irof", "faithfulness_correlation", "pgi_local",
                "pgu_local", "pgi_global", "pgu_global", "pgr"]


class RowCounter:
    def __init__(self, model: torch.nn.Module):
        self.rows, self.calls, self.sizes = 0, 0, []
        self.handle = model.register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.rows += len(args[0])
        self.calls += 1
        self.sizes.append(len(args[0]))

    def remove(self):
        self.handle.remove()  # idempotent


def setup(modality: str):
    from tests.metric_helpers import shipped_inputs

    return shipped_inputs(DATA[modality], N_SAMPLES, "saliency", positives_only=(modality == "sequence"))


def bench(metric: str, inp, repeats: int) -> dict:
    """Rows are counted on the generic path (perturbed inputs through the model); "ours" is the default
    path, which for models with a linear first layer skips those forwards (``metrics/fastpath.py``)."""
    model = inp.ctx.model
    counter = RowCounter(model)
    FAST_PATH["enabled"] = False
    try:
        res = compute_metric(metric, inp, strict=True)
        counter.remove()
        generic = statistics.median(_time(lambda: compute_metric(metric, inp, strict=True), repeats))
    finally:
        FAST_PATH["enabled"] = True
        counter.remove()
    sizes = list(counter.sizes)
    shape = inp.x.shape[1:]
    bare_inputs = [torch.rand((s, *shape), device=inp.device) for s in sizes]

    @torch.no_grad()
    def bare():
        for b in bare_inputs:
            model(b)

    o, b = interleaved(lambda: compute_metric(metric, inp, strict=True), bare, repeats)
    return {"metric": metric, "rows": sum(sizes), "calls": len(sizes), "ours": o, "bare": b, "ratio": o / b,
            "generic": generic, "generic_ratio": generic / b, "mean_score": res.mean}


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv, quick=3, full=7,
                      title=f"metric overhead: metric time / bare forward passes it makes, {N_SAMPLES} samples")
    repeats = args.repeats
    worst = {}
    for modality in [m.strip() for m in args.modalities.split(",") if m.strip()]:
        inp = setup(modality)
        names = PERTURBATION if args.metrics == "all" else [m.strip() for m in args.metrics.split(",")]
        names = [m for m in names if m in METRICS and modality in METRICS.get(m).modalities]
        print(f"\n## {modality}: {DATA[modality]}, input {tuple(inp.x.shape)}, forward_batch {inp.forward_batch}\n")
        print("| metric | forward rows | forward calls | ours median (s) | bare forwards median (s) | ratio "
              "| generic path (s) | generic ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for m in names:
            r = bench(m, inp, repeats)
            flag = " **>1.25**" if r["ratio"] > 1.25 else ""
            print(f"| {m} | {r['rows']} | {r['calls']} | {r['ours']:.4g} | {r['bare']:.4g} | {r['ratio']:.3f}{flag} "
                  f"| {r['generic']:.4g} | {r['generic_ratio']:.3f} |", flush=True)
            worst[f"{modality}/{m}"] = r["ratio"]
    if worst:
        k = max(worst, key=worst.get)
        print(f"\nworst ratio: {worst[k]:.3f} ({k}); median over all: {statistics.median(worst.values()):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
