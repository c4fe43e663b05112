"""Gene rankings for expression data: per-class (global) and per-sample (local) rankings, their overlap with
known genes, their stability across methods and training seeds, and a differential-expression ranking.

Conventions (Bontonou et al., protocol §1.7c): attributions are signed "evidence for the sample's class" (for
single-logit binary models the map of class-0 samples is negated, as in ``metrics.agreement``); a sample's
local ranking orders its genes by that evidence; the global ranking of class c orders genes by the mean over
the class's samples of their L2-normalised attributions. Everything returns plain numpy / pandas.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from scipy.stats import hypergeom

from .errors import UnknownChoice
from .metrics.agreement import topk_hits
from .metrics.inputs import class_feature_sets
from .metrics.ops import average_ranks
from .progress import ProgressFn


# -- rankings ----------------------------------------------------------------------------------------
def oriented(a, y, n_outputs: int) -> torch.Tensor:
    """(N, G) float64 attributions as evidence for each sample's class (single logit: class 0 negated)."""
    a = (a if torch.is_tensor(a) else torch.as_tensor(np.asarray(a))).double().reshape(len(y), -1)
    if n_outputs == 1:
        a = a * torch.where(torch.as_tensor(np.asarray(y)) == 0, -1.0, 1.0).to(a)[:, None]
    return a


def normalised(a: torch.Tensor) -> torch.Tensor:
    """Each row divided by its L2 norm (the study's divide_by_norm); all-zero rows stay zero."""
    return a / a.norm(dim=1, keepdim=True).clamp(min=1e-300)


def class_scores(a, y, n_classes: int) -> np.ndarray:
    """(C, G) global scores: per class, the mean of the L2-normalised attributions of its samples.

    Classes without a sample get NaN rows. Genes ranked by this score give the class's global ranking.

    Parameters
    ----------
    a : Tensor or ndarray
        Attributions (N, G).
    y : ndarray
        The class of each sample (N,).
    n_classes : int
        The number of classes C.

    Returns
    -------
    ndarray
        (C, G).
    """
    a = normalised(torch.as_tensor(a).double())
    y = torch.as_tensor(np.asarray(y), dtype=torch.long)
    onehot = torch.nn.functional.one_hot(y, n_classes).double()  # (N, C)
    count = onehot.sum(0)[:, None]
    out = (onehot.T @ a) / count.clamp(min=1)
    return torch.where(count > 0, out, torch.full_like(out, float("nan"))).numpy()


def order(scores) -> np.ndarray:
    """Gene indices from most to least relevant along the last axis (ties: lower gene index first)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), axis=-1, kind="stable")


def ranks(scores) -> np.ndarray:
    """1-based rank of every gene along the last axis (1 = most relevant; ties by lower gene index)."""
    o = order(scores)
    r = np.empty_like(o)
    np.put_along_axis(r, o, np.arange(1, o.shape[-1] + 1), axis=-1)
    return r


# -- overlap with known genes ---------------------------------------------------------------------------
def truth_sets(ds) -> dict[int, np.ndarray]:
    """Known genes per class index (true biomarkers or literature markers); {} when none are known."""
    return class_feature_sets(ds) or {}


def overlap(top: np.ndarray, truth: np.ndarray, n_genes: int) -> dict:
    """Overlap of a top-k gene list with a known set.

    Hits, precision@k, recall, the overlap expected by chance (k |T| / G) and the hypergeometric p-value
    P(X >= hits) of drawing k genes at random.

    Parameters
    ----------
    top : ndarray
        The top-k gene indices.
    truth : ndarray
        The known gene indices T.
    n_genes : int
        The number of genes G drawn from.

    Returns
    -------
    dict
        ``k``, ``n_known``, ``hits``, ``precision``, ``recall``, ``expected``, ``p_value`` (NaN where undefined).
    """
    top, truth = np.asarray(top), np.asarray(truth)
    k, m = len(top), len(truth)
    hits = int(np.isin(top, truth).sum())
    return {"k": k, "n_known": m, "hits": hits, "precision": hits / k if k else np.nan,
            "recall": hits / m if m else np.nan, "expected": k * m / n_genes,
            "p_value": float(hypergeom.sf(hits - 1, n_genes, m, k)) if m and k else np.nan}


def recovery_curve(scores, truth: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """precision@k of the ranking for each k in ``ks`` (cumulative hits along the ranking)."""
    hit = np.isin(order(scores), np.asarray(truth)).cumsum()
    ks = np.clip(np.asarray(ks, dtype=np.int64), 1, len(hit))
    return hit[ks - 1] / ks


def local_precision(a, truth: np.ndarray, k: int) -> np.ndarray:
    """(N,) share of each sample's k top-ranked genes that are in ``truth`` (metrics.agreement's top-k)."""
    a = torch.as_tensor(a).double()
    if len(a) == 0:
        return np.zeros(0)
    T = torch.zeros(a.shape[1], dtype=torch.bool)
    T[torch.as_tensor(np.asarray(truth, dtype=np.int64))] = True
    kk = torch.full((len(a),), min(int(k), a.shape[1]), dtype=torch.long)
    return topk_hits(a, T[None].expand(len(a), -1), kk).numpy()


def local_vs_global(a, global_scores, k: int) -> pd.DataFrame:
    """Per sample: the share of its top-k genes that are also in the class's global top-k, and the Spearman
    correlation of its local ranking with the global one."""
    a = np.asarray(torch.as_tensor(a).double())
    g = np.asarray(global_scores, dtype=np.float64)
    k = min(int(k), a.shape[1])
    top_g = np.zeros(a.shape[1], dtype=bool)
    top_g[order(g)[:k]] = True
    shared = top_g[order(a)[:, :k]].mean(1)
    rho = spearman_matrix(np.vstack([g[None], a]))[0, 1:]
    return pd.DataFrame({"shared_top_k": shared, "spearman": rho})


# -- stability ---------------------------------------------------------------------------------------
def spearman_matrix(rows) -> np.ndarray:
    """(M, M) Spearman correlation between the rows of (M, G) scores (average ranks for ties); rows that
    are constant give NaN; the diagonal of a non-constant row is 1."""
    r = average_ranks(torch.as_tensor(np.asarray(rows, dtype=np.float64)))
    r = r - r.mean(1, keepdim=True)
    norm = r.norm(dim=1)
    c = (r @ r.T) / (norm[:, None] * norm[None, :])
    c = torch.where((norm[:, None] > 0) & (norm[None, :] > 0), c.clamp(-1, 1), torch.full_like(c, float("nan")))
    return c.numpy()


def rank_correlation(scores: dict[str, np.ndarray], classes: list[int] | None = None) -> pd.DataFrame:
    """Spearman matrix between named rankings.

    Values (C, G) are averaged over ``classes`` (default all classes present in every ranking), values (G,) are
    correlated directly.

    Parameters
    ----------
    scores : dict of str to ndarray
        Name -> (C, G) or (G,) scores.
    classes : list of int, optional
        The classes to average over.

    Returns
    -------
    DataFrame
        Name x name.
    """
    names = list(scores)
    stack = np.stack([np.asarray(scores[n], dtype=np.float64) for n in names])
    if stack.ndim == 2:
        return pd.DataFrame(spearman_matrix(stack), index=names, columns=names)
    if classes is None:
        classes = [c for c in range(stack.shape[1]) if np.isfinite(stack[:, c]).all()]
    mats = [spearman_matrix(stack[:, c]) for c in classes]
    if not mats:
        return pd.DataFrame(np.full((len(names), len(names)), np.nan), index=names, columns=names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return pd.DataFrame(np.nanmean(np.stack(mats), 0), index=names, columns=names)


def topk_overlap_matrix(scores: dict[str, np.ndarray], k: int) -> pd.DataFrame:
    """(M, M) share of genes two (G,) rankings have in common among their top k (1 = same top-k set)."""
    names = list(scores)
    tops = [set(order(scores[n])[:k].tolist()) for n in names]
    m = np.array([[len(a & b) / max(k, 1) for b in tops] for a in tops])
    return pd.DataFrame(m, index=names, columns=names)


# -- differential expression ---------------------------------------------------------------------------
DE_METHODS = ("t-test", "wilcoxon")


def de_scores(X: np.ndarray, y: np.ndarray, n_classes: int, method: str = "t-test") -> tuple[np.ndarray, np.ndarray]:
    """One class versus the rest, with scanpy ``rank_genes_groups``.

    Returns (C, G) scores (t statistic or Wilcoxon z-score; higher = more expressed in the class) and (C, G)
    Benjamini-Hochberg adjusted p-values, both in gene order. Classes absent from ``y`` give NaN rows.

    Parameters
    ----------
    X : ndarray
        Expression (N, G).
    y : ndarray
        The class of each sample (N,).
    n_classes : int
        The number of classes C.
    method : str
        ``"t-test"`` or ``"wilcoxon"`` (``DE_METHODS``).

    Returns
    -------
    scores, padj : ndarray
        (C, G) each.

    Raises
    ------
    UnknownChoice
        For another ``method``.
    """
    import anndata  # noqa: PLC0415 - anndata (0.6 s): only the differential-expression baseline needs it
    import scanpy as sc  # noqa: PLC0415 - scanpy (2.4 s): only the differential-expression baseline needs it

    if method not in DE_METHODS:
        raise UnknownChoice("differential-expression test", method, DE_METHODS)
    X, y = np.asarray(X, dtype=np.float32), np.asarray(y)
    G = X.shape[1]
    score, padj = np.full((n_classes, G), np.nan), np.full((n_classes, G), np.nan)
    present = [c for c in range(n_classes) if (y == c).any()]
    if len(present) < 2:
        return score, padj
    adata = anndata.AnnData(X.copy())
    adata.var_names = [str(i) for i in range(G)]
    adata.obs["cls"] = pd.Categorical([str(v) for v in y])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.rank_genes_groups(adata, "cls", method=method, reference="rest", n_genes=G, use_raw=False,
                                corr_method="benjamini-hochberg")
    res = adata.uns["rank_genes_groups"]
    for c in present:
        genes = np.asarray(res["names"][str(c)], dtype=np.int64)
        score[c, genes] = np.asarray(res["scores"][str(c)], dtype=np.float64)
        padj[c, genes] = np.asarray(res["pvals_adj"][str(c)], dtype=np.float64)
    return score, padj


# -- tables ------------------------------------------------------------------------------------------
def top_table(scores, k: int, gene_names: list[str], truth: np.ndarray | None = None,
              other: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """The k top genes of a (G,) score vector.

    Columns: rank, gene, score, known (in ``truth``), and the rank the same gene has in each ``other`` ranking.

    Parameters
    ----------
    scores : ndarray
        (G,) scores, higher first.
    k : int
        How many genes.
    gene_names : list of str
        The name of each gene.
    truth : ndarray, optional
        Known gene indices; adds the ``known`` column.
    other : dict of str to ndarray, optional
        Name -> (G,) scores; adds a ``rank in NAME`` column each.

    Returns
    -------
    DataFrame
    """
    top = order(scores)[:k]
    df = pd.DataFrame({"rank": np.arange(1, len(top) + 1), "gene": [gene_names[i] for i in top],
                       "score": np.asarray(scores, dtype=np.float64)[top]})
    if truth is not None:
        df["known"] = np.isin(top, truth)
    for name, s in (other or {}).items():
        df[f"rank in {name}"] = ranks(s)[top]
    return df


def overlap_table(scores: dict[str, np.ndarray], truth: np.ndarray, k: int, n_genes: int) -> pd.DataFrame:
    """One row per named (G,) ranking: the overlap of its top-k with ``truth`` (see ``overlap``)."""
    rows = [{"ranking": n, **overlap(order(s)[:k], truth, n_genes)} for n, s in scores.items()]
    return pd.DataFrame(rows)


# -- an Evaluation's samples and stored maps ----------------------------------------------------------------
# Engine-side, so the CLI, a notebook and the dashboard's Gene rankings page rank genes the same way: these take
# an ``xai_core.runner.Evaluation`` (maps computed once, then read from its results store).
def select_per_class(y: np.ndarray, pred: np.ndarray, candidates: np.ndarray, n_per_class: int,
                     only_correct: bool = True) -> np.ndarray:
    """Up to ``n_per_class`` candidates of every class (the first ones, correctly classified if asked)."""
    candidates = np.asarray(candidates)
    keep = candidates[pred[candidates] == y[candidates]] if only_correct else candidates
    return np.sort(np.concatenate([keep[y[keep] == c][:n_per_class] for c in np.unique(y[keep])] or [keep[:0]]))


def missing_attributions(ev, method: str, idx: np.ndarray, member: tuple | None = None) -> int:
    """How many of ``idx`` have no stored map of ``method`` (for the main model or a population member)."""
    return len(ev.stored_attributions(method, idx, member)[1])


def population_trained(ev) -> bool:
    """Whether the K training-seed models of ``ev.config`` are already on disk."""
    return all(p.exists() for p in ev.population_paths())


def evaluation_attributions(ev, method: str, idx: np.ndarray, progress: ProgressFn | None = None,
                             member: tuple | None = None) -> torch.Tensor:
    """An Evaluation's maps as gene evidence for each sample's class (see ``oriented``).

    Parameters
    ----------
    ev : xai_core.runner.Evaluation
        The dataset, model and results store.
    method : str
        An explainer name.
    idx : numpy.ndarray
        Sample indices into ``ev.ds``.
    progress : callable, optional
        Gets the progress events while missing maps are computed.
    member : tuple, optional
        (name, model, checkpoint hash) of a population model, to explain with it instead of the main model.

    Returns
    -------
    torch.Tensor
        (N, G) float64 on the CPU: the stored maps (missing ones computed and stored first), oriented.
    """
    return oriented(ev.attributions(method, idx, progress, member=member).cpu(), ev.ds.y[idx], ev.ctx.n_outputs)


def evaluation_class_scores(ev, method: str, idx: np.ndarray, progress: ProgressFn | None = None,
                            member: tuple | None = None) -> np.ndarray:
    """(C, G) global scores (see ``class_scores``) of ``method`` over the samples ``idx`` of an Evaluation.

    Parameters
    ----------
    ev : xai_core.runner.Evaluation
        The dataset, model and results store.
    method : str
        An explainer name.
    idx : numpy.ndarray
        Sample indices into ``ev.ds``; the classes without a sample among them get NaN rows.
    progress : callable, optional
        Gets the progress events while missing maps are computed.
    member : tuple, optional
        (name, model, checkpoint hash) of a population model, to rank with it instead of the main model.

    Returns
    -------
    numpy.ndarray
        (C, G) float64 class scores; a class's genes ranked by them give its global ranking.
    """
    return class_scores(evaluation_attributions(ev, method, idx, progress, member), ev.ds.y[idx], ev.ds.n_classes)


def seed_scores(ev, method: str, idx: np.ndarray, progress: ProgressFn | None = None) -> dict[str, np.ndarray]:
    """(C, G) global scores of ``method`` for the main model and every population model.

    The population is trained and explained once, then read from the cache and the store.

    Parameters
    ----------
    ev : Evaluation
        The evaluation (its ``population_seeds`` set the population).
    method : str
        The method.
    idx : ndarray
        Row indices of the dataset.
    progress : ProgressFn, optional
        Gets the training and explain events.

    Returns
    -------
    dict of str to ndarray
        ``"main model"`` and ``"seed K"`` -> (C, G) scores.
    """
    out = {"main model": evaluation_class_scores(ev, method, idx, progress)}
    for member in ev.population_models(progress):
        out[member[0].rsplit("-", 1)[-1].replace("seed", "seed ")] = evaluation_class_scores(ev, method, idx, progress,
                                                                                             member)
    return out
