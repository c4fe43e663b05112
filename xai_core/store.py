"""Persistent, content-addressed results store (attributions, metric scores, provenance).

Why SQLite in WAL mode (stdlib ``sqlite3``): it needs no server and ships with Python; WAL
(write-ahead logging) allows one writer and many concurrent readers, so the CLI can write
results while the Streamlit dashboard reads them from another process. DuckDB takes a
single-writer lock on the whole file, which would block the dashboard's reader process.

Keys are content addresses: a *cell* is (dataset fingerprint, model hash, method + hash of its
parameters, output[, metric + hash of its parameters]); rows are one per sample in a cell. So
attributions are computed once and reused by every metric and view, an interrupted evaluation
resumes where it stopped (each batch is committed in its own transaction) and a finished cell is
never recomputed. Each cell keeps provenance (package versions, seeds, parameters, seconds taken,
created time) as JSON.

No pickle anywhere: arrays are stored as raw little-endian bytes plus dtype and shape.

Integrity (``xai_core.store_integrity``): every attribution row and score curve carries a checksum; a row that fails
it is never used: it is reported on stderr and treated as missing, so it is computed again and replaced. A damaged
database file (``database disk image is malformed``, ``file is not a database``) raises one ``XaiError`` naming the
file and ``python -m xai_core store check|repair`` (``xai_core.cli_store``). The tables, the schema version and the
in-place migrations of older files are in ``xai_core.store_schema``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sqlite3
import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import XaiError
from .sqlite_util import connect, immediate_write, unique_chunks
from .store_integrity import (blob_checksum, blob_problem, curve_checksum, curve_problem, damaged_message,
                              drop_failing, has_sqlite_header, is_corruption)
from .store_schema import SCHEMA_VERSION, prepare

ERROR_PREFIX = "error: "  # reasons of NaN scores that came from an unexpected exception (retried)
_CHUNK = 800  # sample ids per "IN (...)" query; stays under SQLite's 999-variable limit
_ATTRIBUTION_COLS = "dtype, shape, data, checksum"  # what blob_problem takes, in its order
_KEY = ("kind", "dataset_fp", "model_hash", "method", "method_key", "output", "metric", "metric_key")
FRAME_COLUMNS = ["dataset", "model", "model_hash", "method", "method_key", "metric", "metric_key",
                 "family", "direction", "sample", "score", "se", "reason"]
EXTRA_COLUMNS = ["output", "dataset_fp", "seconds"]
# The columns, in this order, of a scores table handed to a person (``scores.csv``, the dashboard's download).
SCORE_COLUMNS = ["dataset", "model", "method", "metric", "sample", "family", "direction", "score", "se", "reason",
                 "model_hash", "method_key", "metric_key"]


def default_store_path() -> Path:
    """The results store that the CLI and the dashboard share.

    Returns
    -------
    Path
        ``$XAI_CORE_STORE`` when set, else ``results.sqlite`` in the cache folder (``$XAI_CORE_CACHE``).
    """
    # late: the data package (scipy, the dataset registry) would double the store's import time (0.9 -> 1.6 s)
    from .data import cache_dir  # noqa: PLC0415 - xai_core.data (scipy, the dataset registry): import time

    return Path(os.environ.get("XAI_CORE_STORE", cache_dir() / "results.sqlite"))


def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def params_key(params: dict) -> str:
    """Stable 16-hex-digit content hash of a parameter dict (key order does not matter).

    Parameters
    ----------
    params : dict
        JSON-able parameters (other values by their ``str``).

    Returns
    -------
    str
    """
    return hashlib.sha256(_json(params).encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _float_or_none(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _guarded(fn):
    """Turn a damaged-database error in a store method into one ``XaiError`` line."""
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            if is_corruption(e):
                raise XaiError(damaged_message(self.path, e)) from None
            raise
    return wrapper


class ResultStore:
    """One SQLite file of results; one connection per object, safe to share between threads.

    Attributions and scores are kept per cell (dataset fingerprint, model hash, method and its parameters,
    output, and for scores the metric and its parameters) and sample. A damaged database gives one ``XaiError``
    line naming ``python -m xai_core store check`` and ``store repair``. Every method but ``close`` takes its
    arguments by keyword only. Usable as a context manager (closed on exit).

    Parameters
    ----------
    path : str or Path
        The SQLite file, created (with its folder) if missing.

    Raises
    ------
    XaiError
        When ``path`` is a directory, cannot be opened, is not an xai_core results store, is damaged, or has
        another schema version.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        if self.path.is_dir():
            raise XaiError(f"results store '{self.path}' is a directory; pass a file path with --store")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = None
        try:
            self._con = connect(self.path)
            prepare(self._con, self.path, self._lock)
        except (sqlite3.Error, XaiError) as e:
            if self._con is not None:
                self._con.close()
            if isinstance(e, XaiError):
                raise
            if isinstance(e, sqlite3.OperationalError):  # locked, unreadable, disk full ...
                raise XaiError(f"cannot open results store '{self.path}': {e}; pass another --store path") from e
            if is_corruption(e) and has_sqlite_header(self.path):  # a store with a damaged page
                raise XaiError(damaged_message(self.path, e)) from None
            raise XaiError(f"'{self.path}' is not an xai_core results store (not a SQLite database: {e}); "
                           "move it away or pass another --store path") from e

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One IMMEDIATE transaction (takes the write lock up front, waiting up to busy_timeout)."""
        return immediate_write(self._con, self._lock)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._con.close()

    def __enter__(self) -> ResultStore:
        """The store itself, for ``with ResultStore(path) as store:``."""
        return self

    def __exit__(self, *exc) -> None:
        """Close the store."""
        self.close()

    def _rows(self, table: str, cell: int, ids: list[str], cols: str) -> dict[str, tuple]:
        """{sample_id: (cols...)} for the stored rows among ``ids``, queried in chunks."""
        found: dict[str, tuple] = {}
        with self._lock:
            for chunk in unique_chunks(ids, _CHUNK):
                found.update((r[0], r[1:]) for r in self._con.execute(
                    f"SELECT sample_id, {cols} FROM {table} WHERE cell = ? AND sample_id IN"
                    f" ({','.join('?' * len(chunk))})", [cell, *chunk]))
        return found

    def _cell_rows(self, kind, cols, ids, dataset_fp, model_hash, method, method_params, output, metric="",
                   metric_params=None) -> dict[str, tuple]:
        """``_rows`` of the cell with this key (its table is ``kind``); empty when no such cell is stored."""
        cell = self._cell_id(self._cell_key(kind, dataset_fp, model_hash, method, method_params, output, metric,
                                            metric_params))
        return {} if cell is None else self._rows(kind, cell, ids, cols)

    # ---- cells and provenance -------------------------------------------------------------
    @staticmethod
    def _cell_key(kind, dataset_fp, model_hash, method, method_params, output, metric="", metric_params=None):
        mkey = params_key(metric_params) if metric else ""
        return (kind, str(dataset_fp), str(model_hash), method, params_key(method_params), str(output),
                metric, mkey)

    def _cell_id(self, key: tuple) -> int | None:
        with self._lock:
            row = self._con.execute(f"SELECT id FROM cells WHERE {' AND '.join(k + '=?' for k in _KEY)}",
                                    key).fetchone()
        return None if row is None else row[0]

    def _ensure_cell(self, con, key, *, dataset, model, method_params, metric_params=None,
                     family=None, direction=None) -> int:
        con.execute(
            f"INSERT INTO cells ({', '.join(_KEY)}, dataset, model, method_params, metric_params, family,"
            f" direction) VALUES ({','.join('?' * 14)}) ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET"
            " dataset=excluded.dataset, model=excluded.model, family=excluded.family, direction=excluded.direction",
            (*key, dataset, model, _json(method_params),
             None if metric_params is None else _json(metric_params), family, direction))
        return self._cell_id(key)

    @staticmethod
    def _add_provenance(con, cell: int, provenance: dict, seconds: float, rows: int) -> None:
        record, now = _json(provenance or {}), _now()
        con.execute(
            "INSERT INTO provenance VALUES (?,?,?,?,?,?,?) ON CONFLICT (cell, record_key) DO UPDATE SET"
            " updated=excluded.updated, seconds=seconds+excluded.seconds, rows=rows+excluded.rows",
            (cell, hashlib.sha256(record.encode()).hexdigest()[:16], now, now, float(seconds), int(rows), record))

    @_guarded
    def provenance(self, *, kind: str, **key) -> list[dict]:
        """Provenance records of the cells matching ``key`` (any subset of the cell key), oldest first.

        Each record: the cell's key and full parameters, ``created``/``updated`` (UTC ISO), ``seconds`` and ``rows``
        summed over the batches written, and ``provenance`` (the caller's dict). A cell resumed under other versions
        or seeds has one record per distinct dict.

        Parameters
        ----------
        kind : str
            'attributions' or 'scores'.
        **key
            Key fields: dataset, dataset_fp, model, model_hash, method, method_params (dict) or method_key, output,
            metric, metric_params (dict) or metric_key.

        Returns
        -------
        list of dict

        Raises
        ------
        ValueError
            For another ``kind`` or an unknown key field.
        """
        if kind not in ("attributions", "scores"):
            raise ValueError(f"kind must be 'attributions' or 'scores', not {kind!r}")
        if "method_params" in key:
            key["method_key"] = params_key(key.pop("method_params"))
        if "metric_params" in key:
            key["metric_key"] = params_key(key.pop("metric_params"))
        allowed = {"dataset", "dataset_fp", "model", "model_hash", "method", "method_key", "output",
                   "metric", "metric_key"}
        if set(key) - allowed:
            raise ValueError(f"unknown provenance key(s) {sorted(set(key) - allowed)}")
        where = " AND ".join(["c.kind = ?"] + [f"c.{k} = ?" for k in key])
        cols = ["dataset", "dataset_fp", "model", "model_hash", "method", "method_key", "method_params",
                "output", "metric", "metric_key", "metric_params", "family", "direction"]
        with self._lock:
            rows = self._con.execute(
                f"SELECT {', '.join('c.' + c for c in cols)}, p.created, p.updated, p.seconds, p.rows, p.record"
                f" FROM provenance p JOIN cells c ON c.id = p.cell WHERE {where} ORDER BY p.created, c.id",
                [kind, *(str(v) for v in key.values())]).fetchall()
        out = []
        for r in rows:
            d = dict(zip(cols, r[:len(cols)]), kind=kind, created=r[-5], updated=r[-4], seconds=r[-3],
                     rows=r[-2], provenance=json.loads(r[-1]))
            d["method_params"] = json.loads(d["method_params"])
            d["metric_params"] = None if d["metric_params"] is None else json.loads(d["metric_params"])
            out.append(d)
        return out

    # ---- attributions ---------------------------------------------------------------------
    @_guarded
    def put_attributions(self, *, dataset: str, dataset_fp: str, model: str, model_hash: str, method: str,
                         method_params: dict, output: str, sample_ids: list[str], attributions: np.ndarray,
                         targets: np.ndarray, seconds: float, provenance: dict) -> None:
        """Store one batch (one row per sample, float32) in one transaction; replaces existing rows.

        Parameters
        ----------
        dataset : str
            The dataset's name (for listings).
        dataset_fp : str
            ``Dataset.fingerprint()``: the exact data.
        model : str
            The model's name (for listings).
        model_hash : str
            The model's checkpoint hash.
        method : str
            The explanation method.
        method_params : dict
            Its parameters (keyed by their content hash, ``params_key``).
        output : str
            What was explained: ``logit`` or ``probability``.
        sample_ids : list of str
            The samples.
        attributions : ndarray
            One map per sample.
        targets : ndarray
            The explained class of each sample.
        seconds : float
            Time taken for the batch (spread over its rows).
        provenance : dict
            Recorded with the cell (versions, seeds, configuration).

        Raises
        ------
        ValueError
            When the sample ids, attributions and targets differ in number.
        """
        a = np.ascontiguousarray(attributions, dtype="<f4")
        t = np.asarray(targets).reshape(-1)
        n = len(sample_ids)
        if a.shape[0] != n or t.shape[0] != n:
            raise ValueError(f"{n} sample ids, {a.shape[0]} attributions and {t.shape[0]} targets")
        if n == 0:
            return
        shape, per = _json(list(a.shape[1:])), float(seconds) / n
        key = self._cell_key("attributions", dataset_fp, model_hash, method, method_params, output)
        with self._write() as con:
            cell = self._ensure_cell(con, key, dataset=dataset, model=model, method_params=method_params)
            con.executemany("INSERT OR REPLACE INTO attributions (cell, sample_id, dtype, shape, data, target,"
                            " seconds, checksum) VALUES (?,?,?,?,?,?,?,?)",
                            ((cell, str(s), a.dtype.str, shape, data, int(t[i]), per,
                              blob_checksum(a.dtype.str, shape, data))
                             for i, s in enumerate(sample_ids) for data in (a[i].tobytes(),)))
            self._add_provenance(con, cell, provenance, seconds, n)

    @_guarded
    def get_attributions(self, *, dataset_fp: str, model_hash: str, method: str, method_params: dict,
                         output: str, sample_ids: list[str]) -> tuple[np.ndarray | None, list[str]]:
        """(attributions stacked in the order of ``sample_ids`` or None if any is missing, missing ids).

        A row that fails its checksum counts as missing (it is computed again and replaced), with a line on stderr;
        it is never returned.

        Parameters
        ----------
        dataset_fp : str
            ``Dataset.fingerprint()``: the exact data.
        model_hash : str
            The model's checkpoint hash.
        method : str
            The explanation method.
        method_params : dict
            Its parameters (keyed by their content hash, ``params_key``).
        output : str
            What was explained: ``logit`` or ``probability``.
        sample_ids : list of str
            The samples.

        Returns
        -------
        maps : ndarray or None
            (len(sample_ids), ...) when every map is stored, else None.
        missing : list of str
            The ids without a usable stored map.

        Raises
        ------
        XaiError
            When the stored maps differ in shape or dtype between samples.
        """
        ids = [str(s) for s in sample_ids]
        found = self._cell_rows("attributions", _ATTRIBUTION_COLS, ids, dataset_fp, model_hash, method, method_params,
                                output)
        drop_failing(found, blob_problem, self.path, f"attribution(s) of {method}", ", so they are computed again")
        missing = [s for s in ids if s not in found]
        if missing or not ids:
            return None, missing
        dtype, shape = found[ids[0]][0], tuple(json.loads(found[ids[0]][1]))
        out = np.empty((len(ids), *shape), dtype=np.dtype(dtype).newbyteorder("="))
        for i, s in enumerate(ids):
            dt, sh, data, _ = found[s]
            if dt != dtype or tuple(json.loads(sh)) != shape:
                raise XaiError(f"stored attributions for cell {method} differ in shape or dtype between samples")
            out[i] = np.frombuffer(data, dtype=dtype).reshape(shape)
        return out, []

    @_guarded
    def missing_attributions(self, *, dataset_fp: str, model_hash: str, method: str, method_params: dict,
                             output: str, sample_ids: list[str]) -> list[str]:
        """The ids among ``sample_ids`` without a usable stored map (absent, or failing its checksum; no stderr line).

        Polled while another run computes a cell: each stored row is read about once, as it arrives.

        Parameters
        ----------
        dataset_fp : str
            ``Dataset.fingerprint()``: the exact data.
        model_hash : str
            The model's checkpoint hash.
        method : str
            The explanation method.
        method_params : dict
            Its parameters (keyed by their content hash, ``params_key``).
        output : str
            What was explained: ``logit`` or ``probability``.
        sample_ids : list of str
            The samples.

        Returns
        -------
        list of str
            The missing ids, in the order of ``sample_ids``.
        """
        ids = [str(s) for s in sample_ids]
        found = self._cell_rows("attributions", _ATTRIBUTION_COLS, ids, dataset_fp, model_hash, method, method_params,
                                output)
        return [s for s in ids if s not in found or blob_problem(*found[s]) is not None]

    # ---- scores ---------------------------------------------------------------------------
    @_guarded
    def put_scores(self, *, dataset: str, dataset_fp: str, model: str, model_hash: str, method: str,
                   method_params: dict, output: str, metric: str, metric_params: dict, family: str,
                   direction: str, sample_ids: list[str], scores: np.ndarray, reasons: list[str | None],
                   seconds: float, provenance: dict, se: np.ndarray | None = None,
                   curves: np.ndarray | None = None) -> None:
        """Store one batch of metric scores (NaN -> NULL, with a reason) in one transaction.

        Parameters
        ----------
        dataset : str
            The dataset's name (for listings).
        dataset_fp : str
            ``Dataset.fingerprint()``: the exact data.
        model : str
            The model's name (for listings).
        model_hash : str
            The model's checkpoint hash.
        method : str
            The explanation method.
        method_params : dict
            Its parameters (keyed by their content hash, ``params_key``).
        output : str
            What was explained: ``logit`` or ``probability``.
        metric : str
            The metric.
        metric_params : dict
            Its parameters (keyed by their content hash).
        family : str
            The metric's family.
        direction : str
            ``higher`` or ``lower`` is better.
        sample_ids : list of str
            The samples (``["*"]`` for a set-level score).
        scores : ndarray
            One score per sample.
        reasons : list of str or None
            Why a score is NaN, per sample.
        seconds : float
            Time taken for the batch (spread over its rows).
        provenance : dict
            Recorded with the cell.
        se : ndarray, optional
            Standard errors, per sample.
        curves : ndarray, optional
            (N, T) per-sample curves (stored with a checksum).

        Raises
        ------
        ValueError
            When the sample ids, scores, reasons and standard errors differ in number.
        """
        n = len(sample_ids)
        sc = np.asarray(scores, dtype=float).reshape(-1)
        reasons = list(reasons) if reasons is not None else [None] * n
        se_ = np.full(n, np.nan) if se is None else np.asarray(se, dtype=float).reshape(-1)
        cv = None if curves is None else np.ascontiguousarray(curves, dtype="<f8").reshape(n, -1)
        if not (sc.shape[0] == len(reasons) == se_.shape[0] == n):
            raise ValueError(f"{n} sample ids, {sc.shape[0]} scores, {len(reasons)} reasons, {se_.shape[0]} se")
        if n == 0:
            return
        per = float(seconds) / n
        key = self._cell_key("scores", dataset_fp, model_hash, method, method_params, output, metric, metric_params)
        with self._write() as con:
            cell = self._ensure_cell(con, key, dataset=dataset, model=model, method_params=method_params,
                                     metric_params=metric_params, family=family, direction=direction)
            con.executemany("INSERT OR REPLACE INTO scores (cell, sample_id, score, se, reason, curve, curve_dtype,"
                            " seconds, curve_checksum) VALUES (?,?,?,?,?,?,?,?,?)", (
                (cell, str(s), _float_or_none(sc[i]), _float_or_none(se_[i]),
                 None if reasons[i] is None else str(reasons[i]),
                 data, None if cv is None else cv.dtype.str, per,
                 None if data is None else curve_checksum(cv.dtype.str, data))
                for i, s in enumerate(sample_ids) for data in (None if cv is None else cv[i].tobytes(),)))
            self._add_provenance(con, cell, provenance, seconds, n)

    @_guarded
    def missing_scores(self, *, dataset_fp: str, model_hash: str, method: str, method_params: dict, output: str,
                       metric: str, metric_params: dict, sample_ids: list[str]) -> list[str]:
        """Sample ids (in the given order) with no stored row for this cell.

        A NaN score with a reason counts as stored, except a reason starting with ``ERROR_PREFIX``: an unexpected
        failure (a bug, not the data), which is computed again on the next run.

        Parameters
        ----------
        dataset_fp : str
            ``Dataset.fingerprint()``: the exact data.
        model_hash : str
            The model's checkpoint hash.
        method : str
            The explanation method.
        method_params : dict
            Its parameters (keyed by their content hash, ``params_key``).
        output : str
            What was explained: ``logit`` or ``probability``.
        metric : str
            The metric.
        metric_params : dict
            Its parameters (keyed by their content hash).
        sample_ids : list of str
            The samples.

        Returns
        -------
        list of str
        """
        ids = [str(s) for s in sample_ids]
        found = self._cell_rows("scores", "reason", ids, dataset_fp, model_hash, method, method_params, output, metric,
                                metric_params)
        return [s for s in ids if s not in found or str(found[s][0] or "").startswith(ERROR_PREFIX)]

    @_guarded
    def curves(self, *, dataset_fp: str, model_hash: str, method: str, method_params: dict, output: str,
               metric: str, metric_params: dict, sample_ids: list[str]) -> np.ndarray | None:
        """(N, T) float64 curves in the order of ``sample_ids``; None if any row or curve is missing.

        Curves of different lengths are right-padded with NaN. A curve that fails its checksum counts as missing,
        with a line on stderr; it is never returned.

        Parameters
        ----------
        dataset_fp : str
            ``Dataset.fingerprint()``: the exact data.
        model_hash : str
            The model's checkpoint hash.
        method : str
            The explanation method.
        method_params : dict
            Its parameters (keyed by their content hash, ``params_key``).
        output : str
            What was explained: ``logit`` or ``probability``.
        metric : str
            The metric.
        metric_params : dict
            Its parameters (keyed by their content hash).
        sample_ids : list of str
            The samples.

        Returns
        -------
        ndarray or None
        """
        ids = [str(s) for s in sample_ids]
        found = self._cell_rows("scores", "curve, curve_dtype, curve_checksum", ids, dataset_fp, model_hash, method,
                                method_params, output, metric, metric_params)
        drop_failing(found, curve_problem, self.path, f"{metric} curve(s) of {method}")
        if not ids or any(s not in found or found[s][0] is None for s in ids):
            return None
        rows = [np.frombuffer(found[s][0], dtype=found[s][1]) for s in ids]
        out = np.full((len(ids), max(len(r) for r in rows)), np.nan)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return out

    @_guarded
    def scores_frame(self, *, dataset: str | None = None, model: str | None = None,
                     methods: list[str] | None = None, metrics: list[str] | None = None) -> pd.DataFrame:
        """Tidy frame, one row per (cell, sample): FRAME_COLUMNS then output, dataset_fp, seconds.

        Parameters
        ----------
        dataset : str, optional
            Only this dataset.
        model : str, optional
            Only this model name.
        methods : list of str, optional
            Only these methods.
        metrics : list of str, optional
            Only these metrics.

        Returns
        -------
        DataFrame
        """
        where, args = ["c.kind = 'scores'"], []
        for col, val in (("dataset", dataset), ("model", model)):
            if val is not None:
                where.append(f"c.{col} = ?")
                args.append(val)
        for col, vals in (("method", methods), ("metric", metrics)):
            if vals is not None:
                vals = list(vals)
                where.append(f"c.{col} IN ({','.join('?' * len(vals))})" if vals else "0")
                args.extend(vals)
        with self._lock:
            rows = self._con.execute(
                "SELECT c.dataset, c.model, c.model_hash, c.method, c.method_key, c.metric, c.metric_key,"
                " c.family, c.direction, s.sample_id, s.score, s.se, s.reason, c.output, c.dataset_fp, s.seconds"
                f" FROM scores s JOIN cells c ON c.id = s.cell WHERE {' AND '.join(where)}"
                " ORDER BY c.id, s.rowid", args).fetchall()
        df = pd.DataFrame.from_records(rows, columns=FRAME_COLUMNS + EXTRA_COLUMNS)
        for col in ("score", "se", "seconds"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        return df

    @_guarded
    def summary(self) -> dict:
        """Row and distinct-name counts (plus the path and schema version)."""
        q = {"attributions": "SELECT COUNT(*) FROM attributions",
             "scores": "SELECT COUNT(*) FROM scores",
             "datasets": "SELECT COUNT(DISTINCT dataset) FROM cells",
             "models": "SELECT COUNT(DISTINCT model) FROM cells",
             "methods": "SELECT COUNT(DISTINCT method) FROM cells",
             "metrics": "SELECT COUNT(DISTINCT metric) FROM cells WHERE kind = 'scores'",
             "cells": "SELECT COUNT(*) FROM cells"}
        with self._lock:
            out = {k: self._con.execute(v).fetchone()[0] for k, v in q.items()}
        return {**out, "path": str(self.path), "schema_version": SCHEMA_VERSION}
