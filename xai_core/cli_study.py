"""``python -m xai_core study NAME [--quick] [--out DIR] [--set KEY=VALUE] [--compare RESULTS]``: reproduce a source
study, and optionally check its numbers against earlier results (docs/determinism.md)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .cli_common import check_out_path, parse_sets, seed_int
from .errors import UnknownChoice, XaiError
from .progress import Progress


def cmd_study(args) -> int:
    # the studies load torch and captum: only when this command runs, not whenever the CLI parser is built
    from .studies import STUDIES, check_study_options, cli_command, default_out, run_study, study_names  # noqa: PLC0415 - torch, captum (the studies)
    from .determinism import ABS_TOL, REL_TOL, compare_results  # noqa: PLC0415 - torch, as the studies

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
    expected = _read_compare(args.compare, args.name)
    result = run_study(args.name, quick=args.quick, out_dir=args.out, progress=progress, seed=args.seed,
                       command=cli_command(), **options)
    agree = sum(c["verdict"] == "agrees" for c in result.comparisons)
    print(f"{result.title}: {result.mode} run in {result.duration_s:.1f} s; {agree}/{len(result.comparisons)} "
          f"numbers agree with the paper; claims: "
          + (", ".join(f"{c['verdict']}" for c in result.claims) or "none"))
    out = Path(args.out or default_out(args.name, args.quick))
    print(f"results: {out}/results.json and README.md")
    if expected is None:
        return 0
    # what was written, so the comparison sees exactly the JSON a later reader gets
    written = json.loads((out / "results.json").read_text())
    diffs = compare_results(expected, written)
    weights = [(d.get("provenance") or {}).get("trained_weights") or {} for d in (expected, written)]
    other = [m for m in weights[1] if weights[0].get(m) not in (None, weights[1][m])]
    float64 = (written.get("provenance") or {}).get("training_dtype") == "float64"
    if other and diffs and not float64:  # float64 training: a last-bit weight difference moves no number
        print(f"--compare: {len(other)} of {len(weights[1])} trained models have other weights than in "
              f"{args.compare} (this CPU's float kernels round differently): the numbers that pass through training "
              "are not expected to agree (docs/determinism.md)", file=sys.stderr)
    if not diffs:
        print(f"--compare: every number agrees with {args.compare} (relative {REL_TOL:g} or absolute {ABS_TOL:g})")
        return 0
    what = "entry differs" if len(diffs) == 1 else "entries differ"
    print(f"--compare: {len(diffs)} {what} from {args.compare} (numbers beyond relative {REL_TOL:g} and absolute "
          f"{ABS_TOL:g}):", file=sys.stderr)
    for d in diffs[:20]:
        print(f"  {d}", file=sys.stderr)
    if len(diffs) > 20:
        print(f"  ... and {len(diffs) - 20} more", file=sys.stderr)
    return 1


def _read_compare(path: str | None, name: str) -> dict | None:
    """The results ``--compare`` names, read and checked before any work (None without the flag)."""
    if not path:
        return None
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise XaiError(f"--compare {path}: cannot read a results.json there ({type(e).__name__}); give the "
                       f"results.json of an earlier run, e.g. docs/studies/{name}/quick/results.json") from None
    if not isinstance(data, dict) or data.get("study") != name:
        got = data.get("study") if isinstance(data, dict) else None
        raise XaiError(f"--compare {path}: these are results of study {got!r}, not {name!r}; give "
                       f"docs/studies/{name}/quick/results.json or another run of {name}")
    return data


def add_parser(sub) -> None:
    s = sub.add_parser("study", help="reproduce a source study (ig-expression, grain-explainers, dna-consistency)")
    s.add_argument("name", help="study name, or 'list'")
    s.add_argument("--quick", action="store_true", help="the small version (< 2 min; what CI runs)")
    s.add_argument("--out", help="output folder (default docs/studies/NAME, or docs/studies/NAME/quick)")
    s.add_argument("--seed", type=seed_int, default=0)
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="study option, e.g. seeds=3 or datasets='[\"simu1\"]' (see the study's module)")
    s.add_argument("--compare", metavar="RESULTS",
                   help="after the run, compare every number with this results.json (or its folder), e.g. "
                        "docs/studies/NAME/quick/results.json; exit 1 when one differs (docs/determinism.md)")
    s.set_defaults(fn=cmd_study)
