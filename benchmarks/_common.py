"""What the metric benchmarks share: interleaved timing with medians, and the command line."""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import torch


def interleaved(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds per call of ``a`` and ``b``, called alternately (AB, then BA, ...) ``repeats`` times."""
    times: tuple[list[float], list[float]] = ([], [])
    for r in range(repeats):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            (a if side == 0 else b)()
            times[side].append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def parse_args(doc: str, argv: list[str] | None, quick: int, full: int, title: str) -> argparse.Namespace:
    """--modalities, --metrics, --repeats, --quick; sets 2 torch threads and prints the run's header."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modalities", default="image,expression,sequence")
    ap.add_argument("--metrics", default="all")
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    args.repeats = args.repeats or (quick if args.quick else full)
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    print(f"# {title}, R = {args.repeats}, {datetime.date.today()}")
    print(f"# {platform.platform()}, nproc={os.cpu_count()}, torch {torch.__version__}, threads 2")
    return args
