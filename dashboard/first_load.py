"""Why the first opening after a start is slow, and for how long, from measurements made on this machine.

Three things are slow only the first time: importing the engine (torch, captum, zennit: once per server
process), building a generated dataset (once per machine; then it is read from the cache folder) and loading a
dataset with its model (once per process). Each is timed where it happens and the duration is kept in the
cache folder (``$XAI_CORE_CACHE/dashboard_timings.json``), so the next time the page says how long it took
here last time. With no measurement yet it says so instead of guessing.
"""
from __future__ import annotations

import gc
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from xai_core.costs import format_seconds

TIMINGS_FILE = "dashboard_timings.json"
ENGINE = "engine import"
ENGINE_WHAT = "the explanation engine (torch, captum, zennit)"
_ICON = ":material/hourglass_top:"
_engine_loaded = False  # per server process: the imports below happen once


def timings_path(cache: Path) -> Path:
    """The file in the cache folder ``cache`` that keeps the measured durations."""
    return Path(cache) / TIMINGS_FILE


def read(cache: Path) -> dict[str, dict]:
    """Every recorded duration: ``{what: {"seconds": s, "when": "YYYY-MM-DD HH:MM"}}``; empty when there is
    none yet or the file cannot be read (it is only a courtesy)."""
    try:
        data = json.loads(timings_path(cache).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def measured(cache: Path, what: str) -> dict | None:
    """The last measurement of ``what`` on this machine (``seconds`` and ``when``), or None."""
    entry = read(cache).get(what)
    if isinstance(entry, dict) and isinstance(entry.get("seconds"), (int, float)) and entry["seconds"] >= 0:
        return entry
    return None


def record(cache: Path, what: str, seconds: float) -> None:
    """Keep ``seconds`` as the last measured duration of ``what`` (written atomically; a failure is ignored,
    since an estimate is a courtesy and must never break a page)."""
    path = timings_path(cache)
    data = read(cache)
    data[what] = {"seconds": round(float(seconds), 2), "when": time.strftime("%Y-%m-%d %H:%M")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def estimate_text(entry: dict | None) -> str:
    """"about 14 s here last time (2026-11-30 09:12)", or the plain fact that it was never measured here."""
    if entry is None:
        return "not measured on this machine yet (this time is measured, so the next time can say)"
    return f"{format_seconds(entry['seconds'])} here last time ({entry['when']})"


@contextmanager
def timed(cache: Path, what: str):
    """Time the block and ``record`` it under ``what`` when it finishes without an error."""
    t0 = time.perf_counter()
    yield
    record(cache, what, time.perf_counter() - t0)


def engine_message(entry: dict | None) -> str:
    """What the page says while the engine is imported for the first time in this server process."""
    return (f"Loading {ENGINE_WHAT}, once per start of the dashboard: {estimate_text(entry)}. Pages and "
            "visits after this do not wait for it.")


def load_engine() -> None:
    """Import the engine once per server process, saying why the page waits and for about how long.

    The first run after a start imports torch, captum and zennit (10-20 s on a 2-core machine); every later
    run of every session returns at once. The message appears before the import starts (the cache folder is
    found first, then the box gains its estimate). The imported modules are then frozen out of the garbage
    collector (``gc.freeze``), which keeps every later page run as quick as in an app without torch."""
    global _engine_loaded
    if _engine_loaded:
        return
    box = st.empty()
    box.info(f"Loading {ENGINE_WHAT}, once per start of the dashboard…", icon=_ICON)
    t0 = time.perf_counter()
    from xai_core.data import cache_dir  # noqa: PLC0415 - the first part of the engine (scipy), timed with the rest

    cache = cache_dir()
    box.info(engine_message(measured(cache, ENGINE)), icon=_ICON)
    # the rest of the engine, imported here once and timed, so that the page can say why it waits
    from xai_core import explainers, metrics, models, runner, store  # noqa: F401, PLC0415 - see the line above

    # The engine's modules are millions of long-lived objects. Moved out of the garbage collector's generations,
    # they are no longer walked by every full collection, which otherwise happens during most page runs and
    # costs 0.1-0.3 s each (a page switch took 2x the time of a bare Streamlit app's; see docs/benchmarks.md).
    # Frozen objects are still freed by reference counting; only cycles among them are never collected, and
    # modules live as long as the process anyway.
    gc.collect()
    gc.freeze()
    record(cache, ENGINE, time.perf_counter() - t0)
    _engine_loaded = True
    box.empty()
