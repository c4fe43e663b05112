"""Command line for datasets: ``datasets`` (list, ``--remove``) and ``import`` (a user's own files).

``python -m xai_core import FILE_OR_FOLDER --name NAME [--kind K] [--format F] [--label-key KEY]
[--labels CSV] [--markers FILE] [--gene-sets GMT] [--masks DIR] [--motifs IDS|FILE] [--option KEY=VALUE]``
reads the file with the format's importer (``xai_core/data/importers.py``), shows what it found (shape,
classes, split, the orientation it detected, the ground truth) and registers it; afterwards
``--dataset NAME`` works in ``train``, ``explain``, ``evaluate`` and ``rank``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .cli_common import parse_sets
from .modalities import MODALITIES
from .errors import XaiError

# Flags shared by several formats -> the option names formats use for them, in order of preference.
_FLAG_OPTIONS: dict[str, tuple[str, ...]] = {
    "label_key": ("label_key", "label_column"),
    "labels": ("labels",),
    "markers": ("markers",),
    "gene_sets": ("gene_sets",),
    "masks": ("masks",),
}


def cmd_datasets(args) -> int:
    from .data import list_datasets, remove_user_dataset  # noqa: PLC0415 - scipy (xai_core.data): kept out of the CLI's start-up

    if args.remove:
        remove_user_dataset(args.remove)
        print(f"removed your dataset '{args.remove}'")
        return 0
    rows = list_datasets()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    w = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{w}}  {r['modality']:<10}  {r['size']:<5}  {r['description']}")
    return 0


def import_options(args, imp) -> dict[str, Any]:
    """The importer's options from the CLI flags; a flag the format does not take is an error."""
    opts: dict[str, Any] = {}
    for flag, names in _FLAG_OPTIONS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        name = next((n for n in names if n in imp.options), None)
        if name is None:
            raise XaiError(f"--{flag.replace('_', '-')} does not apply to format '{imp.name}' ({imp.kind}); "
                           f"its options: {', '.join(sorted(imp.options)) or 'none'}")
        opts[name] = value
    if args.motifs is not None:  # a sites table if it is a file, else JASPAR matrix ids
        key = "motifs" if Path(args.motifs).exists() else "jaspar"
        if key not in imp.options:
            raise XaiError(f"--motifs does not apply to format '{imp.name}' ({imp.kind}); "
                           f"its options: {', '.join(sorted(imp.options)) or 'none'}")
        opts[key] = args.motifs
    for key, value in parse_sets(args.option, "--option").items():
        if key in opts:
            raise XaiError(f"option '{key}' is given twice (as a flag and as --option)")
        opts[key] = value
    unknown = set(opts) - set(imp.options)
    if unknown:
        raise XaiError(f"format '{imp.name}' has no option(s) {sorted(unknown)}; valid: "
                       f"{', '.join(sorted(imp.options))}")
    return opts


def describe(ds, entry: dict[str, Any]) -> list[str]:
    counts = np.bincount(ds.y, minlength=ds.n_classes)
    lines = [f"{ds.name}: {entry['format']} ({ds.modality}), {len(ds)} samples x "
             f"{' x '.join(map(str, ds.input_shape))}",
             "classes: " + ", ".join(f"{c} ({n})" for c, n in zip(ds.class_names, counts)),
             f"split: {len(ds.train_idx)} train / {len(ds.test_idx)} test ({ds.params.get('split', 'given')}"
             + (f", seed {ds.params['split_seed']}" if "split_seed" in ds.params else "") + ")"]
    for key in ("orientation", "values", "resize", "fit", "length_policy", "n_policy", "standardization"):
        if key in ds.params:
            lines.append(f"{key}: {ds.params[key]}")
    gt = ds.ground_truth
    if gt is None:
        lines.append("ground truth: none (localisation metrics will be skipped)")
    else:
        what = [k for k, v in (("marker genes", gt.feature_sets), ("masks", gt.masks), ("motif sites", gt.pwm))
                if v is not None and (not isinstance(v, dict) or len(v))]
        lines.append(f"ground truth: {', '.join(what) or 'none'} ({gt.strength})")
    if ds.feature_groups is not None:
        lines.append(f"gene sets: {int(ds.feature_groups.max()) + 1} groups")
    return lines


def cmd_import(args) -> int:
    from .data import detect_format, import_data  # noqa: PLC0415 - scipy (xai_core.data): kept out of the CLI's start-up
    from .data.user_common import check_name  # noqa: PLC0415 - scipy (xai_core.data): kept out of the CLI's start-up

    check_name(args.name)
    imp = detect_format(args.path, args.kind, args.format)
    opts = import_options(args, imp)
    ds, entry, reused = import_data(args.path, args.name, kind=imp.kind, fmt=imp.name, **opts)
    for line in describe(ds, entry):
        print(line)
    state = "unchanged since the last import; kept" if reused else "imported"
    print(f"{state} as '{ds.name}' [fingerprint {entry['fingerprint']}]. Next: "
          f"python -m xai_core train --dataset {ds.name}")
    return 0


def add_parsers(sub) -> None:
    d = sub.add_parser("datasets", help="list the bundled datasets and your own; --remove NAME removes one of yours")
    d.add_argument("--json", action="store_true")
    d.add_argument("--remove", metavar="NAME", help="remove one of your imported datasets")
    d.set_defaults(fn=cmd_datasets)
    i = sub.add_parser("import", help="import your own data (h5ad, CSV/TSV, image folder, FASTA) as a dataset")
    i.add_argument("path", help="a file or folder")
    i.add_argument("--name", required=True, help="the dataset's name in every command and page")
    i.add_argument("--kind", choices=list(MODALITIES), help="default: inferred from the file")
    i.add_argument("--format", help="the importer (default: inferred); see the list in docs/user_data.md")
    i.add_argument("--label-key", dest="label_key", help="obs column (h5ad) or label column (CSV/TSV)")
    i.add_argument("--labels", help="CSV id,label[,split] when labels are not in the data file")
    i.add_argument("--markers", help="marker genes per class: CSV class,gene or GMT")
    i.add_argument("--gene-sets", dest="gene_sets", help="gene sets (GMT) for pathway grouping")
    i.add_argument("--masks", help="folder of binary PNG masks with the images' file names")
    i.add_argument("--motifs", help="motif sites table (id,start,end,name) or JASPAR ids (MA0079.3,MA0062.2)")
    i.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="any other option of the format, e.g. size=64, hvg=2000, length_policy=pad")
    i.set_defaults(fn=cmd_import)
