"""The import graph keeps the layers of docs/ARCHITECTURE.md: read with ``ast`` from the repository's own files.

Layers, bottom to top: the engine's foundations (errors, registry, fsutil, provenance, costs) -> data -> models
(``models/``, imported as ``xai_core.models``) -> explainers -> metrics -> runner, store, ranking -> studies and
the CLI -> ``dashboard/`` -> ``views/`` and ``app.py``. Every import counts, at module level or inside a
function (a function-level import still ties the two files together). Each failure names the files and names.
"""
from __future__ import annotations

import ast
import subprocess
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("xai_core", "models", "dashboard", "views")
SOURCE_FILES = ("app.py",)
# What models/ may take from the rest of the engine: only the layers beneath it.
MODELS_MAY_IMPORT = ("xai_core.models", "xai_core.data", "xai_core.errors", "xai_core.fsutil", "xai_core.registry",
                     "xai_core.provenance", "xai_core.costs", "xai_core.progress")
UI = ("streamlit", "dashboard", "views", "app")


def _module_name(rel: str) -> str:
    """The module a repository file is imported as (``models/x.py`` is ``xai_core.models.x``)."""
    parts = list(Path(rel).with_suffix("").parts)
    if parts[0] == "models":
        parts = ["xai_core", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@lru_cache(maxsize=1)
def _files() -> dict[str, Path]:
    """Module name -> file, over the tracked and new (not ignored) Python files of the product."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *SOURCE_DIRS,
                          *SOURCE_FILES], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\n")
    files = {}
    for rel in out:
        path = ROOT / rel
        if rel.endswith(".py") and path.is_file() and not path.is_symlink():
            files[_module_name(rel)] = path
    return files


def _is_package(module: str) -> bool:
    return _files()[module].name == "__init__.py"


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (never executed, so no tie)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


@lru_cache(maxsize=1)
def _imports() -> list[tuple[str, str, str, int]]:
    """Every import of the product: (importing module, imported module as written or resolved, name, line).

    ``name`` is the name taken (``from X import name``), or '' for ``import X``. Relative imports are
    resolved; ``from pkg import sub`` names the submodule ``pkg.sub`` when one exists."""
    known = _files()
    rows = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_only(tree)
        package = module if _is_package(module) else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                rows += [(module, a.name, "", node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    rows.append((module, sub if sub in known else target, "" if sub in known else a.name,
                                 node.lineno))
    return rows


def _internal(target: str) -> str | None:
    """The product module that ``target`` loads (the longest known prefix), or None for a library."""
    known = _files()
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return None


def _where(module: str, line: int) -> str:
    return f"{_files()[module].relative_to(ROOT)}:{line}"


def _under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _graph() -> dict[str, dict[str, list[tuple[str, int]]]]:
    """module -> imported product module -> [(name, line)]."""
    g: dict[str, dict[str, list[tuple[str, int]]]] = defaultdict(lambda: defaultdict(list))
    for src, target, name, line in _imports():
        dst = _internal(target)
        if dst is not None and dst != src:
            g[src][dst].append((name, line))
    return g


def _circles(g) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g.get(w, {})))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _violations(rule) -> list[str]:
    """'file:line: module imports target (name)' for each import that ``rule(src, target)`` refuses."""
    bad = []
    for src, target, name, line in _imports():
        if rule(src, target):
            bad.append(f"{_where(src, line)}: {src} imports {target}{f' ({name})' if name else ''}")
    return sorted(set(bad))


def test_the_product_files_are_found():
    files = _files()
    assert {"xai_core.cli", "xai_core.models.zoo", "dashboard.state", "views.home", "app"} <= set(files), sorted(files)


def test_no_import_circles():
    g = _graph()
    lines = []
    for comp in _circles(g):
        lines.append(f"circle of {len(comp)}: {', '.join(comp)}")
        for a in comp:
            for b in comp:
                if b in g[a]:
                    names = sorted({n or "(module)" for n, _ in g[a][b]})
                    lines.append(f"  {_where(a, g[a][b][0][1])}: {a} -> {b}: {', '.join(names)}")
    assert not lines, "import circles (module-level and function-level imports):\n" + "\n".join(lines)


def test_the_engine_never_imports_the_dashboard():
    bad = _violations(lambda src, target: _under(src, ["xai_core"]) and _under(target, UI))
    assert not bad, "the engine (xai_core, models) imports streamlit / dashboard / views / app:\n" + "\n".join(bad)


def _cli(m: str) -> bool:
    return m == "xai_core.__main__" or _under(m, ["xai_core.cli"]) or m.startswith("xai_core.cli_")


def test_the_engine_below_the_cli_never_imports_it():
    bad = _violations(lambda src, target: _under(src, ["xai_core"]) and not _cli(src) and _cli(target))
    assert not bad, "engine modules import the command line (xai_core.cli*):\n" + "\n".join(bad)


def test_the_dashboard_and_pages_never_import_the_command_line():
    bad = _violations(lambda src, target: _under(src, ["dashboard", "views", "app"]) and _cli(target))
    assert not bad, ("dashboard/, views/ or app import the command line (xai_core.cli*); what both need belongs "
                     "in the engine:\n" + "\n".join(bad))


def test_models_import_only_the_layers_beneath_them():
    bad = _violations(lambda src, target: _under(src, ["xai_core.models"]) and _under(target, ["xai_core"])
                      and not _under(target, MODELS_MAY_IMPORT))
    assert not bad, (f"models/ (xai_core.models) imports above its layer; it may take only "
                     f"{', '.join(MODELS_MAY_IMPORT)}:\n" + "\n".join(bad))


def test_the_dashboard_never_imports_the_pages():
    bad = _violations(lambda src, target: _under(src, ["dashboard"]) and _under(target, ["views", "app"]))
    assert not bad, "dashboard/ imports views/ or app (pages sit above it):\n" + "\n".join(bad)


def test_no_top_level_models_package():
    bad = _violations(lambda src, target: _under(target, ["models"]))
    assert not bad, "imports of a top-level 'models' package (write xai_core.models):\n" + "\n".join(bad)


NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}


def _own_private_names(tree: ast.Module) -> set[str]:
    """Private names a file defines itself: functions, classes, variables, and ``self._x`` / ``cls._x``."""
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            own.add(node.attr)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
    return own


def test_no_private_names_across_modules():
    """``from X import _name``, and ``obj._name`` where ``_name`` is not defined in the file that uses it (an
    object's private attribute reached from another module: give its class a public method instead). A class's
    own ``self._x`` / ``cls._x`` is its business, inherited or not."""
    bad = []
    for src, target, name, line in _imports():
        dst = _internal(target)
        if dst is not None and dst != src and name.startswith("_") and not name.startswith("__"):
            bad.append(f"{_where(src, line)}: {src} takes {name} from {dst}")
    for module, path in _files().items():
        tree = ast.parse(path.read_text())
        own = _own_private_names(tree) | NAMEDTUPLE_API
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and node.attr not in own
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                bad.append(f"{_where(module, node.lineno)}: {module} uses {ast.unparse(node)}")
    assert not bad, "private names used outside their module (make them public):\n" + "\n".join(sorted(bad))


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split("\n")
    return [ROOT / rel for rel in out if rel and (ROOT / rel).is_file() and not (ROOT / rel).is_symlink()]


def test_no_pointers_outside_the_repository():
    me = Path(__file__).resolve()
    needles = ("seeds" + "_spec", "../" + "shared")  # split, so this file does not name them itself
    bad = []
    for path in _tracked():
        if path.resolve() == me:
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for i, line in enumerate(text.splitlines(), 1):
            bad += [f"{path.relative_to(ROOT)}:{i}: {n}" for n in needles if n in line]
    assert not bad, "references to files outside this repository:\n" + "\n".join(bad)
