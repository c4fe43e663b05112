"""What the Gene rankings page shows, from the results store: cached class rankings, per-sample views and
correlations, and the tables beside its figures.

Kept out of the page so the page only reads state and draws. All science is in ``xai_core.genes``; maps come
from the store (computed once, on click), so the cached functions below are called only once every map they
need is stored, and then just read it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from xai_core import genes
from xai_core.data import load_dataset

from . import state


def known_genes(ds) -> tuple[dict[int, np.ndarray], bool, str]:
    """(known genes per class, whether they are exact ground truth, what the page calls them)."""
    truth = genes.truth_sets(ds)
    exact = ds.ground_truth is not None and ds.ground_truth.strength == "exact"
    return truth, exact, "true biomarkers" if exact else "literature markers" if truth else "known marker genes"


def samples(ds, pred: np.ndarray, n_per_class: int, only_correct: bool) -> tuple[np.ndarray, list[str]]:
    """(test samples explained: up to ``n_per_class`` per class, names of the classes left without one)."""
    idx = genes.select_per_class(ds.y, pred, ds.test_idx, n_per_class, only_correct)
    return idx, [ds.class_names[c] for c in range(ds.n_classes) if not (ds.y[idx] == c).any()]


def missing_methods(ev, methods: list[str], idx: np.ndarray) -> list[str]:
    """The methods with a map missing from the store for some of ``idx``."""
    return [m for m in methods if genes.missing_attributions(ev, m, idx)]


def population_stored(evp, method: str, idx: np.ndarray) -> bool:
    """Whether the training-seed models of ``evp`` are trained and their maps of ``method`` all stored."""
    return genes.population_trained(evp) and not any(
        genes.missing_attributions(evp, method, idx, m) for m in evp.population_models())


@st.cache_data(show_spinner="Differential expression (scanpy rank_genes_groups)…", max_entries=16)
def de_scores(name: str, test: str) -> tuple[np.ndarray, np.ndarray]:
    d = load_dataset(name)
    return genes.de_scores(d.X[d.train_idx], d.y[d.train_idx], d.n_classes, test)


def _ev_idx(ds_name: str, model: str, seed: int, idx: tuple):
    ev = state.evaluation(ds_name, model, seed)
    return ev, np.asarray(idx, dtype=np.int64)


@st.cache_data(show_spinner="Ranking genes…", max_entries=8)
def class_rankings(ds_name: str, model: str, seed: int, methods: tuple, idx: tuple) -> dict[str, np.ndarray]:
    ev, ix = _ev_idx(ds_name, model, seed, idx)
    return {state.method_label(m): genes.evaluation_class_scores(ev, m, ix) for m in methods}


@st.cache_data(show_spinner="Comparing each sample with its class…", max_entries=16)
def local_view(ds_name: str, model: str, seed: int, methods: tuple, idx: tuple, cls: int, k: int) -> dict:
    ev, ix = _ev_idx(ds_name, model, seed, idx)
    ix = ix[ev.ds.y[ix] == cls]
    t_c, out = genes.truth_sets(ev.ds).get(cls), {}
    for m in methods:
        name = state.method_label(m)
        a = genes.evaluation_attributions(ev, m, ix)
        g = class_rankings(ds_name, model, seed, methods, idx)[name][cls]
        lg, top, an = genes.local_vs_global(a, g, k), genes.order(g)[:k], genes.normalised(a).numpy()
        out[name] = {"local": None if t_c is None else genes.local_precision(a, t_c, k), "top": top,
                     "shared": lg["shared_top_k"].to_numpy(), "spearman": lg["spearman"].to_numpy(),
                     "heat": an[:, top], "ranks": genes.ranks(an)[:, top], "samples": [f"sample {i}" for i in ix]}
    return out


@st.cache_data(show_spinner="Correlating rankings…", max_entries=16)
def method_corr(ds_name: str, model: str, seed: int, methods: tuple, idx: tuple, test: str,
                classes: tuple | None) -> pd.DataFrame:
    de = de_scores(ds_name, test)[0]
    return genes.rank_correlation({**class_rankings(ds_name, model, seed, methods, idx), f"DE ({test})": de},
                                  None if classes is None else list(classes))


@st.cache_data(show_spinner="Ranking genes of the retrained models…", max_entries=8)
def seed_rankings(ds_name: str, model: str, seed: int, method: str, idx: tuple, K: int, E,
                  classes: tuple | None) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    evp = state.evaluation_for(ds_name, model, seed, population_seeds=K, population_epochs=E)
    per_seed = genes.seed_scores(evp, method, np.asarray(idx, dtype=np.int64))
    return per_seed, genes.rank_correlation(per_seed, None if classes is None else list(classes))


def top_genes(scores: dict[str, np.ndarray], cls: int, k: int, gene_names: list[str], truth: np.ndarray | None
              ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Per method, the top-k table of class ``cls``; all of them in one long table (for the download) and one
    wide table of gene names (rank x method, known genes starred)."""
    tables = {n: genes.top_table(s[cls], k, gene_names, truth) for n, s in scores.items()}
    long = pd.concat([t.assign(method=n) for n, t in tables.items()], ignore_index=True)
    wide = long.assign(gene=long["gene"] + np.where(long.get("known", False), " ★", "")).pivot(
        index="rank", columns="method", values="gene")[list(tables)]
    return tables, long, wide


def overlap_with_known(rankings: dict[str, np.ndarray], truth: np.ndarray, k: int, n_genes: int
                       ) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The overlap table of each (G,) ranking's top k with the known genes, and its recovery curve over k."""
    ks = np.unique(np.linspace(1, min(n_genes, max(3 * len(truth), 2 * k)), 60).astype(int))
    return (genes.overlap_table(rankings, truth, k, n_genes),
            {n: (ks, genes.recovery_curve(s, truth, ks)) for n, s in rankings.items()})


def class_precision(lv: dict, truth: np.ndarray | None, n_genes: int) -> dict[str, float] | None:
    """Precision of each method's class top k (``local_view``'s "top") among the known genes."""
    return {n: genes.overlap(v["top"], truth, n_genes)["precision"] for n, v in lv.items()} if truth is not None \
        else None


def de_side_by_side(scores_c: np.ndarray, de_c: np.ndarray, padj_c: np.ndarray, method: str, de_name: str, k: int,
                    gene_names: list[str], truth: np.ndarray | None) -> dict:
    """One method's class ranking beside the differential-expression one: both top-k tables (each with the
    gene's rank in the other), every gene's two ranks, their Spearman correlation and the known-gene mask."""
    a_tab = genes.top_table(scores_c, k, gene_names, truth, {de_name: de_c})
    dt = genes.top_table(de_c, k, gene_names, truth, {method: scores_c})
    dt["adjusted p-value"] = padj_c[genes.order(de_c)[:k]]
    n_genes = len(de_c)
    return {"attribution": a_tab, "de": dt, "rank_attribution": genes.ranks(scores_c), "rank_de": genes.ranks(de_c),
            "rho": genes.spearman_matrix(np.vstack([scores_c, de_c]))[0, 1],
            "known": np.isin(np.arange(n_genes), truth) if truth is not None else None}
