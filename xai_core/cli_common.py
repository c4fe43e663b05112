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
