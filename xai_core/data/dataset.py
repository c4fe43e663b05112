"""The ``Dataset`` every part of the engine speaks: inputs, labels, names, split and ground truth.

Layouts (channels first, as torch expects):
- ``expression``: X is (N, G) float32, one column per gene; ``feature_names`` are gene symbols.
- ``image``: X is (N, C, H, W) float32 in [0, 1]; ground truth is a boolean mask (N, H, W).
- ``sequence``: X is (N, 4, L) one-hot float32 over ``ACGT``; ground truth is the generating
  PWM (N, 4, L), from which the per-position information content follows.

Datasets round-trip through ``.npz`` + JSON without pickles (``save`` / ``load``). The JSON records a
checksum (sha256 of the ``.npz`` bytes and of each ``.X/*.npy`` file of a sparse X) that ``load`` verifies;
a mismatch or any read error raises ``DatasetDamaged``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import XaiError
from ..fsutil import file_sha256
from ..modalities import MODALITIES, Modality
from .lazy import SparseRows, column_stats, is_lazy

NUCLEOTIDES = "ACGT"


class DatasetDamaged(XaiError, ValueError):
    """A saved dataset whose files do not match their recorded checksum or cannot be read (a ValueError too,
    as before)."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"dataset files {self.path} are damaged ({reason})")




def _x_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("X.*.npy")) if folder.is_dir() else []


def _verify_checksum(path: Path, checksum: dict[str, Any]) -> None:
    """Raise ``DatasetDamaged`` if the npz or a sparse X file differs from the checksum saved with it."""
    npz = path.with_suffix(".npz")
    if file_sha256(npz) != checksum.get("npz"):
        raise DatasetDamaged(path, f"{npz.name} does not match its recorded sha256")
    recorded = checksum.get("X") or {}
    folder = path.with_suffix(".X")
    found = {p.name: p for p in _x_files(folder)}
    for name, digest in recorded.items():
        if name not in found:
            raise DatasetDamaged(path, f"{folder.name}/{name} is missing")
        if file_sha256(found[name]) != digest:
            raise DatasetDamaged(path, f"{folder.name}/{name} does not match its recorded sha256")


@dataclass
class GroundTruth:
    """What is known to matter, where it is known.

    Attributes
    ----------
    feature_sets : dict of str to ndarray, optional
        Class name -> indices of informative features (true biomarkers for simulated expression, literature
        marker genes for real data: see ``strength``).
    masks : ndarray, optional
        (N, H, W) bool, the lesion pixels of each image.
    pwm : ndarray, optional
        (N, 4, L) float, the per-position nucleotide probabilities a sequence was drawn from.
    strength : str
        "exact" (simulated) or "weak" (curated from the literature).
    note : str
        A line on where the ground truth comes from, shown with it.
    """

    feature_sets: dict[str, np.ndarray] | None = None
    masks: np.ndarray | None = None
    pwm: np.ndarray | None = None
    strength: str = "exact"
    note: str = ""

    def information_content(self, eps: float = 1e-10) -> np.ndarray:
        """Per-position information content in bits, log2(4) + sum_a p log2 p (§3.5), shape (N, L).

        Parameters
        ----------
        eps : float
            Added to each probability before the logarithm.

        Returns
        -------
        ndarray
            (N, L) float32.

        Raises
        ------
        ValueError
            Without a PWM ground truth.
        """
        if self.pwm is None:
            raise ValueError("information content needs a PWM ground truth")
        p = self.pwm.astype(np.float64)
        return (2.0 + (p * np.log2(p + eps)).sum(axis=1)).astype(np.float32)


@dataclass
class Dataset:
    """What every part of the engine speaks: inputs, labels, names, split and ground truth.

    Layouts are channels first (see the module docstring). The inputs are checked when the dataset is made
    (``ValueError`` for an unknown modality, the wrong number of dimensions, or a label count that differs from
    the input count), and a dense ``X`` becomes contiguous float32.

    Attributes
    ----------
    name : str
        The dataset's name (registry key).
    modality : {"expression", "image", "sequence"}
        One of ``MODALITIES``.
    X : ndarray or SparseRows
        (N, G) expression, (N, C, H, W) images in [0, 1], or (N, 4, L) one-hot sequences; a large sparse
        expression matrix stays a lazy ``SparseRows``.
    y : ndarray
        (N,) int64 class indices.
    class_names : list of str
        The name of each class index.
    feature_names : list of str
        Gene symbols (expression), position names (sequence), or empty (image).
    train_idx, test_idx : ndarray
        The split: int64 row indices.
    ground_truth : GroundTruth, optional
        What is known to matter, if anything.
    description : str
        One line for listings.
    params : dict
        The generator's or importer's parameters (``standardized`` is set by ``standardize``).
    feature_groups : ndarray, optional
        (G,) int group id per feature (pathways), or None.
    sample_ids : list of str, optional
        A stable id per row; ``"{name}:{i}"`` when not given.
    """
    name: str
    modality: Modality
    X: np.ndarray
    y: np.ndarray
    class_names: list[str]
    feature_names: list[str]
    train_idx: np.ndarray
    test_idx: np.ndarray
    ground_truth: GroundTruth | None = None
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    feature_groups: np.ndarray | None = None  # (G,) int group id per feature (pathways), or None
    sample_ids: list[str] | None = None

    def __post_init__(self) -> None:
        """Check the inputs and normalise their types (see the class docstring)."""
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if not is_lazy(self.X):  # a SparseRows (large sparse expression) stays lazy
            self.X = np.ascontiguousarray(self.X, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.int64)
        self.train_idx = np.asarray(self.train_idx, dtype=np.int64)
        self.test_idx = np.asarray(self.test_idx, dtype=np.int64)
        expected_ndim = {"expression": 2, "image": 4, "sequence": 3}[self.modality]
        if self.X.ndim != expected_ndim:
            raise ValueError(f"{self.modality} data must have {expected_ndim} dims, got {self.X.shape}")
        if len(self.y) != len(self.X):
            raise ValueError(f"{len(self.X)} inputs but {len(self.y)} labels")
        if self.sample_ids is None:
            self.sample_ids = [f"{self.name}:{i}" for i in range(len(self.X))]

    # -- shape facts ---------------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input, ``X.shape[1:]``."""
        return tuple(self.X.shape[1:])

    def __len__(self) -> int:
        """The number of samples N."""
        return len(self.X)

    def fingerprint(self) -> str:
        """Content hash of inputs, labels and split: identifies the exact data a result used."""
        h = hashlib.sha256()
        if is_lazy(self.X):
            self.X.update_hash(h)
            arrays = (self.y, self.train_idx, self.test_idx)
        else:
            arrays = (self.X, self.y, self.train_idx, self.test_idx)
        for arr in arrays:
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    # -- statistics used by baselines ------------------------------------------------------------
    def train_mean(self) -> np.ndarray:
        """The per-feature mean over the training rows (a baseline for attributions).

        Returns
        -------
        ndarray
            Of the input's shape.
        """
        if is_lazy(self.X):
            return column_stats(self.X, self.train_idx)[0]
        return self.X[self.train_idx].mean(axis=0)

    def class_mean(self, c: int) -> np.ndarray:
        """The per-feature mean over the training rows of one class.

        Parameters
        ----------
        c : int
            The class index.

        Returns
        -------
        ndarray
            Of the input's shape.
        """
        idx = self.train_idx[self.y[self.train_idx] == c]
        if is_lazy(self.X):
            return column_stats(self.X, idx)[0]
        return self.X[idx].mean(axis=0)

    # -- persistence without pickles -------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the dataset without pickles: ``path.npz`` + ``path.json``.

        A sparse X is written as ``.npy`` files in ``path.X/``. The JSON records a checksum (sha256 of the
        ``.npz`` and of each ``.X/*.npy`` file) that ``load`` verifies. Files are written to a temporary name
        and renamed.

        Parameters
        ----------
        path : str or Path
            Where to write; the suffix is replaced by ``.npz``, ``.json`` and ``.X``.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"y": self.y, "train_idx": self.train_idx, "test_idx": self.test_idx}
        if is_lazy(self.X):  # memory-mapped .npy files beside the npz, read back lazily
            self.X.save(path.with_suffix(".X"))
        else:
            arrays["X"] = self.X
        gt = self.ground_truth
        meta: dict[str, Any] = {
            "name": self.name, "modality": self.modality, "class_names": self.class_names,
            "feature_names": self.feature_names, "description": self.description,
            "params": self.params, "sample_ids": self.sample_ids, "ground_truth": None,
            "x_layout": "sparse" if is_lazy(self.X) else "dense",
        }
        if self.feature_groups is not None:
            arrays["feature_groups"] = self.feature_groups
        if gt is not None:
            meta["ground_truth"] = {"strength": gt.strength, "note": gt.note,
                                    "feature_sets": list(gt.feature_sets or {})}
            for k, v in (gt.feature_sets or {}).items():
                arrays[f"fs::{k}"] = np.asarray(v, dtype=np.int64)
            if gt.masks is not None:
                arrays["masks"] = gt.masks
            if gt.pwm is not None:
                arrays["pwm"] = gt.pwm
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        meta["checksum"] = {"algorithm": "sha256", "npz": file_sha256(tmp),
                            "X": {p.name: file_sha256(p) for p in _x_files(path.with_suffix(".X"))}
                            if is_lazy(self.X) else {}}
        tmp.replace(path.with_suffix(".npz"))
        tmp_json = path.with_suffix(".tmp.json")
        tmp_json.write_text(json.dumps(meta))
        tmp_json.replace(path.with_suffix(".json"))

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a saved dataset, verifying its recorded checksum.

        Entries saved without one are verified by reading them.

        Parameters
        ----------
        path : str or Path
            As given to ``save``.

        Returns
        -------
        Dataset

        Raises
        ------
        FileNotFoundError
            When the ``.json`` or ``.npz`` file is missing.
        DatasetDamaged
            On a checksum mismatch or any read error (an ``XaiError`` and a ``ValueError``).
        """
        path = Path(path)
        for p in (path.with_suffix(".json"), path.with_suffix(".npz")):
            if not p.exists():
                raise FileNotFoundError(f"{p} does not exist")
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
            if not isinstance(meta, dict):
                raise ValueError("the JSON record is not an object")
            if meta.get("checksum") is not None:
                _verify_checksum(path, meta["checksum"])
            return cls._read(path, meta)
        except DatasetDamaged:
            raise
        except FileNotFoundError as e:  # a file of the sparse X missing
            raise DatasetDamaged(path, f"{type(e).__name__}: {e}") from None
        except Exception as e:  # noqa: BLE001 - truncated zip, bad JSON, wrong shapes...: all mean damaged
            raise DatasetDamaged(path, f"{type(e).__name__}: {e}") from None

    @classmethod
    def _read(cls, path: Path, meta: dict[str, Any]) -> Dataset:
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        gt = None
        if meta["ground_truth"] is not None:
            g = meta["ground_truth"]
            fs = {k: arrays[f"fs::{k}"] for k in g["feature_sets"]} or None
            gt = GroundTruth(feature_sets=fs, masks=arrays.get("masks"), pwm=arrays.get("pwm"),
                             strength=g["strength"], note=g["note"])
        X = SparseRows.load(path.with_suffix(".X")) if meta.get("x_layout") == "sparse" else arrays["X"]
        return cls(name=meta["name"], modality=meta["modality"], X=X, y=arrays["y"],
                   class_names=meta["class_names"], feature_names=meta["feature_names"],
                   train_idx=arrays["train_idx"], test_idx=arrays["test_idx"], ground_truth=gt,
                   description=meta["description"], params=meta["params"],
                   feature_groups=arrays.get("feature_groups"), sample_ids=meta["sample_ids"])


def split_indices(n: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The study's split (§1.4): shuffle with ``np.random.seed(seed)``, first ``test_size`` = test.

    Parameters
    ----------
    n : int
        The number of samples.
    test_size : float
        The fraction of samples in the test set (rounded).
    seed : int
        The shuffle's seed.

    Returns
    -------
    train_idx, test_idx : ndarray
        Sorted indices.
    """
    rng = np.random.RandomState(seed)
    idx = np.arange(n)
    rng.shuffle(idx)
    n_test = int(round(test_size * n))
    return np.sort(idx[n_test:]), np.sort(idx[:n_test])


def standardize(ds: Dataset, eps: float = 1e-8) -> Dataset:
    """Per-feature standardisation with training statistics only (§1.4). Returns a new Dataset.

    A lazy sparse ``X`` stays sparse: the statistics are applied to each densified batch of rows.

    Parameters
    ----------
    ds : Dataset
        The dataset to standardise.
    eps : float
        A standard deviation below ``eps`` is taken as 1 (constant features are only centred).

    Returns
    -------
    Dataset
        With ``params["standardized"] = True``.
    """
    if is_lazy(ds.X):
        params = dict(ds.params, standardized=True)
        return Dataset(**{**ds.__dict__, "X": ds.X.standardized(ds.train_idx, eps), "params": params})
    tr = ds.X[ds.train_idx]
    mu, sd = tr.mean(axis=0), tr.std(axis=0)
    sd = np.where(sd < eps, 1.0, sd)
    X = (ds.X - mu) / sd
    params = dict(ds.params, standardized=True)
    return Dataset(**{**ds.__dict__, "X": X.astype(np.float32), "params": params})
