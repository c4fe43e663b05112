"""``python -m xai_core study NAME [--quick] [--out DIR] [--set KEY=VALUE]``: reproduce a source study."""
from __future__ import annotations

import sys
import time

from .cli_common import check_out_path, parse_sets, seed_int
from .errors import UnknownChoice, XaiError
from .progress import Progress


def cmd_study(args) -> int:
    # the studies load torch and captum: only when this command runs, not whenever the CLI parser is built
    from .studies import STUDIES, check_study_options, cli_command, default_out, run_study, study_names  # noqa: PLC0415 - torch, captum (the studies)

    if args.name == "list":
        for n in study_names():
            s = STUDIES.get(n)
            print(f"{n:<18} {s.section:<4} {s.title}")
        return 0
    if args.name not in study_names():
        raise UnknownChoice("study", args.name, study_names())
    t0 = time.perf_counter()
    last = [0.0, ""]

    def progress(e: Progress) -> None:  # every new message; repeats of one at most twice a second
        now, frac, msg = time.perf_counter(), e.fraction, e.message
        if msg != last[1] or now - last[0] > 0.5 or frac >= 1:
            last[0], last[1] = now, msg
            print(f"[{now - t0:7.1f} s] {100 * frac:5.1f}%  {msg}", file=sys.stderr, flush=True)

    options = parse_sets(args.set, "--set")
    try:  # names, kinds and ranges of the options, and the output folder: before any work
        check_study_options(args.name, options)
    except XaiError as e:
        raise XaiError(f"--set: {e}") from None
    check_out_path(args.out, "--out", kind="dir")
    result = run_study(args.name, quick=args.quick, out_dir=args.out, progress=progress, seed=args.seed,
                       command=cli_command(), **options)
    agree = sum(c["verdict"] == "agrees" for c in result.comparisons)
    print(f"{result.title}: {result.mode} run in {result.duration_s:.1f} s; {agree}/{len(result.comparisons)} "
          f"numbers agree with the paper; claims: "
          + (", ".join(f"{c['verdict']}" for c in result.claims) or "none"))
    print(f"results: {(args.out or default_out(args.name, args.quick))}/results.json and README.md")
    return 0


def add_parser(sub) -> None:
    s = sub.add_parser("study", help="reproduce a source study (ig-expression, grain-explainers, dna-consistency)")
    s.add_argument("name", help="study name, or 'list'")
    s.add_argument("--quick", action="store_true", help="the small version (< 2 min; what CI runs)")
    s.add_argument("--out", help="output folder (default docs/studies/NAME, or docs/studies/NAME/quick)")
    s.add_argument("--seed", type=seed_int, default=0)
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="study option, e.g. seeds=3 or datasets='[\"simu1\"]' (see the study's module)")
    s.set_defaults(fn=cmd_study)
