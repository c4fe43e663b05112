"""Real expression data that ships inside installed packages (works offline).

- ``pbmc68k``: ``scanpy.datasets.pbmc68k_reduced()`` (Zheng et al. 2017, 10x PBMC 68k, subsampled):
  700 cells x 765 genes, 10 FACS-sorted cell types (``obs["bulk_labels"]``). Inputs are the
  log-normalised expression in ``adata.raw`` (log1p of per-cell normalised counts, same 765 genes as
  ``adata.X``; ``adata.X`` is already scaled over all cells, test cells included, so it is not used),
  standardised per gene with training statistics. Ground truth: literature marker genes (weak).
- ``breast-cancer``: ``sksurv.datasets.load_breast_cancer()`` (GSE7390, Desmedt et al. 2007): 198
  tumours x 76 Affymetrix HG-U133A probes (the 76-gene prognostic signature of Wang et al. 2005), label
  ER status. Age, size and grade are dropped from the inputs. The features are probe ids (with R's
  ``X`` prefix, as given), and none of the classic ER-pathway genes' probes (ESR1 205225_at, GATA3
  209602_s_at/209603_at/209604_s_at, FOXA1 204667_at, XBP1 200670_at, TFF1 205009_at, PGR 208305_at,
  TFF3 204623_at) is among them, so it has no ground truth.
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import Dataset, GroundTruth, standardize
from .registry import register_dataset

# Canonical marker genes of the PBMC types, keyed by the ``bulk_labels`` of pbmc68k_reduced.
# Curated from: the Seurat PBMC 3k guided-clustering tutorial (Satija lab: IL7R, CCR7, CD14, LYZ,
# S100A4, MS4A1, CD8A, GNLY, NKG7, FCER1A, CST3); the Azimuth human PBMC reference (Hao et al., Cell
# 2021) level-2 marker lists; PanglaoDB (Franzén et al., Database 2019); and the sorted populations of
# Zheng et al., Nat. Commun. 2017 (which define these labels: CD14, CD19, CD34, CD56, CD4/CD25,
# CD4/CD45RO, CD4/CD45RA/CD25-, CD8, CD8/CD45RA, dendritic). Markers absent from the 765 genes are
# dropped when the dataset is built (``params["markers_present"]`` lists those kept).
PBMC_MARKERS: dict[str, list[str]] = {
    "CD14+ Monocyte": ["CD14", "LYZ", "FCN1", "S100A8", "S100A9", "S100A12", "CST3", "VCAN", "CTSS",
                       "MNDA", "CSF1R"],
    "Dendritic": ["FCER1A", "CST3", "CLEC10A", "CD1C", "HLA-DQA1", "HLA-DQB1", "HLA-DRA", "HLA-DPB1",
                  "ITGAX", "LILRA4", "IL3RA", "CLEC4C", "PLD4", "SERPINF1"],
    "CD56+ NK": ["NKG7", "GNLY", "KLRD1", "KLRF1", "NCAM1", "PRF1", "GZMB", "GZMA", "FCGR3A", "SPON2",
                 "FGFBP2"],
    "CD19+ B": ["CD79A", "CD79B", "MS4A1", "CD19", "CD22", "PAX5", "BANK1", "IGHM", "TCL1A", "BLK"],
    "CD8+ Cytotoxic T": ["CD8A", "CD8B", "CD3D", "CD3E", "GZMK", "GZMH", "CCL5"],
    "CD8+/CD45RA+ Naive Cytotoxic": ["CD8A", "CD8B", "CD3E", "CCR7", "SELL", "LEF1", "TCF7"],
    "CD4+/CD25 T Reg": ["CD4", "FOXP3", "IL2RA", "CTLA4", "IKZF2", "TIGIT", "TNFRSF4", "TNFRSF18"],
    "CD4+/CD45RO+ Memory": ["CD4", "CD3E", "IL7R", "S100A4", "LTB", "AQP3", "ITGB1"],
    "CD4+/CD45RA+/CD25- Naive T": ["CD4", "CD3E", "IL7R", "CCR7", "SELL", "LEF1", "TCF7"],
    "CD34+": ["CD34", "PROM1", "KIT", "FLT3", "SPINK2", "PRSS57", "CYTL1", "EGFL7", "GATA2"],
}

PBMC_SPLIT_SEED = 0
PBMC_TEST_SIZE = 0.3


def _read_pbmc68k():
    """The AnnData of ``scanpy.datasets.pbmc68k_reduced()``. Reads the bundled h5ad with anndata
    directly when it is where scanpy keeps it (saves ~3 s of importing scanpy), else asks scanpy."""
    spec = importlib.util.find_spec("scanpy")
    locs = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locs:
        path = Path(loc) / "datasets" / "10x_pbmc68k_reduced.h5ad"
        if path.exists():
            import anndata  # noqa: PLC0415 - anndata (0.6 s): only the pbmc68k dataset needs it
            with warnings.catch_warnings():  # the bundled file's old format: nothing to act on
                warnings.simplefilter("ignore")
                return anndata.read_h5ad(path)
    import scanpy  # noqa: PLC0415 - scanpy (2.4 s): only the pbmc68k dataset, when its file is not found, needs it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return scanpy.datasets.pbmc68k_reduced()


def _dense(a: Any) -> np.ndarray:
    return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype=np.float32)


def _stratified_split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 - sklearn: slow import (seconds)
    tr, te = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)
    return np.sort(tr), np.sort(te)


def build_pbmc68k(name: str, test_size: float = PBMC_TEST_SIZE, seed: int = PBMC_SPLIT_SEED) -> Dataset:
    adata = _read_pbmc68k()
    genes = [str(g) for g in adata.var_names]
    if adata.raw is not None and list(adata.raw.var_names) == genes:
        X, values = _dense(adata.raw.X), "adata.raw: log1p of per-cell normalised counts"
    else:  # not the case for the bundled file; kept for other versions of it
        X, values = _dense(adata.X), "adata.X (already scaled by scanpy)"
    labels = adata.obs["bulk_labels"]
    class_names = [str(c) for c in labels.cat.categories]
    y = labels.cat.codes.to_numpy().astype(np.int64)
    gene_index = {g: i for i, g in enumerate(genes)}
    feature_sets, present = {}, {}
    for c in class_names:
        hits = [g for g in PBMC_MARKERS.get(c, []) if g in gene_index]
        present[c] = hits
        feature_sets[c] = np.array([gene_index[g] for g in hits], dtype=np.int64)
    train_idx, test_idx = _stratified_split(y, test_size, seed)
    ds = Dataset(
        name=name, modality="expression", X=X, y=y, class_names=class_names, feature_names=genes,
        train_idx=train_idx, test_idx=test_idx,
        ground_truth=GroundTruth(feature_sets=feature_sets, strength="weak",
                                 note="literature marker genes, not causal truth"),
        description=PBMC_DESCRIPTION,
        params={"test_size": test_size, "seed": seed, "split": "stratified (sklearn train_test_split)",
                "values": values + ", then per-gene standardised with training mean and std",
                "markers_present": present},
        sample_ids=[str(s) for s in adata.obs_names])
    return standardize(ds)


def build_breast_cancer(name: str, test_size: float = 0.3, seed: int = 0) -> Dataset:
    from sksurv.datasets import load_breast_cancer  # noqa: PLC0415 - sksurv (3.7 s): only the breast-cancer dataset
    data, _ = load_breast_cancer()
    clinical = {"age", "er", "grade", "size"}
    probes = [c for c in data.columns if c not in clinical]
    X = data[probes].to_numpy(dtype=np.float32)
    er = data["er"].astype(str).to_numpy()
    y = (er == "positive").astype(np.int64)
    train_idx, test_idx = _stratified_split(y, test_size, seed)
    ds = Dataset(
        name=name, modality="expression", X=X, y=y, class_names=["ER-negative", "ER-positive"],
        feature_names=[str(p) for p in probes], train_idx=train_idx, test_idx=test_idx,
        ground_truth=None, description=BREAST_DESCRIPTION,
        params={"test_size": test_size, "seed": seed, "split": "stratified (sklearn train_test_split)",
                "values": "microarray expression as shipped (GSE7390 via scikit-survival), then per-probe "
                          "standardised with training mean and std",
                "features": "76 Affymetrix HG-U133A probes (R 'X' prefix kept); age, size, grade dropped",
                "ground_truth": "none: no ER-pathway gene (ESR1, GATA3, FOXA1, XBP1, TFF1, PGR) among "
                                "the probes"},
        sample_ids=[f"GSE7390:{i}" for i in data.index])
    return standardize(ds)


PBMC_DESCRIPTION = ("PBMC 68k subset, 700 cells x 765 genes, 10 sorted cell types (scanpy "
                    "pbmc68k_reduced, log-normalised); literature marker genes as weak ground truth")
BREAST_DESCRIPTION = ("Breast cancer microarrays (GSE7390), 198 tumours x 76 probes, ER-negative vs "
                      "ER-positive; no ground truth")

register_dataset("pbmc68k", "expression", PBMC_DESCRIPTION, build_pbmc68k, "mlp", size="small",
                 test_size=PBMC_TEST_SIZE, seed=PBMC_SPLIT_SEED)
register_dataset("breast-cancer", "expression", BREAST_DESCRIPTION, build_breast_cancer, "lr",
                 size="small", test_size=0.3, seed=0)
