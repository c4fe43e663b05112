"""The reader's option widgets on the "Add your data" page, drawn from an importer's ``options`` help text.

Each option is drawn from its name and help text (a column picker for ``*_column``/``*_key`` options when the
file's columns can be listed, a choice box when the help quotes the allowed values, a checkbox for a true/false
default, a path or an upload for options that name other files, free text otherwise), so a new reader or
option appears without a change to the page.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import h5py
import pandas as pd
import streamlit as st

from .page_errors import shown_as_error
from .uploads import save_upload

DEFAULT = "(default)"


def list_columns(path: Path, fmt: str) -> list[str]:
    """Column names offered for ``*_column``/``*_key`` options: a table's header, an .h5ad's obs keys; [] when
    they cannot be read cheaply."""
    try:
        if path.is_file() and path.suffix.lower() == ".h5ad":
            with h5py.File(path, "r") as f:
                obs = f.get("obs")
                if obs is None:
                    return []
                return [k for k in obs.keys() if not k.startswith("_")]
        if path.is_file():
            lower = path.name.lower()
            sep = "\t" if any(s in lower for s in (".tsv", ".tab")) else None
            head = pd.read_csv(path, sep=sep, engine="python", nrows=3)
            return [str(c) for c in head.columns]
    except Exception:  # noqa: BLE001 - only a convenience: the user can type the name
        return []
    return []


def help_default(help_text: str) -> str | None:
    """The default a help text states: ``(default 0.25)``, ``default: tab``, ``(cells x genes; default 'label')``."""
    m = re.search(r"default[:]?\s+'?([^;),'(]+)'?", help_text or "")
    return m.group(1).strip() if m else None


def help_choices(help_text: str) -> tuple[list[str], str | None]:
    """The values a help text lists as the allowed ones, and which is the default, or ``([], None)``.

    Reads the readers' style "how images become square: resize (stretch, default), crop (centre square) or
    pad": the text after the last colon, parenthetical remarks dropped, split at commas and "or"."""
    text = help_text or ""
    head = re.sub(r"\([^()]*\)", "", text)
    tail = head.rsplit(":", 1)[-1]
    items = [i.strip().strip("'\"") for i in re.split(r",\s*or\s+|,|\s+or\s+", tail) if i.strip()]
    ok = len(items) >= 2 and all(re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_. -]{0,24}", i) and len(i.split()) <= 3
                                 for i in items)
    if not ok:
        return [], None
    default = None
    for item in items:  # "resize (stretch, default)" marks resize
        m = re.search(re.escape(item) + r"'?\s*\(([^()]*)\)", text)
        if m and re.search(r"\bdefault\b", m.group(1)):
            default = item
    return list(dict.fromkeys(items)), default


def parse_value(text: str) -> Any:
    """As the command line reads ``key=value``: JSON when it parses (numbers, true/false, lists), else text."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _is_column_option(opt: str) -> bool:
    return opt.endswith("_column") or opt.endswith("_key") or opt in ("label", "obs")


def _default_label(d: str | None) -> str:
    return f"{DEFAULT[:-1]}: {d})" if d else DEFAULT


def option_inputs(imp, path: Path) -> dict[str, Any]:
    """One widget per option of ``imp``; returns the options the user set (left alone = the reader's default).

    A column picker for ``*_column``/``*_key`` options (when the file's columns can be listed), a choice box
    when the help lists the allowed values, a checkbox for a true/false default, a path or an upload for
    options naming other files (``side_files``), and free text (read like the command line's key=value)."""
    opts: dict[str, Any] = {}
    if not imp.options:
        st.caption(f"The {imp.name} reader has no options.")
        return opts
    columns = list_columns(path, imp.name) if any(_is_column_option(o) for o in imp.options) else []
    side = set(imp.side_files)
    plain = [o for o in imp.options if o not in side]
    order = {"column": 0, "choice": 1, "flag": 2, "text": 3}

    def kind_of(opt: str) -> str:
        h = imp.options[opt]
        if _is_column_option(opt) and columns:
            return "column"
        if help_choices(h)[0]:
            return "choice"
        if re.search(r"\(default (true|false)\)", h):
            return "flag"
        return "text"

    plain.sort(key=lambda o: order[kind_of(o)])
    cols = st.columns(3)
    for n, opt in enumerate(plain):
        h = imp.options[opt]
        key = f"ad_opt_{imp.name}_{opt}"
        with cols[n % 3]:
            kind = kind_of(opt)
            if kind == "column":
                d = help_default(h)
                v = st.selectbox(opt, [DEFAULT, *columns], key=key, help=h,
                                 format_func=lambda c, d=d: _default_label(d) if c == DEFAULT else c)
                if v != DEFAULT:
                    opts[opt] = v
            elif kind == "choice":
                choices, d = help_choices(h)
                options = choices if d else [DEFAULT, *choices]
                v = st.selectbox(opt, options, index=options.index(d) if d else 0, key=key, help=h,
                                 format_func=lambda c, d=d: f"{c} (default)" if c == d else c)
                if v not in (DEFAULT, d):
                    opts[opt] = parse_value(v) if re.fullmatch(r"-?\d+(\.\d+)?", v) else v
            elif kind == "flag":
                d = re.search(r"\(default (true|false)\)", h).group(1) == "true"
                v = st.checkbox(opt, value=d, key=key, help=h)
                if v != d:
                    opts[opt] = v
            else:
                d = help_default(h)
                v = st.text_input(opt, key=key, help=h, placeholder=f"default: {d}" if d else "(not set)")
                if v.strip():
                    opts[opt] = parse_value(v)
    files = [o for o in imp.options if o in side]
    if files:
        c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
        c1.markdown("**Ground truth and label files** (optional)")
        upload = c2.toggle("Upload them instead of giving paths", key="ad_side_upload",
                           help="Small files only; a folder (masks) as a .zip. Big ones: give their path.")
        fcols = st.columns(min(len(files), 3))
        for n, opt in enumerate(files):
            key = f"ad_opt_{imp.name}_{opt}"
            with fcols[n % len(fcols)]:
                if upload:
                    up = st.file_uploader(opt, key=f"ad_up_{imp.name}_{opt}", help=imp.options[opt])
                    if up is not None:
                        with shown_as_error(f"Saving {up.name}"):
                            opts[opt] = str(save_upload(up.name, up.getvalue()))
                else:
                    p = st.text_input(opt, key=key, help=imp.options[opt], placeholder="path (optional)")
                    if p.strip():
                        opts[opt] = str(Path(p.strip()).expanduser())
    return opts
