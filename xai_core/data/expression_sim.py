"""Simulated gene expression with known biomarkers: the hierarchical LDA-like model of Bontonou et al.

The generative process (protocol §1.3, ``Simulation/Data/simulate_data.py`` of the study):

1. Pathways p = 0..P-1 have gene supports G_p. Disjoint (SIMU1, SimuA/B/C): G_p = {k p, ..., k p + k - 1}
   with k = G // P. Overlapping (SIMU2): every gene is in G_p independently with probability
   ``overlap_mean_size / G`` (10 / G in the study), redrawn while |G_p| < 3.
2. beta_p ~ Dirichlet(beta_conc * 1) on G_p (zero elsewhere); the over-expressed pathways' beta_p are
   redrawn until min beta_p >= ``min_beta``.
3. Class c over-expresses S_c = {P_over c, ..., P_over c + P_over - 1}: alpha_c = alpha * 1, times
   ``cls_gap`` on S_c.
4. Sample n of class c: theta_n ~ Dirichlet(alpha_c), m_n ~ Multinomial(R, theta_n) reads per pathway,
   x_n = sum_p Multinomial(m_np, beta_p) reads per gene, then CPM: x_n / (R / 1e6).
5. Classes are balanced, ``int(n_samples / C)`` samples each. The informative genes of class c are the
   union of G_p over p in S_c (37 x 10 = 370 per class in SIMU1).

SimuA/B/C generate 2 / 4 / 6 classes and regroup them into 2: generated classes 0..C-2 become class 0,
class C-1 becomes class 1 (HEAD ``regroup=True``).

The design (supports, beta, over-expressed pathways, informative genes) is drawn from the seeded
generator *before* any sample, so it does not depend on ``n_samples``: ``simulation_design`` gives the
ground truth of a paper preset without sampling its thousands of samples.

Sampling loops over pathways only; each step is one vectorised multinomial over all samples. Measured
on a 2-core machine (simulation / whole ``load_dataset`` build with split and standardisation): SIMU1
(9,900 x 15,000) 20 s / 23 s; SIMU2 (overlapping, 3,000 pathways: twice the binomial draws) 50 s /
56 s; SimuA/B/C (1,200 x 50,000) 9-10 s / 11-14 s. Builds are cached by ``load_dataset``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from ..errors import XaiError
from .dataset import Dataset, GroundTruth, split_indices, standardize
from .registry import register_dataset

MIN_SUPPORT = 3  # overlapping supports are redrawn while smaller than this (§1.3 step 2)
_MAX_BETA_TRIES = 10_000


@dataclass
class SimulationDesign:
    """Everything fixed before sampling: supports, gene distributions and the ground truth."""

    n_classes: int  # final classes (after regrouping)
    n_generated: int  # generated (sub)classes
    n_genes: int
    supports: list[np.ndarray]  # pathway -> sorted gene indices
    beta: list[np.ndarray]  # pathway -> gene probabilities on its support (sums to 1)
    over_pathways: dict[int, np.ndarray]  # generated class -> its over-expressed pathways S_c
    sub_informative: dict[int, np.ndarray]  # generated class -> union of G_p, p in S_c
    informative: dict[int, np.ndarray]  # final class -> informative genes
    sub_to_class: np.ndarray  # (n_generated,) final class of each generated class
    disjoint: bool

    def feature_groups(self) -> np.ndarray:
        """Pathway id per gene: its pathway (disjoint) or the first pathway containing it; -1 if none."""
        groups = np.full(self.n_genes, -1, dtype=np.int64)
        for p in range(len(self.supports) - 1, -1, -1):  # backwards, so the lowest id wins
            groups[self.supports[p]] = p
        return groups


@dataclass
class SimulationResult:
    X: np.ndarray  # (N, G) float32 CPM (counts / (reads / 1e6)), rows sum to 1e6
    y: np.ndarray  # (N,) final class labels
    sub_y: np.ndarray  # (N,) generated (sub)class labels (equal to y without regrouping)
    design: SimulationDesign
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def supports(self) -> list[np.ndarray]:
        return self.design.supports

    @property
    def informative(self) -> dict[int, np.ndarray]:
        return self.design.informative


def _check(n_classes: int, n_pathways: int, n_genes: int, p_over: int, sub_classes: int | None,
           overlapping: bool, overlap_mean_size: float) -> int:
    n_gen = n_classes if sub_classes is None else int(sub_classes)
    if sub_classes is not None and n_classes != 2:
        raise XaiError(f"sub_classes regroups generated classes into 2 classes; got n_classes={n_classes}")
    if n_gen < 2:
        raise XaiError(f"need at least 2 generated classes, got {n_gen}")
    if p_over < 1 or p_over * n_gen > n_pathways:
        raise XaiError(f"p_over={p_over} x {n_gen} generated classes needs at least {p_over * n_gen} "
                       f"pathways, got n_pathways={n_pathways}")
    if not overlapping and n_genes < n_pathways:
        raise XaiError(f"disjoint supports need n_genes >= n_pathways, got {n_genes} < {n_pathways}")
    if overlapping and not (MIN_SUPPORT <= overlap_mean_size < n_genes):
        raise XaiError(f"overlap_mean_size must be in [{MIN_SUPPORT}, n_genes), got {overlap_mean_size}")
    return n_gen


def _draw_supports(rng: np.random.Generator, n_pathways: int, n_genes: int, overlapping: bool,
                   overlap_mean_size: float) -> list[np.ndarray]:
    if not overlapping:
        k = n_genes // n_pathways
        return [np.arange(k * p, k * (p + 1), dtype=np.int64) for p in range(n_pathways)]
    # Each gene independently with probability s, redrawn while |G_p| < 3: the size is a Binomial(G, s)
    # truncated at >= 3, and given the size the support is a uniform subset. Same law, no G-wide draws.
    s = overlap_mean_size / n_genes
    sizes = rng.binomial(n_genes, s, size=n_pathways)
    while (small := sizes < MIN_SUPPORT).any():
        sizes[small] = rng.binomial(n_genes, s, size=int(small.sum()))
    return [np.sort(rng.choice(n_genes, size=int(k), replace=False)).astype(np.int64) for k in sizes]


def simulation_design(n_classes: int, n_pathways: int, n_genes: int, p_over: int, n_samples: int = 0,
                      beta_conc: float = 5.0, overlapping: bool = False, min_beta: float = 0.01,
                      sub_classes: int | None = None, overlap_mean_size: float = 10.0,
                      head_informative: bool = False, seed: int = 0,
                      rng: np.random.Generator | None = None, reads: int = 1_500_000,
                      alpha: float = 4.0, cls_gap: float = 2.0) -> SimulationDesign:
    """Supports, beta and ground truth of a simulation, without sampling (same draws as the simulator).

    Takes the simulator's parameters; ``n_samples``, ``reads``, ``alpha`` and ``cls_gap`` only matter
    for sampling and are accepted so that one parameter dict serves both.

    ``head_informative``: for 2-class problems, also count the other class's over-expressed genes as
    informative for each class (the study's HEAD ``get_informative_variables(other_class=...)``).
    """
    n_gen = _check(n_classes, n_pathways, n_genes, p_over, sub_classes, overlapping, overlap_mean_size)
    rng = np.random.default_rng(seed) if rng is None else rng
    supports = _draw_supports(rng, n_pathways, n_genes, overlapping, overlap_mean_size)
    beta = [rng.dirichlet(np.full(len(g), beta_conc)) for g in supports]
    over = {c: np.arange(p_over * c, p_over * (c + 1), dtype=np.int64) for c in range(n_gen)}
    for p in np.concatenate(list(over.values())):
        tries = 0
        while beta[p].min() < min_beta:
            tries += 1
            if tries > _MAX_BETA_TRIES:
                raise XaiError(f"pathway {p}: no beta with min >= min_beta={min_beta} after "
                               f"{_MAX_BETA_TRIES} draws; lower min_beta or raise beta_conc")
            beta[p] = rng.dirichlet(np.full(len(supports[p]), beta_conc))
    sub_inf = {c: np.unique(np.concatenate([supports[p] for p in over[c]])) for c in range(n_gen)}
    if sub_classes is None:
        sub_to_class = np.arange(n_gen, dtype=np.int64)
    else:
        sub_to_class = np.where(np.arange(n_gen) < n_gen - 1, 0, 1).astype(np.int64)
    informative = {c: np.unique(np.concatenate([sub_inf[s] for s in np.flatnonzero(sub_to_class == c)]))
                   for c in range(n_classes)}
    if head_informative and n_classes == 2:
        both = np.union1d(informative[0], informative[1])
        informative = {0: both, 1: both.copy()}
    return SimulationDesign(n_classes=n_classes, n_generated=n_gen, n_genes=n_genes, supports=supports,
                            beta=beta, over_pathways=over, sub_informative=sub_inf,
                            informative=informative, sub_to_class=sub_to_class,
                            disjoint=not overlapping)


_OVERLAP_CHUNK = 2_048  # samples per chunk when supports overlap (part of the seeded stream: keep fixed)


def _sample_genes(rng: np.random.Generator, m: np.ndarray, design: SimulationDesign) -> np.ndarray:
    """x_n = sum_p Multinomial(m_np, beta_p) for all n: one vectorised multinomial per pathway.

    Counts are at most ``reads`` < 2**24, so they are exact in float32.
    """
    n = len(m)
    mT = np.ascontiguousarray(m.T)  # (P, N): each pathway's reads contiguous
    X = np.empty((n, design.n_genes), dtype=np.float32)
    if design.disjoint:
        X[:] = 0  # genes beyond P * k belong to no pathway
        for p, (g, b) in enumerate(zip(design.supports, design.beta)):
            X[:, g[0]:g[-1] + 1] = rng.multinomial(mT[p], b)
        return X
    # Overlapping supports: write each pathway's counts to its own rows of a (sum |G_p|, chunk)
    # slab, then add the slots of each gene with one sparse (G x sum |G_p|) product. Scattering
    # into X column by column instead is several times slower.
    sizes = np.array([len(g) for g in design.supports])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    slot_gene = np.concatenate(design.supports)
    S = sparse.csr_matrix((np.ones(len(slot_gene), dtype=np.float32),
                           (slot_gene, np.arange(len(slot_gene)))),
                          shape=(design.n_genes, len(slot_gene)))
    for s0 in range(0, n, _OVERLAP_CHUNK):
        s1 = min(n, s0 + _OVERLAP_CHUNK)
        slab = np.empty((len(slot_gene), s1 - s0), dtype=np.float32)
        for p, b in enumerate(design.beta):
            slab[offsets[p]:offsets[p + 1]] = rng.multinomial(mT[p, s0:s1], b).T
        X[s0:s1] = (S @ slab).T
    return X


def simulate_expression(n_classes: int, n_pathways: int, n_genes: int, p_over: int, n_samples: int,
                        reads: int = 1_500_000, alpha: float = 4.0, cls_gap: float = 2.0,
                        beta_conc: float = 5.0, overlapping: bool = False, min_beta: float = 0.01,
                        sub_classes: int | None = None, seed: int = 0, overlap_mean_size: float = 10.0,
                        head_informative: bool = False) -> SimulationResult:
    """Draw a data set from the hierarchical model (§1.3). See the module docstring.

    ``sub_classes``: number of generated classes regrouped into 2 (SimuA/B/C: 2 / 4 / 6); generated
    classes 0..C-2 become class 0 and C-1 becomes class 1. Requires ``n_classes == 2``.
    Returns X as float32 CPM (each row sums to 1e6), y, the generated labels and the design.
    """
    params = dict(n_classes=n_classes, n_pathways=n_pathways, n_genes=n_genes, p_over=p_over,
                  n_samples=n_samples, reads=reads, alpha=alpha, cls_gap=cls_gap, beta_conc=beta_conc,
                  overlapping=overlapping, min_beta=min_beta, sub_classes=sub_classes, seed=seed,
                  overlap_mean_size=overlap_mean_size, head_informative=head_informative)
    rng = np.random.default_rng(seed)
    design = simulation_design(rng=rng, **params)
    n_gen = design.n_generated
    per_class = int(n_samples / n_gen)
    if per_class < 1:
        raise XaiError(f"n_samples={n_samples} gives no sample to some of the {n_gen} generated classes")

    # theta_n ~ Dirichlet(alpha_c), m_n ~ Multinomial(R, theta_n): one vectorised draw per class.
    sub_y = np.repeat(np.arange(n_gen, dtype=np.int64), per_class)
    m = np.empty((len(sub_y), n_pathways), dtype=np.int64)
    for c in range(n_gen):
        a = np.full(n_pathways, float(alpha))
        a[design.over_pathways[c]] *= cls_gap
        theta = rng.dirichlet(a, size=per_class)
        m[c * per_class:(c + 1) * per_class] = rng.multinomial(reads, theta)

    X = _sample_genes(rng, m, design)
    del m
    X /= np.float32(reads / 1e6)
    y = design.sub_to_class[sub_y]
    return SimulationResult(X=X, y=y, sub_y=sub_y, design=design, params=params)


def build_simulated(name: str, n_classes: int, n_pathways: int, n_genes: int, p_over: int,
                    n_samples: int, reads: int = 1_500_000, alpha: float = 4.0, cls_gap: float = 2.0,
                    beta_conc: float = 5.0, overlapping: bool = False, min_beta: float = 0.01,
                    sub_classes: int | None = None, seed: int = 0, overlap_mean_size: float = 10.0,
                    head_informative: bool = False, test_size: float = 0.4, split_seed: int = 43,
                    description: str = "") -> Dataset:
    """Simulate, split (§1.4: shuffle with seed 43, first 40 % = test) and standardise per gene with
    the training mean and std (the study's HEAD behaviour; the raw CPM is not kept)."""
    sim = simulate_expression(n_classes, n_pathways, n_genes, p_over, n_samples, reads=reads, alpha=alpha,
                              cls_gap=cls_gap, beta_conc=beta_conc, overlapping=overlapping,
                              min_beta=min_beta, sub_classes=sub_classes, seed=seed,
                              overlap_mean_size=overlap_mean_size, head_informative=head_informative)
    d = sim.design
    class_names = [f"class {c}" for c in range(n_classes)]
    feature_sets: dict[str, np.ndarray] = {class_names[c]: d.informative[c] for c in range(n_classes)}
    params: dict[str, Any] = dict(sim.params, test_size=test_size, split_seed=split_seed,
                                  values="CPM (counts / (reads / 1e6)), then per-gene standardised "
                                         "with training mean and std")
    if sub_classes is not None:
        # Per-sub-class ground truth, for per-sub-class feature agreement (§1.3 step 5).
        for c in range(n_classes):
            for k, s in enumerate(np.flatnonzero(d.sub_to_class == c)):
                feature_sets[f"{class_names[c]} / sub {k}"] = d.sub_informative[int(s)]
        sub_index = np.zeros(d.n_generated, dtype=np.int64)
        for c in range(n_classes):
            subs = np.flatnonzero(d.sub_to_class == c)
            sub_index[subs] = np.arange(len(subs))
        params["sub_labels"] = sub_index[sim.sub_y].tolist()  # sub-class within its class, per sample
    n_inf = [len(d.informative[c]) for c in range(n_classes)]
    note = (f"genes of the {p_over} over-expressed pathways of each class "
            f"({min(n_inf)}-{max(n_inf)} per class)")
    if head_informative and n_classes == 2:
        note += "; HEAD convention: each class also counts the other class's genes"
    train_idx, test_idx = split_indices(len(sim.y), test_size, split_seed)
    ds = Dataset(name=name, modality="expression", X=sim.X, y=sim.y, class_names=class_names,
                 feature_names=[f"G{i + 1:05d}" for i in range(n_genes)],
                 train_idx=train_idx, test_idx=test_idx,
                 ground_truth=GroundTruth(feature_sets=feature_sets, strength="exact", note=note),
                 description=description, params=params, feature_groups=d.feature_groups())
    del sim
    return standardize(ds)


def _register(name: str, description: str, size: str, **params: Any) -> None:
    defaults = dict(reads=1_500_000, alpha=4.0, cls_gap=2.0, beta_conc=5.0, overlapping=False,
                    min_beta=0.01, sub_classes=None, seed=0, overlap_mean_size=10.0,
                    head_informative=False, test_size=0.4, split_seed=43)
    register_dataset(name, "expression", description, _builder(description), "mlp", size=size,
                     **{**defaults, **params})


def _builder(description: str):
    def build(name: str, **params: Any) -> Dataset:
        return build_simulated(name, description=description, **params)
    return build


_register("simu-small", "Simulated expression, 5 classes, 200 disjoint pathways x 10 genes, "
          "100 informative genes per class (small SIMU1-style demo)", "small",
          n_classes=5, n_pathways=200, n_genes=2_000, p_over=10, n_samples=1_000)
_register("simu1", "Simulated expression, 33 classes, disjoint pathways (SIMU1, Bontonou et al.)",
          "paper", n_classes=33, n_pathways=1_500, n_genes=15_000, p_over=37, n_samples=9_900)
_register("simu2", "Simulated expression, 33 classes, overlapping pathways (SIMU2, Bontonou et al.)",
          "paper", n_classes=33, n_pathways=3_000, n_genes=15_000, p_over=37, n_samples=9_900,
          overlapping=True)
_register("simuA", "Simulated expression, 2 classes, 50,000 genes (SimuA, Bontonou et al.)",
          "paper", n_classes=2, sub_classes=2, n_pathways=5_000, n_genes=50_000, p_over=500,
          n_samples=1_200)
_register("simuB", "Simulated expression, 2 classes, class 0 made of 3 sub-classes "
          "(SimuB, Bontonou et al.)", "paper", n_classes=2, sub_classes=4, n_pathways=5_000,
          n_genes=50_000, p_over=500, n_samples=1_200)
_register("simuC", "Simulated expression, 2 classes, class 0 made of 5 sub-classes "
          "(SimuC, Bontonou et al.)", "paper", n_classes=2, sub_classes=6, n_pathways=5_000,
          n_genes=50_000, p_over=500, n_samples=1_200)
