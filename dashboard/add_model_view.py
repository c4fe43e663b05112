"""The "Add your model" page's parts: which dataset the model is for, the model file (an upload or a path), its
architecture when the file holds bare weights, the import with its checks, and the list of the user's models.

All the work is the engine's (``xai_core.models.user_models.import_model``: format detection, the refusal of pickles,
the input/output/accuracy checks, the copy kept in the cache folder); this module only draws it. Python code
(``--model-code``) is never taken here: it runs the user's code, so it stays a command-line feature.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import streamlit as st

from xai_core.models import ARCHS
from xai_core.models.checkpoints import embedded_metadata
from xai_core.models.model_formats import FORMATS, detect_format, side_meta
from xai_core.models.user_models import import_model, remove_model

from . import state
from .page_errors import shown_as_error
from .uploads import save_upload, uploads_dir

LAST, NOTICE = "am_last", "am_notice"
FROM_FILE, BUILTIN, JSON_FILE = "from the file", "a built-in architecture", "a JSON file"
NEEDS_ARCH = ("safetensors", "state_dict")  # formats holding weights only: an architecture must be named
CLI_CODE = ("python -m xai_core import-model --model-code FILE.py:ClassName --weights WEIGHTS.safetensors "
            "--name NAME --dataset DATASET")


def upload_suffixes() -> list[str]:
    """File endings the uploader accepts: every registered format's, never Python code."""
    return sorted({s.lstrip(".") for f in FORMATS.values() if f.name != "code" for s in f.suffixes})


def formats_text() -> str:
    return "\n".join(f"- **{f.name}** ({', '.join(f.suffixes) or 'by content'}): {f.description}"
                     for f in FORMATS.values() if f.name != "code")


def eager_only_methods(modality: str) -> list[str]:
    """Methods of ``modality`` a non-eager model (TorchScript, torch.export) cannot run: those hooking the
    model's layers, and combinations of them (the engine leaves the same ones out of its list)."""
    from xai_core.explainers import EXPLAINERS  # noqa: PLC0415 - torch-backed explainers: only a non-eager model's checks

    hooked = {s.name for s in EXPLAINERS.values() if s.needs_eager and modality in s.modalities}
    out = []
    for s in EXPLAINERS.values():
        parts = s.defaults.get("*", {}).get("methods")
        parts = {p.strip() for p in parts.split(",")} if isinstance(parts, str) else set()
        if modality in s.modalities and (s.name in hooked or parts & hooked):
            out.append(s.name)
    return out


def default_model_name(path: Path) -> str:
    """A valid model name from a file name (``Lab model v2.pt`` -> ``Lab-model-v2``), never an architecture's."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path.name).stem).strip("-._")[:60] or "my-model"
    name = re.sub(r"\.(safetensors|pt2|pt|pth|ts|jit|torchscript|bin|ckpt)$", "", name,
                  flags=re.IGNORECASE) or "my-model"
    return f"{name}-yours" if name in ARCHS else name


# -- the page's sections ---------------------------------------------------------------------------------------
def target_dataset() -> str | None:
    """The dataset the model is for: the sidebar's, unless another is picked here (follows the sidebar when that
    changes)."""
    names = state.dataset_names()
    sidebar = st.session_state.get(state.DATASET) or state.DEFAULT_DATASET
    if st.session_state.get("_am_ds_for") != sidebar or st.session_state.get("am_dataset") not in names:
        st.session_state["_am_ds_for"] = sidebar
        st.session_state["am_dataset"] = sidebar if sidebar in names else names[0]
    mine = {r["name"] for r in state.dataset_catalogue() if r["size"] == state.USER_SIZE}
    return st.selectbox("For dataset", names, key="am_dataset",
                        format_func=lambda n: f"{n} (yours)" if n in mine else n,
                        help="The data the model classifies: it must take this dataset's inputs and give one "
                             "output per class. Starts at the dataset chosen in the sidebar.")


def source_file() -> Path | None:
    """The model file: an upload (written under the cache folder's uploads/) or a path on this machine."""
    how = st.radio("Your model is", ["an upload", "a path on this machine"], horizontal=True, key="am_source",
                   help=f"Uploads are limited to {st.get_option('server.maxUploadSize')} MB; bigger files are read "
                        "from their path (a copy is kept in the cache folder either way).")
    if how == "an upload":
        up = st.file_uploader("A safetensors, torch.export (.pt2), TorchScript or .pt state-dict file",
                              type=upload_suffixes(), key="am_upload")
        if up is None:
            return None
        saved = st.session_state.setdefault("_am_saved", {})
        if up.file_id not in saved:
            with shown_as_error("Saving the upload"), st.spinner("Saving the upload…"):
                saved[up.file_id] = str(save_upload(up.name, up.getvalue()))
        return Path(saved[up.file_id]) if up.file_id in saved else None
    text = st.text_input("Path to the model file", key="am_path", placeholder="/models/my_model.pt2",
                         help="Relative paths start where the dashboard runs. A JSON side file beside a bare state "
                              "dict (MODEL.pt.json or MODEL.json) is read too.")
    if not text.strip():
        return None
    path = Path(text.strip()).expanduser()
    if not path.is_file():
        st.error(f"{path}: no such file; check the path (it is read on the machine running the dashboard)")
        return None
    return path


def detected_format(path: Path):
    """The model format of ``path`` (shown), or None with one error."""
    fmt = None
    with shown_as_error("Recognising the model format"):
        fmt = detect_format(path)
    if fmt is not None:
        st.info(f"Format detected: **{fmt.name}**: {fmt.description}", icon=":material/check_circle:")
    return fmt


def _named_arch(path: Path, fmt: str) -> str | None:
    """The architecture the file itself names (our safetensors metadata, or a JSON side file), if any."""
    try:
        meta = side_meta(path) or (embedded_metadata(path) if fmt == "safetensors" else None)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the import itself
        return None
    return str(meta["arch"]) if isinstance(meta, dict) and meta.get("arch") else None


def write_arch_json(arch: str, kwargs: dict[str, Any]) -> Path:
    """The architecture JSON (``--model-meta``) under the cache folder's uploads/, named by its content."""
    text = json.dumps({"arch": arch, "arch_kwargs": kwargs}, indent=2, sort_keys=True)
    folder = uploads_dir() / "model_meta"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{arch}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"
    if not path.exists():
        path.write_text(text + "\n")
    return path


def architecture(path: Path, fmt: str, modality: str) -> tuple[bool, Path | None]:
    """For bare weights: where the architecture comes from. Returns (ready, meta JSON path or None = the file's
    own)."""
    named = _named_arch(path, fmt)
    options = [FROM_FILE, BUILTIN, JSON_FILE] if named else [BUILTIN, JSON_FILE]
    if st.session_state.get("am_arch_src") not in options:
        st.session_state["am_arch_src"] = options[0]
    st.markdown("**Architecture** (the file holds weights only)")
    src = st.radio("Architecture from", options, horizontal=True, key="am_arch_src", label_visibility="collapsed",
                   format_func=lambda o: f"from the file ({named})" if o == FROM_FILE else o,
                   help="A state dict needs the model it belongs to: one of the built-in architectures for this "
                        "kind of data, or a JSON file {\"arch\": ..., \"arch_kwargs\": {...}}.")
    if src == FROM_FILE:
        return True, None
    if src == JSON_FILE:
        up = st.file_uploader("Architecture JSON", type=["json"], key="am_meta_upload",
                              help='{"arch": "mlp", "arch_kwargs": {"hidden": 64}}')
        if up is None:
            return False, None
        p = None
        with shown_as_error("Saving the JSON"):
            p = save_upload(up.name, up.getvalue())
        return p is not None, p
    archs = [a.name for a in ARCHS.values() if a.modality == modality]
    c1, c2 = st.columns([1, 2])
    arch = c1.selectbox("Built-in architecture", archs, key="am_arch",
                        help="\n".join(f"{a}: {ARCHS.get(a).description}" for a in archs))
    text = c2.text_input("Its options (JSON, optional)", key="am_arch_kwargs", placeholder="{}",
                         help=f"Only where your weights were trained with other options; {arch}'s defaults: "
                              f"{json.dumps(ARCHS.get(arch).defaults, default=str)}")
    kwargs: dict[str, Any] = {}
    if text.strip():
        try:
            kwargs = json.loads(text)
        except json.JSONDecodeError as e:
            st.error(f"the architecture's options are not JSON ({e.msg}); write e.g. {{\"hidden\": 64}}")
            return False, None
        if not isinstance(kwargs, dict):
            st.error('the architecture\'s options must be a JSON object, e.g. {"hidden": 64}')
            return False, None
    meta = write_arch_json(arch, kwargs)
    st.caption(f"Written to `{meta}` (the same file works with `--model-meta` on the command line):")
    st.code(meta.read_text().strip(), language="json")
    return True, meta


def import_form(path: Path, dataset: str) -> None:
    fmt = detected_format(path)
    if fmt is None:
        return
    modality = next((r["modality"] for r in state.dataset_catalogue() if r["name"] == dataset), None)
    meta, ready = None, True
    if fmt.name in NEEDS_ARCH:
        ready, meta = architecture(path, fmt.name, modality)
    if st.session_state.get("_am_name_for") != str(path):  # a new file: its name as the default
        st.session_state["_am_name_for"] = str(path)
        st.session_state["am_name"] = default_model_name(path)
    mine = state.user_model_entries()
    c1, c2, c3 = st.columns([3, 2, 2], vertical_alignment="bottom")
    name = c1.text_input("Name", key="am_name",
                         help="How the model is called in the sidebar, on the command line (--model NAME) and in "
                              "links: letters, digits, '-', '_' or '.'.").strip()
    output = c2.selectbox("It returns", ["logits", "probabilities"], key="am_output",
                          help="probabilities: the model ends in a softmax (or a sigmoid); the engine then explains "
                               "the log-probabilities, whose softmax is the same.")
    go = c3.button("Check and import", key="am_import", type="primary",
                   disabled=not name or name in ARCHS or not ready)
    if name in ARCHS:
        st.error(f"'{name}' is a built-in architecture; choose another name")
    elif name in mine and mine[name].get("source") == str(path.resolve()):
        st.caption(f"**{name}** was imported from this file: importing again checks it again and replaces it.")
    elif name in mine:
        st.caption(f"A model named **{name}** exists (for {mine[name].get('dataset')}): importing replaces it.")
    if go:
        run_import(path, name, dataset, meta, output)


def run_import(path: Path, name: str, dataset: str, meta: Path | None, output: str) -> None:
    before = state.user_model_entries().get(name)
    entry = None
    with shown_as_error("Importing the model"), st.spinner(f"Checking {path.name} on {dataset}…"):
        entry = import_model(path, name, dataset, meta=meta, output=output)
    if entry is None:
        return
    if before is not None and before.get("hash") != entry.get("hash"):
        state.forget_dataset_caches()  # pages cache results by model name: drop those of the old file
    st.session_state[LAST] = name
    fmt = state.FORMAT_LABELS.get(entry["format"], entry["format"])
    st.session_state[NOTICE] = f"Imported **{name}** ({fmt}) for **{dataset}**: its checks are below."
    st.rerun()  # the sidebar (drawn before this) lists the new model on the next run


def _pct(v) -> str:
    return "n/a" if v is None else f"{v * 100:.1f} %"


def show_checks(name: str) -> None:
    """The checks recorded at import, then "Use this model"."""
    entry = state.user_model_entries().get(name)
    if entry is None:
        st.session_state.pop(LAST, None)
        return
    checks, ds_name = entry.get("checks") or {}, entry["dataset"]
    modality = next((r["modality"] for r in state.dataset_catalogue() if r["name"] == ds_name), "")
    fmt = state.FORMAT_LABELS.get(entry.get("format"), entry.get("format"))
    st.subheader(f"Checks: {name}")
    st.caption(f"{fmt} · for **{ds_name}** · returns {entry.get('output', 'logits')} · key {entry.get('hash')}")
    c1, c2, c3, c4 = st.columns(4)
    shape = " × ".join(str(s) for s in checks.get("input_shape") or [])
    c1.metric("Input shape", f"✓ {shape}" if checks.get("input_ok") else "✗",
              help=f"It takes {ds_name}'s inputs: (N, {', '.join(str(s) for s in checks.get('input_shape') or [])})")
    c2.metric("Outputs", f"✓ {checks.get('n_outputs')}" if checks.get("output_ok") else "✗",
              help=f"One output per class (or one for a binary task): {ds_name} has {checks.get('n_classes')} "
                   "classes.")
    c3.metric("Test accuracy", _pct(checks.get("test_accuracy")),
              help=f"On {checks.get('n_test', 0):,} test samples of {ds_name}; always answering the most frequent "
                   f"class scores {_pct(checks.get('majority_share'))}.")
    eager = bool(entry.get("eager"))
    c4.metric("Eager", "yes" if eager else "no",
              help="Eager: a plain PyTorch module whose layers can be hooked. TorchScript and torch.export "
                   "programs are not.")
    if checks.get("warning"):
        st.warning(f"Chance level: {checks['warning']}." if checks.get("chance_level") else checks["warning"],
                   icon=":material/warning:")
    if eager:
        st.caption("Eager: every method for this kind of data applies.")
    else:
        left_out = [state.method_label(m) for m in eager_only_methods(modality)]
        st.caption(f"Not eager ({fmt}): the methods that hook the model's layers are left out"
                   + (f": {', '.join(left_out)}." if left_out else ".")
                   + " To use them, import the weights as safetensors + architecture instead.")
    in_use = st.session_state.get(state.DATASET) == ds_name and st.session_state.get(state.MODEL) == name
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    if c1.button("Use this model", key="am_use", type="primary", disabled=in_use):
        state.choose(dataset=ds_name, model=name)
        st.rerun()
    c2.caption(f"**{name}** is selected in the sidebar; open **Explanations** or **Method ranking**." if in_use else
               f"Selects {ds_name} and this model in the sidebar, so every page works on it.")


def your_models() -> None:
    """The user's models (every dataset), each with Checks, Use and Remove."""
    st.subheader("Your models")
    entries = state.user_model_entries()
    if not entries:
        st.caption("None imported yet. Imported models are kept in the cache folder and listed by "
                   "`python -m xai_core models` too.")
        return
    for name, e in entries.items():
        with st.container(border=True, key=f"am_item_{name}"):
            c1, c2, c3, c4 = st.columns([6, 1, 1, 1], vertical_alignment="center")
            checks = e.get("checks") or {}
            fmt = state.FORMAT_LABELS.get(e.get("format"), e.get("format"))
            flag = " · **chance level**" if checks.get("chance_level") else ""
            where = "registered in this process" if e.get("where") == "process" else \
                f"imported {str(e.get('imported', ''))[:16]}"
            eager = "eager" if e.get("eager") else "not eager"
            c1.markdown(f"**{name}** · for {e.get('dataset')} · {fmt} · test accuracy "
                        f"{_pct(checks.get('test_accuracy'))}{flag}  \n<small>{eager} · {where}</small>",
                        unsafe_allow_html=True)
            if c2.button("Checks", key=f"am_show_{name}", disabled=st.session_state.get(LAST) == name):
                st.session_state[LAST] = name
                st.rerun()
            if c3.button("Use", key=f"am_use_{name}",
                         disabled=st.session_state.get(state.MODEL) == name
                         and st.session_state.get(state.DATASET) == e.get("dataset")):
                state.choose(dataset=e["dataset"], model=name)
                st.rerun()
            if c4.button("Remove", key=f"am_rm_{name}"):
                remove(name)


def remove(name: str) -> None:
    done = False
    with shown_as_error(f"Removing {name}"):
        remove_model(name)
        done = True
    if not done:
        return
    state.forget_dataset_caches()
    if st.session_state.get(LAST) == name:
        st.session_state.pop(LAST, None)
    st.session_state[NOTICE] = f"Removed **{name}**."
    st.rerun()


def notice() -> None:
    msg = st.session_state.pop(NOTICE, None)
    if msg:
        st.success(msg, icon=":material/check_circle:")
