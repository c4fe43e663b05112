"""Datasets with known ground truth: simulators, bundled real data, and their registry."""
from .dataset import MODALITIES, NUCLEOTIDES, Dataset, GroundTruth, split_indices, standardize
from .registry import DATASETS, DatasetSpec, cache_dir, list_datasets, load_dataset, register_dataset

# Importing the generator modules registers their datasets.
from . import expression_sim, expression_real, grain, dna  # noqa: E402,F401

__all__ = ["MODALITIES", "NUCLEOTIDES", "Dataset", "GroundTruth", "split_indices", "standardize",
           "DATASETS", "DatasetSpec", "cache_dir", "list_datasets", "load_dataset", "register_dataset"]
