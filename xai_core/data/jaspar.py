"""JASPAR motifs for the synthetic DNA data: the 2016 vertebrate PWMs (bundled with ``pyjaspar``, offline),
the notebook's core and background pools, and one-hot / reverse-complement helpers.

``pyjaspar`` returns the 519 JASPAR 2016 CORE vertebrate motifs in database order; they are sorted by
matrix id (base id, then version), the order of JASPAR's flat files that the original notebook indexed.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .dataset import NUCLEOTIDES

JASPAR_RELEASE = "JASPAR2016"
# Core motifs by JASPAR id, in the notebook's order (``core_names = ['SP1', 'Gabpa', 'CEBPB',
# 'MAX', 'YY1']``, looked up by name in the 2016 file; these are the ids of those names).
CORE_MOTIF_IDS: tuple[str, ...] = ("MA0079.3", "MA0062.2", "MA0466.2", "MA0058.3", "MA0095.2")
# Background selection constants of the notebook: a permutation of the 519 file indices, its first
# 65, minus these *values* (the notebook meant positions of core look-alikes in the 65, but removes
# file indices; with seed 22 none of them is among the 65, so nothing is removed), first 50 kept.
N_BACKGROUND_CANDIDATES = 65
N_BACKGROUND = 50
DUPLICATE_INDEX: tuple[int, ...] = (4, 5, 12, 15, 17, 18, 20, 36, 42, 60)
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


class Motif(NamedTuple):
    """One PWM of a pool: column-normalised JASPAR PFM (4, w) over ACGT, on one strand."""

    matrix_id: str
    name: str
    strand: str  # "+" as in JASPAR, "-" its reverse complement
    pwm: np.ndarray


# -- one-hot helpers ---------------------------------------------------------------------------------
_LOOKUP = np.full(256, 4, dtype=np.int64)
for _i, _c in enumerate(NUCLEOTIDES):
    _LOOKUP[ord(_c)] = _i
    _LOOKUP[ord(_c.lower())] = _i


def one_hot(seqs: Sequence[str]) -> np.ndarray:
    """Equal-length DNA strings -> (N, 4, L) float32 one-hot over ACGT. Other letters (N, -) give an
    all-zero column."""
    seqs = list(seqs)
    if not seqs:
        return np.zeros((0, 4, 0), dtype=np.float32)
    length = len(seqs[0])
    if any(len(s) != length for s in seqs):
        raise ValueError("one_hot needs sequences of equal length")
    codes = _LOOKUP[np.frombuffer("".join(seqs).encode("ascii", "replace"), dtype=np.uint8)]
    codes = codes.reshape(len(seqs), length)
    out = (codes[:, None, :] == np.arange(4)[None, :, None]).astype(np.float32)
    return out


def to_strings(X: np.ndarray) -> list[str]:
    """(N, 4, L) or (4, L) one-hot (or any scores: argmax per column) -> strings; all-zero columns
    become ``N``."""
    X = np.asarray(X)
    if X.ndim == 2:
        X = X[None]
    letters = np.frombuffer((NUCLEOTIDES + "N").encode(), dtype=np.uint8)
    idx = np.where(X.max(axis=1) > 0, X.argmax(axis=1), 4)
    chars = letters[idx]
    return [row.tobytes().decode("ascii") for row in chars]


def reverse_complement(X: np.ndarray) -> np.ndarray:
    """Reverse complement of one-hot / PWM arrays shaped (..., 4, L) over ACGT: the channels flip
    (A<->T, C<->G is the reversal of ACGT) and so do the positions."""
    X = np.asarray(X)
    if X.ndim < 2 or X.shape[-2] != 4:
        raise ValueError(f"expected (..., 4, L), got {X.shape}")
    return np.ascontiguousarray(X[..., ::-1, ::-1])


def reverse_complement_string(seq: str) -> str:
    return seq.translate(_COMPLEMENT)[::-1]


def consensus(pwm: np.ndarray) -> str:
    """Most probable nucleotide per column of a (4, w) PWM."""
    return to_strings(np.asarray(pwm)[None])[0]


# -- JASPAR motifs (pyjaspar, offline) ---------------------------------------------------------------
def _id_key(matrix_id: str) -> tuple[str, int]:
    base, _, version = matrix_id.partition(".")
    return base, int(version or 0)


def vertebrate_motifs(release: str = JASPAR_RELEASE) -> tuple[Motif, ...]:
    """All CORE vertebrates non-redundant motifs of ``release``, sorted by matrix id (read once per release)."""
    return _fetch_vertebrate_motifs(release)  # one cache key per release, however it is called


@functools.lru_cache(maxsize=4)
def _fetch_vertebrate_motifs(release: str) -> tuple[Motif, ...]:
    """All CORE vertebrates non-redundant motifs of ``release`` (519 for 2016), sorted by matrix id.

    Stands in for the original ``pfm_vertebrates.txt``. Difference from the original: that file is
    not bundled, so its order is reconstructed by sorting on matrix id (JASPAR's flat files, e.g.
    the repo's ``JASPAR_CORE_2016_vertebrates.meme``, list MA0002.2, MA0003.3, MA0004.1, ... in this
    order; ``pyjaspar`` itself returns database order). Evidence this matches the file: the
    notebook's ``duplicate_index`` positions (4, 5, 12, 15, 18, 36 of the 65 drawn with seed 22)
    fall, in this order, on ETV5, CEBPG, KLF5, MLX, ETV3, TCF4: ETS / C/EBP / KLF / E-box look-alikes
    of the core motifs, which is what the notebook says it filters. The PFM counts are JASPAR's and
    are normalised exactly as the notebook does (``pfm / column sums``, float64).
    """
    from pyjaspar import jaspardb  # noqa: PLC0415 - pyjaspar (0.2-0.3 s): only the motif datasets' first build needs it

    db = jaspardb(release=release)
    fetched = db.fetch_motifs(collection="CORE", tax_group=["vertebrates"], all_versions=False)
    motifs = []
    for m in sorted(fetched, key=lambda m: _id_key(m.matrix_id)):
        pfm = np.array([m.counts[a] for a in NUCLEOTIDES], dtype=np.float64)
        pwm = pfm / np.outer(np.ones(4), pfm.sum(axis=0))
        pwm.flags.writeable = False
        motifs.append(Motif(m.matrix_id, m.name, "+", pwm))
    return tuple(motifs)


def _both_strands(m: Motif) -> list[Motif]:
    rc = reverse_complement(m.pwm)
    rc.flags.writeable = False
    return [m, Motif(m.matrix_id, m.name, "-", rc)]


def vertebrate_motif_ids(release: str = JASPAR_RELEASE) -> list[str]:
    """Matrix ids in the order that stands in for the original file order."""
    return [m.matrix_id for m in vertebrate_motifs(release)]


def motif_by_id(matrix_id: str, release: str = JASPAR_RELEASE) -> Motif:
    for m in vertebrate_motifs(release):
        if m.matrix_id == matrix_id:
            return m
    raise KeyError(f"{matrix_id} is not a CORE vertebrates non-redundant motif of {release}")


def core_motifs(release: str = JASPAR_RELEASE, ids: Sequence[str] = CORE_MOTIF_IDS) -> list[Motif]:
    """The 10 core PWMs: SP1, GABPA, CEBPB, MAX, YY1, each forward then reverse complement."""
    return [s for mid in ids for s in _both_strands(motif_by_id(mid, release))]


def select_background_indices(rng: np.random.RandomState, n_motifs: int) -> list[int]:
    """The notebook's background selection, verbatim (it consumes ``rng``): permute all file
    indices, keep 65, remove the *values* in ``DUPLICATE_INDEX`` from that set, take the first 50 of
    ``list(set)`` (CPython's set order for these ints: deterministic)."""
    motif_index = rng.permutation(n_motifs)[0:N_BACKGROUND_CANDIDATES]
    kept = set(int(i) for i in motif_index) - set(DUPLICATE_INDEX)
    return list(kept)[:N_BACKGROUND]


def background_motifs(release: str = JASPAR_RELEASE, ids: Sequence[str] | None = None,
                      seed: int = 22) -> list[Motif]:
    """Background pool: the 10 core PWMs then each selected motif forward and reverse complement.

    ``ids``: the selected matrix ids (as stored in ``Dataset.params``); None draws them as the
    generator does, from a fresh ``RandomState(seed)``.
    """
    if ids is None:
        allm = vertebrate_motifs(release)
        ids = [allm[i].matrix_id for i in select_background_indices(np.random.RandomState(seed),
                                                                     len(allm))]
    pool = core_motifs(release)
    for mid in ids:
        pool.extend(_both_strands(motif_by_id(mid, release)))
    return pool
