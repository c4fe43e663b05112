"""The "Add your data" page's parts: where the files come from, the reader and its options, the import, the
preview, training a first model, and the list of the user's datasets.

The reader's options come from the importer registry (``xai_core.data.importers.IMPORTERS``) and are drawn by
``import_options`` from their help text, so a new reader or option appears here without a change to this page.
Uploads are saved and archives extracted by ``uploads``.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from xai_core.data import (IMPORTERS, MODALITIES, detect_format, import_data, load_dataset, remove_user_dataset,
                           user_entries)
from xai_core.data.preview import summarize
from xai_core.data.user import DEFAULT_ARCH, entry_of
from xai_core.models import ARCHS

from . import pages, state, ui
from .data_view import split_labels
from xai_core.figures import data as figs
from .import_options import option_inputs
from .page_errors import shown_as_error
from .progress import progress_bar, training_text
from .training import train_and_save
from .uploads import save_upload

AUTO = "(infer)"
KIND_LABELS = {"expression": "expression table", "image": "images", "sequence": "DNA sequences"}
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")
# how the reader read the file (``Dataset.params``), shown under the preview when present, in this order
READ_FACTS = ("orientation", "orientation_detected", "sep", "label_column", "label_key", "layer", "labels_file",
              "split", "test_size", "split_seed", "hvg", "max_cells", "storage", "standardization", "image_size",
              "fit", "channels", "intensity", "n_upscaled", "length_policy", "length", "align", "n_policy")
FACT_LABELS = {"n_upscaled": "images upscaled", "sep": "separator", "split_seed": "split seed",
               "hvg": "top variable genes", "image_size": "image size"}
CURRENT, NOTICE, TRAINED = "ad_current", "ad_notice", "ad_trained"


# -- files in --------------------------------------------------------------------------------------------------
def default_name(path: Path) -> str:
    """A valid dataset name from a file or folder name (``My cells (v2).csv`` -> ``My-cells-v2``)."""
    stem = path.name
    for suf in (".gz", ".bz2", ".zip", ".xz"):
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
    stem = Path(stem).stem if Path(stem).suffix else stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._")[:64]
    return name or "my-data"


# -- the reader and its options ------------------------------------------------------------------------------
def importers_of(kind: str | None) -> list:
    return [i for i in IMPORTERS.values() if kind is None or i.kind == kind]


# -- the page's sections ---------------------------------------------------------------------------------------
def source_path() -> Path | None:
    """The file or folder to read: an upload (written under the cache) or a path on this machine."""
    how = st.radio("Your data is", ["an upload", "a path on this machine"], horizontal=True, key="ad_source",
                   help=f"Uploads are limited to {st.get_option('server.maxUploadSize')} MB (Streamlit's "
                        "server.maxUploadSize); larger files and image folders already on disk are read in place "
                        "from their path.")
    if how == "an upload":
        up = st.file_uploader("A table (.csv, .tsv), an .h5ad file, a FASTA file, or a .zip of an image folder "
                              "(one subfolder per class)", key="ad_upload")
        if up is None:
            return None
        saved = st.session_state.setdefault("_ad_saved", {})
        if up.file_id not in saved:
            with shown_as_error("Saving the upload"), st.spinner("Saving the upload…"):
                saved[up.file_id] = str(save_upload(up.name, up.getvalue()))
        return Path(saved[up.file_id]) if up.file_id in saved else None
    text = st.text_input("Path to a file or folder", key="ad_path", placeholder="/data/cells.csv  or  /data/images/",
                         help="Read in place (nothing is copied); relative paths start where the dashboard runs.")
    if not text.strip():
        return None
    path = Path(text.strip()).expanduser()
    if not path.exists():
        st.error(f"{path}: no such file or folder; check the path (it is read on the machine running the dashboard)")
        return None
    return path


def choose_reader(path: Path):
    """Kind and format, inferred or chosen; shows which reader applies. ``None`` (with an error shown) if none."""
    c1, c2 = st.columns(2)
    kind = c1.selectbox("Kind of data", [AUTO, *MODALITIES], key="ad_kind",
                        format_func=lambda k: k if k == AUTO else KIND_LABELS[k])
    kind = None if kind == AUTO else kind
    fmts = [AUTO] + [i.name for i in importers_of(kind)]
    if st.session_state.get("ad_fmt") not in fmts:
        st.session_state["ad_fmt"] = AUTO
    fmt = c2.selectbox("Format", fmts, key="ad_fmt",
                       help="\n".join(f"{i.name} ({i.kind}): {i.description}" for i in importers_of(kind)))
    fmt = None if fmt == AUTO else fmt
    imp = None
    with shown_as_error("Recognising the format"):
        imp = detect_format(path, kind, fmt)
    if imp is not None:
        how = "chosen" if fmt else "detected"
        st.info(f"Format {how}: **{imp.name}** ({imp.kind}): {imp.description}", icon=":material/check_circle:")
    return imp


def import_form(path: Path) -> None:
    imp = choose_reader(path)
    if imp is None:
        return
    with st.expander(f"Options of the {imp.name} reader", expanded=True):
        options = option_inputs(imp, path)
    mine = {e["name"] for e in user_entries()}
    bundled = {r["name"] for r in state.dataset_catalogue() if r["size"] != state.USER_SIZE}
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    if st.session_state.get("_ad_name_for") != str(path):  # a new file: its name as the default
        st.session_state["_ad_name_for"] = str(path)
        st.session_state["ad_name"] = default_name(path)
    name = c1.text_input("Name", key="ad_name",
                         help="How the dataset is called in the sidebar, the command line and links: letters, digits, "
                              "'-', '_' or '.'.").strip()
    go = c2.button("Import", key="ad_import", type="primary", disabled=not name or name in bundled)
    if name in bundled:
        st.error(f"'{name}' is a bundled dataset; choose another name")
    elif name in mine:
        st.caption(f"A dataset named **{name}** exists: importing replaces it (an unchanged file is not read again).")
    if go:
        run_import(path, name, imp, options)


def run_import(path: Path, name: str, imp, options: dict[str, Any]) -> None:
    before = entry_of(name)
    done = False
    with shown_as_error("Importing"), st.spinner(f"Reading {path.name}…"):
        t0 = time.perf_counter()
        ds, entry, reused = import_data(path, name, kind=imp.kind, fmt=imp.name, **options)
        done = True
    if not done:
        return
    if before is not None and before.get("fingerprint") != entry.get("fingerprint"):
        state.forget_dataset_caches()  # results other pages cached under this name came from the old data
    st.session_state[CURRENT] = name
    st.session_state.pop(TRAINED, None)
    st.session_state[NOTICE] = (f"**{name}** is unchanged since its last import: reused." if reused else
                                f"Imported **{name}**: {len(ds):,} samples, {ds.n_classes} classes "
                                f"({time.perf_counter() - t0:.1f} s).")
    st.rerun()  # the sidebar (drawn before this) lists the new dataset on the next run


@st.cache_resource(show_spinner=False, max_entries=4)
def _dataset(name: str, fp: str | None):
    return load_dataset(name)


@st.cache_data(show_spinner=False, max_entries=16)
def _summary(name: str, fp: str | None) -> dict:
    return summarize(_dataset(name, fp))


def preview(name: str) -> None:
    """What ``name`` holds, then: use it, train a model on it."""
    fp = state.fingerprint(name)
    ds = _dataset(name, fp)
    s = _summary(name, fp)
    st.subheader(f"Preview: {name}")
    entry = _entry(name)
    if entry:
        st.caption(entry.get("description", ""))
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Samples", f"{s['n_samples']:,}")
    c2.metric("Input", " × ".join(str(v) for v in s["input_shape"]),
              help={"expression": "genes per sample", "image": "channels × height × width",
                    "sequence": "4 nucleotides × positions"}[s["modality"]])
    c3.metric("Classes", s["n_classes"], help=", ".join(c["name"] for c in s["classes"][:50]))
    c4.metric("Train / test", f"{s['split']['train']:,} / {s['split']['test']:,}", help=str(s["split"]["how"]))
    seps = {",": "comma", "\t": "tab", ";": "semicolon", " ": "space"}
    shown = {k: (seps.get(v, v) if k == "sep" else v) for k, v in s["params"].items()}
    facts = [f"**{FACT_LABELS.get(k, k.replace('_', ' '))}**: {shown[k]}" for k in READ_FACTS
             if s["params"].get(k) not in (None, "", [], {})]
    if s["lazy"]:
        facts.append("sparse, read a batch of rows at a time")
    st.markdown("How it was read: " + " · ".join(facts))
    gt = s["ground_truth"]
    st.markdown(f"**Ground truth:** {gt['text']}" if gt["present"] else f"**Ground truth:** {gt['text']}.")
    for w in s["warnings"]:
        st.warning(w, icon=":material/warning:")

    left, right = st.columns([2, 3])
    with left:
        ui.figure(figs.class_counts(ds.y, ds.class_names, split_labels(ds)), f"class_counts_{name}",
                  key="ad_counts", downloads=False)
    with right:
        if s["modality"] == "expression":
            rows = s["rows"]
            df = pd.DataFrame(rows["values"], columns=rows["genes"], index=rows["samples"])
            df.insert(0, "label", rows["labels"])
            st.markdown(f"**First rows** (first {len(rows['genes'])} of {rows['n_genes']:,} genes"
                        + (", standardised as the model sees them)" if s["params"].get("standardized") else ")"))
            st.dataframe(df, key="ad_rows")
        elif s["modality"] == "image":
            idx = np.asarray(s["examples"][:8], dtype=np.int64)
            gt = ds.ground_truth
            masks = gt.masks[idx] if gt is not None and gt.masks is not None else None
            labels = [f"{ds.class_names[ds.y[i]]}" for i in idx]
            fig = figs.image_samples(ds.X[idx], labels, masks, cols=4)
            fig.update_layout(height=150 * int(np.ceil(len(idx) / 4)) + 40, margin=dict(t=30, b=10))  # small tiles
            st.markdown("**Examples** (the first of each class, as the model sees them)")
            ui.figure(fig, f"images_{name}", key="ad_images", downloads=False)
        else:
            st.markdown(f"**Example sequences** (first {min(80, s['length'])} of {s['length']} bp)")
            st.dataframe(pd.DataFrame(s["sequences"]), key="ad_seqs", hide_index=True)
    with st.expander("Everything recorded at import"):
        st.json({"entry": entry or {}, "params": s["params"]}, expanded=False)

    use_and_train(name, ds)


def _entry(name: str) -> dict | None:
    return entry_of(name)


def use_and_train(name: str, ds) -> None:
    in_use = st.session_state.get(state.DATASET) == name
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    if c1.button("Use this dataset", key="ad_use", type="primary", disabled=in_use):
        choices = state.model_choices(name)
        state.choose(dataset=name, model=choices[-1] if choices else None)  # newest trained model
        st.rerun()
    c2.caption(f"**{name}** is selected in the sidebar." if in_use else
               "Selects it in the sidebar, so every page works on it.")

    st.subheader("Train a model on it")
    trained = st.session_state.get(TRAINED)
    if trained and trained.get("dataset") == name:
        show_trained(trained)
    train_panel(name, ds)


def chance_level(ds) -> float:
    """Accuracy of always predicting the test set's most frequent class (at least 1 / classes)."""
    counts = np.bincount(ds.y[ds.test_idx], minlength=ds.n_classes)
    return float(max(counts.max() / max(counts.sum(), 1), 1.0 / max(ds.n_classes, 1)))


def train_panel(name: str, ds) -> None:
    archs = [a.name for a in ARCHS.values() if a.modality == ds.modality]
    default = DEFAULT_ARCH.get(ds.modality, archs[0])
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
    arch = c1.selectbox("Architecture", archs, index=archs.index(default) if default in archs else 0, key="ad_arch",
                        help="\n".join(f"{a}: {ARCHS.get(a).description}" for a in archs))
    full = int(ARCHS.get(arch).train_defaults.get("epochs", 20))
    epochs = c2.number_input("Epochs", 1, 200, min(full, 10), key="ad_epochs",
                             help=f"The architecture's recipe uses {full}; early stopping keeps the best epoch.")
    seed = c3.number_input("Training seed", 0, 10_000, 0, key="ad_seed")
    go = c4.button("Train", key="ad_train", type="primary")
    if not go:
        return
    _, progress = progress_bar("Training…", training_text)
    done = None
    with shown_as_error("Training"):
        path, report = train_and_save(name, arch, int(seed), int(epochs), progress=progress)
        done = (path, report)
    if done is None:
        return
    path, report = done
    st.session_state[TRAINED] = {"dataset": name, "arch": arch, "path": str(path), "epochs": int(epochs),
                                 "accuracy": float(report["test_accuracy"]),
                                 "balanced": float(report.get("test_balanced_accuracy") or 0.0),
                                 "seconds": float(report.get("seconds") or 0.0), "chance": chance_level(ds),
                                 "n_classes": ds.n_classes}
    state.choose(dataset=name, model=str(path))
    st.rerun()


def show_trained(t: dict) -> None:
    st.success(f"Trained **{t['arch']}** ({t['epochs']} epochs, {t['seconds']:.0f} s): test accuracy "
               f"**{t['accuracy'] * 100:.1f} %** (balanced {t['balanced'] * 100:.1f} %). "
               "It is selected in the sidebar.",
               icon=":material/check_circle:")
    chance_bal = 1.0 / max(t["n_classes"], 1)
    if t["accuracy"] <= t["chance"] + 0.05 or t["balanced"] <= chance_bal + 0.05:
        st.warning(f"This is at chance level (always answering the most frequent class scores "
                   f"{t['chance'] * 100:.0f} %, guessing {chance_bal * 100:.0f} % balanced): the model learnt "
                   "little, so its explanations say little. Train longer, try another architecture, or check the "
                   "labels and the orientation of the data.", icon=":material/warning:")
    st.markdown("Go on to:")
    for col, slug in zip(st.columns(3), ("explanations", "metrics", "method_ranking")):
        p = pages.page(slug)
        col.page_link(p.file, label=p.title, icon=p.icon)


def your_datasets() -> None:
    """The user's imports, each with Preview, Use and Remove."""
    st.subheader("Your datasets")
    entries = user_entries()
    if not entries:
        st.caption("None imported yet. Imports are kept in the cache folder and are listed by "
                   "`python -m xai_core datasets` too.")
        return
    for e in entries:
        name = e["name"]
        with st.container(border=True, key=f"ad_item_{name}"):
            c1, c2, c3, c4 = st.columns([6, 1, 1, 1], vertical_alignment="center")
            shape = " × ".join(str(v) for v in e.get("input_shape", []))
            src = Path(e.get("source") or "").name
            c1.markdown(f"**{name}** · {e.get('kind')} · {e.get('n_samples', 0):,} samples of {shape} · "
                        f"{len(e.get('class_names') or [])} classes  \n"
                        f"<small>{e.get('format')} from {src or 'Python'} · imported {str(e.get('imported', ''))[:16]}"
                        f"</small>", unsafe_allow_html=True)
            if c2.button("Preview", key=f"ad_show_{name}", disabled=st.session_state.get(CURRENT) == name):
                st.session_state[CURRENT] = name
                st.rerun()
            if c3.button("Use", key=f"ad_use_{name}", disabled=st.session_state.get(state.DATASET) == name):
                choices = state.model_choices(name)
                state.choose(dataset=name, model=choices[-1] if choices else None)
                st.rerun()
            if c4.button("Remove", key=f"ad_rm_{name}"):
                remove(name)


def remove(name: str) -> None:
    done = False
    with shown_as_error(f"Removing {name}"):
        remove_user_dataset(name)
        done = True
    if not done:
        return
    state.forget_dataset_caches()
    _dataset.clear()
    if st.session_state.get(state.DATASET) == name:
        state.choose(dataset=state.DEFAULT_DATASET)
    if st.session_state.get(CURRENT) == name:
        st.session_state.pop(CURRENT, None)
    st.session_state[NOTICE] = f"Removed **{name}** (models trained on it stay in the cache until removed by hand)."
    st.rerun()


def notice() -> None:
    msg = st.session_state.pop(NOTICE, None)
    if msg:
        st.success(msg, icon=":material/check_circle:")
