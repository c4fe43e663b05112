"""Adaptive evaluation against a fixed-n run of the same grid, side by side in one run (issue 13).

1. Speed: ``evaluate --until decided --budget B`` and ``evaluate --n FIXED`` on the same dataset, methods and
   metrics, each as its own process with a fresh results store (neither reuses the other's cells), on
   ``--threads`` torch threads: wall-clock, passes, why it stopped, samples, top 3.
2. Same answer (``--seeds S --reference-n N``; heavy): per seed, the adaptive run's top 3 against a fixed n = N
   run's top 3 (each in a fresh store), counted over the seeds. The seed changes the methods' and metrics' random
   draws; the samples are the data's own order in both.

    python benchmarks/decisive.py                                      # grain, all methods, all metrics
    python benchmarks/decisive.py --dataset simu-small --fixed-n 16 --budget 2m
    python benchmarks/decisive.py --seeds 10 --reference-n 64 --skip-fixed   # the agreement check (hours on 2 cores)
    python benchmarks/decisive.py --seeds 10 --reference-n 64 --skip-fixed --shared-reference   # its references share
                                                                             # the seed-free cells
    python benchmarks/decisive.py ... --only references --threads 1 --work W   # the references alone (untimed), then
    python benchmarks/decisive.py ... --resume --work W                        # the timed adaptive runs, on a quiet
                                                                               # machine, reading the references back

Prints a Markdown table and writes ``WORK/decisive.json``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def evaluate(work: Path, name: str, common: list[str], extra: list[str], threads: int,
             store: Path | None = None, resume: bool = False) -> dict:
    """One ``python -m xai_core evaluate`` in its own process and fresh store (or in ``store``, kept as it is);
    what it took and what it found. ``resume``: a run of the same command that finished in ``work`` before is
    read back (its wall-clock is the one measured then), not run again."""
    out = work / name
    saved = work / f"{name}.row.json"
    if resume and saved.is_file() and (out / "ranking.csv").is_file():
        row = json.loads(saved.read_text())
        if row.get("args") == [*common, *extra]:
            return {**row, "reused": True}
    if store is None:
        store = work / f"{name}.sqlite"
        for p in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
            p.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "xai_core", "evaluate", *common, *extra, "--store", str(store), "--out", str(out),
           "--yes"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (work / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"{name} failed (exit {proc.returncode}): {' | '.join(tail)}; log: {work / name}.log")
    ranking = pd.read_csv(out / "ranking.csv")
    row = {"run": name, "command": " ".join(cmd[2:]), "wall_s": round(wall, 1),
           "top3": list(ranking["method"].head(3)), "leader_p_rank_1": float(ranking["p_rank_1"].max())}
    decision = out / "decision.json"
    if decision.is_file():
        d = json.loads(decision.read_text())
        row.update(stopped_because=d["stopped_because"], samples=d["samples"], passes=d["passes"],
                   rounds=len(d["rounds"]), raced_out=[r["method"] for r in d["raced_out"]], sentence=d["sentence"])
    else:
        m = re.search(r"about ([\d,]+) forward and ([\d,]+) backward passes", proc.stderr)
        passes = sum(int(g.replace(",", "")) for g in m.groups()) if m else float("nan")
        n = re.search(r"on (\d+) samples of", proc.stderr)
        row.update(stopped_because="fixed n", samples=int(n.group(1)) if n else None, passes=passes, rounds=None,
                   raced_out=[], sentence="")
    saved.write_text(json.dumps({**row, "args": [*common, *extra], "threads": threads}, indent=2))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="grain")
    ap.add_argument("--methods", default="all")
    ap.add_argument("--metrics", default="all", help="the ranking metric set (default: every applicable metric)")
    ap.add_argument("--fixed-n", type=int, default=16, help="samples of today's fixed-n run (issue 13: 16)")
    ap.add_argument("--budget", default="5m", help="the adaptive run's --budget")
    ap.add_argument("--cap", type=int, default=64, help="the adaptive run's cap (--n)")
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=0, help="seeds of the agreement check (0: skip it)")
    ap.add_argument("--reference-n", type=int, default=64, help="samples of the agreement check's fixed runs")
    ap.add_argument("--skip-fixed", action="store_true", help="skip the side-by-side fixed-n run")
    ap.add_argument("--shared-reference", action="store_true",
                    help="the agreement check's fixed runs share one store: the cells that depend on no seed are "
                         "computed once, only the seeded methods' and metrics' cells per seed (their times are then "
                         "not comparable; the adaptive runs keep fresh stores)")
    ap.add_argument("--only", choices=["all", "references"], default="all",
                    help="references: only the agreement check's fixed runs (untimed, so they may share the machine; "
                         "a later --resume run reads them back and times the adaptive runs alone)")
    ap.add_argument("--resume", action="store_true",
                    help="read back the runs of the same command that finished in --work instead of running them")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", help="folder for stores, outputs and logs (default: a new temporary folder)")
    args = ap.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="decisive-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.shared_reference and not args.resume:  # fresh for this invocation, shared by its reference runs
        for p in (work / "reference-shared.sqlite", work / "reference-shared.sqlite-wal",
                  work / "reference-shared.sqlite-shm"):
            p.unlink(missing_ok=True)
    common = ["--dataset", args.dataset, "--methods", args.methods, "--metrics", args.metrics]
    adaptive = ["--until", "decided", "--budget", args.budget, "--n", str(args.cap), "--confidence",
                str(args.confidence), "--top-k", str(args.top_k)]
    print(f"# decisive: adaptive vs fixed-n evaluation, {datetime.date.today()}")
    print(f"# {platform.platform()}, nproc={os.cpu_count()}, load {os.getloadavg()[0]:.1f}, threads {args.threads}, "
          f"work {work}")
    refs_only = args.only == "references"
    rows = [] if refs_only else [evaluate(work, "adaptive", common, adaptive + ["--seed", "0"], args.threads,
                                          resume=args.resume)]
    if not args.skip_fixed and not refs_only:
        rows.append(evaluate(work, f"fixed-n{args.fixed_n}", common, ["--n", str(args.fixed_n), "--seed", "0"],
                             args.threads, resume=args.resume))
    if not refs_only:
        print("\n| run | wall-clock | passes | stopped because | samples | top 3 | leader's P(rank 1) | raced out |")
        print("|---|---:|---:|---|---:|---|---:|---|")
    for r in rows:
        print(f"| {r['run']} | {r['wall_s'] / 60:.1f} min | {r['passes']:,.0f} | {r['stopped_because']} | "
              f"{r['samples']} | {', '.join(r['top3'])} | {r['leader_p_rank_1']:.2f} | "
              f"{', '.join(r['raced_out']) or '-'} |")
    if rows:
        print(f"\nadaptive: {rows[0]['sentence']}")
    agreement = []
    for seed in range(args.seeds):
        ref = evaluate(work, f"reference-n{args.reference_n}-seed{seed}", common,
                       ["--n", str(args.reference_n), "--seed", str(seed)], args.threads,
                       store=work / "reference-shared.sqlite" if args.shared_reference else None, resume=args.resume)
        if refs_only:
            print(f"seed {seed}: n={args.reference_n} {ref['top3']} ({ref['wall_s'] / 60:.1f} min)", flush=True)
            continue
        a = rows[0] if seed == 0 else evaluate(work, f"adaptive-seed{seed}", common,
                                               adaptive + ["--seed", str(seed)], args.threads, resume=args.resume)
        same = set(a["top3"]) == set(ref["top3"])
        agreement.append({"seed": seed, "adaptive": a, "reference": ref, "same_top3": same,
                          "same_order": a["top3"] == ref["top3"]})
        print(f"seed {seed}: adaptive top 3 {a['top3']} ({a['stopped_because']}, {a['samples']} samples, "
              f"{a['wall_s'] / 60:.1f} min) vs n={args.reference_n} {ref['top3']}: {'same' if same else 'DIFFERENT'}")
    if refs_only:
        print("references done; time the adaptive runs with the same command, --only all --resume")
    if agreement:
        print(f"\n| seed | n = {args.reference_n} top 3 | adaptive top 3 | samples | wall-clock | stopped because "
              "| same set | same order |\n|---:|---|---|---:|---:|---|---|---|")
        for r in agreement:
            a = r["adaptive"]
            print(f"| {r['seed']} | {', '.join(r['reference']['top3'])} | {', '.join(a['top3'])} | {a['samples']} | "
                  f"{a['wall_s'] / 60:.1f} min | {a['stopped_because']} | {'yes' if r['same_top3'] else 'NO'} | "
                  f"{'yes' if r['same_order'] else 'no'} |")
        k = sum(r["same_top3"] for r in agreement)
        print(f"\nsame top 3 (as a set) in {k} of {len(agreement)} seeds; same order in "
              f"{sum(r['same_order'] for r in agreement)}")
    (work / "decisive.json").write_text(json.dumps({"args": vars(args), "side_by_side": rows,
                                                    "agreement": agreement}, indent=2))
    print(f"wrote {work / 'decisive.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
