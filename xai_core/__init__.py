"""xai_core: explain deep-learning models on biological data and audit the explanations (no UI).

The user-data entry points are importable from here (loaded on first use, so ``import xai_core`` stays
light): ``from_anndata``, ``from_h5ad``, ``from_table``, ``from_image_folder``, ``from_image_csv``,
``from_fasta`` return a ``Dataset``; ``register(ds, name)`` adds it to the datasets every command and page
sees; ``import_data(path, name, ...)`` reads and registers a file in one step.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "from_anndata": "xai_core.data.load_expression", "from_h5ad": "xai_core.data.load_expression",
    "from_table": "xai_core.data.load_expression", "from_image_folder": "xai_core.data.load_images",
    "from_image_csv": "xai_core.data.load_images", "from_fasta": "xai_core.data.load_sequences",
    "register": "xai_core.data.user", "import_data": "xai_core.data.user", "load_dataset": "xai_core.data",
    "to_anndata": "xai_core.export",
    "register_model": "xai_core.models.user_models", "import_model": "xai_core.models.user_models",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xai_core' has no attribute {name!r}")
