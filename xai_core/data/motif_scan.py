"""JASPAR motif ground truth for user sequences: fetching matrices, log-odds PWMs and the scan on both strands.

Policy (also in ``docs/user_data_sequences.md``): ``jaspar=IDS`` scans JASPAR matrices on both strands with a
log-odds PWM (frequencies + 0.01 pseudocount per base, renormalised; background 0.25); windows whose relative
score (s - min) / (max - min) >= ``jaspar_threshold`` are hits, overlapping hits are resolved greedily by
relative score, and a hit's columns are the motif's JASPAR frequencies (reverse-complemented on the minus
strand). N and padding score 0 (background) in the scan, and windows touching padding are not scanned.
"""
from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .dataset import NUCLEOTIDES
from .jaspar import reverse_complement
from .user_common import UserDataError

PSEUDOCOUNT = 0.01  # added to each base's JASPAR frequency before the log-odds (then renormalised)
BACKGROUND = 0.25


class Hit(NamedTuple):
    """A motif hit: columns [start, end) of sequence ``seq`` (in the imported, padded/cropped frame)."""

    seq: int
    start: int
    end: int
    matrix_id: str
    strand: str
    rel_score: float


def one_hot_codes(codes: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """(N, L) codes 0-3 = ACGT, 4 = N -> (N, 4, L) one-hot over ACGT (N columns all zero)."""
    return (codes[:, None, :] == np.arange(4)[None, :, None]).astype(dtype)


@functools.lru_cache(maxsize=4)
def _jaspar_db(release: str):
    import pyjaspar  # noqa: PLC0415 - pyjaspar (0.3 s): only jaspar= needs it

    if release not in pyjaspar.jaspar_releases:
        raise UserDataError(None, f"unknown JASPAR release '{release}'",
                            f"choose one of {', '.join(sorted(pyjaspar.jaspar_releases))} (bundled with pyjaspar)")
    return pyjaspar.jaspardb(release=release)


@functools.lru_cache(maxsize=256)
def jaspar_frequencies(matrix_id: str, release: str) -> tuple[str, str, np.ndarray]:
    """``(resolved id, name, (4, w) column frequencies over ACGT)`` of a JASPAR matrix (any collection);
    an id without version gives that release's latest version."""
    db = _jaspar_db(release)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            m = db.fetch_motif_by_id(matrix_id)
        except Exception:  # noqa: BLE001 - malformed ids make pyjaspar's SQL helpers fail in several ways
            m = None
    if m is None:
        raise UserDataError(None, f"JASPAR matrix '{matrix_id}' is not in {release}",
                            "check the id on jaspar.elixir.no (e.g. MA0079.3), or choose another jaspar_release")
    pfm = np.array([m.counts[a] for a in NUCLEOTIDES], dtype=np.float64)
    freqs = pfm / pfm.sum(axis=0, keepdims=True)
    freqs.flags.writeable = False
    return m.matrix_id, m.name, freqs


def log_odds(freqs: np.ndarray, pseudocount: float = PSEUDOCOUNT, background: float = BACKGROUND) -> np.ndarray:
    """(4, w) log2 odds: log2(p / background) with p = (f + pseudocount) / (1 + 4 pseudocount)."""
    p = (np.asarray(freqs, dtype=np.float64) + pseudocount) / (1.0 + 4 * pseudocount)
    return np.log2(p / background)


def scan_scores(onehot: np.ndarray, lo: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Log-odds scores of every window, both strands: (N, 2, L - w + 1), [:, 0] plus, [:, 1] minus strand.

    ``onehot`` (N, 4, L) over ACGT (N columns all-zero score 0); one ``conv1d`` in float64 with the
    matrix and its reverse complement as the two filters."""
    import torch  # noqa: PLC0415 - torch (seconds): `import xai_core.data` does not load it; only a jaspar= scan needs it

    w = lo.shape[1]
    weight = torch.as_tensor(np.stack([lo, reverse_complement(lo)]), dtype=torch.float64)
    out = np.empty((len(onehot), 2, max(onehot.shape[2] - w + 1, 0)))
    if out.shape[2] == 0:
        return out
    with torch.no_grad():
        for a in range(0, len(onehot), chunk):
            x = torch.as_tensor(np.asarray(onehot[a:a + chunk], dtype=np.float64))
            out[a:a + chunk] = torch.nn.functional.conv1d(x, weight).numpy()
    return out


def scan_jaspar(codes: np.ndarray, real: np.ndarray, motifs: dict[str, np.ndarray],
                threshold: float) -> list[Hit]:
    """Non-overlapping hits of ``motifs`` (id -> (4, w) frequencies) in ``codes`` (N, L) of 0-3 = ACGT,
    4 = N; windows touching a position where ``real`` is False (padding) are skipped. Overlaps across
    strands and motifs are resolved greedily: the highest relative score wins."""
    import torch  # noqa: PLC0415 - torch (seconds): `import xai_core.data` does not load it; only a jaspar= scan needs it

    onehot = one_hot_codes(codes, np.float64)
    found: list[Hit] = []
    for mid, freqs in motifs.items():
        lo = log_odds(freqs)
        w = lo.shape[1]
        if w > codes.shape[1]:
            continue
        lo_min, lo_max = lo.min(axis=0).sum(), lo.max(axis=0).sum()
        rel = (scan_scores(onehot, lo) - lo_min) / (lo_max - lo_min)
        inside = torch.nn.functional.conv1d(torch.as_tensor(real[:, None, :], dtype=torch.float64),
                                            torch.ones(1, 1, w, dtype=torch.float64))[:, 0].numpy() > w - 0.5
        ok = (rel >= threshold - 1e-12) & inside[:, None, :]
        for i, s, p in np.argwhere(ok):
            found.append(Hit(int(i), int(p), int(p) + w, mid, "+-"[s], float(rel[i, s, p])))
    found.sort(key=lambda h: (-h.rel_score, h.seq, h.start, h.strand))
    taken = np.zeros(codes.shape, dtype=bool)
    kept = []
    for h in found:
        if not taken[h.seq, h.start:h.end].any():
            taken[h.seq, h.start:h.end] = True
            kept.append(h)
    return kept


def _jaspar_ids(jaspar: str | Sequence[str]) -> list[str]:
    items = re.split(r"[\s,;]+", jaspar) if isinstance(jaspar, str) else [str(j) for j in jaspar]
    return list(dict.fromkeys(i.strip() for i in items if i.strip()))


def jaspar_pwm(path: Path, jaspar: str | Sequence[str], release: str, threshold: float, codes: np.ndarray,
               real: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Ground-truth PWM (N, 4, L) of the JASPAR hits of ``jaspar`` (ids) in ``codes``, and its params."""
    ids = _jaspar_ids(jaspar)
    if not ids:
        raise UserDataError(path, "jaspar names no matrix ids", "give ids such as jaspar=MA0079.3,MA0062.2")
    freqs: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}
    for mid in ids:
        try:
            rid, nm, f = jaspar_frequencies(mid, release)
        except UserDataError as e:
            raise UserDataError(path, e.problem, e.fix) from None
        freqs[rid], names[rid] = f, nm
    too_long = [m for m, f in freqs.items() if f.shape[1] > codes.shape[1]]
    if too_long:
        raise UserDataError(path, f"motif(s) {too_long} are longer than the sequences ({codes.shape[1]} bp)",
                            "choose shorter motifs or a larger length")
    hits = scan_jaspar(codes, real, freqs, threshold)
    pwm = np.full((codes.shape[0], 4, codes.shape[1]), BACKGROUND, dtype=np.float32)
    counts = dict.fromkeys(freqs, 0)
    for h in hits:
        f = freqs[h.matrix_id]
        pwm[h.seq, :, h.start:h.end] = f if h.strand == "+" else reverse_complement(f)
        counts[h.matrix_id] += 1
    return pwm, {"ground_truth": "JASPAR scan", "jaspar_release": release, "jaspar_motifs": names,
                 "jaspar_threshold": threshold, "jaspar_pseudocount": PSEUDOCOUNT, "jaspar_background": BACKGROUND,
                 "jaspar_hits": counts, "sequences_with_hits": int(len({h.seq for h in hits}))}
