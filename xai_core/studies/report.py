"""The Markdown report of a study: what was run, on what, how long it took, the tables, our numbers
beside the paper's with a sentence on each difference, and the verdict on each qualitative claim."""
from __future__ import annotations

import shlex

from typing import Any

from .base import StudyResult

_MARK = {"agrees": "✔ agrees", "partly": "◐ partly", "differs": "✘ differs", "not comparable": "– not comparable",
         "not tested": "– not tested"}


def fmt(v: Any, sd: Any = None, digits: int = 2) -> str:
    """A cell: numbers rounded to ``digits`` (with ± sd when given), None as an em dash."""
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v).replace("|", "\\|").replace("\n", " ")
    s = f"{v:.{digits}f}" if isinstance(v, float) else str(v)
    return s if sd is None else f"{s} ± {sd:.{digits}f}"


def md_table(columns: list[str], rows: list[list[Any]], digits: int = 2) -> str:
    head = "| " + " | ".join(fmt(c) for c in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(c, digits=digits) for c in r) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def duration_text(s: float | None, total: bool = False) -> str:
    """A study's measured duration: "42.3 s", "31 min 43 s", "3 h 36 min" (an hour or more in hours and
    minutes); ``total`` adds the seconds from a minute on, "31 min 43 s (1903 s)". None: "—".

    Parameters
    ----------
    s : float or None
        Seconds.
    total : bool
        Append the seconds in brackets (the report's run table).

    Returns
    -------
    str
    """
    if s is None:
        return "—"
    m, sec = divmod(int(round(s)), 60)
    if not m:
        return f"{s:.1f} s"
    text = f"{m // 60} h {m % 60} min" if m >= 60 else f"{m} min {sec} s"
    return f"{text} ({s:.0f} s)" if total else text


def render_markdown(r: StudyResult) -> str:
    m = r.machine or {}
    versions = m.get("versions", {})
    out = [f"# {r.title}", "",
           f"Reproduction of {r.paper} (protocol: the Protocol section below; {r.section} of docs/protocols/). "
           f"Mode: **{r.mode}**.", "",
           "| run | |", "|---|---|",
           f"| command | `{r.command}` |",
           f"| started | {r.started} |",
           f"| duration | {duration_text(r.duration_s, total=True)} |",
           f"| machine | {m.get('platform', '?')}, {m.get('cpus', '?')} CPUs, {m.get('memory_gib', '?')} GiB, "
           f"{m.get('device', 'cpu')} |",
           f"| versions | python {versions.get('python', '?')}, torch {versions.get('torch', '?')}, "
           f"captum {versions.get('captum', '?')}, zennit {versions.get('zennit', '?')} |",
           *_kernels(r), ""]
    out += _reproduce(r)
    if r.timings:
        out += ["Time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in r.timings.items()) + ".", ""]
        total = sum(r.timings.values())
        if r.duration_s is not None and total > 1.2 * r.duration_s:
            out += [f"The stages sum to {duration_text(total, total=True)}, more than this invocation's duration: "
                    "part of the work was reused from the cache of an earlier invocation, and its stage times are "
                    "those measured when it was computed.", ""]
    if r.summary:
        out += ["## Summary", "", *[f"- {s}" for s in r.summary], ""]
    if r.protocol:
        out += ["## Protocol", "", md_table(["setting", "value"], [[k, _cell(v)] for k, v in r.protocol.items()]), ""]
    if r.comparisons:
        out += ["## Our numbers beside the paper's", ""]
        groups: dict[str, list[dict]] = {}
        for c in r.comparisons:
            groups.setdefault(c.get("group") or "", []).append(c)
        for g, items in groups.items():
            if g:
                out += [f"### {g}", ""]
            rows = [[c["quantity"], fmt(c["ours"], c.get("ours_sd")), fmt(c["paper"], c.get("paper_sd")),
                     _MARK.get(c["verdict"], c["verdict"]), c["explanation"]] for c in items]
            out += [md_table(["quantity", f"ours{_unit(items)}", f"paper{_unit(items)}", "verdict", "why"], rows),
                    ""]
    if r.claims:
        out += ["## The study's claims", "",
                md_table(["claim", "our run", "evidence"],
                         [[c["claim"], _MARK.get(c["verdict"], c["verdict"]), c["evidence"]] for c in r.claims]), ""]
    for t in r.tables:
        out += [f"## {t['title']}", "", md_table(t["columns"], t["rows"]), ""]
        if t.get("note"):
            out += [t["note"], ""]
    if r.figures:
        out += ["## Figures", "", "Drawn from `results.json` on the dashboard's **Studies** page:", "",
                *[f"- {f['title']}" + (f": {f['caption']}" if f.get("caption") else "") for f in r.figures], ""]
    return "\n".join(out).rstrip() + "\n"


def _kernels(r: StudyResult) -> list[str]:
    """The run table's row on what decided the numbers beyond the code (``determinism.record``)."""
    d = (r.provenance or {}).get("determinism")
    if not d:
        return []
    env = ", ".join(f"{k}={v}" for k, v in d.get("env", {}).items())
    return [f"| kernels | seed {d.get('seed')}, {d.get('torch_threads')} torch thread(s), CPU kernels "
            f"{d.get('cpu_capability')} on {d.get('cpu')}, oneDNN {'on' if d.get('mkldnn') else 'off'}, "
            f"deterministic algorithms {'on' if d.get('deterministic_algorithms') else 'off'}"
            + (f", {env}" if env else "") + " |"]


def without_out(command: str) -> str:
    """``command`` without its ``--out`` / ``--compare`` options (the reproduce line adds its own).

    Parameters
    ----------
    command : str
        A shell-quoted ``python -m xai_core study ...`` line.

    Returns
    -------
    str
    """
    words = shlex.split(command)
    keep, skip = [], False
    for w in words:
        if skip:
            skip = False
            continue
        if w in ("--out", "--compare"):
            skip = True
            continue
        if not w.startswith(("--out=", "--compare=")):
            keep.append(w)
    return " ".join(shlex.quote(w) for w in keep)


def _reproduce(r: StudyResult) -> list[str]:
    """How to re-run this and check the numbers, and which numbers another machine may move (docs/determinism.md)."""
    if not r.command:
        return []
    where = f"docs/studies/{r.study}/{'quick/' if r.mode == 'quick' else ''}results.json"
    out = [f"Reproduce: `{without_out(r.command)} --out DIR --compare {where}` re-runs it and compares every number "
           "with this file (docs/determinism.md says what is fixed, the tolerance, and what stays "
           "machine-dependent).", ""]
    trained = (r.provenance or {}).get("trained_weights") or {}
    if trained and (r.provenance or {}).get("training_dtype") == "float64":
        out += [f"Trained in float64: this run trained {len(trained)} models in float64 and rounded them to float32 "
                "(their weights' hashes are in results.json). Another CPU or thread count trains the same models: a "
                "few weights may round the other way in the last bit, so a hash may differ while every number agrees "
                "within the tolerance. Correlations over the population remain seed-sensitive; the report gives "
                "their spread over training seeds.", ""]
    elif trained:
        out += [f"Seed-sensitive: this run trained {len(trained)} models (their weights' hashes are in results.json). "
                "The same CPU kernels train the same weights; a CPU whose kernels round float32 differently trains "
                "others, and every number that passes through training then moves by about its spread over training "
                "seeds, which the report gives where it matters. Numbers on fixed weights reproduce.", ""]
    if r.tolerances:
        groups: dict[tuple, list[str]] = {}
        for path, t in r.tolerances.items():
            groups.setdefault((t["rel"], t["abs"], t["why"]), []).append(f"`{path}`")
        out += ["Numbers another machine may move by more than the default tolerance, and the tolerance a re-run is "
                "held to:", "", *[f"- {', '.join(paths)}: relative {rel:g} or absolute {tol:g}, because {why}"
                                  for (rel, tol, why), paths in groups.items()], ""]
    if r.volatile:
        out += ["Not compared (time or the cache's state, not the science): "
                + ", ".join(f"`{p}`" for p in r.volatile) + ".", ""]
    return out


def _unit(items: list[dict]) -> str:
    units = {c.get("unit") or "" for c in items}
    return f" ({units.pop()})" if len(units) == 1 and "" not in units else ""


def _cell(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_cell(x)}" for k, x in v.items())
    return str(v)
