"""CSV/TSV expression tables (``from_table``): cells x genes with a label column, or genes x cells with a
label file; the orientation is detected or given.

The policies are stated in ``load_expression``'s module doc.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import Dataset
from .expression_assemble import assemble, guarded
from .expression_truth import open_text, split_fields
from .user_common import DEFAULT_SEED, DEFAULT_TEST_SIZE, UserDataError, check_unique

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
ID_HEADERS = {"", "id", "ids", "cell", "cells", "cell_id", "sample", "samples", "sample_id", "barcode",
              "barcodes", "obs_names", "index", "name"}
ORIENTATIONS = {"auto": "auto", "cells x genes": "cells x genes", "genes x cells": "genes x cells"}


def _scan_table(path: Path, sep: str | None) -> tuple[str, list[str], list[str], bool]:
    """(sep, header, first field of each data line, header_had_no_corner); refuses ragged lines."""
    with open_text(path) as fh:
        first = fh.readline()
        if not first.strip():
            raise UserDataError(path, "the file is empty (no header line)",
                                "write a header line, then one row per line")
        sep = sep or ("\t" if "\t" in first else ",")
        header, firsts, cornerless = split_fields(first, sep), [], False
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            f = split_fields(line, sep)
            if lineno == 2 and len(f) == len(header) + 1:  # R's write.table: no corner cell in the header
                header, cornerless = ["", *header], True
            if len(f) != len(header):
                raise UserDataError(path, f"line {lineno} has {len(f)} fields but the header has {len(header)}",
                                    "give every row one value per column (look for a missing value or a stray "
                                    f"separator {sep!r})")
            firsts.append(f[0].strip())
    if not firsts:
        raise UserDataError(path, "the file has a header but no rows", "add one row per sample")
    return sep, [h.strip() for h in header], firsts, cornerless


def _read_label_file(path: str | Path) -> tuple[dict[str, str], dict[str, str] | None]:
    """id -> label (and id -> split when the file has a split column) from CSV/TSV ``id,label[,split]``."""
    path = Path(path)
    if not path.is_file():
        raise UserDataError(path, "no such label file", "check the labels path (CSV id,label[,split])")
    with open_text(path) as fh:
        rows = [(i, ln) for i, ln in enumerate(fh, start=1) if ln.strip()]
    if not rows:
        raise UserDataError(path, "the label file is empty", "write one 'id,label' per line")
    sep = "\t" if "\t" in rows[0][1] else ","
    table = [(i, [x.strip() for x in split_fields(ln, sep)]) for i, ln in rows]
    head = [h.lower() for h in table[0][1]]
    cols = {"id": 0, "label": 1, "split": 2 if len(head) > 2 else None}
    if "label" in head:
        cols = {"id": 0, "label": head.index("label"), "split": head.index("split") if "split" in head else None}
        table = table[1:]
    labels, split = {}, {} if cols["split"] is not None else None
    for lineno, f in table:
        if len(f) <= max(c for c in cols.values() if c is not None):
            raise UserDataError(path, f"line {lineno} has {len(f)} field(s)", "write 'id,label[,split]' on every line")
        labels[f[0]] = f[cols["label"]]
        if split is not None:
            split[f[0]] = f[cols["split"]]
    check_unique([f[0] for _, f in table], path, what="sample id")
    return labels, split


def _numeric(df: Any, cols: list[int], row_names: list[str], col_names: list[str], source: Any) -> np.ndarray:
    """The columns ``cols`` of ``df`` as float32; a non-numeric cell is an error naming its row and column."""
    import pandas as pd  # noqa: PLC0415 - pandas (0.4 s): `import xai_core.data` does not load it; only a read needs it

    for j, c in enumerate(cols):
        col = df[c]
        if pd.api.types.is_numeric_dtype(col) and col.dtype != bool:
            continue
        conv = pd.to_numeric(col.astype(str) if col.dtype == bool else col, errors="coerce")
        bad = np.flatnonzero((conv.isna() & col.notna()).to_numpy())
        if len(bad):
            r = int(bad[0])
            raise UserDataError(source, f"non-numeric value {str(col.iloc[r])!r} at row {row_names[r]!r}, "
                                f"column {col_names[j]!r}", "expression values must be numbers; fix the value, "
                                "or if that column is not a gene name it as label_column/split_column or drop it")
        df[c] = conv
    return df[cols].to_numpy(dtype=np.float32)


def from_table(path: str | Path, name: str | None = None, label_column: str = "label", labels: str | Path | None = None,
               orientation: str = "auto", sep: str | None = None, *, split_column: str | None = None,
               markers: str | Path | None = None, gene_sets: str | Path | None = None, hvg: int | None = None,
               max_cells: int | None = None, standardize: bool = True, test_size: float = DEFAULT_TEST_SIZE,
               seed: int = DEFAULT_SEED) -> Dataset:
    """A ``Dataset`` from a CSV/TSV table: cells x genes with a label column, or genes x cells with a label file.

    The label file (``labels``) holds ``id,label[,split]``; ``orientation="auto"`` detects which layout (see the
    module doc of ``load_expression``, which also states the policies).

    Parameters
    ----------
    path : str or Path
        The table.
    name : str, optional
        The dataset's name; default the file's name without suffixes.
    label_column : str
        The column holding the labels (cells x genes).
    labels : str or Path, optional
        Label file CSV ``id,label[,split]`` (genes x cells, or cells x genes without a label column).
    orientation : str
        ``"auto"``, ``"cells x genes"`` or ``"genes x cells"``.
    sep : str, optional
        Field separator; default tab if the header has one, else comma.
    split_column : str, optional
        A column with train/test values (else a stratified split).
    markers : str or Path, optional
        Marker genes per class (weak ground truth): CSV ``class,gene`` (header optional) or GMT.
    gene_sets : str or Path, optional
        Gene sets for pathway grouping (``feature_groups``): GMT (name, description, genes...).
    hvg : int, optional
        Keep the N most variable genes (scanpy's seurat dispersion, on the training cells).
    max_cells : int, optional
        A stratified, seeded subsample of N cells, drawn before anything is densified.
    standardize : bool
        Per-gene standardisation with training statistics.
    test_size : float
        Fraction of cells held out when no split is given.
    seed : int
        Seed of the split and of the ``max_cells`` subsample.

    Returns
    -------
    Dataset
        Of modality ``expression``; ``params["orientation"]`` says which layout was read and how it was found.

    Raises
    ------
    UserDataError
        For a missing file, an unknown orientation, a missing label column, bad labels or values, or any read
        error.
    """
    name = name or Path(path).name.split(".")[0]  # default: the file's name without suffixes
    path = Path(path)
    if not path.is_file():
        raise UserDataError(path, "no such file", "check the path")
    key = str(orientation).strip().lower().replace("_", " ").replace("-", " ")
    if key not in ORIENTATIONS:
        raise UserDataError(path, f"unknown orientation {orientation!r}",
                            "use orientation=auto, 'cells x genes' or 'genes x cells'")

    def run() -> Dataset:
        import pandas as pd  # noqa: PLC0415 - pandas (0.4 s): see _numeric

        nonlocal key
        sep_, header, firsts, cornerless = _scan_table(path, sep)
        lab = split_map = None
        if labels is not None:
            lab, split_map = _read_label_file(labels)
        if key == "auto" and lab is None:
            if label_column not in header:
                raise UserDataError(path, f"no label column {label_column!r}; the columns are "
                                    f"{', '.join(map(repr, header[:20]))}" + (" ..." if len(header) > 20 else ""),
                                    "name the label column with label_column=..., or give labels=FILE (id,label) "
                                    "for a genes x cells table")
            key, how = "cells x genes", f"the label column {label_column!r} is in the header"
        elif key == "auto":
            in_head, in_first = sum(h in lab for h in header[1:]), sum(v in lab for v in firsts)
            if not in_head and not in_first:
                raise UserDataError(path, f"none of the ids of the label file {Path(labels).name} is a column name "
                                    "or a first-column value", "use the table's cell ids in the label file")
            key = "genes x cells" if in_head >= in_first else "cells x genes"
            how = (f"{in_head} label-file ids match column names and {in_first} match first-column values")
        else:
            how = "given by the user (orientation option)"
        params: dict[str, Any] = {"orientation": key, "orientation_detected": how, "sep": sep_,
                                  "label_column": label_column if lab is None else None,
                                  "labels_file": str(labels) if labels is not None else None}
        if cornerless:
            params["header"] = "one field short (R write.table): the first column taken as row names"
        if key == "genes x cells":
            if lab is None:
                raise UserDataError(path, "a genes x cells table needs its labels in a separate file",
                                    "give labels=FILE with lines 'cell_id,label'")
            if split_column is not None:
                raise UserDataError(path, "split_column applies to cells x genes tables",
                                    "put a split column (train/test) in the label file instead")
            genes, cells, cell_cols = firsts, header[1:], list(range(1, len(header)))
            check_unique(genes, path)
            df = pd.read_csv(path, sep=sep_, header=None, skiprows=1, dtype={0: str}, low_memory=False,
                             encoding="utf-8-sig")
            X = np.ascontiguousarray(_numeric(df, cell_cols, genes, cells, path).T)
        else:
            if split_column is not None and split_column not in header:
                raise UserDataError(path, f"no split column {split_column!r}", "use one of the columns: "
                                    + ", ".join(map(repr, header[:20])))
            special = {i for i, h in enumerate(header) if h in (label_column, split_column)}
            first_num = all(_is_number(v) for v in firsts[:200])
            has_ids = lab is not None or (0 not in special and (header[0].lower() in ID_HEADERS or not first_num))
            gene_cols = [i for i in range(len(header)) if i not in special and not (has_ids and i == 0)]
            genes = [header[i] for i in gene_cols]
            check_unique(genes, path)
            cells = firsts if has_ids else [f"row{i + 1}" for i in range(len(firsts))]
            df = pd.read_csv(path, sep=sep_, header=None, skiprows=1, low_memory=False, encoding="utf-8-sig",
                             dtype={i: str for i in special | ({0} if has_ids else set())})
            X = _numeric(df, gene_cols, cells, genes, path)
        check_unique(cells, path, what="sample id")
        if lab is not None:
            missing = [c for c in cells if c not in lab]
            if missing:
                raise UserDataError(labels, f"{len(missing)} cell(s) of {path.name} have no label "
                                    f"(e.g. {', '.join(map(repr, missing[:3]))})",
                                    "add them to the label file or drop them from the table")
            y_raw = [lab[c] for c in cells]
            params["label_file_ids_unused"] = len(lab) - len(cells)
        else:
            y_raw = list(df[header.index(label_column)])
        if split_column is not None:
            split_vals = list(df[header.index(split_column)])
        else:
            split_vals = [split_map[c] for c in cells] if split_map is not None else None
        params["split_column"] = split_column
        what = f"column {label_column!r}" if lab is None else f"labels of {Path(labels).name}"
        return assemble(path, name, y_raw, genes, cells, split_vals, lambda rows: X if rows is None else X[rows],
                        what_label=what, values="the table's numbers as given", markers=markers,
                        gene_sets=gene_sets, hvg=hvg, max_cells=max_cells, standardize=standardize,
                        test_size=test_size, seed=seed, params=params)
    return guarded(path, run)


def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return v.strip().lower() in ("", "na", "nan")


def detect_table(path: Path) -> bool:
    """A .csv/.tsv/.txt file that is neither FASTA ('>' first) nor an image list (path and label columns)."""
    if not (path.is_file() and path.name.lower().endswith(TABLE_SUFFIXES)):
        return False
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as fh:
            first = next((line for line in fh if line.strip()), "")
    except (OSError, EOFError):
        return True  # unreadable: the table reader then says why
    if first.lstrip().startswith(">"):
        return False
    header = {c.strip().strip('"').lower() for c in first.replace("\t", ",").split(",")}
    return not {"path", "label"} <= header
