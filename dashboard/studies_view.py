"""What the Studies page draws: a study's committed results (``docs/studies/NAME/results.json``), a live quick
re-run, and the two side by side. Everything is read back from the ``results.json`` files, so results survive
reruns and restarts; the science is in ``xai_core.studies``.

Where the results are read from: ``DOCS_DIR`` if set (tests), else ``$XAI_CORE_STUDIES_DIR``, else
``docs/studies``. Live runs go to ``<cache>/studies/NAME/live``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from xai_core.data import cache_dir
from xai_core.studies import DOCS, STUDIES, StudyResult, run_study
from xai_core.studies import study_names as engine_study_names
from xai_core.studies.base import ROOT
from xai_core.studies.report import fmt

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


def _duration(s) -> str:
    if s is None:
        return "—"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec} s" if m else f"{s:.1f} s"


def _cell(v) -> str:
    if isinstance(v, (list, tuple)):
        text = ", ".join(_cell(x) for x in v)
    elif isinstance(v, dict):
        text = "; ".join(f"{k}: {_cell(x)}" for k, x in v.items())
    else:
        text = str(v)
    return text if len(text) <= 300 else text[:297] + "…"


def header(r) -> None:
    """The run's facts: paper, mode, command, duration, machine, start."""
    m = r.machine or {}
    machine = " · ".join(str(x) for x in (m.get("platform"), f"{m['cpus']} CPUs" if m.get("cpus") else None,
                                          f"{m['memory_gib']} GiB" if m.get("memory_gib") else None, m.get("device"))
                         if x) or "—"
    with st.container(border=True):
        st.markdown(f"**Paper:** {_md(r.paper)}  \n**Mode:** {r.mode} · **Duration:** {_duration(r.duration_s)} · "
                    f"**Started:** {r.started or '—'}  \n**Machine:** {_md(machine)}  \n"
                    f"**Command:** `{r.command or '—'}`")
        if r.timings:
            st.caption("Time per stage: " + ", ".join(f"{k} {_duration(v)}" for k, v in r.timings.items()) + ".")
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
    """A whole result: facts, summary, comparisons, claims, tables, figures."""
    header(r)
    if r.summary:
        st.subheader("Summary")
        st.markdown("\n".join(f"- {_md(s)}" for s in r.summary))
    for part in (lambda: comparisons(r, key), lambda: claims(r), lambda: tables(r, key), lambda: figures(r, key)):
        with ui.friendly(f"Showing {r.study} ({r.mode})"):
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
        st.success(f"Live quick run finished in {_duration(result.duration_s)}; its results are in the "
                   "'Live quick run' tab below.")
    return result
