"""Gene lists from the user's side files: markers (CSV ``class,gene`` or GMT) as weak ground truth and
gene sets (GMT) as ``feature_groups``; also the text readers shared with the table reader.

The policies are stated in ``load_expression``'s module doc.
"""
from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import GroundTruth
from .user_common import UserDataError

MARKER_GENE_HEADERS = {"gene", "genes", "marker", "markers", "symbol", "gene_symbol", "gene_name"}


def open_text(path: Path):
    """A text file (UTF-8, BOM dropped), gunzipped when its name ends in ``.gz``."""
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig", newline="")


def split_fields(line: str, sep: str) -> list[str]:
    """The fields of one line split at ``sep`` (CSV quoting honoured when the line has quotes)."""
    line = line.rstrip("\r\n")
    if '"' in line:
        return next(csv.reader([line], delimiter=sep))
    return line.split(sep)


def _read_gene_lists(path: str | Path, what: str, classes: Sequence[str] | None = None
                     ) -> dict[str, list[str]]:
    """Set name -> genes (ordered, unique) from a GMT file or a CSV/TSV ``class,gene`` (header optional)."""
    path = Path(path)
    if not path.is_file():
        raise UserDataError(path, f"no such {what} file", f"check the {what} path")
    out: dict[str, list[str]] = {}
    gmt = path.suffix.lower() == ".gmt"
    with open_text(path) as fh:
        lines = [(i, ln) for i, ln in enumerate(fh, start=1) if ln.strip()]
    sep = "\t" if gmt or (lines and "\t" in lines[0][1]) else ","
    for k, (lineno, line) in enumerate(lines):
        f = [x.strip() for x in split_fields(line, sep)]
        if k == 0 and not gmt and len(f) >= 2 and f[1].lower() in MARKER_GENE_HEADERS and \
                (classes is None or f[0] not in classes):
            continue  # a header row
        genes = [g for g in (f[2:] if gmt else f[1:]) if g]
        if not f[0] or not genes:
            raise UserDataError(path, f"line {lineno} has no " + ("set name" if not f[0] else "gene"),
                                "write one 'name<TAB>description<TAB>gene...' per line" if gmt
                                else "write one 'class,gene' per line")
        got = out.setdefault(f[0], [])
        got.extend(g for g in genes if g not in got)
    if not out:
        raise UserDataError(path, f"the {what} file is empty", "give one set of genes per line")
    return out


def marker_truth(path: str | Path, classes: list[str], genes: list[str]
                 ) -> tuple[GroundTruth, dict[str, Any]]:
    """Marker genes per class as weak ``GroundTruth``, plus what was kept and dropped."""
    sets = _read_gene_lists(path, "markers", classes)
    unknown = [c for c in sets if c not in classes]
    if unknown:
        raise UserDataError(path, f"marker class {unknown[0]!r} is not a class of the data",
                            f"use the class names of the labels: {', '.join(map(repr, classes))}")
    index = {g: i for i, g in enumerate(genes)}
    fs = {c: np.array([index[g] for g in gs if g in index], dtype=np.int64) for c, gs in sets.items()}
    dropped = {c: [g for g in gs if g not in index] for c, gs in sets.items()}
    if not any(len(v) for v in fs.values()):
        raise UserDataError(path, "none of the marker genes is among the data's genes "
                            f"(e.g. {next(iter(sets.values()))[0]!r} vs {genes[0]!r})",
                            "use the same gene identifiers as the data (symbols vs Ensembl ids)")
    info = {"file": str(path), "present": {c: [genes[i] for i in v] for c, v in fs.items()},
            "dropped": {c: d for c, d in dropped.items() if d}}
    gt = GroundTruth(feature_sets=fs, strength="weak",
                     note="the user's marker genes (weak ground truth: curated, not causal truth)")
    return gt, info


def gene_groups(path: str | Path, genes: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Each gene's gene-set index (first set holding it; -1 for none), plus a summary."""
    sets = _read_gene_lists(path, "gene_sets")
    index = {g: i for i, g in enumerate(genes)}
    groups = np.full(len(genes), -1, dtype=np.int64)
    sizes = []
    for k, gs in enumerate(sets.values()):
        hit = [index[g] for g in gs if g in index]
        sizes.append(len(hit))
        hit = [i for i in hit if groups[i] < 0]
        groups[hit] = k
    if not sum(sizes):
        raise UserDataError(path, "none of the genes of the gene sets is among the data's genes",
                            "use the same gene identifiers as the data (symbols vs Ensembl ids)")
    return groups, {"file": str(path), "names": list(sets), "genes_present": sizes,
                    "genes_in_no_set": int((groups < 0).sum()),
                    "policy": "each gene belongs to the first set (file order) that holds it"}
