"""``python -m xai_core report``: the one-click report, headless: what the results store holds for one dataset and
model, as one self-contained HTML file (``--out``) and optionally a PDF of it (``--pdf``, Debian chromium). The maps
are drawn with the Explanations page's choices, given as flags (``--samples``, ``--pooling``, ``--normalisation`` /
``--scale``, ``--aggregate``, ``--dna-view``, ``--genes-per-map``, ``--opacity``; docs/report.md).

It reads the store only (``xai_core.report``): nothing is computed. Every flag is checked before any work; when the
store holds nothing for the selection the command says which command computes it and exits 1. The engine (torch,
the store) loads only when the command runs, so registering it keeps every other command's start as light as before.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .cli_common import check_out_path, float_range, int_range, name_list, seed_int
from .errors import XaiError

SECTION_NAMES = ("data", "explanations", "genes", "metrics", "ranking", "provenance")  # = xai_core.report.SECTIONS
NOTHING = 1  # exit code when the store holds nothing for the selection


def _samples(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = list(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
    if not names:
        raise XaiError("--samples names no sample; give a comma list of sample ids, e.g. --samples grain:1,grain:8")
    return names


def cmd_report(args) -> int:
    from .data import DATASETS  # noqa: PLC0415 - scipy (xai_core.data): kept out of the CLI's start-up
    from .explainers import EXPLAINERS  # noqa: PLC0415 - torch, captum (xai_core.explainers): kept out of the CLI's start-up
    from .metrics import METRICS  # noqa: PLC0415 - torch (xai_core.metrics): kept out of the CLI's start-up
    from .explainers.postprocess import NO_NORMALISATION, NORMALISATIONS, POOLINGS  # noqa: PLC0415 - torch (xai_core.explainers): kept out of the CLI's start-up
    from .report import DNA_VIEWS, SECTIONS, Selection, build_report, chromium, missing_message, write_pdf  # noqa: PLC0415 - torch, plotly (xai_core.report): kept out of the CLI's start-up
    from .runner import EvalConfig, Evaluation  # noqa: PLC0415 - torch (xai_core.runner): kept out of the CLI's start-up
    from .store import ResultStore, default_store_path  # noqa: PLC0415 - pandas (xai_core.store): kept out of the CLI's start-up

    # every flag before any work
    DATASETS.get(args.dataset)
    methods = None if args.methods is None else name_list(args.methods, "--methods", EXPLAINERS.names(), "method")
    metrics = None if args.metrics is None else name_list(args.metrics, "--metrics", METRICS.names(), "metric")
    methods, metrics = (None if v == "all" else v for v in (methods, metrics))
    sections = name_list(args.sections, "--sections", SECTIONS, "section")
    sections = tuple(SECTIONS) if sections == "all" else tuple(s for s in SECTIONS if s in sections)
    samples = _samples(args.samples)
    selection = Selection(methods=methods, metrics=metrics, samples=samples, sections=sections, pooling=args.pooling,
                          normalisation=args.normalisation, dna_view=args.dna_view,
                          genes_per_map=args.genes_per_map, aggregate=args.aggregate, opacity=args.opacity)
    for flag, value, valid in (("--pooling", args.pooling, POOLINGS.names()),
                               ("--normalisation", args.normalisation, [NO_NORMALISATION, *NORMALISATIONS.names()]),
                               ("--dna-view", args.dna_view, list(DNA_VIEWS))):
        if value not in valid:
            raise XaiError(f"{flag}: unknown choice '{value}'; valid choices: {', '.join(valid)}")
    selection.check()
    check_out_path(args.out, "--out", kind="file")
    check_out_path(args.pdf, "--pdf", kind="file")
    if args.pdf and chromium() is None:
        raise XaiError(f"--pdf: {missing_message()}")
    check_out_path(args.store, "--store", kind="file")
    store_path = Path(args.store) if args.store else default_store_path()
    compute = (f"python -m xai_core evaluate --dataset {args.dataset}"
               + (f" --model {args.model}" if args.model else "")
               + f" --methods {','.join(methods or ['all'])} --metrics {','.join(metrics or ['all'])}"
               + f" --seed {args.seed} --out runs/{args.dataset}-eval")
    if not store_path.exists():
        print(f"error: no results store at {store_path}, so nothing to report; compute results first: {compute}",
              file=sys.stderr)
        return NOTHING
    with ResultStore(store_path) as store:
        ev = Evaluation(EvalConfig(dataset=args.dataset, model=args.model, seed=args.seed, output=args.output), store)
        report, html = build_report(ev, selection)
    if not report.has_results():
        print(f"error: the results store {store_path} holds no scores or maps of {args.dataset} with model "
              f"{ev.model_name} (checkpoint {ev.model_hash}) for this selection; compute them first: {compute}",
              file=sys.stderr)
        return NOTHING
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB; {len(report.missing)} item(s) not computed, listed in it)")
    if args.pdf:
        pdf = write_pdf(out, args.pdf)
        print(f"wrote {pdf} ({pdf.stat().st_size / 1e6:.1f} MB)")
    return 0


def add_parser(sub) -> None:
    """Register the ``report`` subcommand."""
    r = sub.add_parser("report", help="write one self-contained HTML report (and a PDF) of what the results store "
                                      "holds for a dataset and model; computes nothing")
    r.add_argument("--dataset", required=True)
    r.add_argument("--model", help="an architecture with a checkpoint, a model name of yours, or a model file "
                                   "(default: the dataset's default model)")
    r.add_argument("--methods", help="comma list (default: every method with stored results)")
    r.add_argument("--metrics", help="comma list (default: every metric with stored scores)")
    r.add_argument("--samples", help="sample ids whose maps are drawn, in this order, comma list, at most 8 (default: "
                                     "the first 3 scored); list them with explain --list-samples")
    r.add_argument("--sections", default="all", help=f"'all' or a comma list of {', '.join(SECTION_NAMES)}")
    # how the maps are drawn: the Explanations page's choices, with its defaults
    r.add_argument("--pooling", default="sum", help="image maps: channel pooling, sum (default), mean, max or abs")
    r.add_argument("--normalisation", "--scale", dest="normalisation", default="per_map_p99",
                   help="per_map_p99 (default), per_map_max, dataset_max, dataset_p99 or none (the maps as stored)")
    r.add_argument("--dna-view", dest="dna_view", default="observed",
                   help="sequence logos: observed (attribution x input, default) or corrected (all four nucleotides, "
                        "gradient-corrected)")
    r.add_argument("--genes-per-map", dest="genes_per_map", type=int_range(5, 40), default=15,
                   help="expression maps: genes drawn per map (5-40, default 15)")
    r.add_argument("--aggregate", action="store_true",
                   help="add the aggregated explanation: the mean of the normalised maps of the chosen methods "
                        "(controls left out)")
    r.add_argument("--opacity", type=float_range(0.2, 1.0), default=0.7,
                   help="image maps: heatmap opacity over the grey image (0.2-1, default 0.7)")
    r.add_argument("--seed", type=seed_int, default=0, help="the seed the results were computed with")
    r.add_argument("--output", choices=["logit", "probability"], default="logit", help="model output explained")
    r.add_argument("--store", help="results database (default: $XAI_CORE_STORE or ~/.cache/xai_core/results.sqlite)")
    r.add_argument("--out", required=True, help="the HTML file to write")
    r.add_argument("--pdf", help="also print the report to this PDF file (needs Debian's chromium)")
    r.set_defaults(fn=cmd_report)
