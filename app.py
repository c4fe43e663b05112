"""Streamlit entry: navigation and the shared sidebar (dataset, model, seed). Pages live in views/ (not pages/: a
``pages/`` folder switches Streamlit into its old multipage mode for deep links such as /explanations) and are
listed once, in ``dashboard/pages.py``.

Run with ``streamlit run app.py``. All science is in ``xai_core``; pages only read state and draw.
"""
from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from dashboard import first_load, pages, report_view, state, ui

st.set_page_config(page_title="Bio-XAI audit", page_icon=":material/genetics:", layout="wide")

PAGES = [st.Page(p.file, title=p.title, icon=p.icon, default=p.default) for p in pages.PAGES]


def sidebar() -> None:
    state.apply_pending()
    catalogue = state.dataset_catalogue()
    names = [r["name"] for r in catalogue]
    label = {r["name"]: f"{r['name']} ({r['modality']}{', yours' if r['size'] == state.USER_SIZE else ''})"
             for r in catalogue}
    if st.session_state.get(state.DATASET) not in names:
        st.session_state[state.DATASET] = state.DEFAULT_DATASET
    st.sidebar.selectbox("Dataset", names, key=state.DATASET, format_func=lambda n: label.get(n, n),
                         help="Bundled data with known ground truth ('small' ones are quick; paper-size ones take "
                              "longer to build the first time), then yours, added on the Add your data page.")
    choices = state.model_choices(st.session_state[state.DATASET])
    if not choices:
        mine = next((r["size"] == state.USER_SIZE for r in catalogue if r["name"] == st.session_state[state.DATASET]),
                    False)
        st.sidebar.warning("No model for this dataset yet: train one on the "
                           + ("Add your data page." if mine else "Data & model page."))
        st.session_state.pop(state.MODEL, None)
    else:
        if st.session_state.get(state.MODEL) not in choices:
            st.session_state[state.MODEL] = choices[0]
        st.sidebar.selectbox("Model", choices, key=state.MODEL, format_func=state.model_label,
                             help="A shipped checkpoint, one trained on the Data & model page, or your own "
                                  "(added on the Add your model page).")
    devices = state.device_choices()
    if len(devices) > 1:  # only with CUDA; on a CPU-only machine everything runs on the CPU
        if st.session_state.get(state.DEVICE) not in devices:
            st.session_state[state.DEVICE] = devices[0]
        st.sidebar.selectbox("Device", devices, key=state.DEVICE,
                             help="Where models run (explanations, metrics, training). Results are stored and "
                                  "reused whichever device computed them.")
    st.sidebar.number_input("Seed", 0, 10_000, key=state.SEED, step=1,
                            help="Seeds the stochastic explainers and metrics (SmoothGrad noise, LIME samples, random "
                                 "draws). Their results are stored per seed; everything else is shared between seeds.")
    ui.presentation_toggle()  # for a projector: hides the controls, enlarges figures (?present=1)
    st.sidebar.caption("Results are stored and reused: a run computed once (here or with "
                       "`python -m xai_core evaluate`) shows instantly next time.")
    report_view.sidebar_action()  # the one-click report of what is stored (computes nothing)
    ui.preload_charts()  # the browser loads Plotly's code now, not after the first click that draws a chart


LINK_KEYS = ("dataset", "model", state.METHODS, state.METRICS, state.SAMPLES, ui.PRESENT)


def _shown(items: list[str], n: int = 6) -> str:
    """At most ``n`` names from a link, each cut short and code-formatted (never rendered as markdown)."""
    def one(v: str) -> str:
        v = v.replace("`", "").replace("\n", " ")
        return f"`{v[:40]}{'…' if len(v) > 40 else ''}`"

    head = ", ".join(one(v) for v in items[:n])
    return head + (f" and {len(items) - n} more" if len(items) > n else "")


def _link_values(q, key: str) -> list[str]:
    """The comma-separated values of ``key`` (repeated keys joined), the text cut to ``MAX_PARAM_CHARS``."""
    raw = ",".join(q.get_all(key))[:state.MAX_PARAM_CHARS]
    out: list[str] = []
    seen: set[str] = set()
    for v in raw.split(","):
        v = v.strip()
        if v and v not in seen:
            seen.add(v)
            out.append(v)
    return out


def from_link() -> None:
    """A link like ``/explanations?dataset=grain&methods=saliency,gradcam&samples=grain:31`` opens with those
    choices (once per session), so a view can be shared or scripted.

    Every parameter is checked before it reaches a widget: an unknown dataset or model falls back to the
    default, unknown methods, metrics and sample ids are dropped, lists are cut to what the widgets accept
    (at most ``state.MAX_SAMPLES`` samples); what was dropped is named once in a warning."""
    if st.session_state.get("_link_read"):
        return
    st.session_state["_link_read"] = True
    q = st.query_params
    given = [k for k in q if k in LINK_KEYS]
    notes: list[str] = []
    unknown_keys = [k for k in q if k not in LINK_KEYS]
    if unknown_keys:
        notes.append(f"This link's parameter(s) {_shown(unknown_keys)} are not used here (known: "
                     f"{', '.join(LINK_KEYS)}).")
    if not given:
        for note in notes:
            st.warning(note, icon=":material/link_off:")
        return

    names = state.dataset_names()
    if "dataset" in given:
        wanted = (_link_values(q, "dataset") or [""])[-1]
        if wanted in names:
            st.session_state[state.DATASET] = wanted
        else:
            notes.append(f"This link's dataset {_shown([wanted])} does not exist here; showing "
                         f"**{state.DEFAULT_DATASET}** instead (datasets: {_shown(names, 12)}).")
            st.session_state[state.DATASET] = state.DEFAULT_DATASET
        st.session_state.pop(state.MODEL, None)
    dataset = st.session_state.get(state.DATASET)
    if dataset not in names:
        dataset = state.DEFAULT_DATASET
    choices = state.model_choices(dataset)
    if "model" in given:
        wanted = (_link_values(q, "model") or [""])[-1]
        if wanted in choices:
            st.session_state[state.MODEL] = wanted
        else:
            st.session_state.pop(state.MODEL, None)
            fallback = (f"showing **{state.model_label(choices[0])}** instead (models for {dataset}: "
                        f"{_shown([state.model_label(c) for c in choices])})" if choices
                        else f"{dataset} has no model yet")
            notes.append(f"This link's model {_shown([wanted])} is not available for **{dataset}**; {fallback}.")
    model = st.session_state.get(state.MODEL)
    model = model if model in choices else (choices[0] if choices else None)

    from xai_core.explainers import EXPLAINERS  # noqa: PLC0415 - torch-backed: only a link with choices needs it
    from xai_core.metrics import METRICS  # noqa: PLC0415 - torch-backed: only a link with choices needs it

    ev = None
    if model is not None and (state.METHODS in given or state.SAMPLES in given):
        try:  # the sample ids and the applicable methods are the dataset's and model's; loading is cached
            ev = state.evaluation(dataset, model, int(st.session_state.get(state.SEED, 0) or 0))
        except Exception:  # noqa: BLE001 - the page itself reports a model that does not load
            ev = None
    for key, what, known in ((state.METHODS, "method", EXPLAINERS.names()), (state.METRICS, "metric", METRICS.names()),
                             (state.SAMPLES, "sample", None)):
        if key not in given:
            continue
        values = _link_values(q, key)
        if key == state.SAMPLES:
            if ev is not None:
                known = [ev.ds.sample_ids[i] for i in ev.ds.test_idx]
                what = f"test sample of {dataset}"
            else:
                known = values  # checked against the page's options when it opens
        allowed = set(known)
        kept = [v for v in values if v in allowed]
        dropped = [v for v in values if v not in allowed]
        if key == state.METHODS and ev is not None:
            applicable = set(state.applicable_methods(ev))
            off = [v for v in kept if v not in applicable]
            if off:
                notes.append(f"The link's method(s) {_shown(off)} do not apply to {dataset} and this model.")
        if dropped:
            notes.append(f"This link names {len(dropped)} unknown {what}{'s' if len(dropped) > 1 else ''}, "
                         f"ignored: {_shown(dropped)}.")
        limit = state.SELECTION_LIMITS[key]
        if len(kept) > limit:
            notes.append(f"The Explanations page compares at most {limit} samples: showing the first {limit} of "
                         f"the {len(kept)} in this link." if key == state.SAMPLES
                         else f"This link lists {len(kept)} {what}s; only the first {limit} are kept.")
            kept = kept[:limit]
        if kept:
            st.session_state[key] = kept
    for note in notes:
        st.warning(note, icon=":material/link_off:")


# -- login: only when the lab configured it (an [auth] section in .streamlit/secrets.toml, see docs/sharing.md) ----
def auth_status() -> str:
    """"off" (no ``[auth]`` in the secrets: the app is open, as on a single machine), "on", or "broken" (a
    secrets file exists but cannot be read: fail closed, since it may hold the login settings)."""
    try:
        return "on" if "auth" in st.secrets else "off"
    except Exception:  # noqa: BLE001 - no secrets file at all, or an unreadable one
        paths = [Path(p) for p in st.get_option("secrets.files") or []]
        return "broken" if any(p.is_file() for p in paths) else "off"


def _may_enter(email: str) -> bool:
    """The optional allow-list: ``[access] allowed_emails = [...]`` and/or ``allowed_domains = ["lab.org"]``
    in the secrets; without one, every account the login provider accepts may enter."""
    access = st.secrets.get("access") or {}
    emails = {str(e).lower() for e in access.get("allowed_emails", [])}
    domains = {str(d).lower().lstrip("@") for d in access.get("allowed_domains", [])}
    if not emails and not domains:
        return True
    email = email.lower()
    return email in emails or (bool(email) and email.rsplit("@", 1)[-1] in domains)


def login_gate() -> bool:
    """True when the pages may run. With ``[auth]`` configured, a visitor who is not logged in sees only a
    login prompt (``st.login`` with the OIDC provider of the secrets)."""
    status = auth_status()
    if status == "off":
        return True
    if status == "broken":
        st.error("`.streamlit/secrets.toml` exists but cannot be read, so the login it may configure cannot be "
                 "checked: the dashboard stays closed. Fix the file (see docs/sharing.md).")
        return False
    if st.user.is_logged_in:
        email = str(st.user.get("email") or "")
        st.sidebar.caption(f"Logged in as {email or st.user.get('name') or 'you'}")
        if st.sidebar.button("Log out", key="_logout"):
            st.logout()
        if not _may_enter(email):
            st.error(f"{email or 'This account'} is not on this dashboard's list of allowed accounts "
                     "(`[access]` in `.streamlit/secrets.toml`). Log out and use a lab account.")
            return False
        return True
    st.title("Bio-XAI audit")
    st.info("This dashboard is shared on the network: log in to use it.", icon=":material/lock:")
    auth = st.secrets["auth"]
    named = [k for k, v in auth.items() if hasattr(v, "keys") and "client_id" in v]
    providers = [None] if "client_id" in auth or not named else named
    for provider in providers:
        if st.button(f"Log in{f' with {provider}' if provider else ''}", type="primary", key=f"_login_{provider}"):
            try:
                st.login(provider) if provider else st.login()
            except Exception as e:  # noqa: BLE001 - a misconfigured [auth] section or a missing Authlib
                st.error(f"Login is configured but cannot start: {e}")
    return False


allowed = login_gate()
nav = st.navigation(PAGES, position="sidebar" if allowed else "hidden")
if not allowed:
    st.stop()
if (_reset := state.repair()):
    st.info(_reset, icon=":material/restart_alt:")
_failed = False
try:
    first_load.load_engine()  # the first run after a start: says what it loads and for about how long
    from_link()
    sidebar()
    # dashboard.quality imports the engine (torch, sklearn) at its top: imported here, after first_load's message
    from dashboard import quality

    quality.banner()  # every page: a model near chance is flagged before its explanations are read
    nav.run()
except Exception as _e:  # one page's failure must not break the session or the other pages
    from dashboard import ui

    if isinstance(_e, ui.PASS_THROUGH):
        raise
    _failed = True
    logging.getLogger("bio_xai.app").exception("page %s failed", getattr(nav, "url_path", "?"))
    state.page_failed()
    ui.page_failure(_e)
finally:
    if not _failed:  # also after st.stop()/st.rerun(): the page ran as designed
        state.page_succeeded()
