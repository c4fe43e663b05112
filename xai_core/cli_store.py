"""``python -m xai_core store check|repair``: inspect and recover a results store (``xai_core.store``).

``check`` runs SQLite's ``integrity_check`` and verifies every attribution row's and every stored score
curve's checksum; it prints a summary and exits 0 when the store is clean, 2 when it is not.

``repair`` copies every readable row into a new file, keeps the old one beside it as
``PATH.damaged-<time>`` (with its ``-wal``/``-shm`` files, if any) and reports the rows kept and lost per
table. Rows on damaged pages cannot be read; attribution rows that fail their checksum, score rows whose curve
fails its checksum, and rows whose cell was lost, are not copied (they are computed again by the next
``evaluate``). Stop other processes using the
store (the dashboard, an ``evaluate`` run) before repairing it.
"""
from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

from .errors import XaiError

# tables in the order rows are copied (cells before the rows that point at them)
TABLES = ("meta", "cells", "attributions", "scores", "provenance")
_PROBE_GAP = 20_000  # point lookups past the last readable rowid before giving up on a damaged table


def add_parser(sub) -> None:
    s = sub.add_parser("store", help="check or repair a results store (damaged file, failing checksums)")
    ssub = s.add_subparsers(dest="store_command", required=True)
    for name, fn, text in (("check", cmd_check, "integrity check, attribution and curve checksums (exit 2 if damaged)"),
                           ("repair", cmd_repair, "copy every readable row into a new file; keep the old one "
                                                   "as PATH.damaged-<time>")):
        p = ssub.add_parser(name, help=text)
        p.add_argument("--store", help="results database (default: $XAI_CORE_STORE or "
                                       "~/.cache/xai_core/results.sqlite)")
        p.set_defaults(fn=fn)


def _path(args) -> Path:
    from .store import default_store_path  # noqa: PLC0415 - pandas (xai_core.store): kept out of the CLI's start-up

    path = Path(args.store) if args.store else default_store_path()
    if not path.is_file():
        raise XaiError(f"no results store at {path}; pass the file with --store")
    return path


def _connect(path: Path) -> sqlite3.Connection:
    try:
        con = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        con.execute("PRAGMA busy_timeout = 30000")
        return con
    except sqlite3.Error as e:
        raise XaiError(f"cannot open {path} ({e}); is another process holding it?") from None


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]


def _readable_rows(con: sqlite3.Connection, table: str, cols: list[str]) -> tuple[list[tuple], int]:
    """(every readable row of ``table`` as (rowid, *cols), number of read errors met).

    A full scan first; if a damaged page stops it, point lookups by rowid continue past the damage (each one
    descends the table's b-tree again, so only the rows on unreadable pages are skipped)."""
    sel = f"SELECT rowid, {', '.join(cols)} FROM {table}"
    rows: list[tuple] = []
    try:
        for r in con.execute(f"{sel} ORDER BY rowid"):
            rows.append(r)
        return rows, 0
    except sqlite3.DatabaseError:
        pass
    errors = 1
    try:
        top = con.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        top = 0
    rowid = rows[-1][0] if rows else 0
    gap = 0
    while rowid < top or gap < _PROBE_GAP:
        rowid += 1
        try:
            r = con.execute(f"{sel} WHERE rowid = ?", (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            errors += 1
            gap = 0
            continue
        if r is None:
            gap += 1
        else:
            rows.append(r)
            gap = 0
    return rows, errors


def _count(con: sqlite3.Connection, table: str) -> int | None:
    try:
        return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.DatabaseError:
        return None


def _problems(path: Path) -> tuple[list[str], dict[str, int | None]]:
    """(problems found, readable row counts per table)."""
    from .store import blob_problem, curve_problem  # noqa: PLC0415 - pandas (xai_core.store): kept out of the CLI's start-up

    problems: list[str] = []
    counts: dict[str, int | None] = {}
    con = _connect(path)
    try:
        try:
            report = [r[0] for r in con.execute("PRAGMA integrity_check(20)")]
            if report != ["ok"]:
                problems.append(f"integrity_check: {len(report)}{'+' if len(report) == 20 else ''} problem(s), "
                                f"first: {report[0]}")
        except sqlite3.DatabaseError as e:
            problems.append(f"integrity_check stopped: {e}")
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as e:
            problems.append(f"the schema cannot be read: {e}")
            return problems, counts
        if not set(TABLES) <= tables:
            problems.append(f"not a results store (tables {sorted(tables)})")
            return problems, counts
        for t in TABLES:
            counts[t] = _count(con, t)
        has_checksum = "checksum" in _columns(con, "attributions")
        cols = ["cell", "sample_id", "dtype", "shape", "data", "checksum" if has_checksum else "NULL"]
        rows, errors = _readable_rows(con, "attributions", cols)
        if errors:
            problems.append(f"attributions: damaged pages ({errors} failed read(s)); {len(rows)} row(s) readable")
        bad = [r for r in rows if blob_problem(*r[3:]) is not None]
        unchecked = sum(r[6] is None for r in rows)
        if bad:
            problems.append(f"attributions: {len(bad)} of {len(rows)} row(s) fail their checksum")
        counts["unchecked attributions (stored before checksums)"] = unchecked
        has_curve_sum = "curve_checksum" in _columns(con, "scores")
        rows, errors = _readable_rows(con, "scores", ["curve", "curve_dtype",
                                                      "curve_checksum" if has_curve_sum else "NULL"])
        if errors:
            problems.append(f"scores: damaged pages ({errors} failed read(s)); {len(rows)} row(s) readable")
        curves = [r for r in rows if r[1] is not None]
        bad = [r for r in curves if curve_problem(*r[1:]) is not None]
        if bad:
            problems.append(f"scores: {len(bad)} of {len(curves)} curve(s) fail their checksum")
        counts["unchecked curves (stored before checksums)"] = sum(r[3] is None for r in curves)
        for t in ("meta", "cells", "provenance"):
            t_rows, t_errors = _readable_rows(con, t, _columns(con, t)[:1])
            if t_errors:
                problems.append(f"{t}: damaged pages ({t_errors} failed read(s)); {len(t_rows)} row(s) readable")
    finally:
        con.close()
    return problems, counts


def cmd_check(args) -> int:
    path = _path(args)
    problems, counts = _problems(path)
    shown = ", ".join(f"{k} {'?' if v is None else v}" for k, v in counts.items())
    if not problems:
        print(f"store {path}: ok ({shown})")
        return 0
    print(f"store {path}: {len(problems)} problem(s)")
    for p in problems:
        print(f"  {p}")
    if shown:
        print(f"  rows: {shown}")
    print(f"repair: python -m xai_core store repair --store {path}  (copies the readable rows into a new file; "
          "the old one is kept)", file=sys.stderr)
    return 2


def cmd_repair(args) -> int:
    from .store import ResultStore, blob_problem, curve_problem  # noqa: PLC0415 - pandas (xai_core.store): kept out of the CLI's start-up

    path = _path(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    new = path.with_name(f"{path.name}.repair-{stamp}.tmp")
    old = _connect(path)
    kept: dict[str, int] = {}
    lost: dict[str, str] = {}
    try:
        try:
            tables = {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as e:
            raise XaiError(f"{path}: not even its list of tables can be read ({e}); nothing can be recovered "
                           f"from it: move it away and run evaluate again") from None
        if "cells" not in tables:
            raise XaiError(f"{path} is not an xai_core results store (tables {sorted(tables)}); nothing to repair")
        ResultStore(new).close()  # the current schema, empty
        dst = sqlite3.connect(str(new), isolation_level=None)
        try:
            dst.execute("BEGIN")
            cells: set[int] = set()
            for t in TABLES:
                if t not in tables:
                    continue
                cols = [c for c in _columns(old, t) if c in set(_columns(dst, t))]
                total = _count(old, t)
                rows, errors = _readable_rows(old, t, cols)
                good, dropped, carried = [], 0, 0
                for r in rows:
                    rec = dict(zip(cols, r[1:]))
                    if t == "meta" and rec.get("key") == "schema_version":
                        carried += 1  # the new file has the current version (and the current schema)
                        continue
                    if t in ("attributions", "scores", "provenance") and rec.get("cell") not in cells:
                        dropped += 1  # its cell row was lost: unreachable
                        continue
                    if t == "attributions" and blob_problem(rec.get("dtype"), rec.get("shape"), rec.get("data"),
                                                            rec.get("checksum")) is not None:
                        dropped += 1
                        continue
                    if t == "scores" and curve_problem(rec.get("curve"), rec.get("curve_dtype"),
                                                       rec.get("curve_checksum")) is not None:
                        dropped += 1  # its score is computed again with its curve
                        continue
                    good.append(r[1:])
                if t == "cells":
                    cells = {dict(zip(cols, g))["id"] for g in good}
                dst.executemany(f"INSERT OR REPLACE INTO {t} ({', '.join(cols)}) VALUES "
                                f"({','.join('?' * len(cols))})", good)
                kept[t] = len(good) + carried
                if total is not None and total >= len(rows):
                    lost[t] = str(total - len(rows) + dropped)
                elif errors:
                    lost[t] = f"{dropped} + the rows on {errors} unreadable page(s)"
                else:
                    lost[t] = str(dropped)
            dst.execute("COMMIT")
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file before it is moved
        finally:
            dst.close()
    except BaseException as e:
        for leftover in (new, Path(f"{new}-wal"), Path(f"{new}-shm")):
            leftover.unlink(missing_ok=True)
        if isinstance(e, sqlite3.DatabaseError):
            raise XaiError(f"{path} could not be repaired ({e}); nothing was changed") from None
        raise
    finally:
        old.close()
    damaged = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while damaged.exists():  # never overwrite an earlier damaged copy
        damaged, n = path.with_name(f"{path.name}.damaged-{stamp}-{n}"), n + 1
    path.rename(damaged)
    for suffix in ("-wal", "-shm"):  # they belong to the old file: never let SQLite apply them to the new one
        side = Path(f"{path}{suffix}")
        if side.exists():
            side.rename(Path(f"{damaged}{suffix}"))
    new.rename(path)
    print(f"repaired {path}: rows kept: {', '.join(f'{t} {n}' for t, n in kept.items())}; "
          f"rows lost: {', '.join(f'{t} {n}' for t, n in lost.items())}")
    print(f"the damaged file is kept as {damaged}; the next evaluate recomputes what was lost", file=sys.stderr)
    return 0
