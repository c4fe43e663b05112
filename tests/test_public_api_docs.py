"""Every function, method and class that docs/api.md lists has a numpy-style docstring naming its parameters.

docs/api.md is the public interface. Each ``## `module` `` heading opens a module; the first column of each
``| name | ...`` table names its objects (```a`, `b` `` rows too; a dotted name such as ``xai_core.store.ResultStore``
stands on its own, and the bare names after it in the same cell share its module). A first-column name that is a
module (``xai_core.genes``) lists its functions in the second column as ``name(...)``.

For every function and every public method of a listed class, the docstring's ``Parameters`` section must name
each parameter of the signature (``*args``/``**kwargs`` as ``*args``/``**options`` or bare), and name nothing
the signature lacks; a listed class's docstring must name each dataclass field or ``__init__`` parameter under
``Parameters`` or ``Attributes``. A parameter added without documentation fails here, naming the function and
the parameter.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"
_SECTION = re.compile(r"^(\S[^\n]*)\n-{3,}\s*$", re.M)
_NAME = re.compile(r"`([A-Za-z_][\w.]*)`")


def _listed() -> list[tuple[str, str]]:
    """(module, name) for every object named in the first column of api.md's ``| name |`` tables."""
    out: list[tuple[str, str]] = []
    module: str | None = None
    in_names_table = False
    for line in API_MD.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            m = re.match(r"## `([\w.]+)`", line)
            module, in_names_table = (m.group(1) if m else None), False
            continue
        if not line.startswith("|"):
            in_names_table = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if cells[0] == "name":
            in_names_table = True
            continue
        if not in_names_table or set(cells[0]) <= set("-| "):
            continue
        row_module = module
        for name in _NAME.findall(cells[0]):
            if "." in name:
                if _is_module(name):  # `xai_core.genes` | `class_scores(a, y, n_classes)`, `overlap(...)`
                    out += [(name, fn) for fn in re.findall(r"`([A-Za-z_]\w*)\(", cells[1])]
                    continue
                row_module, name = name.rsplit(".", 1)
            assert row_module, f"docs/api.md: `{name}` is in a table outside a `## `module`` section; write it dotted"
            out.append((row_module, name))
    return out


def _is_module(name: str) -> bool:
    try:
        return isinstance(importlib.import_module(name), ModuleType)
    except ImportError:
        return False


def _resolve(module: str, name: str) -> Any:
    """The object, or None where the code lacks it (``test_api_md_lists_names_that_exist`` reports those)."""
    return getattr(importlib.import_module(module), name, None)


def _sections(doc: str) -> dict[str, list[str]]:
    """Numpy sections of a cleaned docstring: title -> its lines."""
    lines = inspect.cleandoc(doc or "").splitlines()
    out: dict[str, list[str]] = {}
    title = None
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and lines[i].strip() and re.fullmatch(r"-{3,}", lines[i + 1].strip()) \
                and not lines[i].startswith(" "):
            title = lines[i].strip()
            out[title] = []
            i += 2
            continue
        if title is not None:
            out[title].append(lines[i])
        i += 1
    return out


def _documented(doc: str, *titles: str) -> set[str] | None:
    """Names in the given sections (``name : type`` or ``name`` lines at the section's indent), None if absent."""
    secs = _sections(doc)
    if not any(t in secs for t in titles):
        return None
    names: set[str] = set()
    for t in titles:
        for line in secs.get(t, []):
            if not line.strip() or line.startswith((" ", "\t")):
                continue
            head = line.split(" : ", 1)[0].strip()
            names.update(n.strip().lstrip("*") for n in head.split(","))
    return names


def _params(fn: Any) -> list[str]:
    sig = inspect.signature(fn)
    # ``_ray_trace_ctx``: added to an actor's methods once Ray has been initialised in the same process
    return [p.name for p in sig.parameters.values() if p.name not in ("self", "cls", "_ray_trace_ctx")]


def _routines() -> list[tuple[str, Any]]:
    """(qualified name, function) for every listed function and every public method of a listed class."""
    out: dict[str, Any] = {}
    for module, name in _listed():
        obj = _resolve(module, name)
        if inspect.isclass(obj):
            for attr, raw in vars(obj).items():
                if attr.startswith("_") or isinstance(raw, property):
                    continue
                fn = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
                if inspect.isfunction(fn):
                    out[f"{obj.__module__}.{obj.__qualname__}.{attr}"] = inspect.unwrap(fn)
        elif inspect.isroutine(obj):
            fn = inspect.unwrap(obj)
            out[f"{fn.__module__}.{fn.__qualname__}"] = fn
    return sorted(out.items())


def _classes() -> list[tuple[str, type]]:
    out: dict[str, type] = {}
    for module, name in _listed():
        obj = _resolve(module, name)
        if inspect.isclass(obj):
            out[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return sorted(out.items())


def test_api_md_lists_names_that_exist():
    listed = _listed()
    assert len(listed) > 100, "the api.md parser found too few names; did the table layout change?"
    missing = [f"{m}.{n}" for m, n in listed if not hasattr(importlib.import_module(m), n)]
    assert not missing, f"docs/api.md lists names the code lacks: {missing}"


@pytest.mark.parametrize("qualname,fn", [pytest.param(q, f, id=q) for q, f in _routines()])
def test_function_docstring_names_every_parameter(qualname, fn):
    params = _params(fn)
    doc = inspect.getdoc(fn)
    assert doc and doc.strip(), f"{qualname} has no docstring"
    if not params:
        return
    documented = _documented(doc, "Parameters", "Other Parameters")
    assert documented is not None, f"{qualname}{inspect.signature(fn)}: no numpy 'Parameters' section"
    missing = [p for p in params if p not in documented]
    assert not missing, f"{qualname}: the docstring's Parameters section lacks {missing}"
    extra = sorted(documented - set(params))
    assert not extra, f"{qualname}: the docstring documents {extra}, which the signature lacks"


@pytest.mark.parametrize("qualname,cls", [pytest.param(q, c, id=q) for q, c in _classes()])
def test_class_docstring_names_every_field(qualname, cls):
    doc = inspect.getdoc(cls) if "__doc__" in vars(cls) else None
    assert doc and doc.strip(), f"{qualname} has no docstring of its own"
    if dataclasses.is_dataclass(cls):
        fields = [f.name for f in dataclasses.fields(cls)]
    elif "__init__" in vars(cls):
        fields = _params(cls.__init__)
    else:
        return
    if not fields:
        return
    documented = _documented(doc, "Parameters", "Attributes", "Other Parameters")
    assert documented is not None, f"{qualname}: no numpy 'Parameters' or 'Attributes' section for {fields}"
    missing = [f for f in fields if f not in documented]
    assert not missing, f"{qualname}: the class docstring's Parameters/Attributes lack {missing}"


def test_the_checker_catches_an_undocumented_parameter():
    def documented(a, b, **options):
        """Do a thing.

        Parameters
        ----------
        a, b : int
            Two numbers.
        **options
            Passed on.
        """

    def undocumented(a, new):  # noqa: D417 - the missing parameter is the point
        """Do a thing.

        Parameters
        ----------
        a : int
            A number.
        """

    assert _documented(inspect.getdoc(documented), "Parameters") == {"a", "b", "options"}
    assert "new" not in _documented(inspect.getdoc(undocumented), "Parameters")
    with pytest.raises(AssertionError, match=r"undocumented.*lacks \['new'\]"):
        test_function_docstring_names_every_parameter("tests.undocumented", undocumented)
