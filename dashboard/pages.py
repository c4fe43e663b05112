"""The dashboard's pages, listed once: ``app.py`` builds its navigation from ``PAGES``; the tests, the browser
scripts and the latency benchmark walk the same list.

No streamlit here, so a test or a script can read the pages without a server. Pages live in ``views/`` (not
``pages/``: a ``pages/`` folder beside ``app.py`` switches Streamlit into its old multipage mode for deep
links such as /explanations).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HOME = "home"        # the start page (the default one)
INPUT = "input"      # the user's own files: add a dataset or a model
DATASET = "dataset"  # about the dataset and model chosen in the sidebar
STUDIES = "studies"  # the source studies reproduced: independent of the sidebar
KINDS = (HOME, INPUT, DATASET, STUDIES)


@dataclass(frozen=True)
class Page:
    """One page of the dashboard.

    Attributes
    ----------
    file : str
        The page's script, relative to the repository root (``views/<slug>.py``).
    title : str
        Its title in the sidebar navigation.
    icon : str
        Its Material icon (``:material/<name>:``).
    kind : str
        One of ``KINDS``: what the page is about.
    heading : str
        Its ``st.title`` where that differs from ``title`` (empty otherwise).
    """

    file: str
    title: str
    icon: str
    kind: str = DATASET
    heading: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"page kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def slug(self) -> str:
        """The page's URL path (``/explanations``) and its script's stem."""
        return Path(self.file).stem

    @property
    def default(self) -> bool:
        """Whether the app opens on this page."""
        return self.kind == HOME


PAGES: tuple[Page, ...] = (
    Page("views/home.py", "Home", ":material/home:", HOME, heading="Explain and audit"),
    Page("views/add_data.py", "Add your data", ":material/upload_file:", INPUT),
    Page("views/add_model.py", "Add your model", ":material/model_training:", INPUT),
    Page("views/data_model.py", "Data & model", ":material/dataset:"),
    Page("views/explanations.py", "Explanations", ":material/local_fire_department:"),
    Page("views/gene_rankings.py", "Gene rankings", ":material/genetics:"),
    Page("views/metrics.py", "Metrics", ":material/straighten:"),
    Page("views/method_ranking.py", "Method ranking", ":material/leaderboard:"),
    Page("views/model_selection.py", "Model selection", ":material/scatter_plot:"),
    Page("views/studies.py", "Studies", ":material/science:", STUDIES),
)


def page(slug: str) -> Page:
    """The page whose URL path is ``/<slug>``.

    Parameters
    ----------
    slug : str
        A page's slug (its script's stem), e.g. ``"explanations"``.

    Returns
    -------
    Page
        That page's record (raises ``KeyError`` for an unknown slug).
    """
    for p in PAGES:
        if p.slug == slug:
            return p
    raise KeyError(f"no page {slug!r}; pages: {[p.slug for p in PAGES]}")


def of_kind(*kinds: str) -> tuple[Page, ...]:
    """The pages of the given kinds, in navigation order.

    Parameters
    ----------
    *kinds : str
        Kinds from ``KINDS``.

    Returns
    -------
    tuple of Page
        The matching pages, in the order of ``PAGES``.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown page kind(s) {sorted(unknown)}; kinds: {KINDS}")
    return tuple(p for p in PAGES if p.kind in kinds)
