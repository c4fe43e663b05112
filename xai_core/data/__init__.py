"""Datasets with known ground truth: simulators, bundled real data, and their registry."""
from .dataset import MODALITIES, NUCLEOTIDES, Dataset, GroundTruth, split_indices, standardize
from .registry import DATASETS, DatasetSpec, cache_dir, list_datasets, load_dataset, register_dataset

# Importing the generator modules registers their datasets.
from . import expression_sim, expression_real, grain, dna  # noqa: F401
# The user's own datasets (kept in the cache folder) join the registry on every listing and lookup miss.
from . import user
from .user import import_data, register, remove as remove_user_dataset, user_entries
from . import load_expression, load_images, load_sequences  # noqa: F401  (register their importers)
from .importers import IMPORTERS, detect_format, list_importers, read_user_data
from .lazy import SparseRows
from .user_common import UserDataError

DATASETS.refreshers.append(user.refresh)

__all__ = ["MODALITIES", "NUCLEOTIDES", "Dataset", "GroundTruth", "split_indices", "standardize",
           "DATASETS", "DatasetSpec", "cache_dir", "list_datasets", "load_dataset", "register_dataset",
           "import_data", "register", "remove_user_dataset", "user_entries", "IMPORTERS", "detect_format",
           "list_importers", "read_user_data", "SparseRows", "UserDataError"]
