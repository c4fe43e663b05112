"""Our metrics vs Quantus 0.6.0 on the same model and tensors, side by side in one run.

For each metric both implement, the same inputs, attributions and settings go through
``xai_core.metrics.compute_metric`` and through the Quantus class (settings as in the reference tests in
``tests/test_metrics_*.py``). Calls are interleaved (ABAB, then BABA), R rounds; the script prints the
median time per call of each side, their ratio (Quantus / ours: the speed-up), and the largest absolute
difference between the two sides' scores. Target: a geometric-mean speed-up of at least 10x, equal values.

    .venv/bin/python benchmarks/metrics_vs_quantus.py              # images, tabular, DNA; R = 5
    .venv/bin/python benchmarks/metrics_vs_quantus.py --quick      # R = 2
    .venv/bin/python benchmarks/metrics_vs_quantus.py --modalities image --metrics irof --repeats 9
"""
from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

np.trapz = np.trapezoid  # numpy 2.4 shims Quantus 0.6 needs
np.NaN = np.nan
import zennit  # noqa: E402, F401  (Quantus imports it)
import quantus  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import interleaved, parse_args  # noqa: E402
from xai_core.data import MODALITIES  # noqa: E402
from xai_core.explainers import pool_channels  # noqa: E402
from xai_core.metrics import compute_metric  # noqa: E402

N_SAMPLES = 32
DATA = {"image": "grain", "expression": "simu-small", "sequence": "dna-motifs-small"}


def setup(modality: str):
    """32 correctly classified test samples (images: with a lesion), saliency maps of the shipped model."""
    from tests.metric_helpers import shipped

    from xai_core.explainers import explain
    from xai_core.metrics import build_inputs

    ds, model, ctx = shipped(DATA[modality])
    idx = ds.test_idx
    if modality == "image":
        idx = idx[ds.ground_truth.masks[idx].reshape(len(idx), -1).any(1)]
    if modality == "sequence":
        idx = idx[ds.y[idx] == 1]
    with torch.no_grad():
        z = model(torch.as_tensor(ds.X[idx]))
    pred = (z[:, 0] > 0).long().numpy() if z.shape[1] == 1 else z.argmax(1).numpy()
    idx = idx[pred == ds.y[idx]][:N_SAMPLES]
    a = explain(ctx, torch.as_tensor(ds.X[idx]), torch.as_tensor(ds.y[idx]), "saliency").attributions
    return build_inputs(ds, ctx, idx, a, "saliency")


def _np(inp, pooled: bool = False):
    x = inp.x.cpu().numpy()
    y = inp.target.cpu().numpy()
    a = (pool_channels(inp.a, "sum")[:, None] if pooled else inp.a).double().cpu().numpy()
    return x, y, a


def case_complexity(name: str, qcls):
    def ours(inp):
        return compute_metric(name, inp, strict=True).scores

    def ref(inp):
        x, y, a = _np(inp)
        m = qcls(abs=True, normalise=True, normalise_func_kwargs={"normalise_axes": list(range(1, a.ndim))},
                 disable_warnings=True, display_progressbar=False)
        return m(model=inp.ctx.model, x_batch=x, y_batch=y, a_batch=a, device="cpu")
    return ours, ref


def case_localisation(name: str, qcls):
    def ours(inp):
        return compute_metric(name, inp, strict=True).scores

    def ref(inp):
        x, y, a = _np(inp, pooled=True)
        m = qcls(normalise=False, abs=False, disable_warnings=True, display_progressbar=False)
        return m(model=inp.ctx.model, x_batch=x, y_batch=y, a_batch=a, s_batch=inp.masks[:, None].double().numpy(),
                 device="cpu")
    return ours, ref


# name -> (modalities, builder); extended below by the faithfulness and robustness cases
CASES: dict[str, tuple[tuple[str, ...], Callable]] = {
    "sparseness": (MODALITIES, lambda: case_complexity("sparseness", quantus.Sparseness)),
    "complexity": (MODALITIES, lambda: case_complexity("complexity", quantus.Complexity)),
    "roc_auc": (("image",), lambda: case_localisation("roc_auc", quantus.AUC)),
    "relevance_mass_accuracy": (("image",), lambda: case_localisation("relevance_mass_accuracy",
                                                                      quantus.RelevanceMassAccuracy)),
    "relevance_rank_accuracy": (("image",), lambda: case_localisation("relevance_rank_accuracy",
                                                                      quantus.RelevanceRankAccuracy)),
    "pointing_game": (("image",), lambda: case_localisation("pointing_game", quantus.PointingGame)),
}

try:  # the perturbation and sensitivity cases live next to this file
    from benchmarks._quantus_cases import EXTRA_CASES

    CASES.update(EXTRA_CASES)
except ImportError:
    pass


def bench(name: str, inp, repeats: int) -> dict:
    fns = CASES[name][1]()
    ours, ref = fns[0], fns[1]
    values = fns[2] if len(fns) > 2 else ref  # where Quantus' timed call cannot give equal values (IROF)
    o_val = np.asarray(ours(inp), dtype=float)  # warm-up, and the values compared
    r_val = np.asarray(values(inp), dtype=float)
    ref(inp)
    if o_val.shape != r_val.shape:
        r_val = r_val.reshape(o_val.shape)
    diff = float(np.nanmax(np.abs(o_val - r_val))) if np.isfinite(o_val).any() else float("nan")
    same_nan = bool((np.isnan(o_val) == np.isnan(r_val)).all())
    o, q = interleaved(lambda: ours(inp), lambda: ref(inp), repeats)
    return {"metric": name, "ours": o, "quantus": q, "speedup": q / o, "diff": diff, "same_nan": same_nan}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv, quick=2, full=5,
                      title=f"ours vs Quantus {quantus.__version__}: {N_SAMPLES} samples, saliency maps")
    repeats = args.repeats
    all_rows = []
    for modality in [m.strip() for m in args.modalities.split(",") if m.strip()]:
        inp = setup(modality)
        names = [n for n, (mods, _) in CASES.items() if modality in mods
                 and (args.metrics == "all" or n in args.metrics.split(","))]
        print(f"\n## {modality}: {DATA[modality]}, input {tuple(inp.x.shape)}\n")
        print("| metric | ours median (s) | Quantus median (s) | speed-up | max abs diff | NaNs agree |")
        print("|---|---:|---:|---:|---:|---|")
        rows = []
        for n in names:
            r = bench(n, inp, repeats)
            rows.append(r)
            print(f"| {n} | {r['ours']:.4g} | {r['quantus']:.4g} | {r['speedup']:.1f}x | {r['diff']:.2g} | "
                  f"{'yes' if r['same_nan'] else 'no'} |", flush=True)
        if rows:
            g = math.exp(statistics.mean(math.log(r["speedup"]) for r in rows))
            print(f"\ngeometric-mean speed-up ({modality}): {g:.1f}x")
        all_rows += rows
    if all_rows:
        g = math.exp(statistics.mean(math.log(r["speedup"]) for r in all_rows))
        print(f"\ngeometric-mean speed-up (all {len(all_rows)} cases): {g:.1f}x; "
              f"largest difference {max(r['diff'] for r in all_rows):.2g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
