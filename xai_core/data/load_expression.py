"""A user's own expression data: AnnData (``.h5ad``, or an object in memory) and CSV/TSV tables.

Every reader returns a ``Dataset`` of modality ``expression`` (cells x genes) and records what it did in
``Dataset.params``. Policies (also in ``docs/user_data_expression.md``):

- **Values** are used as given (``X`` or the named layer); no normalisation or log transform is applied.
  With ``standardize`` (the default) each gene is centred and scaled with the mean and std of the
  *training* cells only, as for the bundled data. NaN or infinite values are refused.
- **Sparse stays sparse:** a sparse matrix becomes a ``SparseRows`` (CSR, densified a batch of rows at a
  time); an ``.h5ad``'s sparse ``X`` is read as its three arrays (``data``, ``indices``, ``indptr``, CSC
  converted to CSR), so a 100,000 x 20,000 file costs about those arrays in memory. A dense ``X`` whose
  float32 copy (twice that when standardising) exceeds the available memory is refused.
- **max_cells=N:** a stratified subsample drawn before anything is densified: each class keeps a share
  proportional to its size (largest remainders), at least two cells, drawn with ``RandomState(seed)``.
- **hvg=N:** scanpy's ``flavor="seurat"`` dispersion (the values are taken as log-normalised, so
  ``expm1`` is applied; per-gene mean and variance; log dispersion z-scored within 20 bins of
  log1p(mean)), computed here on the *training* cells without densifying, keeping exactly the N genes
  with the highest normalised dispersion (ties by gene order). Negative values or values above 50 (not
  log scale) are refused.
- **markers** (CSV ``class,gene`` or GMT, set name = class) become weak ground truth; **gene_sets** (GMT)
  become ``feature_groups`` (the first set holding a gene; -1 for none). Gene names match exactly;
  genes absent from the data (or removed by ``hvg``) are dropped and listed in ``params``.
- **Orientation** of a table: ``auto`` takes cells x genes when the label column is in the header; with a
  label file, its ids matched against the header mean genes x cells, against the first column cells x
  genes. ``params["orientation"]`` says which and how it was found.

The readers live in ``expression_h5ad`` (AnnData) and ``expression_table`` (CSV/TSV); the shared assembly in
``expression_assemble``, cell and gene selection in ``expression_select``, marker and gene-set files in
``expression_truth``. This module keeps the public entry points and registers the importers.
"""
from __future__ import annotations

from .expression_h5ad import detect_h5ad, from_anndata, from_h5ad
from .expression_select import highly_variable
from .expression_table import detect_table, from_table
from .importers import Importer, register_importer

__all__ = ["from_anndata", "from_h5ad", "from_table", "highly_variable"]


_COMMON = {
    "markers": "marker genes per class (weak ground truth): CSV class,gene (header optional) or GMT",
    "gene_sets": "gene sets for pathway grouping: GMT (name, description, genes...)",
    "hvg": "keep the N most variable genes (scanpy's seurat dispersion, on the training cells)",
    "max_cells": "a stratified, seeded subsample of N cells, drawn before anything is densified",
    "standardize": "per-gene standardisation with training statistics (default true)",
    "test_size": "fraction of cells held out when no split is given (default 0.25)",
    "seed": "seed of the split and of the max_cells subsample (default 0)",
}

register_importer(Importer(
    name="h5ad", kind="expression",
    description="AnnData .h5ad: labels from an obs column, X or a layer (sparse stays sparse)",
    detect=detect_h5ad, read=lambda path, name, **o: from_h5ad(path, name, **o),
    options={"label_key": "the obs column holding the labels", "layer": "a layer instead of X",
             "split_key": "an obs column with train/test values (else a stratified split)", **_COMMON},
    side_files=("markers", "gene_sets")))

register_importer(Importer(
    name="table", kind="expression",
    description="CSV/TSV table: cells x genes with a label column, or genes x cells with a label file",
    detect=detect_table, read=lambda path, name, **o: from_table(path, name, **o),
    options={"label_column": "the column holding the labels (cells x genes; default 'label')",
             "labels": "label file CSV id,label[,split] (genes x cells, or cells x genes without a label column)",
             "orientation": "auto (default), 'cells x genes' or 'genes x cells'",
             "sep": "field separator (default: tab if the header has one, else comma)",
             "split_column": "a column with train/test values (else a stratified split)", **_COMMON},
    side_files=("markers", "gene_sets", "labels")))
