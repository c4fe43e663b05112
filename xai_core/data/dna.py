"""Synthetic regulatory-code DNA with exact ground truth (protocol §3.2).

This is the "synthetic code" dataset of Koo & Ploenzke (2021, task 3), reused by Majdandzic et al.
(MLCB 2022): 200-bp sequences, each drawn position by position from a grammar PWM made of JASPAR
motifs separated by uniform gaps. Positives (y = 1) carry motifs of five core transcription
factors only (SP1, GABPA, CEBPB, MAX, YY1, either strand); negatives (y = 0) carry motifs from a
background pool (the 10 core PWMs plus 50 further JASPAR motifs and their reverse complements), so
core motifs also occur in negatives and the class is defined by the *grammar*, not by one motif.

The generator follows the original notebook (``p-koo/exponential_activations``,
``code/generate_data/task3_generate_synthetic_code_dataset.ipynb``) draw for draw: one legacy
``RandomState(seed)`` stream consumed in the same order (background permutation; then per sequence
the grammar draws followed by the L uniforms that sample its nucleotides; then the split
permutation). Only the categorical sampling itself is vectorised over all sequences afterwards,
which consumes no randomness and gives the same nucleotides as the original per-position loop.

Motifs come from the JASPAR 2016 release bundled with ``pyjaspar`` (offline). The original read
``pfm_vertebrates.txt`` (JASPAR 2016 CORE vertebrates non-redundant, 519 motifs) and indexed it by
file position. ``pyjaspar`` returns the same 519 motifs (``fetch_motifs(collection="CORE",
tax_group=["vertebrates"], all_versions=False)``) but in database order, so we sort them by matrix
id (base id, then version), the order of JASPAR's flat files; see ``jaspar.vertebrate_motifs``.

Ground truth: the grammar PWM of every sequence, ``GroundTruth.pwm`` (N, 4, L); its information
content is > 0.1 bit on informative motif columns and 0 in gaps (§3.5). Where each motif was
planted is not stored separately: ``planted_motifs(ds, i)`` recovers the spans exactly from the
stored PWM by matching it against the motif pool, and ``generate_synthetic_code`` also returns them.
The JASPAR pools and the one-hot helpers live in ``jaspar.py``.
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .dataset import Dataset, GroundTruth
from .registry import register_dataset
from .jaspar import (  # noqa: F401  (re-exported: the motif helpers predate the split)
    CORE_MOTIF_IDS, JASPAR_RELEASE, Motif, background_motifs, consensus, core_motifs, motif_by_id, one_hot,
    reverse_complement, reverse_complement_string, select_background_indices, to_strings, vertebrate_motif_ids,
    vertebrate_motifs)

# ``np.where(rand > cumsum(w))[0][-1] + 2`` motifs per grammar: P(3)=.50, P(4)=.25, P(5)=.17,
# P(6)=.05, P(7)=.03 (the last weight, 0.3, only matters through rand > 0.97).
MOTIF_COUNT_WEIGHTS: tuple[float, ...] = (0.0, 0.0, 0.5, 0.25, 0.17, 0.05, 0.3)
SPLIT: tuple[float, float, float] = (0.7, 0.1, 0.2)  # train / valid / test
CLASS_NAMES = ["background grammar", "core-motif grammar"]

class PlantedMotif(NamedTuple):
    """A motif occurrence in a grammar: columns [start, end) of the sequence."""

    start: int
    end: int
    matrix_id: str
    name: str
    strand: str


@dataclass
class SyntheticCode:
    """Everything ``generate_synthetic_code`` draws. Index order: positives first, then negatives."""

    X: np.ndarray  # (N, 4, L) float32 one-hot
    y: np.ndarray  # (N,) int64, 1 = core-motif grammar
    pwm: np.ndarray  # (N, 4, L) float32 generating PWMs
    planted: list[list[PlantedMotif]]  # per sequence, left to right
    train_idx: np.ndarray  # permutation order, as in the original split
    valid_idx: np.ndarray
    test_idx: np.ndarray
    core: list[Motif]  # 10 PWMs
    background: list[Motif]  # 110 PWMs (core first)


# -- the generator -----------------------------------------------------------------------------------
def _grammar(rng: np.random.RandomState, lengths: np.ndarray, cum_dist: np.ndarray,
             length: int) -> tuple[np.ndarray, np.ndarray]:
    """``generate_model`` of the notebook: motif pool indices and gaps (k + 1 of them)."""
    num_motif = len(lengths)
    cum = cum_dist.tolist()
    while True:
        r = rng.rand()
        # == np.where(r > cum_dist)[0][-1] + 2 (IndexError there when nothing passes)
        num_interactions = max(j for j, c in enumerate(cum) if r > c) + 2
        sim_motifs = rng.randint(num_motif, size=num_interactions)
        distance = int(lengths[sim_motifs].sum())
        if length > distance > 0:
            break
    remainder = length - distance
    while True:
        sep = rng.uniform(0, 2, size=len(sim_motifs) + 1)
        # builtin sequential sum, as the notebook's ``sum(sep)``: np.sum adds 8 terms pairwise.
        sep = np.round(sep / sum(sep.tolist()) * remainder).astype(int)
        if int(sep.sum()) == remainder:
            return sim_motifs, sep


def _sample_onehot(pwm: np.ndarray, Z: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Vectorised ``simulate_sequence``: nucleotide = first j with Z < cumsum_j(p), all at once."""
    n, _, length = pwm.shape
    X = np.empty((n, 4, length), dtype=np.float32)
    chans = np.arange(4)[None, :, None]
    for a in range(0, n, chunk):
        cum = pwm[a:a + chunk].cumsum(axis=1)
        idx = np.minimum((Z[a:a + chunk, None, :] >= cum).sum(axis=1), 3)  # 3: guards sum < 1
        X[a:a + chunk] = idx[:, None, :] == chans
    return X


def generate_synthetic_code(n: int = 20000, length: int = 200, seed: int = 22,
                            motif_count_weights: Sequence[float] = MOTIF_COUNT_WEIGHTS,
                            split: Sequence[float] = SPLIT,
                            release: str = JASPAR_RELEASE) -> SyntheticCode:
    """Draw the synthetic-code data exactly as §3.2 (one ``RandomState(seed)`` stream).

    n // 2 positives (core pool) come first, then n - n // 2 negatives (background pool); the
    notebook makes int(n / 2) of each, the same for even n. ``motif_count_weights``: the vector
    whose cumsum is thresholded by one uniform draw (see ``MOTIF_COUNT_WEIGHTS``). ``split``:
    train / valid / test fractions; boundaries ``cumsum([0, *split] * n).astype(int)`` of one
    permutation, as the notebook's ``split_data``.
    """
    if length < 1 or n < 2:
        raise ValueError("need n >= 2 sequences of length >= 1")
    rng = np.random.RandomState(seed)
    allm = vertebrate_motifs(release)
    core = core_motifs(release)
    bg_ids = [allm[i].matrix_id for i in select_background_indices(rng, len(allm))]
    background = background_motifs(release, ids=bg_ids)
    cum_dist = np.cumsum(np.asarray(motif_count_weights, dtype=np.float64))
    if min(m.pwm.shape[1] for m in background) >= length:
        raise ValueError(f"length {length} is too short for any motif")

    n_pos = n // 2
    pwm = np.full((n, 4, length), 0.25, dtype=np.float64)
    Z = np.empty((n, length), dtype=np.float64)
    planted: list[list[PlantedMotif]] = []
    for pool, rows in ((core, range(n_pos)), (background, range(n_pos, n))):
        lengths = np.array([m.pwm.shape[1] for m in pool])
        for i in rows:
            sim_motifs, sep = _grammar(rng, lengths, cum_dist, length)
            pos = int(sep[0])
            spans = []
            for j, k in enumerate(sim_motifs):
                m = pool[k]
                w = m.pwm.shape[1]
                pwm[i, :, pos:pos + w] = m.pwm
                spans.append(PlantedMotif(pos, pos + w, m.matrix_id, m.name, m.strand))
                pos += w + int(sep[j + 1])
            planted.append(spans)
            Z[i] = rng.uniform(0, 1, length)  # simulate_sequence's draws, in stream order
    X = _sample_onehot(pwm, Z)
    y = np.concatenate([np.ones(n_pos, dtype=np.int64), np.zeros(n - n_pos, dtype=np.int64)])

    cum_index = np.cumsum(np.multiply([0, *split], n)).astype(int)
    shuffle = rng.permutation(n)
    train_idx = shuffle[cum_index[0]:cum_index[1]]
    valid_idx = shuffle[cum_index[1]:cum_index[2]]
    test_idx = shuffle[cum_index[2]:cum_index[3]]
    return SyntheticCode(X=X, y=y, pwm=pwm.astype(np.float32), planted=planted,
                         train_idx=train_idx, valid_idx=valid_idx, test_idx=test_idx,
                         core=core, background=background)


def build_dna_motifs(name: str = "dna-motifs", n: int = 20000, length: int = 200, seed: int = 22,
                     motif_count_weights: Sequence[float] = MOTIF_COUNT_WEIGHTS,
                     split: Sequence[float] = SPLIT) -> Dataset:
    """The synthetic-code ``Dataset`` (sequence modality, X (N, 4, L) one-hot over ACGT).

    y: 1 = core-motif grammar (positive), 0 = background grammar; class_names follow (0, 1).
    Ground truth: ``GroundTruth(pwm=(N, 4, L) float32, strength="exact")``.

    Split (70/10/20 of one permutation, as the original): ``test_idx`` is the test part, and
    ``train_idx`` is the train part *followed by* the validation part, both in permutation order
    (not sorted). ``params["n_valid"]`` gives the validation size (2,000 for n = 20,000): a trainer
    takes ``train_idx[-n_valid:]`` as validation and ``train_idx[:-n_valid]`` as training data
    (14,000 / 2,000 / 4,000 for n = 20,000). Index order in X: positives first, then negatives.

    ``params`` also records the JASPAR release and the core / background matrix ids, from which
    ``planted_motifs(ds, i)`` recovers where each motif was planted.
    """
    code = generate_synthetic_code(n=n, length=length, seed=seed,
                                   motif_count_weights=motif_count_weights, split=split)
    bg_ids = [m.matrix_id for m in code.background[len(code.core)::2]]
    params: dict[str, Any] = {
        "n": n, "length": length, "seed": seed,
        "motif_count_weights": [float(w) for w in motif_count_weights],
        "split": [float(s) for s in split],
        "n_train": int(len(code.train_idx)), "n_valid": int(len(code.valid_idx)),
        "n_test": int(len(code.test_idx)),
        "jaspar_release": JASPAR_RELEASE,
        "core_motif_ids": list(CORE_MOTIF_IDS),
        "background_motif_ids": bg_ids,
    }
    gt = GroundTruth(pwm=code.pwm, strength="exact",
                     note="generating PWM per sequence; motif columns are JASPAR 2016 PWMs, "
                          "gaps 0.25; information content > 0.1 marks informative motif positions")
    return Dataset(
        name=name, modality="sequence", X=code.X, y=code.y, class_names=list(CLASS_NAMES),
        feature_names=[f"pos{i}" for i in range(length)],
        train_idx=np.concatenate([code.train_idx, code.valid_idx]), test_idx=code.test_idx,
        ground_truth=gt, description=_DESCRIPTION, params=params,
    )


# -- planted motifs, recovered from the ground-truth PWM ---------------------------------------------
@functools.lru_cache(maxsize=8)
def _match_table(release: str, bg_ids: tuple[str, ...]) -> dict[bytes, list[Motif]]:
    """Pool motifs (float32, as stored) keyed by their first column."""
    table: dict[bytes, list[Motif]] = {}
    seen = set()
    for m in background_motifs(release, ids=list(bg_ids)):
        if (m.matrix_id, m.strand) in seen:
            continue
        seen.add((m.matrix_id, m.strand))
        p32 = m.pwm.astype(np.float32)
        table.setdefault(p32[:, 0].tobytes(), []).append(m._replace(pwm=p32))
    return table


def planted_motifs(ds: Dataset, i: int) -> list[PlantedMotif]:
    """Where motifs were planted in sequence ``i`` of a synthetic-code dataset, left to right.

    Recovered exactly from ``ds.ground_truth.pwm[i]``: the grammar is a tiling of uniform gap
    columns (all 0.25) and pool PWMs, so a depth-first parse against the pool (core + background,
    both strands, ids from ``ds.params``) finds the spans; adjacent motifs with a zero gap are
    separated correctly. A palindromic PWM matching both strands is reported as "+".
    """
    if ds.ground_truth is None or ds.ground_truth.pwm is None:
        raise ValueError("planted_motifs needs the PWM ground truth")
    pwm = np.asarray(ds.ground_truth.pwm[i], dtype=np.float32)
    release = ds.params.get("jaspar_release", JASPAR_RELEASE)
    table = _match_table(release, tuple(ds.params["background_motif_ids"]))
    length = pwm.shape[1]
    gap = np.all(pwm == np.float32(0.25), axis=0)
    dead: set[int] = set()

    def parse(p: int) -> list[PlantedMotif] | None:
        if p == length:
            return []
        if p in dead:
            return None
        for m in table.get(pwm[:, p].tobytes(), []):
            w = m.pwm.shape[1]
            if p + w <= length and np.array_equal(pwm[:, p:p + w], m.pwm):
                rest = parse(p + w)
                if rest is not None:
                    return [PlantedMotif(p, p + w, m.matrix_id, m.name, m.strand), *rest]
        if gap[p]:
            rest = parse(p + 1)
            if rest is not None:
                return rest
        dead.add(p)
        return None

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * length + 100))
    try:
        spans = parse(0)
    finally:
        sys.setrecursionlimit(limit)
    if spans is None:
        raise ValueError(f"sequence {i}: the PWM is not a tiling of gaps and pool motifs")
    return spans


# -- registration -------------------------------------------------------------------------------------
_DESCRIPTION = ("Synthetic regulatory code (Koo & Ploenzke 2021; Majdandzic et al. 2022): JASPAR-2016 "
                "motif grammars in DNA; positives carry only SP1/GABPA/CEBPB/MAX/YY1 motifs, "
                "negatives a 110-PWM background pool; exact PWM ground truth.")
_KNOBS: dict[str, Any] = {"length": 200, "seed": 22,
                          "motif_count_weights": list(MOTIF_COUNT_WEIGHTS), "split": list(SPLIT)}

register_dataset("dna-motifs", "sequence", _DESCRIPTION + " Paper size: 20,000 x 200, seed 22.",
                 build_dna_motifs, default_arch="dna_deep", size="paper", n=20000, **_KNOBS)
register_dataset("dna-motifs-small", "sequence",
                 _DESCRIPTION + " Small: 4,000 sequences, same generator.",
                 build_dna_motifs, default_arch="dna_shallow", size="small", n=4000, **_KNOBS)
