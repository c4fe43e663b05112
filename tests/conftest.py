import os
import tempfile

import numpy as np
import pytest
import torch

# Generated datasets are cached; tests use their own cache unless the caller set one.
os.environ.setdefault("XAI_CORE_CACHE", os.path.join(tempfile.gettempdir(), "xai_core_test_cache"))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def make_dataset(modality: str, n: int = 60, seed: int = 0, n_classes: int = 2):
    """A tiny Dataset of the given modality with random inputs (for shape and closed-form tests)."""
    from xai_core.data import Dataset

    rng = np.random.default_rng(seed)
    if modality == "expression":
        X = rng.normal(size=(n, 30)).astype("f4")
        names = [f"G{i}" for i in range(30)]
    elif modality == "image":
        X = rng.random((n, 3, 32, 32)).astype("f4")
        names = []
    else:
        X = np.eye(4, dtype="f4")[rng.integers(0, 4, (n, 200))].transpose(0, 2, 1).copy()
        names = [f"pos{i}" for i in range(200)]
    y = rng.integers(0, n_classes, n)
    y[:n_classes] = np.arange(n_classes)
    cut = int(0.8 * n)
    return Dataset("tiny", modality, X, y, [f"c{i}" for i in range(n_classes)], names,
                   np.arange(cut), np.arange(cut, n))


@pytest.fixture
def tiny():
    return make_dataset


@pytest.fixture
def app_store(tmp_path, monkeypatch):
    """A fresh results store for dashboard tests, and streamlit caches cleared (they live per process)."""
    import streamlit as st

    monkeypatch.setenv("XAI_CORE_STORE", str(tmp_path / "results.sqlite"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path / "results.sqlite"
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def pop_cache(tmp_path, monkeypatch):
    """A private model cache (so earlier runs' members never leak in) that shares the generated datasets."""
    from xai_core.data import cache_dir

    shared = cache_dir() / "datasets"
    shared.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "cache"
    root.mkdir()
    (root / "datasets").symlink_to(shared, target_is_directory=True)
    monkeypatch.setenv("XAI_CORE_CACHE", str(root))
    return root
