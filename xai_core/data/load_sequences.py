"""A user's DNA sequences from FASTA: one-hot inputs, labels, a split and, optionally, motif ground truth.

Policies (also in ``docs/user_data_sequences.md``):
- **Letters:** A, C, G, T and N, case-insensitive; anything else (U, IUPAC codes such as R or Y, gaps '-')
  is refused, naming the record, the 1-based position and the letter. ``n_policy`` encodes N (and padding)
  as 0.25 for each base ("uniform", default) or as an all-zero column ("zero").
- **Length:** "fixed" (default) refuses unequal lengths; "pad" pads with N to ``length`` (default the
  longest); "crop" crops to ``length`` (default the shortest); "pad_crop" brings every sequence to
  ``length`` (required). ``align`` "center" (odd remainders go to the right end) or "left" (keep the start).
- **Labels:** ``>id label=CLASS`` or ``>id|CLASS`` in the header, or ``labels=FILE`` (CSV with ``id,label``
  and an optional ``split`` column of train/test). Sample ids are the FASTA ids; duplicates are refused.
- **Ground truth** (``GroundTruth.pwm``, 0.25 background): ``motifs=FILE``, a CSV ``id,start,end[,name]`` of
  known sites with 0-based start and exclusive end (BED convention) in the original sequence; a site's
  columns are the observed nucleotide's one-hot (2 bits). Or ``jaspar=IDS``: JASPAR matrices scanned on
  both strands (the scan's policy is in ``motif_scan``).
"""
from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import NUCLEOTIDES, Dataset, GroundTruth
from .importers import Importer, register_importer
from .motif_scan import BACKGROUND, jaspar_pwm, one_hot_codes
from .motif_scan import jaspar_frequencies, log_odds, scan_jaspar, scan_scores  # noqa: F401  (importable from here)
from .user_common import DEFAULT_SEED, DEFAULT_TEST_SIZE, UserDataError, encode_labels, make_split

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")
LENGTH_POLICIES = ("fixed", "pad", "crop", "pad_crop")
ALIGNS = ("center", "left")
N_POLICIES = ("uniform", "zero")
_BAD_LETTER = re.compile(r"[^ACGTNacgtn]")
_LABEL_RE = re.compile(r"(?:^|\s)label=(\S+)")
_CODES = np.full(256, 4, dtype=np.uint8)
for _i, _c in enumerate(NUCLEOTIDES):
    _CODES[ord(_c)] = _CODES[ord(_c.lower())] = _i
_LETTERS_FIX = ("only A, C, G, T and N are read (any case): write RNA's U as T, ambiguity codes (R, Y, S, W, K, M, "
                "B, D, H, V) as N, and remove gaps ('-', '.')")


@dataclass
class _Record:
    id: str
    label: str | None
    seq: str


# -- reading -------------------------------------------------------------------------------------------
def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if gz:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _read_fasta(path: Path) -> list[_Record]:
    records: list[_Record] = []
    head: tuple[str, str | None] | None = None
    chunks: list[str] = []

    def close() -> None:
        if head is not None:
            seq = "".join(chunks)
            if not seq:
                raise UserDataError(path, f"record '{head[0]}' has no sequence", "give every header a sequence "
                                    "on the lines below it, or remove the empty record")
            records.append(_Record(head[0], head[1], seq))

    try:
        with _open_text(path) as fh:
            for n, line in enumerate(fh, 1):
                line = line.strip()
                if not line or line.startswith(";"):
                    continue
                if line.startswith(">"):
                    close()
                    words = line[1:].split(maxsplit=1)
                    if not words:
                        raise UserDataError(path, f"line {n}: a header without an id", "write '>ID' (then "
                                            "optionally 'label=CLASS') on every header line")
                    m = _LABEL_RE.search(words[1]) if len(words) > 1 else None
                    head, chunks = (words[0], m.group(1) if m else None), []
                elif head is None:
                    raise UserDataError(path, f"line {n} comes before the first '>' header", "a FASTA file "
                                        "starts with a '>ID' line; remove the text above it")
                else:
                    chunks.append("".join(line.split()))
            close()
    except (UnicodeDecodeError, OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserDataError(path, f"cannot be read as (gzipped) FASTA text ({type(e).__name__}: {e})",
                            "give a plain-text or gzip-compressed FASTA file") from None
    if not records:
        raise UserDataError(path, "no FASTA records", "a FASTA file holds '>ID' header lines, each followed by "
                            "its sequence")
    return records


def _read_table(path: str | Path, required: Sequence[str], what: str, example: str) -> list[dict[str, str]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UserDataError(path, f"cannot read the {what} file ({type(e).__name__})",
                            f"give a UTF-8 CSV file like '{example}'") from None
    first = text.split("\n", 1)[0]
    delim = "\t" if "\t" in first and "," not in first else ","
    table = [r for r in csv.reader(io.StringIO(text), delimiter=delim) if any(c.strip() for c in r)]
    cols = {c.strip().lower(): j for j, c in enumerate(table[0])} if table else {}
    missing = [c for c in required if c not in cols]
    if missing or len(table) < 2:
        raise UserDataError(path, f"the {what} file lacks column(s) {missing}" if missing else f"the {what} "
                            "file has no rows", f"write a header row and one row per entry, e.g. '{example}'")
    return [{k: (r[j].strip() if j < len(r) else "") for k, j in cols.items()} for r in table[1:]]


def _labels_from_csv(path: str | Path, records: list[_Record]) -> tuple[list[str | None], list[str] | None]:
    rows = _read_table(path, ("id", "label"), "labels", "id,label[,split]")
    table: dict[str, dict[str, str]] = {}
    for r in rows:
        if r["id"] in table:
            raise UserDataError(path, f"id '{r['id']}' appears twice", "give each id one row")
        table[r["id"]] = r
    labels, split = [], []
    for rec in records:
        row = table.get(rec.id) or table.get(rec.id.rsplit("|", 1)[0])
        if row is None:
            raise UserDataError(path, f"record '{rec.id}' of the FASTA file has no row", f"add a row "
                                f"'{rec.id},CLASS' or remove the record from the FASTA file")
        labels.append(row["label"] or None)
        split.append(row.get("split", ""))
    return labels, (split if "split" in rows[0] else None)


def _check_letters(path: Path, records: list[_Record]) -> None:
    for rec in records:
        m = _BAD_LETTER.search(rec.seq)
        if m:
            raise UserDataError(path, f"record '{rec.id}' has the letter {m.group()!r} at position {m.start() + 1}",
                                _LETTERS_FIX)


# -- length policy ---------------------------------------------------------------------------------------
def _target_length(path: Path, records: list[_Record], policy: str, length: int | None) -> int:
    lens = [len(r.seq) for r in records]
    lo, hi = int(np.argmin(lens)), int(np.argmax(lens))
    span = (f"shortest '{records[lo].id}' ({lens[lo]}), longest '{records[hi].id}' ({lens[hi]})")
    if policy == "fixed":
        if lens[lo] != lens[hi]:
            raise UserDataError(path, f"sequences differ in length ({span})", "choose length_policy pad, crop or "
                                "pad_crop (with length=...), or trim them to one length")
        if length is not None and length != lens[lo]:
            raise UserDataError(path, f"sequences have length {lens[lo]}, not length={length}",
                                "drop the length option, or choose length_policy pad_crop")
        return lens[lo]
    if policy == "pad_crop" and length is None:
        raise UserDataError(path, "length_policy pad_crop needs a length", "give length=... (e.g. 200)")
    target = length if length is not None else (lens[hi] if policy == "pad" else lens[lo])
    if policy == "pad" and lens[hi] > target:
        raise UserDataError(path, f"'{records[hi].id}' ({lens[hi]}) is longer than length={target}",
                            "choose length_policy pad_crop, or a larger length")
    if policy == "crop" and lens[lo] < target:
        raise UserDataError(path, f"'{records[lo].id}' ({lens[lo]}) is shorter than length={target}",
                            "choose length_policy pad_crop, or a smaller length")
    return target


def _offset(n: int, target: int, align: str) -> int:
    """New position = old + offset: a positive offset pads on the left, a negative one crops the left."""
    if align == "left" or n == target:
        return 0
    return (target - n) // 2 if n < target else -((n - target) // 2)


def _place(seq: str, target: int, off: int) -> str:
    if off < 0:
        seq = seq[-off:]
    else:
        seq = "N" * off + seq
    return (seq + "N" * target)[:target]


# -- the importer ---------------------------------------------------------------------------------------
def _as_int(v: Any, what: str) -> int | None:
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none")):
        return None
    try:
        out = int(v)
    except (TypeError, ValueError):
        raise UserDataError(None, f"{what}={v!r} is not a whole number", f"give {what} as e.g. 200") from None
    if out < 1:
        raise UserDataError(None, f"{what}={out} is not positive", f"give {what} >= 1")
    return out


def _choice(v: str, valid: Sequence[str], what: str) -> str:
    if v not in valid:
        raise UserDataError(None, f"{what}={v!r} is not a choice", f"choose one of {', '.join(valid)}")
    return v


def from_fasta(path: str | Path, *, name: str = "sequences", labels: str | Path | None = None,
               length: int | None = None, length_policy: str = "fixed", align: str = "center",
               n_policy: str = "uniform", motifs: str | Path | None = None,
               jaspar: str | Sequence[str] | None = None, jaspar_release: str = "JASPAR2024",
               jaspar_threshold: float = 0.85, test_size: float = DEFAULT_TEST_SIZE,
               seed: int = DEFAULT_SEED) -> Dataset:
    """Read a FASTA file (optionally gzipped) as a sequence ``Dataset``.

    See the module docstring for the policies. Every problem with the files or options is a one-line
    ``UserDataError``.

    Parameters
    ----------
    path : str or Path
        The FASTA file (``.gz`` allowed).
    name : str
        The dataset's name.
    labels : str or Path, optional
        CSV with columns ``id,label`` (optional ``split`` = train/test); default: labels in the headers
        (``>id label=1`` or ``>id|1``).
    length : int, optional
        Target length for ``pad`` / ``crop`` / ``pad_crop`` (default: longest for pad, shortest for crop).
    length_policy : str
        ``fixed`` (refuse unequal lengths), ``pad`` (with N), ``crop``, or ``pad_crop`` (needs ``length``).
    align : str
        Where sequences sit when padded or cropped: ``center`` or ``left``.
    n_policy : str
        How N (and padding) is encoded: ``uniform`` (0.25 per base) or ``zero`` (all-zero column).
    motifs : str or Path, optional
        CSV of known sites ``id,start,end,name`` (0-based start, end exclusive, as BED) -> ground truth.
    jaspar : str or sequence of str, optional
        JASPAR matrix ids to scan on both strands for the ground truth, e.g. ``MA0079.3,MA0062.2``; not with
        ``motifs``.
    jaspar_release : str
        pyjaspar release for ``jaspar``: JASPAR2014 ... JASPAR2026.
    jaspar_threshold : float
        Relative PWM score ``(s - min) / (max - min)`` a hit needs, in (0, 1].
    test_size : float
        Test fraction of the stratified split when no split column is given.
    seed : int
        Seed of the stratified split.

    Returns
    -------
    Dataset
        Of modality ``sequence``, X (N, 4, L) one-hot.

    Raises
    ------
    UserDataError
        For a bad option, file, record, label or motif (e.g. both ``motifs`` and ``jaspar``, duplicated ids).
    """
    path = Path(path)
    _choice(length_policy, LENGTH_POLICIES, "length_policy")
    _choice(align, ALIGNS, "align")
    _choice(n_policy, N_POLICIES, "n_policy")
    length = _as_int(length, "length")
    if motifs and jaspar:
        raise UserDataError(path, "both motifs and jaspar are given", "give one ground truth: a sites table "
                            "(motifs=FILE) or JASPAR ids to scan (jaspar=IDS)")
    try:
        jaspar_threshold = float(jaspar_threshold)
    except (TypeError, ValueError):
        jaspar_threshold = -1.0
    if not 0.0 < jaspar_threshold <= 1.0:
        raise UserDataError(None, "jaspar_threshold must be in (0, 1]", "give a relative score such as 0.85")

    records = _read_fasta(path)
    if not labels:  # '>id|CLASS': the label is after the last '|'
        for rec in records:
            if rec.label is None and "|" in rec.id:
                rec.id, rec.label = rec.id.rsplit("|", 1)
    counts: dict[str, int] = {}
    for rec in records:
        counts[rec.id] = counts.get(rec.id, 0) + 1
    dups = [i for i, c in counts.items() if c > 1]
    if dups:
        raise UserDataError(path, f"duplicated record id(s): {', '.join(map(repr, dups[:5]))}",
                            "give every record a unique id (the first word after '>')")
    _check_letters(path, records)
    if labels:
        raw, split = _labels_from_csv(labels, records)
        label_src: str | Path = labels
        missing_fix = "give it a label in the labels file"
    else:
        raw, split, label_src = [r.label for r in records], None, path
        missing_fix = "write '>ID label=CLASS' or '>ID|CLASS' in its header, or give labels=FILE (CSV id,label)"
    for rec, lab in zip(records, raw):
        if not lab:
            raise UserDataError(label_src, f"record '{rec.id}' has no label", missing_fix)
    y, class_names = encode_labels(raw, label_src)

    lens = np.array([len(r.seq) for r in records])
    target = _target_length(path, records, length_policy, length)
    offsets = np.array([_offset(int(n), target, align) for n in lens], dtype=np.int64)
    placed = "".join(_place(r.seq, target, int(o)) for r, o in zip(records, offsets))
    codes = _CODES[np.frombuffer(placed.encode("ascii"), dtype=np.uint8)].reshape(len(records), target)
    pos = np.arange(target)[None, :]
    real = (pos >= np.maximum(offsets, 0)[:, None]) & (pos < (offsets + lens)[:, None])
    onehot = one_hot_codes(codes)
    X = onehot.copy()
    if n_policy == "uniform":
        X[np.broadcast_to((codes == 4)[:, None, :], X.shape)] = 0.25

    params: dict[str, Any] = {
        "n_policy": n_policy, "length_policy": length_policy, "align": align, "length": int(target),
        "original_length_range": [int(lens.min()), int(lens.max())],
        "n_padded": int((lens < target).sum()), "n_cropped": int((lens > target).sum()),
        "label_source": "labels file" if labels else "FASTA headers",
    }
    gt = None
    if motifs:
        pwm, site_params = _sites_pwm(Path(motifs), records, lens, offsets, codes, onehot)
        params.update(site_params)
        gt = GroundTruth(pwm=pwm, strength="weak", note="known sites from the user's table: observed nucleotide "
                         "one-hot at site positions (2 bits), 0.25 elsewhere")
    elif jaspar:
        pwm, jp = jaspar_pwm(path, jaspar, jaspar_release, jaspar_threshold, codes, real)
        params.update(jp)
        gt = GroundTruth(pwm=pwm, strength="weak", note=f"JASPAR PWM scan hits ({jaspar_release}, relative "
                         f"score >= {jaspar_threshold}, both strands): motif frequencies at hits, 0.25 elsewhere")
    tr, te, split_params = make_split(y, split, test_size, seed, label_src)
    params.update(split_params)
    short = [a for a, m in (("dna_shallow", 100), ("dna_deep", 48)) if target < m]
    if short:
        params["too_short_for"] = short
    desc = (f"DNA sequences from {path.name}: {len(records)} x {target} bp, {len(class_names)} classes"
            + (f"; ground truth: {gt.note}" if gt else "; no motif ground truth")
            + (f"; too short for {', '.join(short)} (dna_shallow needs >= 100 bp, dna_deep >= 48)" if short else ""))
    return Dataset(name=name, modality="sequence", X=X, y=y, class_names=class_names,
                   feature_names=[f"pos{i}" for i in range(target)], train_idx=tr, test_idx=te,
                   ground_truth=gt, description=desc, params=params, sample_ids=[r.id for r in records])


def _sites_pwm(path: Path, records: list[_Record], lens: np.ndarray, offsets: np.ndarray, codes: np.ndarray,
               onehot: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    rows = _read_table(path, ("id", "start", "end"), "motifs", "id,start,end,name")
    index = {r.id: i for i, r in enumerate(records)}
    target = codes.shape[1]
    pwm = np.full(onehot.shape, BACKGROUND, dtype=np.float32)
    per_name: dict[str, int] = {}
    dropped = clipped = 0
    for k, r in enumerate(rows, 2):
        i = index.get(r["id"])
        if i is None:
            raise UserDataError(path, f"row {k}: id '{r['id']}' is not a record of the FASTA file",
                                "use the FASTA ids (the first word after '>')")
        try:
            start, end = int(r["start"]), int(r["end"])
        except ValueError:
            raise UserDataError(path, f"row {k}: start/end '{r['start']}', '{r['end']}' are not whole numbers",
                                "give 0-based start and exclusive end, as in BED") from None
        if not 0 <= start < end <= lens[i]:
            raise UserDataError(path, f"row {k}: site {start}-{end} lies outside '{r['id']}' (length {lens[i]})",
                                "coordinates are 0-based, end exclusive (BED), within the original sequence")
        s, e = max(start + offsets[i], 0), min(end + offsets[i], target)
        if s >= e:
            dropped += 1
            continue
        clipped += int(e - s < end - start)
        pwm[i, :, s:e] = np.where(codes[i, s:e] < 4, onehot[i, :, s:e], BACKGROUND)
        nm = r.get("name") or "site"
        per_name[nm] = per_name.get(nm, 0) + 1
    return pwm, {"ground_truth": "motif sites table", "sites_per_name": per_name, "sites_cropped_out": dropped,
                 "sites_partly_cropped": clipped}


def _detect(path: Path) -> bool:
    if not path.is_file():
        return False
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in FASTA_SUFFIXES:
        return True
    try:
        with _open_text(path) as fh:
            head = fh.read(4096)
    except (UnicodeDecodeError, OSError, EOFError):
        return False
    first = next((ln for ln in head.splitlines() if ln.strip()), "")
    return first.lstrip().startswith(">")


register_importer(Importer(
    name="fasta", kind="sequence",
    description="DNA sequences in FASTA (.fa/.fasta/.fna/.fas, optionally .gz), labels in the headers or a CSV",
    detect=_detect, read=from_fasta,
    options={
        "labels": "CSV with columns id,label (optional split = train/test); default: labels in the headers "
                  "('>id label=1' or '>id|1')",
        "length": "target length for pad / crop / pad_crop (default: longest for pad, shortest for crop)",
        "length_policy": "fixed (refuse unequal lengths, default), pad (with N), crop, or pad_crop (needs length)",
        "align": "where sequences sit when padded or cropped: center (default) or left",
        "n_policy": "how N (and padding) is encoded: uniform (0.25 per base, default) or zero (all-zero column)",
        "motifs": "CSV of known sites id,start,end,name (0-based start, end exclusive, as BED) -> ground truth",
        "jaspar": "JASPAR matrix ids to scan on both strands for the ground truth, e.g. MA0079.3,MA0062.2",
        "jaspar_release": "pyjaspar release for jaspar: JASPAR2014 ... JASPAR2026 (default JASPAR2024)",
        "jaspar_threshold": "relative PWM score (s - min) / (max - min) a hit needs (default 0.85)",
        "test_size": "test fraction of the stratified split when no split column is given (default 0.25)",
        "seed": "seed of the stratified split (default 0)",
    },
    side_files=("labels", "motifs"),
))
