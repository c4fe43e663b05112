"""Cached resources (datasets, models, the results store) and the selections that survive page switches.

Heavy objects are ``st.cache_resource`` (one per process, shared by sessions); selections live in
``st.session_state`` under the keys below, set by the shared sidebar in ``app.py``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from xai_core.costs import model_pass_cost
from xai_core.devices import resolve_device
from xai_core.figures.sequence import warm_glyphs

from . import first_load

# The engine imports below stay inside the functions (``noqa: PLC0415``): every page imports this module, and
# loading xai_core.data (scipy, 0.5 s), xai_core.models (torch + sklearn, 4-5 s), the explainers, the runner or the
# store (pandas) here would delay the first page; each is loaded by the first call that needs it.

DATASET, MODEL, SEED, DEVICE = "dataset", "model", "seed", "device"
DEFAULT_DATASET = "simu-small"


USER_SIZE = "user"  # DatasetSpec.size of a user's own import (xai_core/data/user.py)


@st.cache_data(show_spinner=False)
def _bundled_catalogue() -> list[dict[str, Any]]:
    """The bundled datasets (fixed for the process, so cached)."""
    from xai_core.models import available_models  # noqa: PLC0415 - torch: dashboard.state stays light
    from xai_core.data import list_datasets  # noqa: PLC0415 - scipy: dashboard.state stays light

    rows = [r for r in list_datasets() if r["size"] != USER_SIZE]
    for r in rows:
        r["shipped models"] = ", ".join(available_models(r["name"])) or "none yet"
    return rows


def user_catalogue() -> list[dict[str, Any]]:
    """The user's own imports, read from disk on every call (never cached): one imported here or with
    ``python -m xai_core import`` shows at once, a removed one disappears."""
    from xai_core.data import user_entries  # noqa: PLC0415 - scipy: dashboard.state stays light
    from xai_core.data.user import DEFAULT_ARCH  # noqa: PLC0415 - scipy: dashboard.state stays light

    rows = []
    for e in user_entries():
        trained = trained_checkpoints_for(e["name"], e.get("fingerprint"))
        rows.append({"name": e["name"], "modality": e["kind"], "size": USER_SIZE,
                     "default_model": DEFAULT_ARCH.get(e["kind"], ""), "description": e.get("description", ""),
                     "shipped models": ", ".join(model_label(str(p)) for p in trained) or "none yet",
                     "fingerprint": e.get("fingerprint")})
    return rows


def dataset_catalogue() -> list[dict[str, Any]]:
    """Bundled datasets, then the user's own (``size`` "user")."""
    return [dict(r) for r in _bundled_catalogue()] + user_catalogue()


def dataset_names() -> list[str]:
    return [r["name"] for r in dataset_catalogue()]


def fingerprint(dataset: str) -> str | None:
    """The content fingerprint of a user's dataset (changes when a changed file is re-imported under the
    same name); ``None`` for a bundled one."""
    from xai_core.data.user import entry_of  # noqa: PLC0415 - scipy: dashboard.state stays light

    try:
        entry = entry_of(dataset)
    except (OSError, ValueError):
        return None
    return entry.get("fingerprint") if entry else None


def trained_checkpoints_for(dataset: str, fp: str | None = None) -> list:
    """Checkpoints trained in the app for ``dataset`` (for a user dataset, only those trained on its current
    content)."""
    from xai_core.models.zoo import trained_checkpoints  # noqa: PLC0415 - torch: dashboard.state stays light

    return trained_checkpoints(dataset, fp) if fp else trained_checkpoints(dataset)


def model_choices(dataset: str) -> list[str]:
    """Shipped architectures first, then checkpoints trained in the app (paths), then the user's own models
    (registered in this process or imported into the cache folder) for ``dataset``, by name."""
    from xai_core.models import available_models  # noqa: PLC0415 - torch: dashboard.state stays light

    shipped = list(available_models(dataset))
    trained = [str(p) for p in trained_checkpoints_for(dataset, fingerprint(dataset))]
    return shipped + trained + [m for m in user_model_entries(dataset) if m not in shipped]


def user_model_entries(dataset: str | None = None) -> dict[str, dict[str, Any]]:
    """The user's own models (``xai_core.models.user_models``), by name: read from disk on every call, so one imported
    here or with ``python -m xai_core import-model`` shows at once and a removed one disappears."""
    from xai_core.models.user_models import user_models  # noqa: PLC0415 - torch: dashboard.state stays light

    try:
        return {e["name"]: e for e in user_models(dataset)}
    except OSError:
        return {}


FORMAT_LABELS = {"torchscript": "TorchScript", "pt2": "torch.export", "safetensors": "safetensors",
                 "state_dict": ".pt state dict", "code": "Python code", "python": "Python"}


def _is_checkpoint_path(model: str | None) -> bool:
    return bool(model) and str(model).endswith(".safetensors")


def _model_version(model: str | None, dataset: str | None = None) -> str | None:
    """What changes when a model is replaced under the same name: a trained checkpoint's modification time
    (retrained to the same file), a user model's key (``hash``: a changed file re-imported under the same
    name). Part of the cache keys below, so neither is served stale."""
    if not model:
        return None
    if _is_checkpoint_path(model):
        try:
            return str(Path(model).stat().st_mtime_ns)
        except OSError:
            return None
    from xai_core.models import ARCHS  # noqa: PLC0415 - torch: dashboard.state stays light

    if model in ARCHS:
        return None
    entry = user_model_entries(dataset).get(model)
    return f"user:{entry.get('hash')}" if entry else None


def model_version(model: str | None, dataset: str | None = None) -> str | None:
    """What changes when a model is replaced under the same name (a cache key; see ``_model_version``)."""
    return _model_version(model, dataset)


def model_label(choice: str) -> str:
    """How the sidebar names a model: the architecture, "mlp-seed0 (trained here)", "lab-ts (yours, TorchScript)"."""
    if _is_checkpoint_path(choice):
        return Path(choice).stem.split("__", 1)[-1] + " (trained here)"
    from xai_core.models import ARCHS  # noqa: PLC0415 - torch: dashboard.state stays light

    if choice in ARCHS:
        return choice
    entry = user_model_entries().get(choice)
    if entry is None:
        return choice
    fmt = entry.get("format")
    return f"{choice} (yours, {FORMAT_LABELS.get(fmt, fmt or 'model')})"


# -- device ------------------------------------------------------------------------------------------------------
def device_choices() -> list[str]:
    """Devices the sidebar offers: ["cpu"] without CUDA (the picker is then hidden), else ["cpu", "cuda"]."""
    import torch  # noqa: PLC0415 - torch (about 4 s): dashboard.state stays light

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def current_device() -> str:
    """The device chosen in the sidebar (``cpu`` unless CUDA is there and was chosen)."""
    try:
        chosen = st.session_state.get(DEVICE)
    except Exception:  # noqa: BLE001 - outside a Streamlit run (scripts, unit tests)
        chosen = None
    return chosen if chosen in device_choices() else "cpu"


# Seconds to generate each bundled dataset the first time on the project's 2-core test machine
# (``load_dataset(name, use_cache=False)``, measured 2026-11-30: breast-cancer 2.5 s, simu-small 0.4 s, pbmc68k
# 0.9 s, dna-motifs-small 1.5 s, grain 4.3 s). Only shown for a dataset never built on this machine: once one is
# built here, its own measured duration (``first_load``) is shown instead.
BUILD_SECONDS = {"breast-cancer": 3, "simu-small": 1, "pbmc68k": 1, "dna-motifs-small": 2, "grain": 5}


def _needs_build(dataset: str) -> bool:
    """Whether ``dataset`` is a generated one whose data is not in the cache folder yet."""
    from xai_core.data import DATASETS, cache_dir  # noqa: PLC0415 - scipy: dashboard.state stays light

    if dataset not in DATASETS:
        return False
    spec = DATASETS.get(dataset)
    if spec.size == USER_SIZE:
        return False
    path = cache_dir() / "datasets" / f"{dataset}-{spec.cache_key(dict(spec.params))}"
    return not (path.with_suffix(".npz").exists() and path.with_suffix(".json").exists())


def first_build_message(dataset: str) -> str | None:
    """A line saying why the first opening of a generated dataset is slow, with an estimate (its last build
    measured on this machine, else the project's test machine's); None when its generated data is already in
    the cache (or it is the user's own import, read from its folder)."""
    from xai_core.data import cache_dir  # noqa: PLC0415 - scipy: dashboard.state stays light

    if not _needs_build(dataset):
        return None
    entry = first_load.measured(cache_dir(), f"first build: {dataset}")
    n = BUILD_SECONDS.get(dataset)
    when = (first_load.estimate_text(entry) if entry else
            f"about {n} s on the project's 2-core test machine (not measured here yet)" if n
            else "several minutes for a paper-size set (not measured here yet)")
    return (f"Building **{dataset}** for the first time (generated, then cached, so the next opening is "
            f"quick): {when}, model load included.")


def open_message(dataset: str, model: str, entry: dict | None) -> str:
    """What the page says while a dataset and its model are loaded for the first time in this server process."""
    return (f"Opening **{dataset}** with the model {model_label(model)} for the first time since the dashboard "
            f"started (read from the cache folder, model loaded): {first_load.estimate_text(entry)}.")


@st.cache_resource(show_spinner=False)
def _opened() -> set[tuple]:
    """The keys of ``_evaluation`` loaded in this process (their first load says so). A resource too, so that
    clearing Streamlit's resource caches (``st.cache_resource.clear()``) forgets both together."""
    return set()


def evaluation(dataset: str, model: str, seed: int = 0, device: str | None = None):
    """The engine's ``Evaluation`` for one dataset and model: dataset, model, explain context, store.

    Cached on the dataset's content fingerprint (user data), the model's version (a checkpoint's mtime, a user
    model's hash) and the device too, not on the names alone: a changed file re-imported under the same name,
    or a model retrained to the same path, is loaded afresh instead of served stale. ``device``: the sidebar's
    choice when not given. The first opening in a process says why it takes a while and for about how long
    (``first_build_message``, ``open_message``), from durations measured on this machine (``first_load``);
    later calls return the cached object at once."""
    key = (dataset, model, seed, fingerprint(dataset), _model_version(model, dataset), device or current_device())
    if key in _opened():
        return _evaluation(*key)
    from xai_core.data import cache_dir  # noqa: PLC0415 - scipy: dashboard.state stays light

    build = first_build_message(dataset)
    what = f"first build: {dataset}" if build else f"open: {dataset} / {model_label(model)}"
    box = st.info(build or open_message(dataset, model, first_load.measured(cache_dir(), what)),
                  icon=":material/hourglass_top:")
    try:
        with first_load.timed(cache_dir(), what):
            ev = _evaluation(*key)
            if ev.ds.modality == "sequence":
                warm_glyphs()  # matplotlib's letter outlines, so the first logo is not what waits for them
        _opened().add(key)
        return ev
    finally:
        box.empty()


@st.cache_resource(show_spinner="Loading the dataset and model…", max_entries=8)
def _evaluation(dataset: str, model: str, seed: int, fp: str | None, model_version: str | None,
                device: str = "cpu"):
    from xai_core.runner import EvalConfig, Evaluation  # noqa: PLC0415 - torch: dashboard.state stays light

    return Evaluation(EvalConfig(dataset=dataset, model=model, seed=seed, device=resolve_device(device)), store())


def chance_warning(ev) -> str | None:
    """One line when the model predicts at chance level on its test set (``model_meta["checks"]``), else None."""
    checks = (getattr(ev, "model_meta", None) or {}).get("checks") or {}
    if not checks.get("chance_level"):
        return None
    acc, share = checks.get("test_accuracy"), checks.get("majority_share")
    if acc is None or share is None:
        return "This model predicts at chance level: its explanations describe noise."
    return (f"This model predicts at chance level (test accuracy {acc * 100:.1f} %, majority class "
            f"{share * 100:.1f} %): its explanations describe noise.")


def pass_cost(ev):
    """The measured per-pass cost of ``ev``'s model on this machine (``xai_core.costs.model_pass_cost``: one
    forward and one forward + backward pass on 32 test samples, kept in the cache folder per model hash and
    device); None when it cannot be measured."""
    try:
        return _pass_cost(ev.model_hash, str(ev.ctx.device), ev)
    except Exception:  # noqa: BLE001 - the passes are still shown; the seconds are a courtesy
        return None


@st.cache_resource(show_spinner="Timing one pass of the model on this machine…", max_entries=16)
def _pass_cost(model_hash: str, device: str, _ev):
    from xai_core.data import cache_dir  # noqa: PLC0415 - scipy: dashboard.state stays light

    idx = _ev.ds.test_idx[:32] if len(_ev.ds.test_idx) else _ev.ds.train_idx[:32]
    return model_pass_cost(_ev.model, _ev.ds.X[idx], model_hash, cache_dir())


def evaluation_for(dataset: str, model: str, seed: int = 0, **config: Any):
    """A copy of the cached ``Evaluation`` with other settings (methods, metrics, n); shares the loaded parts."""
    return evaluation(dataset, model, seed).with_config(**config)


@st.cache_resource(show_spinner=False)
def store():
    from xai_core.store import ResultStore, default_store_path  # noqa: PLC0415 - pandas: dashboard.state stays light

    return ResultStore(default_store_path())


def predictions(dataset: str, model: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Predicted class and probabilities for every sample (one batched pass, cached on the same keys as
    ``evaluation``)."""
    return _predictions(dataset, model, seed, fingerprint(dataset), _model_version(model, dataset), current_device())


@st.cache_data(show_spinner=False, max_entries=16)
def _predictions(dataset: str, model: str, seed: int, fp: str | None, model_version: str | None,
                 device: str = "cpu") -> dict[str, np.ndarray]:
    from xai_core.models import predict_proba  # noqa: PLC0415 - torch: dashboard.state stays light

    ev = evaluation(dataset, model, seed, device)
    proba = predict_proba(ev.model, ev.ds.X, device=str(ev.ctx.device))
    return {"proba": proba, "pred": proba.argmax(1)}


def forget_dataset_caches() -> None:
    """After a user dataset is replaced or removed: drop every cached result computed from data (other pages
    cache figures and rankings by dataset name). Cheap to rebuild; only done on such changes."""
    st.cache_data.clear()
    _evaluation.clear()
    _opened.clear()  # the cached set itself: the next opening of each is measured and announced again


PENDING = "_pending_choice"


def choose(dataset: str | None = None, model: str | None = None) -> None:
    """Ask the sidebar to select ``dataset``/``model`` on the next run (a widget's key cannot be written after
    the widget is drawn in the same run). Follow with ``st.rerun()`` or ``st.switch_page(...)``."""
    st.session_state[PENDING] = {"dataset": dataset, "model": model}


def apply_pending() -> None:
    """Called by the sidebar before its widgets are drawn."""
    pending = st.session_state.pop(PENDING, None)
    if pending:
        if pending.get("dataset"):
            st.session_state[DATASET] = pending["dataset"]
            st.session_state.pop(MODEL, None)
        if pending.get("model"):
            st.session_state[MODEL] = pending["model"]


def current() -> tuple[str, str, int]:
    """(dataset, model, seed) chosen in the sidebar."""
    ds = st.session_state.get(DATASET) or DEFAULT_DATASET
    choices = model_choices(ds)
    model = st.session_state.get(MODEL)
    if model not in choices:
        model = choices[0] if choices else None
    return ds, model, int(st.session_state.get(SEED, 0))


# -- selections shared by the pages (kept in plain session keys, so they survive page switches) ----------
METHODS, SAMPLES, METRICS = "methods", "samples", "metrics"
# the Explanations page's drawing choices (its widgets' keys), also read by the report (report_view.VIEW_KEYS)
X_POOLING, X_NORMALISATION, X_AGGREGATE = "x_pooling", "x_norm", "x_aggregate"
X_DNA_VIEW, X_GENES_PER_MAP, X_OPACITY = "x_dna", "x_k", "x_opacity"
DEFAULT_METHODS = ("saliency", "integrated_gradients", "smoothgrad", "deeplift", "gradcam", "random")


def applicable_methods(ev) -> list[str]:
    from xai_core.explainers import applicable_methods as _applicable  # noqa: PLC0415 - torch: state stays light

    return _applicable(ev.ctx)


def method_label(name: str) -> str:
    from xai_core.explainers import EXPLAINERS  # noqa: PLC0415 - torch: dashboard.state stays light

    return EXPLAINERS.get(name).label if name in EXPLAINERS.names() else name


def remembered(key: str, options: list, default: list) -> list:
    """The remembered selection for ``key`` restricted to ``options``; ``default`` when it was never set or
    none of it applies here (another dataset). A selection the user emptied stays empty."""
    if key not in st.session_state:
        return [o for o in default if o in options]
    chosen = clean_list(st.session_state[key], SELECTION_LIMITS.get(key, MAX_ITEMS))
    allowed = set(options)
    kept = [o for o in chosen if o in allowed]
    return kept if kept or not chosen else [o for o in default if o in allowed]


def _copy(src: str, dst: str) -> None:
    st.session_state[dst] = list(st.session_state[src])


def multiselect(label: str, options: list, key: str, default: list, **kwargs) -> list:
    """A multiselect whose choice survives page switches and dataset changes (stored under ``key``).

    Streamlit ties a widget's state to the page that drew it, so the choice lives in a plain session key:
    a change callback copies it there (callbacks run before the script), and every run restores the
    widget from it.
    """
    wkey = f"_w_{key}"
    chosen = remembered(key, options, default)
    cap = kwargs.get("max_selections")
    if cap and len(chosen) > cap:  # never more than the widget accepts: it raises, and would on every later run
        chosen = chosen[:cap]
        st.session_state[key] = list(chosen)
    st.session_state[wkey] = chosen
    if key not in st.session_state:
        st.session_state[key] = list(st.session_state[wkey])
    return st.multiselect(label, options, key=wkey, on_change=_copy, args=(wkey, key), **kwargs)


# -- hostile input: links, poisoned selections, failed pages -------------------------------------------------------
MAX_SAMPLES = 8  # the Explanations page compares at most this many samples (its multiselect's max_selections)
MAX_ITEMS = 64  # any selection list kept in the session (or read from a link) is cut to this many entries
MAX_PARAM_CHARS = 4096  # a query parameter is cut to this many characters before it is parsed
SELECTION_LIMITS = {METHODS: MAX_ITEMS, SAMPLES: MAX_SAMPLES, METRICS: MAX_ITEMS}
SEED_RANGE = (0, 10_000)  # the sidebar's seed input
REPAIR, FAILURES = "_repair_state", "_page_failures"


def clean_list(value: Any, limit: int = MAX_ITEMS) -> list[str]:
    """``value`` as distinct non-empty strings, order kept, at most ``limit``; anything not a list is empty."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    out: list[str] = []
    seen: set[str] = set()
    for v in value:
        if isinstance(v, str) and v and v not in seen:
            seen.add(v)
            out.append(v)
            if len(out) >= limit:
                break
    return out


def sanitize() -> None:
    """Before any widget is drawn: bring the shared selections back to shapes every widget accepts (lists of
    distinct strings, no longer than the widget allows; a seed in the sidebar's range)."""
    for key, limit in SELECTION_LIMITS.items():
        if key in st.session_state:
            value = st.session_state[key]
            cleaned = clean_list(value, limit)
            if cleaned != value:
                st.session_state[key] = cleaned
    if SEED in st.session_state:
        seed = st.session_state[SEED]
        if isinstance(seed, bool) or not isinstance(seed, int) or not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
            st.session_state[SEED] = 0
    if not isinstance(st.session_state.get(PENDING, {}), dict):
        st.session_state.pop(PENDING, None)


def request_repair() -> None:
    """Something failed in this run: rebuild the widgets' state from the repaired selections on the next run."""
    st.session_state[REPAIR] = True


def page_failed() -> None:
    """A page raised: repair on the next run, and count the failure (a second in a row resets the selections)."""
    request_repair()
    st.session_state[FAILURES] = int(st.session_state.get(FAILURES, 0) or 0) + 1


def page_succeeded() -> None:
    st.session_state.pop(FAILURES, None)


def repair() -> str | None:
    """Called first in every run, before any widget. After a failure, drop the widgets' copies of the shared
    selections (``_w_*``: they are rebuilt from the plain keys, which :func:`sanitize` repairs); after two failed
    runs in a row, reset the selections to the pages' defaults as well. Returns a line to show when it did so."""
    sanitize()
    if not st.session_state.pop(REPAIR, False):
        return None
    for key in [k for k in list(st.session_state) if isinstance(k, str) and k.startswith("_w_")]:
        del st.session_state[key]
    st.session_state.pop(PENDING, None)
    if int(st.session_state.get(FAILURES, 0) or 0) >= 2:
        for key in SELECTION_LIMITS:
            st.session_state.pop(key, None)
        st.session_state.pop(FAILURES, None)
        return ("The page failed twice in a row, so the chosen samples, methods and metrics were reset to the "
                "defaults.")
    return None
