"""The ranking in words: one headline worded by the evidence and the controls-floor sentence.

Shared by the Method ranking page, the CLI's ``rank``/``evaluate`` output and the report, so a ranking is
described the same way wherever it is read. The numbers come from ``xai_core.ranking`` (``mc_mrr``).
"""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from .errors import XaiError
from .explainers import EXPLAINERS, is_control
from .ranking import CONTROL_FLOOR, RankingResult

DECIDED = 0.9  # P(rank 1) from which "X ranks first" is said without a qualifier
LEADS = 0.5  # P(rank 1) from which "X leads" is said; below it the first place is "not decided"


def _pct(p: float) -> str:
    return f"{100 * p:.0f} %"


def _default_label(name: str) -> str:
    return EXPLAINERS.get(name).label if name in EXPLAINERS else str(name)


def _as_frame(result) -> pd.DataFrame:
    t = result.to_frame() if isinstance(result, RankingResult) else result
    if "method" in t.columns:
        t = t.set_index("method")
    return t


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def headline(result: RankingResult | pd.DataFrame, label: Callable[[str], str] | None = None) -> str:
    """One sentence on which method ranks first, worded by the evidence: its share of draws at rank 1.

    With p the leader's P(rank 1) (the method most often first): p >= ``DECIDED`` (0.9): "X ranks first (first in
    93 % of the draws)."; ``LEADS`` (0.5) <= p < 0.9: "X leads, but is first in only 62 % of the draws."; p < 0.5:
    "Not decided: X is first in 25 % of the draws, Y in 22 %." The one wording for the dashboard, the CLI and the
    report.

    Parameters
    ----------
    result : RankingResult or DataFrame
        ``mc_mrr``'s result, or its table with ``p_rank_1`` (``RankingResult.to_frame``, or the rows of the CLI's
        ranking.csv for one dataset and model: index or column ``method``).
    label : callable, optional
        Method name -> display name (default: the explainer's registered label).

    Returns
    -------
    str

    Raises
    ------
    XaiError
        When the table has no ``p_rank_1`` column (a deterministic ranker).
    """
    t = _as_frame(result)
    if "p_rank_1" not in t.columns:
        raise XaiError("the headline needs the Monte Carlo rank probabilities (p_rank_1); rank with the mrr ranker")
    label = label or _default_label
    p1 = t["p_rank_1"].astype(float)
    order = p1.sort_values(ascending=False, kind="stable")
    first, p = order.index[0], float(order.iloc[0])
    if p >= DECIDED:
        return f"{label(first)} ranks first (first in {_pct(p)} of the draws)."
    if p >= LEADS:
        return f"{label(first)} leads, but is first in only {_pct(p)} of the draws."
    second = order.index[1] if len(order) > 1 else None
    text = f"Not decided: {label(first)} is first in {_pct(p)} of the draws"
    if second is not None:
        text += f", {label(second)} in {_pct(float(order.iloc[1]))}"
    return text + "."


def floor_sentence(result: RankingResult | pd.DataFrame, label: Callable[[str], str] | None = None) -> str | None:
    """The controls floor as a sentence: which methods are not better than the control; None when all are.

    A method is not better than the control when its MRR is strictly above the best control's in fewer than
    ``CONTROL_FLOOR`` (95 %) of the Monte Carlo draws (``not_better_than_random``).

    Parameters
    ----------
    result : RankingResult or DataFrame
        ``mc_mrr``'s result or its table (with ``p_above_control`` and ``not_better_than_random``).
    label : callable, optional
        Method name -> display name (default: the explainer's registered label).

    Returns
    -------
    str or None
        None when no control was ranked or every method beats it.
    """
    t = _as_frame(result)
    if "not_better_than_random" not in t.columns:
        return None
    label = label or _default_label
    flag = t["not_better_than_random"].astype(str).str.lower().isin(["true", "1", "1.0"])
    weak = t.index[flag].tolist()
    if not weak:
        return None
    ctrl = [m for m in t.index if is_control(m)] or ["random"]
    shares = [_pct(float(t.at[m, "p_above_control"])) for m in weak]
    verb = "is" if len(weak) == 1 else "are"
    return (f"{_and([label(m) for m in weak])} {verb} not better than the {_and(list(ctrl))} control on these "
            f"metrics: above it in only {_and(shares)} of the draws (a method must be above it in at least "
            f"{_pct(CONTROL_FLOOR)}).")

