"""Time each explainer through our call against the bare captum / zennit call it wraps.

For 32 test samples per modality, every method is timed through
``xai_core.explainers.explain(ctx, x, target, method, explain_batch=32)`` ("ours") and through the call a
user would write by hand with the same parameters ("bare"). Both run side by side in one process:
one warm-up each, then R rounds; a round calls each of the two ``inner`` times, interleaved call by call
(ABAB..., BABA... in the next round), with ``inner`` chosen so that a round lasts >= 0.2 s per side
(``inner`` = 1 for methods slower than that). We report the median time per call over all R x inner calls
of each side, and the ratio of the two medians; the target is ours / bare <= 1.05.

    .venv/bin/python benchmarks/explainers.py                    # all modalities and methods, R=5
    .venv/bin/python benchmarks/explainers.py --quick            # smoke run: R=2, no image occlusion/LIME/KernelSHAP
    .venv/bin/python benchmarks/explainers.py --modalities image --methods saliency,gradcam --repeats 9
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import captum
import numpy as np
import torch
import torch.nn.functional as F
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import (DeepLift, Deconvolution, GradientShap, GuidedBackprop, GuidedGradCam,
                         InputXGradient, IntegratedGradients, KernelShap, LayerGradCam, Lime, NoiseTunnel,
                         Occlusion, Saliency)
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import EpsilonAlpha2Beta1Flat, EpsilonGammaBox, EpsilonPlus, EpsilonPlusFlat

from xai_core.models import build_model, load_model
from xai_core.data import DATASETS, load_dataset
from xai_core.errors import XaiError
from xai_core.explainers import EXPLAINERS, applicable_methods, composites, controls, explain, make_context
from xai_core.explainers.cam import cam_layer
from xai_core.explainers.captum_compat import use_rescale_rule_for_exp
from xai_core.explainers.perturbation import feature_mask

DATA = {"expression": "simu-small", "image": "grain", "sequence": "dna-motifs-small"}
N_SAMPLES = 32
MIN_MEASURE_S = 0.2  # a round repeats each call until it lasts about this long
NO_BARE = (*controls(), *composites())  # no library call to compare with
SLOW_ON_IMAGES = ("occlusion", "lime", "kernel_shap")  # skipped on images by --quick
LRP = {"lrp_epsilon_plus_flat": EpsilonPlusFlat, "lrp_epsilon_plus": EpsilonPlus,
       "lrp_epsilon_gamma_box": EpsilonGammaBox, "lrp_epsilon_alpha2_beta1_flat": EpsilonAlpha2Beta1Flat}


def setup(modality: str):
    """Model, context, the first 32 test inputs and their labels, and a note on where the weights came from."""
    name = DATA[modality]
    ds = load_dataset(name)
    try:
        model, meta = load_model(name)
        note = f"shipped checkpoint ({meta['arch']})"
    except XaiError:
        arch = DATASETS.get(name).default_arch
        torch.manual_seed(0)
        model = build_model(arch, ds.input_shape, ds.n_classes).eval()
        note = f"RANDOM weights ({arch}, no shipped checkpoint; timing barely depends on the weights)"
    ctx = make_context(model, ds)
    idx = ds.test_idx[:N_SAMPLES]
    x = torch.as_tensor(ds.X[idx])
    y = torch.as_tensor(ds.y[idx])
    return ctx, x, y, note


def bare_call(method: str, ctx, x: torch.Tensor, y: torch.Tensor):
    """The hand-written captum / zennit call with our default parameters, as a closure ``() -> tensor``.

    What a user would prepare once (the target, noise sigma, feature mask, CAM layer, box bounds) is
    computed here, outside the timed region. Returns ``(fn, note)``.
    """
    p = EXPLAINERS.get(method).params_for(ctx.modality)
    m = ctx.forward  # the model itself (logit output)
    t = torch.zeros_like(y) if ctx.n_outputs == 1 else y  # a single-logit model explains its one output
    note = ""
    if method == "saliency":
        return lambda: Saliency(m).attribute(x, target=t, abs=False), note
    if method == "input_x_gradient":
        return lambda: InputXGradient(m).attribute(x, target=t), note
    if method == "guided_backprop":
        return lambda: GuidedBackprop(m).attribute(x, target=t), note
    if method == "deconvolution":
        return lambda: Deconvolution(m).attribute(x, target=t), note
    if method == "integrated_gradients":
        assert p["baseline"] == "zero"
        return (lambda: IntegratedGradients(m).attribute(
            x, baselines=torch.zeros_like(x), target=t, n_steps=p["n_steps"], method=p["method"],
            internal_batch_size=p["internal_batch_size"], return_convergence_delta=True)[0],
            "ours: +2 forwards (completeness error)")
    if method == "deeplift":
        assert p["baseline"] == "zero"
        use_rescale_rule_for_exp()  # as xai_core's deeplift does: Exp gets captum's rescale rule
        return lambda: DeepLift(m, multiply_by_inputs=True).attribute(x, baselines=torch.zeros_like(x), target=t), note
    if method in ("smoothgrad", "vargrad"):
        sigma = float(p["noise_level"] * (ctx.high.max() - ctx.low.min()))
        note = "ours draws each sample's noise from its own stream (explainers/seeding.py): values differ"
        if method == "vargrad":  # ours: also a float64 two-pass variance
            note += "; and takes a float64 two-pass variance"

        def nt():
            torch.manual_seed(ctx.seed)
            return NoiseTunnel(Saliency(m)).attribute(
                x, nt_type=method, nt_samples=p["nt_samples"], stdevs=sigma, target=t,
                nt_samples_batch_size=p["nt_samples_batch_size"], abs=False)
        return nt, note
    if method == "gradient_shap":
        note = "ours draws each sample's baselines, path points and noise from its own stream: values differ"

        def gs():
            torch.manual_seed(ctx.seed)
            return GradientShap(m, multiply_by_inputs=True).attribute(
                x, baselines=ctx.baseline_pool, target=t, n_samples=p["n_samples"], stdevs=p["stdevs"])
        return gs, note
    if method == "occlusion":
        c, w, s = ctx.input_shape[0], p["window"], p["stride"]
        win, strides = {"image": ((c, w, w), (c, s, s)), "sequence": ((c, w), (c, s)),
                        "expression": ((w,), (s,))}[ctx.modality]
        return lambda: Occlusion(m).attribute(x, sliding_window_shapes=win, strides=strides, baselines=0.0,
                                              target=t, perturbations_per_eval=p["perturbations_per_eval"]), note
    if method in ("lime", "kernel_shap"):
        mask_params = {k: v for k, v in p.items() if k not in ("n_samples", "perturbations_per_eval", "surrogate")}
        t0 = time.perf_counter()
        mask = feature_mask(ctx, x, mask_params)  # outside the timed region; ours builds it inside
        first_s = time.perf_counter() - t0
        mask_s = median_time(lambda: feature_mask(ctx, x, mask_params), 3)
        note = f"ours: one seeded call per sample (values differ), and builds the feature mask inside: {mask_s:.2g} s"
        if first_s > 2 * mask_s + 0.01:  # expression: k-means gene groups, cached in the context
            note += f" ({first_s:.2g} s on the context's first call: k-means gene groups, then cached)"

        def surrogate():
            torch.manual_seed(ctx.seed)
            algo = Lime(m, interpretable_model=SkLearnRidge(alpha=1.0)) if method == "lime" else KernelShap(m)
            return algo.attribute(x, baselines=0.0, target=t, feature_mask=mask, n_samples=p["n_samples"],
                                  perturbations_per_eval=p["perturbations_per_eval"])
        return surrogate, note
    if method in ("gradcam", "guided_gradcam"):
        layer = cam_layer(ctx.model)  # a user picks the layer by hand
        mode = "bilinear" if ctx.modality == "image" else "linear"
        if method == "guided_gradcam":
            return lambda: GuidedGradCam(m, layer).attribute(x, target=t, interpolate_mode=mode), note
        return lambda: F.interpolate(LayerGradCam(m, layer).attribute(x, target=t, relu_attributions=p["relu"]),
                                     size=x.shape[2:], mode=mode, align_corners=False), note
    if method in LRP:
        assert p["init"] == "output"
        kw = {k: v for k, v in p.items() if k != "init"}
        if method == "lrp_epsilon_gamma_box":
            kw |= {"low": ctx.low.expand_as(x).contiguous(), "high": ctx.high.expand_as(x).contiguous()}

        def lrp():
            composite = LRP[method](canonizers=[SequentialMergeBatchNorm()], **kw)
            with Gradient(model=m, composite=composite) as attributor:
                _, rel = attributor(x, lambda out: torch.zeros_like(out).scatter_(1, t[:, None], 1.0) * out)
            return rel
        return lrp, note
    raise KeyError(f"no bare call for {method}")


def median_time(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def round_times(ours, bare, inner: int, flip: bool) -> dict[str, list[float]]:
    """One round: ``inner`` calls of each, interleaved call by call (ABAB..., BABA... when ``flip``),
    so that load from other processes hits both alike. Seconds of every call, per side."""
    times = {"ours": [], "bare": []}
    pair = [("ours", ours), ("bare", bare)]
    for _ in range(inner):
        for key, fn in (pair[::-1] if flip else pair):
            if fn is not None:
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
    return times


def same(a: torch.Tensor, b: torch.Tensor) -> str:
    b = b.expand_as(a)
    scale = float(b.abs().max()) or 1.0
    err = float((a - b).abs().max()) / scale
    return "yes" if err <= 1e-4 else f"no ({err:.1e})"


def bench(method: str, ctx, x, y, repeats: int) -> dict:
    def ours():
        return explain(ctx, x, y, method, explain_batch=N_SAMPLES).attributions

    bare, note = (None, "no bare call") if method in NO_BARE else bare_call(method, ctx, x, y)
    # warm-up, whose outputs serve the "same" check: numpy is seeded too, since captum's GradientShap
    # draws its path points and baselines from numpy's global generator
    np.random.seed(0)
    t0 = time.perf_counter()
    a = ours()
    first = time.perf_counter() - t0
    row = {"method": method, "note": note, "bare": None, "ratio": None, "same": ""}
    if bare is not None:
        np.random.seed(0)
        t0 = time.perf_counter()
        b = bare()
        first = min(first, time.perf_counter() - t0)
        row["same"] = same(a.detach(), b.detach())
    inner = max(1, math.ceil(MIN_MEASURE_S / max(first, 1e-6)))
    times = {"ours": [], "bare": []}
    for r in range(repeats):
        for key, ts in round_times(ours, bare, inner, flip=r % 2 == 1).items():
            times[key] += ts
    row["ours"] = statistics.median(times["ours"])
    if bare is not None:
        row["bare"] = statistics.median(times["bare"])
        row["ratio"] = row["ours"] / row["bare"]
    return row


def table(rows: list[dict]) -> str:
    lines = ["| method | ours median (s) | bare median (s) | ratio | same | note |",
             "|---|---:|---:|---:|---|---|"]
    for r in rows:
        bare = f"{r['bare']:.4g}" if r["bare"] is not None else "—"
        ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "—"
        flag = " **>1.05**" if r["ratio"] is not None and r["ratio"] > 1.05 else ""
        lines.append(f"| {r['method']} | {r['ours']:.4g} | {bare} | {ratio}{flag} | {r['same']} | {r['note']} |")
    return "\n".join(lines)


def geomean(rows: list[dict]) -> float:
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    return math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modalities", default=",".join(DATA), help="comma-separated subset of " + ", ".join(DATA))
    ap.add_argument("--methods", default="all", help="comma-separated method names (default: all applicable)")
    ap.add_argument("--repeats", type=int, default=None, help="timed rounds per method (default 5, 2 with --quick)")
    ap.add_argument("--quick", action="store_true", help="2 rounds and no occlusion/LIME/KernelSHAP on images")
    args = ap.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")  # hooks / requires_grad notices
    print(f"# explainer overhead: ours vs bare library call, {N_SAMPLES} samples, {repeats} rounds, "
          f"{datetime.date.today()}")
    print(f"# {platform.platform()}, {platform.processor() or platform.machine()}, nproc={os.cpu_count()}, "
          f"torch threads={torch.get_num_threads()}, torch {torch.__version__}, captum {captum.__version__}, "
          f"zennit {version('zennit')}, python {platform.python_version()}")
    summary = {}
    for modality in [m.strip() for m in args.modalities.split(",") if m.strip()]:
        ctx, x, y, note = setup(modality)
        valid = applicable_methods(ctx)
        asked = valid if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
        methods = [m for m in asked if m in valid]
        if len(methods) < len(asked):
            print(f"(skipped on {modality}, not applicable: {', '.join(m for m in asked if m not in valid)})")
        if args.quick and modality == "image":
            methods = [m for m in methods if m not in SLOW_ON_IMAGES]
        print(f"\n## {modality}: {DATA[modality]}, input {tuple(x.shape)}, {note}\n", flush=True)
        rows = []
        for method in methods:
            rows.append(bench(method, ctx, x, y, repeats))
            r = rows[-1]
            print(f"  {method:<30} ours {r['ours']:.4g} s, bare {r['bare'] or float('nan'):.4g} s, "
                  f"ratio {r['ratio'] or float('nan'):.3f}", file=sys.stderr, flush=True)
        print(table(rows))
        summary[modality] = geomean(rows)
        print(f"\ngeometric-mean ratio ({modality}): {summary[modality]:.3f}", flush=True)
    print("\n## geometric-mean ratio per modality\n")
    for modality, g in summary.items():
        print(f"- {modality}: {g:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
