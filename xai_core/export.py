"""Results out: stored attributions, per-class gene scores and the method ranking, written with the data as AnnData.

``to_anndata(dataset, model)`` reads what the results store holds for one expression dataset and one checkpoint
(keyed by the dataset fingerprint and the checkpoint hash) and returns an ``AnnData`` (written to ``out`` when
given): ``.var`` gets ``xai_<method>_<class>`` (signed mean attribution) and ``xai_<method>_<class>_abs`` (mean
absolute attribution) per class, ``.obs`` the label, split and prediction, ``.layers["xai_<method>"]`` the per-cell
maps (``per_cell``), ``.uns["xai"]`` the ranking, the provenance and the definition of every column. Nothing is
computed here besides the model's predictions; the exact definitions are in ``docs/export.md``.

A dataset imported from the user's own ``.h5ad`` is exported as a byte copy of that file with the columns added
(their ``X``, ``obs``, ``var``, ``layers`` and ``uns`` kept; their file is only read). Genes the import dropped
(``hvg``) get NaN in the new ``.var`` columns and cells it dropped (``max_cells``) NaN in the layers.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import torch

from .data import DATASETS, load_dataset
from .data.user import entry_of
from .errors import XaiError
from .explainers import EXPLAINERS
from .models import load_model
from .provenance import now, package_versions
from .ranking import mc_mrr
from .runner import ranking_input
from .store import ResultStore, default_store_path, params_key

PREFIX = "xai_"
CHUNK = 2048  # cells read from the store at once (bounds memory on large datasets)
MAX_LAYER_BYTES = 2 * 1024 ** 3  # per-cell layers are dense float32 (NaN = not explained): refuse beyond this
N_DRAWS = 10_000  # the ranking: the defaults of `python -m xai_core rank`
NOT_EXPRESSION = "AnnData export is for expression data; use explain's attributions.npz for images and sequences"
MEAN_DEF = ("signed mean over the explained cells labelled {c} of their stored {m} attribution of this gene "
            "(each cell is explained toward its own label, so this is the gene's mean evidence for class {c}; "
            "positive = raises the class logit); NaN for genes the model did not use")
ABS_DEF = ("mean over the explained cells labelled {c} of the absolute {m} attribution of this gene (magnitude "
           "of importance, no cancellation of signs); NaN for genes the model did not use")


@dataclass
class _Setting:
    method: str
    method_key: str
    method_params: dict
    output: str
    created: str
    updated: str
    alternatives: int = 0  # other stored parameter settings / outputs of this method, not exported


@dataclass
class _Parts:
    """What is added to the exported object, aligned to its obs and var."""

    obs: dict[str, Any] = field(default_factory=dict)
    var: dict[str, np.ndarray] = field(default_factory=dict)
    layers: dict[str, np.ndarray] = field(default_factory=dict)
    uns: dict[str, Any] = field(default_factory=dict)


def check_exportable(name: str) -> None:
    """Unknown names list the valid ones; images and sequences are refused before anything is loaded."""
    if DATASETS.get(name).modality != "expression":
        raise XaiError(NOT_EXPRESSION)


def column_name(*parts: str) -> str:
    """``xai_<parts>`` with every run of characters other than letters, digits and ``_`` made one ``_``."""
    return PREFIX + "_".join(re.sub(r"[^0-9A-Za-z_]+", "_", str(p)).strip("_") or "x" for p in parts)


def _default_key(method: str, modality: str) -> dict | None:
    """The parameters a default evaluate run stores for ``method`` (as ``Evaluation.method_key``)."""
    try:
        spec = EXPLAINERS.get(method)
    except XaiError:
        return None
    p = spec.params_for(modality, {})
    return p if spec.version == 1 else {**p, "_version": spec.version}


def _settings(store, ds, fp: str, mh: str) -> dict[str, _Setting]:
    """One stored (parameters, output) per method: output 'logit' first, then the default parameters, then newest."""
    groups: dict[tuple, _Setting] = {}
    for r in store.provenance(kind="attributions", dataset_fp=fp, model_hash=mh):
        k = (r["method"], r["method_key"], r["output"])
        s = groups.get(k)
        if s is None:
            groups[k] = _Setting(r["method"], r["method_key"], r["method_params"], r["output"], r["created"],
                                 r["updated"])
        else:
            s.created, s.updated = min(s.created, r["created"]), max(s.updated, r["updated"])
    out: dict[str, _Setting] = {}
    for method in sorted({k[0] for k in groups}):
        cands = [s for k, s in groups.items() if k[0] == method]
        default = _default_key(method, ds.modality)
        dkey = None if default is None else params_key(default)
        best = max(cands, key=lambda s: (s.output == "logit", s.method_key == dkey, s.updated))
        best.alternatives = len(cands) - 1
        out[method] = best
    return out


def _predict(model, ds) -> np.ndarray:
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(ds), 512):
            z = model(torch.as_tensor(ds.X[np.arange(i, min(i + 512, len(ds)))], device=dev))
            out.append(((z[:, 0] > 0).long() if z.shape[1] == 1 else z.argmax(1)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _ranking(store, ds, fp: str, mh: str, settings: dict[str, _Setting]) -> dict[str, Any]:
    """The Monte Carlo MRR of the exported methods on their stored scores (as `rank`, default options)."""
    f = store.scores_frame(dataset=ds.name, methods=list(settings))
    f = f[(f["dataset_fp"] == fp) & (f["model_hash"] == mh)]
    f = f[np.asarray([settings[m].method_key == k and settings[m].output == o
                      for m, k, o in zip(f["method"], f["method_key"], f["output"])], dtype=bool)]
    latest = f.groupby("metric")["metric_key"].last()  # rows come in store order: the newest setting of a metric
    f = ranking_input(f[f["metric_key"].to_numpy() == latest.reindex(f["metric"]).to_numpy()]) if len(f) else f
    if f["method"].nunique() < 2:
        return {"note": "no ranking: fewer than two exported methods have stored scores; run "
                        f"`python -m xai_core evaluate --dataset {ds.name} --out DIR` to score them"}
    res = mc_mrr(f, n_draws=N_DRAWS, dist="normal", seed=0, missing="worst")
    t, p = res.table, res.rank_probabilities
    return {"ranker": "mrr (Monte Carlo mean reciprocal rank; python -m xai_core rank defaults)",
            "methods": t.index.to_numpy(str), "mrr": t["mrr"].to_numpy(float), "mrr_lo": t["mrr_lo"].to_numpy(float),
            "mrr_hi": t["mrr_hi"].to_numpy(float), "mean_rank": t["mean_rank"].to_numpy(float),
            "rank": t["rank"].to_numpy(int), "rank_probabilities": p.to_numpy(float),
            "rank_probability_columns": np.asarray(p.columns, dtype=int),
            "metrics_used": np.asarray(res.metrics_used, dtype=str),
            "dropped_metrics": np.asarray(list(res.dropped), dtype=str),
            "dropped_reasons": np.asarray(list(res.dropped.values()), dtype=str),
            "params_json": json.dumps({**res.params, "metric_keys": latest.to_dict()}, default=str)}


def _h5(obj: Any) -> Any:
    """Plain values h5ad can write: dicts with str keys, arrays, str, numbers; None dropped."""
    if isinstance(obj, dict):
        return {str(k): _h5(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return np.asarray([str(v) for v in obj] if any(isinstance(v, str) for v in obj) else obj)
    return obj


def _write_parts(src: Path, out: Path, parts: _Parts) -> None:
    """Copy ``src`` to ``out`` byte for byte, then add ``parts`` to the copy (its sha256 goes in the provenance)."""
    from anndata.io import write_elem  # noqa: PLC0415 - anndata (0.6 s): only an .h5ad export needs it

    h = hashlib.sha256()
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            for block in iter(lambda: fi.read(1 << 20), b""):
                h.update(block)
                fo.write(block)
        parts.uns["provenance"]["dataset"]["source_sha256"] = h.hexdigest()
        with h5py.File(tmp, "r+") as f:
            obs, var = _frames(f, src)
            for k, v in parts.obs.items():
                obs[k] = v
            for k, v in parts.var.items():
                var[k] = v
            write_elem(f, "obs", obs)
            write_elem(f, "var", var)
            for name in ("layers", "uns"):
                if name not in f:
                    write_elem(f, name, {})
            for k, v in parts.layers.items():
                write_elem(f["layers"], k, v)
            write_elem(f["uns"], "xai", parts.uns)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _frames(f, src: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """obs and var of an open h5ad file, read with anndata's element reader (never unpickles)."""
    from anndata.io import read_elem  # noqa: PLC0415 - anndata (0.6 s): only an .h5ad export needs it

    try:
        return read_elem(f["obs"]), read_elem(f["var"])
    except Exception as e:  # noqa: BLE001 - any failure of anndata's reader on this file becomes one XaiError
        raise XaiError(f"cannot read obs/var of {src} with this anndata ({type(e).__name__}: {e}); open it with "
                       f"anndata and write_h5ad it again, then import and evaluate that file") from None


def _source(ds) -> Path:
    entry = entry_of(ds.name) or {}
    for p in (entry.get("source"), ds.params.get("source")):
        if p and Path(p).is_file():
            return Path(p)
    raise XaiError(f"the file {ds.params.get('source')} that '{ds.name}' was imported from is gone; put it back "
                   f"to export into a copy of it")


def _add_method(st, ds, fp: str, mh: str, s: _Setting, row: np.ndarray, col: np.ndarray, n_obs: int, n_var: int,
                per_cell: bool, user_h5ad: bool, parts: _Parts, defs: dict) -> dict[str, Any]:
    """Read ``s.method``'s stored maps of every cell of ``ds`` (CHUNK cells at a time) into per-class sums; add
    its ``.var`` columns, its ``xai_explained_<method>`` obs column and (``per_cell``) its layer to ``parts``."""
    method, classes, G = s.method, list(ds.class_names), len(ds.feature_names)
    sums, abss, cnt = np.zeros((len(classes), G)), np.zeros((len(classes), G)), np.zeros(len(classes), np.int64)
    explained = np.zeros(len(ds), bool)
    layer = np.full((n_obs, n_var), np.nan, np.float32) if per_cell else None
    key = dict(dataset_fp=fp, model_hash=mh, method=method, method_params=s.method_params, output=s.output)
    for i in range(0, len(ds), CHUNK):
        pos = np.arange(i, min(i + CHUNK, len(ds)))
        ids = [ds.sample_ids[j] for j in pos]
        arr, miss = st.get_attributions(sample_ids=ids, **key)
        if arr is None:  # some cells of the chunk are not stored: read the others
            gone = set(miss)
            pos = np.asarray([j for j, sid in zip(pos, ids) if sid not in gone], dtype=np.int64)
            if not len(pos):
                continue
            arr, _ = st.get_attributions(sample_ids=[ds.sample_ids[j] for j in pos], **key)
        arr = arr.reshape(len(pos), -1).astype(np.float64)
        if arr.shape[1] != G:
            raise XaiError(f"stored {method} attributions have {arr.shape[1]} values per cell, '{ds.name}' has "
                           f"{G} genes")
        explained[pos] = True
        for c in np.unique(ds.y[pos]):
            a = arr[ds.y[pos] == c]
            sums[c] += a.sum(0)
            abss[c] += np.abs(a).sum(0)
            cnt[c] += len(a)
        if layer is not None:
            layer[np.ix_(row[pos], col)] = arr
    for c, name in enumerate(classes):
        if cnt[c] == 0:  # no explained cell of this class: no column (listed in uns missing.classes)
            continue
        for suffix, stat, text in (("", sums, MEAN_DEF), ("_abs", abss, ABS_DEF)):
            colname = column_name(method, name) + suffix
            while colname in parts.var:  # two class names that sanitise alike
                colname += "_"
            v = np.full(n_var, np.nan, np.float32)
            v[col] = stat[c] / cnt[c]
            parts.var[colname] = v
            defs["var"][colname] = text.format(m=method, c=name) + f" (n = {cnt[c]} cells)"
    ob = np.zeros(n_obs, bool)
    ob[row[explained]] = True
    parts.obs[column_name("explained", method)] = ob
    defs["obs"][column_name("explained", method)] = f"True where the store holds the cell's {method} attribution"
    if layer is not None:
        parts.layers[column_name(method)] = layer
        defs["layers"][column_name(method)] = (f"the stored {method} attribution of each cell toward its label "
                                               f"(cells x genes); NaN where the cell was not explained"
                                               + (" or the cell/gene is not in the dataset" if user_h5ad else ""))
    return {"n": cnt, "missing_classes": np.asarray([c for c, n in zip(classes, cnt) if n == 0], dtype=str),
            "not_explained": int((~explained).sum())}


def _target(ds, out: str | Path | None) -> tuple[Path | None, pd.Index, pd.Index, np.ndarray, np.ndarray]:
    """(source h5ad or None, obs and var names of what is exported, row of each dataset cell, column of each gene)."""
    if ds.params.get("format") != "h5ad":
        obs, var = pd.Index(ds.sample_ids, dtype=str), pd.Index(ds.feature_names, dtype=str)
        return None, obs, var, np.arange(len(obs)), np.arange(len(var))
    src = _source(ds)
    if out is not None and Path(out).resolve() == src.resolve():
        raise XaiError(f"--out {out} is the file '{ds.name}' was imported from; the export never changes it: "
                       f"pick another path")
    with h5py.File(src, "r") as f:
        obs, var = (frame.index.astype(str) for frame in _frames(f, src))
    row, col = obs.get_indexer(ds.sample_ids), var.get_indexer(ds.feature_names)
    if (row < 0).any() or (col < 0).any():
        raise XaiError(f"{src} no longer holds every cell and gene of '{ds.name}' (it changed since the import); "
                       f"import it again and evaluate, then export")
    return src, obs, var, row, col


def _add_obs(ds, net, model_name: str, src: Path | None, row: np.ndarray, col: np.ndarray, n_obs: int, n_var: int,
             parts: _Parts, defs: dict) -> str:
    """Label, split and prediction to ``parts.obs`` (and what the kept cells and genes are); returns what X holds."""
    def cat(codes: np.ndarray, cats: list[str]) -> pd.Categorical:
        full = np.full(n_obs, -1, np.int64)  # -1: NaN for cells of the user's file the dataset does not hold
        full[row] = codes
        return pd.Categorical.from_codes(full, categories=cats)

    split = np.full(len(ds), 2)
    split[ds.train_idx], split[ds.test_idx] = 0, 1
    parts.obs[column_name("label")] = cat(ds.y, list(ds.class_names))
    parts.obs[column_name("split")] = cat(split, ["train", "test", "unused"])
    parts.obs[column_name("prediction")] = cat(_predict(net, ds), list(ds.class_names))
    defs["obs"].update({column_name("label"): "the cell's class (the label the model was trained on and the class "
                                              "its attributions explain)",
                        column_name("split"): "train or test split of the dataset",
                        column_name("prediction"): f"the class model {model_name} predicts (argmax of its logits)"})
    std = ", standardised per gene with training statistics" if ds.params.get("standardized") else ""
    if src is not None:
        inside, genes = np.zeros(n_obs, bool), np.zeros(n_var, bool)
        inside[row], genes[col] = True, True
        parts.obs[column_name("in_dataset")], parts.var[column_name("in_dataset")] = inside, genes
        defs["obs"][column_name("in_dataset")] = "True for the cells the import kept (max_cells); others have NaN"
        defs["var"][column_name("in_dataset")] = "True for the genes the model uses (hvg); others have NaN scores"
        layer = ds.params.get("layer")
        saw = f"layer {layer}" if layer else "X"
        return f"your file's X, unchanged (a byte copy of {src}); the model saw {saw}{std}"
    if hasattr(ds.X, "csr"):
        for k in ("mean", "std"):
            if getattr(ds.X, k) is not None:
                parts.var[column_name("input", k)] = np.asarray(getattr(ds.X, k), np.float32)
                defs["var"][column_name("input", k)] = f"training {k} per gene: the model saw (X - mean) / std"
        return "raw values of the sparse matrix (the model saw them standardised: var xai_input_mean/std)"
    return f"the model's inputs as the dataset holds them{std}"


def _write(adata, out: Path) -> None:
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        adata.write_h5ad(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def to_anndata(dataset: str, model: str | None = None, *, store=None, methods: str | list[str] | None = None,
               per_cell: bool = False, out: str | Path | None = None):
    """The stored results of ``dataset`` x ``model`` as an ``anndata.AnnData`` (also written to ``out``).

    For a dataset imported from an ``.h5ad`` with ``out`` given, the copy is written and returned opened backed
    (read-only; close ``.file`` when done). What goes where: docs/export.md.

    Parameters
    ----------
    dataset : str
        An expression dataset (images and sequences are refused before anything is loaded).
    model : str, optional
        As for ``load_model`` (default: the dataset's default model).
    store : ResultStore or str or Path, optional
        A ``ResultStore`` or a path (default: ``default_store_path()``).
    methods : str or list of str, optional
        A comma list or list (default: every method with stored attributions).
    per_cell : bool
        Also each cell's stored attribution as a layer ``xai_<method>`` (NaN where not explained); refused above
        2 GiB in total.
    out : str or Path, optional
        Where to write the ``.h5ad``.

    Returns
    -------
    AnnData

    Raises
    ------
    XaiError
        For a dataset that is not expression data, no results store, nothing stored for this dataset and model
        (or for the methods asked for), per-cell layers too large, or an ``out`` that is the imported source.
    UnknownChoice
        For an unknown dataset or method.
    """
    import anndata as ad  # noqa: PLC0415 - anndata (0.6 s): only an export needs it

    check_exportable(dataset)
    wanted = None if methods is None else [m.strip() for m in (methods.split(",") if isinstance(methods, str)
                                                                else methods) if m.strip()] or None
    for m in wanted or []:
        EXPLAINERS.get(m)
    own = not hasattr(store, "provenance")
    path = Path(store) if own and store is not None else (default_store_path() if own else store.path)
    hint = (f"compute attributions with `python -m xai_core evaluate --dataset {dataset}"
            f"{f' --model {model}' if model else ''} --methods saliency,integrated_gradients --out DIR"
            f"{f' --store {path}' if store is not None else ''}` (explain writes attributions.npz, not the store)")
    if own and not path.is_file():
        raise XaiError(f"nothing stored: no results store at {path}; {hint}")
    st = ResultStore(path) if own else store
    try:
        ds = load_dataset(dataset)
        net, meta = load_model(dataset, model)
        fp, mh = ds.fingerprint(), meta["checkpoint_hash"]
        model_name = (Path(model).stem if model and model.endswith(".safetensors")
                      else model or meta.get("arch", "model"))
        stored = _settings(st, ds, fp, mh)
        if not stored:
            others = sorted({r["model"] for r in st.provenance(kind="attributions", dataset=ds.name)
                             if r["model_hash"] != mh or r["dataset_fp"] != fp})
            also = f" (the store has results of model(s) {', '.join(others)} or of an earlier import)" if others else ""
            raise XaiError(f"nothing stored for {dataset} with model {model_name} (checkpoint {mh}) in {path}{also}; "
                           f"{hint}")
        settings = {m: s for m, s in stored.items() if wanted is None or m in wanted}
        if not settings:
            raise XaiError(f"no stored attributions of {', '.join(wanted or [])} for {dataset} / {model_name}; "
                           f"stored: {', '.join(stored)}; {hint}")
        src, obs_names, var_names, row, col = _target(ds, out)
        n_obs, n_var = len(obs_names), len(var_names)
        need = 4 * n_obs * n_var * len(settings)
        if per_cell and need > MAX_LAYER_BYTES:
            raise XaiError(f"per-cell layers would take {need / 2**30:.1f} GiB ({n_obs} cells x {n_var} genes x "
                           f"{len(settings)} methods, dense float32 with NaN where not explained); leave out "
                           f"--per-cell or export fewer --methods")

        parts, defs = _Parts(), {"var": {}, "obs": {}, "layers": {}}
        summary = {m: _add_method(st, ds, fp, mh, s, row, col, n_obs, n_var, per_cell, src is not None, parts, defs)
                   for m, s in settings.items()}
        x_def = _add_obs(ds, net, model_name, src, row, col, n_obs, n_var, parts, defs)
        versions = {**package_versions(), **{p: _version(p) for p in ("anndata", "h5py", "pandas")}}
        prov = {"created": now(), "dataset": {"name": ds.name, "fingerprint": fp, "modality": ds.modality,
                                              "format": ds.params.get("format", "bundled"),
                                              "source": str(src) if src else None},
                "model": {"name": model_name, "checkpoint_hash": mh, "arch": meta.get("arch"),
                          "path": str(meta.get("path")) if meta.get("path") else None},
                "store": str(path),
                "methods": {m: {"params_json": json.dumps(s.method_params, sort_keys=True), "method_key": s.method_key,
                                "output": s.output, "first_stored": s.created, "last_stored": s.updated,
                                "other_settings_not_exported": s.alternatives} for m, s in settings.items()},
                "versions": versions}
        parts.uns = _h5({
            "format_version": 1, "X": x_def, "columns": defs, "ranking": _ranking(st, ds, fp, mh, settings),
            "n_cells": {m: {"classes": np.asarray(ds.class_names, dtype=str), "n": v["n"]} for m, v in summary.items()},
            "missing": {"methods": np.asarray([m for m in wanted or [] if m not in stored], dtype=str),
                        "classes": {m: v["missing_classes"] for m, v in summary.items()},
                        "n_cells_not_explained": {m: v["not_explained"] for m, v in summary.items()},
                        "note": "cells not explained by a method: obs column xai_explained_<method> False"},
            "provenance": prov, "provenance_json": json.dumps({**prov, "dataset_params": ds.params}, default=str)})
        if src is not None and out is not None:
            _write_parts(src, Path(out), parts)
            return ad.read_h5ad(out, backed="r")
        if src is not None:
            adata = ad.read_h5ad(src)
        else:
            X = ds.X.csr.astype(np.float32) if hasattr(ds.X, "csr") else np.asarray(ds.X, np.float32)
            adata = ad.AnnData(X=X, obs=pd.DataFrame(index=obs_names), var=pd.DataFrame(index=var_names))
        for k, v in parts.obs.items():
            adata.obs[k] = v
        for k, v in parts.var.items():
            adata.var[k] = v
        for k, v in parts.layers.items():
            adata.layers[k] = v
        adata.uns["xai"] = parts.uns
        if out is not None:
            _write(adata, Path(out))
        return adata
    finally:
        if own:
            st.close()


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"
