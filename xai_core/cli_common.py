"""What every CLI module shares: the ``key=value`` syntax of ``--set``/``--param``/``--option``."""
from __future__ import annotations

import json
from typing import Any

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


def resolve_device(value: str | None) -> str:
    """``--device``: ``cpu``, ``cuda`` (or ``cuda:N``), or ``auto`` (CUDA when this machine has it)."""
    import torch

    v = (value or "cpu").strip().lower()
    if v == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if v == "cpu":
        return v
    if v == "cuda" or (v.startswith("cuda:") and v[5:].isdigit()):
        if not torch.cuda.is_available():
            raise XaiError(f"--device {value}: this machine has no CUDA device; use --device cpu or --device auto")
        if ":" in v and int(v[5:]) >= torch.cuda.device_count():
            raise XaiError(f"--device {value}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0 ...)")
        return v
    raise XaiError(f"--device must be cpu, cuda, cuda:N or auto, got {value!r}")


def add_device_flag(parser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, or auto (CUDA when available)")
