"""What the Studies page draws: a study's committed results (``docs/studies/NAME/results.json``), a live quick
re-run, and the two side by side. Everything is read back from the ``results.json`` files, so results survive
reruns and restarts; the science is in ``xai_core.studies``.

Where the results are read from: ``DOCS_DIR`` if set (tests), else ``$XAI_CORE_STUDIES_DIR``, else
``docs/studies``. Live runs go to ``<cache>/studies/NAME/live``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from xai_core.data import cache_dir
from xai_core.studies import DOCS, STUDIES, StudyResult, run_study
from xai_core.studies import study_names as engine_study_names
from xai_core.studies.base import ROOT
from xai_core.studies.report import duration_text, fmt

from . import ui
from xai_core.figures import studies as figs
from .progress import progress_bar

NAMES = ("ig-expression", "grain-explainers", "dna-consistency")
FALLBACK_TITLES = {"ig-expression": "Integrated Gradients on gene expression (Bontonou et al.)",
                   "grain-explainers": "Explaining models of grain images (Tětková et al.)",
                   "dna-consistency": "Consistent attributions for genomics (Majdandzic et al.)"}
ENV = "XAI_CORE_STUDIES_DIR"
DOCS_DIR: Path | None = None  # an override for tests
MARKS = {"agrees": ":green-badge[✔ agrees]", "partly": ":orange-badge[◐ partly]", "differs": ":red-badge[✘ differs]",
         "not comparable": ":gray-badge[– not comparable]", "not tested": ":gray-badge[– not tested]"}


def docs_dir() -> Path:
    if DOCS_DIR is not None:
        return Path(DOCS_DIR)
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    return DOCS


def live_dir(name: str) -> Path:
    return cache_dir() / "studies" / name / "live"


def paths(name: str) -> dict[str, Path]:
    return {"full": docs_dir() / name / "results.json", "quick": docs_dir() / name / "quick" / "results.json",
            "live": live_dir(name) / "results.json"}


def command(name: str, which: str) -> str:
    return f"python -m xai_core study {name}" + ("" if which == "full" else " --quick")


def shown_path(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def registered() -> list[str]:
    """Studies whose module is importable (a broken module must not take the page down)."""
    try:
        return engine_study_names()
    except Exception:  # noqa: BLE001
        return list(STUDIES.names())


def study_names() -> list[str]:
    return list(NAMES) + [n for n in registered() if n not in NAMES]


@st.cache_data(show_spinner=False, max_entries=32)
def _read(path: str, mtime_ns: int) -> dict:
    return json.loads(Path(path).read_text())


def load(name: str, which: str):
    """(StudyResult or None, problem or None) for ``which`` in full/quick/live; a missing file is no problem."""
    p = paths(name)[which]
    if not p.exists():
        return None, None
    try:
        d = _read(str(p), p.stat().st_mtime_ns)
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, found {type(d).__name__}")
        r = StudyResult.from_dict(d)
        for part in ("summary", "tables", "comparisons", "claims", "figures"):
            if not isinstance(getattr(r, part), list):
                raise ValueError(f"'{part}' is not a list")
        return r, None
    except (OSError, ValueError, TypeError, AttributeError) as e:
        why = str(e).split("\n")[0][:200]
        again = ("re-run the quick version live (button above)" if which == "live"
                 else f"regenerate it with `{command(name, which)}`")
        return None, f"`{shown_path(p)}` could not be read ({type(e).__name__}: {why}). To fix it, {again}."


def study_ranking(dataset: str) -> dict | None:
    """The committed full study that ranks methods on ``dataset``, if any: its title, winner (first row of its
    ``ranking`` table), number of methods, metrics and samples, read from its ``results.json``."""
    for name in study_names():
        r, _ = load(name, "full")
        if r is None or not str(r.protocol.get("dataset", "")).startswith(f"{dataset} "):
            continue
        table = next((t for t in r.tables if t.get("name") == "ranking" and t.get("rows")), None)
        if table is None:
            continue
        row = dict(zip(table["columns"], table["rows"][0]))
        metrics = [str(m).split(" (")[0] for m in r.protocol.get("metrics", [])]
        return {"study": name, "title": r.title, "winner": str(row.get("method")), "p_rank_1": row.get("P(rank 1)"),
                "n_methods": len(table["rows"]), "metrics": metrics, "samples": str(r.protocol.get("samples", ""))}
    return None


def why_winners_differ(other: dict, mrr, n_samples: int, label) -> str:
    """Why the Studies page names another winner than this page's ranking: another set of methods, metrics and
    samples (``other`` from ``study_ranking``, ``mrr`` the page's ranking result)."""
    here = list(mrr.metrics_used)
    return (f"The Studies page ({other['title']}) names **{label(other['winner'])}** first on this dataset, this page "
            f"**{label(str(mrr.table.index[0]))}**. They rank different sets: the study ranks {other['n_methods']} "
            f"methods on {len(other['metrics'])} metrics ({', '.join(other['metrics'])}) over {other['samples']}; "
            f"this page ranks {len(mrr.table)} methods on {len(here)} metric(s) ({', '.join(here)}) over "
            f"{n_samples} samples. The winner depends on which metrics and samples are counted: "
            "choose the study's metrics and methods above to compare like with like.")


def title(name: str) -> str:
    for which in ("full", "quick"):
        p = paths(name)[which]
        if p.exists():
            r, _ = load(name, which)
            if r is not None and r.title:
                return r.title
    return STUDIES.get(name).title if name in STUDIES else FALLBACK_TITLES.get(name, name)


def _md(text) -> str:
    """Text for a Markdown cell: ``$`` (LaTeX) and ``~`` (strike-through) escaped, no line breaks."""
    return str(text).replace("\\", "\\\\").replace("$", "\\$").replace("~", "\\~").replace("\n", " ")


def _cell(v) -> str:
    if isinstance(v, (list, tuple)):
        text = ", ".join(_cell(x) for x in v)
    elif isinstance(v, dict):
        text = "; ".join(f"{k}: {_cell(x)}" for k, x in v.items())
    else:
        text = str(v)
    return text if len(text) <= 300 else text[:297] + "…"


def first_computation(name: str) -> dict | None:
    """The first full computation of study ``name`` as ``docs/studies/RUNS.md`` records it: ``seconds`` (its wall
    clock) and ``when``; None when the file has no row for it."""
    runs = docs_dir() / "RUNS.md"
    try:
        lines = runs.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] == name:
            m = re.search(r"(\d+) min (\d+) s", cells[2])
            if m:
                return {"seconds": 60 * int(m.group(1)) + int(m.group(2)), "when": cells[3]}
    return None


def _stage_total(r) -> float:
    return sum(float(v) for v in (r.timings or {}).values() if isinstance(v, (int, float)))


def duration_line(r) -> str:
    """The duration for the header: the first full computation's wall clock (from docs/studies/RUNS.md) when this
    file was written by an invocation that reused cached runs (a re-render, or the last stage of a staged run: its
    own duration far shorter than that, or than its stage times), else the file's own."""
    own = r.duration_s
    first = first_computation(r.study) if r.mode == "full" else None
    stages = _stage_total(r)
    longest = max([first["seconds"] if first else 0.0, stages])
    if own is not None and longest > 1.5 * own:
        what = (f"computed from scratch in **{duration_text(first['seconds'])}** ({first['when']}); "
                if first else f"its stages took **{duration_text(stages)}** when first computed; ")
        return (f"**Duration:** {what}the invocation that wrote this file took {duration_text(own)}, reusing runs "
                "cached by earlier ones (docs/studies/RUNS.md)")
    return f"**Duration:** {duration_text(own)}"


def stage_caption(r) -> str:
    """The stage times under the header. When the file was written by an invocation that reused stored results
    and its stages add up to far less than the first computation (a re-render from a results store keeps no
    stage times), they are said to be that invocation's; else they are the computation's, cached stages
    keeping the time of the run that computed them."""
    stages = ", ".join(f"{k} {duration_text(v)}" for k, v in r.timings.items())
    first = first_computation(r.study) if r.mode == "full" else None
    if first and _stage_total(r) < 0.5 * first["seconds"]:
        return (f"Time per stage of the invocation that wrote this file, which reused stored results: {stages}. "
                f"Not the computation's ({duration_text(first['seconds'])} in all; docs/studies/RUNS.md).")
    return ("Time per stage when it was computed (a stage reused from an earlier run's cache keeps that run's "
            f"time, so the stages can add up to more than the duration above): {stages}.")


def header(r) -> None:
    """The run's facts: paper, mode, command, duration (the first full computation's when re-rendered), machine,
    start."""
    m = r.machine or {}
    machine = " · ".join(str(x) for x in (m.get("platform"), f"{m['cpus']} CPUs" if m.get("cpus") else None,
                                          f"{m['memory_gib']} GiB" if m.get("memory_gib") else None, m.get("device"))
                         if x) or "—"
    with st.container(border=True):
        st.markdown(f"**Paper:** {_md(r.paper)}  \n**Mode:** {r.mode} · {duration_line(r)} · "
                    f"**Started:** {r.started or '—'}  \n**Machine:** {_md(machine)}  \n"
                    f"**Command:** `{r.command or '—'}`")
        if r.timings:
            st.caption(stage_caption(r))
    if r.protocol:
        with st.expander(f"Protocol ({r.section})" if r.section else "Protocol"):
            st.table(pd.DataFrame([[k, _md(_cell(v))] for k, v in r.protocol.items()], columns=["setting", "value"]),
                     hide_index=True)


def _fmt(v, sd=None) -> str:
    return fmt(v, sd, digits=3 if isinstance(v, float) and 0 < abs(v) < 0.1 else 2)


def verdict_counts(items: list[dict]) -> str:
    counts = pd.Series([c.get("verdict") for c in items]).value_counts()
    return ", ".join(f"{n} {v}" for v, n in counts.items())


def comparisons(r, key: str) -> None:
    st.subheader("Our numbers beside the paper's")
    if not r.comparisons:
        st.info("This run has no numbers to compare with the paper.")
        return
    st.caption(f"{len(r.comparisons)} numbers: {verdict_counts(r.comparisons)}. Our numbers are means ± sd over "
               "this run's repeats; the paper's as it reports them.")
    groups: dict[str, list[dict]] = {}
    for c in r.comparisons:
        groups.setdefault(c.get("group") or "", []).append(c)
    for g, items in groups.items():
        if g:
            st.markdown(f"##### {_md(g)}")
        rows = [[_md(c["quantity"]) + (f" ({_md(c['unit'])})" if c.get("unit") else ""),
                 _fmt(c.get("ours"), c.get("ours_sd")), _fmt(c.get("paper"), c.get("paper_sd")),
                 MARKS.get(c.get("verdict"), _md(c.get("verdict"))), _md(c.get("explanation", ""))] for c in items]
        st.table(pd.DataFrame(rows, columns=["quantity", "ours", "paper", "verdict", "why they differ (or not)"]),
                 hide_index=True)
    ui.csv_download(pd.DataFrame(r.comparisons), f"{r.study}_{r.mode}_comparisons",
                    label="Download the comparisons (CSV)", key=f"{key}_csv_cmp")


def claims(r) -> None:
    st.subheader("The study's claims")
    if not r.claims:
        st.info("This run tests none of the paper's qualitative claims.")
        return
    st.table(pd.DataFrame([[_md(c["claim"]), MARKS.get(c.get("verdict"), _md(c.get("verdict"))),
                            _md(c.get("evidence", ""))] for c in r.claims], columns=["claim", "our run", "evidence"]),
             hide_index=True)


def _frame(t: dict) -> pd.DataFrame:
    """A result table; columns mixing numbers and text are shown as text (Arrow needs one type per column)."""
    cols = [str(c) for c in t["columns"]]
    cols = [c if cols.index(c) == i else f"{c} ({i})" for i, c in enumerate(cols)]
    df = pd.DataFrame(t["rows"], columns=cols)
    for c in df.columns:
        kinds = {type(v) for v in df[c] if v is not None}
        if len(kinds - {int, float}) and len(kinds) > 1 or kinds & {list, dict}:
            df[c] = [None if v is None else _cell(v) for v in df[c]]
    return df


def tables(r, key: str) -> None:
    if r.tables:
        st.subheader("Result tables")
    for i, t in enumerate(r.tables):
        with ui.friendly(f"Showing table '{t.get('title', i)}'"):
            st.markdown(f"##### {_md(t.get('title') or t.get('name', f'Table {i + 1}'))}")
            df = _frame(t)
            st.dataframe(df, hide_index=True, width="stretch",
                         column_config={c: st.column_config.NumberColumn(format="%.4g")
                                        for c in df.select_dtypes("float").columns})
            if t.get("note"):
                st.caption(t["note"])
            ui.csv_download(df, f"{r.study}_{r.mode}_{t.get('name', i)}", key=f"{key}_csv_t{i}")


def figures(r, key: str) -> None:
    if r.figures:
        st.subheader("Figures")
    for i, f in enumerate(r.figures):
        with ui.friendly(f"Drawing figure '{f.get('title') or f.get('name')}'"):
            ui.figure(figs.build(f), f"{r.study}_{r.mode}_{f.get('name', i)}", key=f"{key}_f{i}")
            if f.get("caption"):
                st.caption(f["caption"])


def show(r, key: str) -> None:
    """A whole result: facts and summary open; comparisons, claims, tables and figures each in an expander (the
    comparisons and claims open, the long tables and figures closed), so the page stays short."""
    header(r)
    if r.summary:
        st.subheader("Summary")
        st.markdown("\n".join(f"- {_md(s)}" for s in r.summary))
    sections = [
        (f"Our numbers beside the paper's ({len(r.comparisons)}"
         + (f": {verdict_counts(r.comparisons)})" if r.comparisons else ")"), True, lambda: comparisons(r, key)),
        (f"The study's claims ({len(r.claims)}" + (f": {verdict_counts(r.claims)})" if r.claims else ")"), True,
         lambda: claims(r)),
        (f"Result tables ({len(r.tables)})", False, lambda: tables(r, key)),
        (f"Figures ({len(r.figures)})", False, lambda: figures(r, key)),
    ]
    for label, expanded, part in sections:
        with st.expander(label, expanded=expanded), ui.friendly(f"Showing {r.study} ({r.mode})"):
            part()


def headline(committed, live) -> pd.DataFrame:
    """Each compared quantity: the committed run's number, the live quick run's, their difference, the paper's."""
    theirs = {(c.get("group"), c["quantity"]): c for c in live.comparisons}
    rows = []
    for c in committed.comparisons:
        other = theirs.get((c.get("group"), c["quantity"]), {})
        a, b = c.get("ours"), other.get("ours")
        num = isinstance(a, (int, float)) and isinstance(b, (int, float))
        rows.append({"group": c.get("group") or "", "quantity": c["quantity"], f"committed ({committed.mode})": a,
                     "live (quick)": b, "live − committed": b - a if num else None, "paper": c.get("paper"),
                     "verdict (committed → live)": f"{c.get('verdict')} → {other.get('verdict', '—')}"})
    return pd.DataFrame(rows)


def compare_runs(committed, live, key: str) -> None:
    st.subheader("Live quick run against the committed run")
    df = headline(committed, live)
    if df.empty:
        st.info("The committed run compares no numbers with the paper, so there is nothing to set side by side.")
        return
    same = int((df["verdict (committed → live)"].str.split(" → ").str[0]
                == df["verdict (committed → live)"].str.split(" → ").str[1]).sum())
    st.markdown(f"The live run gives the same verdict as the committed {committed.mode} run on **{same} of "
                f"{len(df)}** numbers." + (" A quick run uses fewer samples, seeds and epochs, so its numbers may "
                                           "move; the committed full run is the reference." if committed.mode == "full"
                                           else ""))
    st.dataframe(df, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4g")
                                for c in df.select_dtypes("number").columns})
    ui.csv_download(df, f"{committed.study}_committed_vs_live", key=f"{key}_csv_vs")


def run_live(name: str):
    """Run the quick version into the live folder with a progress bar; None (and a message) when it fails."""
    bar, progress = progress_bar(f"Starting the quick run of {name}…", lambda e: (e.fraction, e.message[:200]))
    result = None
    with ui.friendly(f"The live quick run of {name} (the results shown before are kept)"):
        result = run_study(name, quick=True, out_dir=live_dir(name), progress=progress)
    bar.empty()
    if result is not None:
        st.success(f"Live quick run finished in {duration_text(result.duration_s)}; its results are in the "
                   "'Live quick run' tab below.")
    return result
