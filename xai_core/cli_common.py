"""What every CLI module shares: the ``key=value`` syntax of ``--set``/``--param``/``--option``."""
from __future__ import annotations

import argparse
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from . import costs
from .errors import XaiError


def parse_value(v: str) -> Any:
    """A JSON value when it parses as one (numbers, true/false, lists), else the string itself."""
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def parse_sets(items: list[str] | None, what: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; an item without ``=`` is an error naming the flag."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise XaiError(f"{what} '{item}' must look like key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def add_device_flag(parser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, or auto (CUDA when available)")


# -- checked flag values ---------------------------------------------------------------------------
# argparse ``type=`` functions: a bad value ends with one line naming the flag and the valid range, exit 2,
# before any work starts (``OneLineParser`` prints ``error: --n: must be ...``).
SEED_MAX = 2**32 - 1  # numpy's legacy seeding (used by training) takes seeds below 2**32


def _fmt(v: float) -> str:
    return f"{v:,}".replace(",", "_") if isinstance(v, int) and abs(v) >= 100_000 else f"{v:g}"


def int_range(lo: int | None = None, hi: int | None = None, what: str = "a whole number"):
    """An argparse type: a whole number in [lo, hi] (either bound may be None)."""
    rng = (f"in [{_fmt(lo)}, {_fmt(hi)}]" if lo is not None and hi is not None
           else f">= {_fmt(lo)}" if lo is not None else f"<= {_fmt(hi)}" if hi is not None else "")

    def check(text: str) -> int:
        s = str(text).strip().replace("_", "")
        try:
            v = int(s)
        except ValueError:
            try:  # 1e3 is a whole number; 1.5 is not
                f = float(s)
                v = int(f) if math.isfinite(f) and f == int(f) else None
            except ValueError:
                v = None
        if v is None or (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"must be {what} {rng}, got {text}".replace("  ", " "))
        return v

    check.__name__ = "int"
    return check


def float_range(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False):
    """An argparse type: a finite number in the range (open or closed at either end)."""
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {_fmt(lo)}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {_fmt(hi)}")
    rng = " and ".join(parts)

    def check(text: str) -> float:
        try:
            v = float(str(text).strip())
        except ValueError:
            v = math.nan
        bad = (not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo))
               or (hi is not None and (v >= hi if hi_open else v > hi)))
        if bad:
            raise argparse.ArgumentTypeError(f"must be a finite number{' ' + rng if rng else ''}, got {text}")
        return v

    check.__name__ = "float"
    return check


positive_int = int_range(1, what="a positive whole number")
nonneg_int = int_range(0, what="a whole number")
seed_int = int_range(0, SEED_MAX)
finite_float = float_range()
positive_float = float_range(0, lo_open=True)


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: --n: must be a positive whole number >= 1, got -1 (see ... --help)``."""

    def error(self, message: str):
        message = re.sub(r"^argument ([^:]+): ", r"\1: ", message)
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def name_list(value: str, flag: str, valid, kind: str, allow_all: bool = True) -> list[str] | str:
    """``--methods``/``--metrics``: 'all', or a comma list with empty items dropped, duplicates removed and
    every name checked against ``valid``; an empty selection or an unknown name is one error naming the flag."""
    if allow_all and value.strip() == "all":
        return "all"
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    valid = sorted(valid)
    if not names:
        raise XaiError(f"{flag} names no {kind}; give {'all or ' if allow_all else ''}a comma list, e.g. "
                       f"{flag} {','.join(valid[:2])}")
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise XaiError(f"{flag}: unknown {kind} '{', '.join(unknown)}'; valid choices: {', '.join(valid)}")
    return names


def check_out_path(out: str | None, flag: str = "--out", kind: str = "dir") -> None:
    """Before any work: ``--out``/``--store`` must be of the right kind (a folder, or a file) and writable."""
    if not out:
        return
    p = Path(out)
    if kind == "dir":
        if p.exists() and not p.is_dir():
            raise XaiError(f"{flag} {p} is a file; give a folder (it is created if missing)")
    elif p.exists() and p.is_dir():
        raise XaiError(f"{flag} {p} is a folder; give a file path")
    parent = p if (kind == "dir" and p.exists()) else next((q for q in p.parents if q.exists()), Path("."))
    if kind == "file" and p.exists():
        ok = os.access(p, os.W_OK)
        parent = p
    else:
        ok = os.access(parent, os.W_OK | os.X_OK) and parent.is_dir()
    if not ok:
        raise XaiError(f"{flag} {p}: cannot write in {parent}; choose a path you can write to")


def check_cost(passes: float, what: str, yes: bool) -> None:
    """Refuse a run whose estimated passes exceed ``COST_LIMIT`` unless ``--yes`` was given."""
    if costs.needs_confirmation(passes) and not yes:
        raise XaiError(f"{what} needs about {passes:,.0f} forward/backward passes (more than {costs.COST_LIMIT:,.0f}); "
                       f"lower --n or the method/metric parameters, or pass --yes to go ahead")


def add_yes_flag(parser) -> None:
    parser.add_argument("--yes", action="store_true",
                        help=f"run even when the estimated cost exceeds {costs.COST_LIMIT:,.0f} model passes")
