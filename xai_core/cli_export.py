"""``python -m xai_core export``: stored results written with the data (an AnnData ``.h5ad`` for expression data).

Everything that can be checked without loading the dataset or the model is checked first (the output path,
the dataset's modality, the method names, that a results store exists); the engine is ``xai_core/export.py``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .cli_models import MODEL_SUFFIXES
from .errors import XaiError


def _check_out(out: Path) -> None:
    if out.is_dir():
        raise XaiError(f"--out {out} is a directory; give a file path ending in .h5ad (e.g. {out / 'results.h5ad'})")
    if out.suffix.lower() != ".h5ad":
        raise XaiError(f"--out {out} must end in .h5ad (e.g. {out.with_suffix('.h5ad')})")
    folder = out.parent
    while not folder.exists():  # created at write time: the nearest existing folder must take it
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise XaiError(f"cannot write {out}: {folder} is not a writable folder; pass another --out")


def cmd_export(args) -> int:
    from .explainers import EXPLAINERS  # noqa: PLC0415 - torch, captum (xai_core.explainers): kept out of the CLI's start-up
    from .export import check_exportable, to_anndata  # noqa: PLC0415 - torch, anndata (xai_core.export): CLI start-up
    from .store import default_store_path  # noqa: PLC0415 - pandas (xai_core.store): kept out of the CLI's start-up

    out = Path(args.out)
    _check_out(out)
    check_exportable(args.dataset)
    looks_like_file = args.model and (args.model.lower().endswith(MODEL_SUFFIXES) or "/" in args.model
                                      or "\\" in args.model)
    if looks_like_file and not Path(args.model).is_file():
        raise XaiError(f"--model {args.model}: no such model file; give an existing .safetensors path, or an "
                       f"architecture / model name (see `python -m xai_core models`)")
    for m in (args.methods or "").split(","):
        if m.strip():
            EXPLAINERS.get(m.strip())
    store = Path(args.store) if args.store else default_store_path()
    if not store.is_file():
        raise XaiError(f"nothing stored: no results store at {store}; compute results with `python -m xai_core "
                       f"evaluate --dataset {args.dataset}{f' --model {args.model}' if args.model else ''} --out DIR"
                       f"{f' --store {store}' if args.store else ''}` first")
    out.parent.mkdir(parents=True, exist_ok=True)
    adata = to_anndata(args.dataset, args.model, store=Path(args.store) if args.store else None, methods=args.methods,
                       per_cell=args.per_cell, out=out)
    try:
        xai = adata.uns["xai"]
        methods = list(xai["provenance"]["methods"])
        ranking = xai["ranking"]
        n_var_cols = sum(1 for c in adata.var.columns if str(c).startswith("xai_") and str(c) in xai["columns"]["var"])
        ranked = (f"ranking of {len(ranking['methods'])} methods (best: {ranking['methods'][0]})"
                  if "methods" in ranking else "no ranking (fewer than two methods scored)")
        layers = f", per-cell layers {', '.join(xai['columns']['layers'])}" if args.per_cell else ""
        print(f"wrote {out}: {adata.n_obs} cells x {adata.n_vars} genes; methods {', '.join(methods)} "
              f"({n_var_cols} .var columns); {ranked}{layers}")
        missing = [str(m) for m in xai["missing"]["methods"]]
        if missing:
            print(f"note: nothing stored for {', '.join(missing)}; left out", file=sys.stderr)
    finally:
        if getattr(adata, "isbacked", False):
            adata.file.close()
    return 0


def add_parser(sub) -> None:
    x = sub.add_parser("export", help="write stored attributions, gene scores and the ranking with the data "
                                      "(AnnData .h5ad for expression data)")
    x.add_argument("--dataset", required=True, help="an expression dataset, bundled or imported")
    x.add_argument("--model", help="architecture with a shipped checkpoint, or a .safetensors path (default: the "
                                   "dataset's default model)")
    x.add_argument("--to", choices=["anndata"], default="anndata", help="output format (anndata: an .h5ad file)")
    x.add_argument("--out", required=True, help="the file to write, ending in .h5ad (never your imported file)")
    x.add_argument("--methods", help="comma list (default: every method with stored attributions)")
    x.add_argument("--per-cell", action="store_true",
                   help="also write each cell's attributions as layers xai_<method> (NaN where not explained)")
    x.add_argument("--store", help="results database (default: $XAI_CORE_STORE or ~/.cache/xai_core/results.sqlite)")
    x.set_defaults(fn=cmd_export)
