"""The written rules of an adaptive evaluation: when it stops, and which methods are raced out of the expensive
metrics. Pure functions of a Monte Carlo MRR ranking (``xai_core.ranking.mc_mrr``); the loop that adds samples
round by round is ``xai_core.adaptive``. The rules, and why they hold, are in docs/adaptive.md.

What a draw of ``mc_mrr`` is. With ``dist="normal"`` every method's mean score on every metric is drawn from
N(mean, standard error^2): under a flat prior and the normal approximation of a mean, that is a draw from the
posterior of the *true* mean scores, and the MRR ranking of a draw is the true ranking under that draw. So
``P(rank 1)`` and ``P(rank <= k)`` read as posterior probabilities that the method is truly first, truly in the
top k.

The stopping rule. After a complete round with at least ``min_samples`` samples per method, the run stops as
*decided* when

- the leader (the method most often first) is first in at least ``confidence`` of the draws, or
- the top-k set (the k methods of highest expected MRR) is exactly the top k in at least ``confidence`` of the
  draws (``RankingResult.p_top_set``): the top k are separated from the rest.

A posterior probability stays calibrated however the sample size was chosen (optional stopping does not bias
it), so a stated leader is wrong with probability at most 1 - ``confidence`` averaged over the prior, up to the
normal approximation of the means (why decisions wait for ``min_samples``) and the Monte Carlo error of the
share (standard error sqrt(p (1 - p) / T): 0.003 at p = 0.9 with T = 10,000 draws). Otherwise the run stops when
the budget (seconds or passes) is spent, or when every sample up to the cap is used ("samples exhausted").

The racing rule. After a complete round with at least ``min_samples`` samples, a method whose P(rank <= k) is
below ``race_alpha / tests`` (``tests``: the rounds at which the rule is applied, ``race_threshold``) stops
receiving the expensive metrics (those that re-explain: robustness, randomisation) for later samples; it keeps
its scores so far and every cheap metric, and stays in the ranking. Controls (``is_control``, the random map)
are never raced: they are the floor. Why this seldom drops a method that is truly in the top k: at one round,
P(truly in the top k and raced) = E[P(rank <= k) ; P(rank <= k) < t] <= t; summed over the ``tests`` rounds
(Bonferroni) it is at most ``race_alpha`` per method, so at most k * ``race_alpha`` for any of the true top k
and at most ``race_alpha`` for the true leader. A raced method is not taken back.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .costs import format_seconds
from .errors import XaiError
from .explainers import EXPLAINERS
from .ranking import DISTS, MISSING, RankingResult
from .ranking_words import headline

STOP_REASONS = ("decided", "budget", "samples exhausted")
_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "passes": None, "pass": None}


@dataclass(frozen=True)
class DecisionRule:
    """When an adaptive evaluation stops and whom it races out (the rules: this module's docstring).

    Parameters
    ----------
    confidence : float
        Stop when the leader's P(rank 1), or P(the top-k set is the top k), reaches this (0.5 < c < 1).
    top_k : int
        The k of the top-k stopping and racing rules.
    race_alpha : float
        The racing error over the whole run: a method is raced out of the expensive metrics when its
        P(rank <= k) is below ``race_alpha`` divided by the number of rounds the rule is applied at.
        0 turns racing off.
    min_samples : int
        No decision and no racing before every method has this many samples.
    round_size : int
        Samples added per round.
    max_samples : int
        The cap: at most this many samples (fewer when fewer are eligible).
    budget_s : float, optional
        Stop when this many seconds are spent (a step that would not fit is not started).
    budget_passes : float, optional
        Stop when this many forward + backward passes (the plan's estimates) are spent.
    n_draws : int
        Monte Carlo draws of each round's ranking.
    dist : str
        ``"normal"`` or ``"bootstrap"``, as ``mc_mrr``.
    missing : str
        ``"worst"`` or ``"drop"``, as ``mc_mrr`` (for methods whose scores on a metric are all NaN).
    seed : int
        Seeds the draws.
    weights : dict of str to float, optional
        Family weights, as ``mc_mrr``.
    per_family : bool
        As ``mc_mrr``.
    """

    confidence: float = 0.9
    top_k: int = 3
    race_alpha: float = 0.01
    min_samples: int = 8
    round_size: int = 4
    max_samples: int = 64
    budget_s: float | None = None
    budget_passes: float | None = None
    n_draws: int = 10_000
    dist: str = "normal"
    missing: str = "worst"
    seed: int = 0
    weights: dict[str, float] | None = field(default=None, hash=False)
    per_family: bool = False

    def check(self) -> DecisionRule:
        """Refuse a bad value with one line naming it and the fix.

        Returns
        -------
        DecisionRule
            This rule, unchanged.

        Raises
        ------
        XaiError
            For a value out of range.
        """
        def bad(what: str, fix: str) -> XaiError:
            return XaiError(f"{what}; {fix}")

        if not (isinstance(self.confidence, (int, float)) and 0.5 < self.confidence < 1):
            raise bad(f"confidence {self.confidence} is not between 0.5 and 1", "give e.g. --confidence 0.9")
        for name in ("top_k", "min_samples", "round_size", "max_samples", "n_draws"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(f"{name} {v!r} is not a positive whole number", f"give {name} >= 1")
        if not (isinstance(self.race_alpha, (int, float)) and 0 <= self.race_alpha < 0.5):
            raise bad(f"race_alpha {self.race_alpha} is not in [0, 0.5)",
                      "give e.g. --race-alpha 0.01 (0 turns racing off)")
        if self.min_samples > self.max_samples:
            raise bad(f"min_samples {self.min_samples} is above the cap of {self.max_samples} samples",
                      "raise --n (the cap) or lower --min-samples")
        for name in ("budget_s", "budget_passes"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise bad(f"{name} {v!r} is not a positive number", "give e.g. --budget 10m or --budget 5000passes")
        if self.dist not in DISTS:
            raise bad(f"unknown dist '{self.dist}'", f"use one of {list(DISTS)}")
        if self.missing not in MISSING:
            raise bad(f"unknown missing '{self.missing}'", f"use one of {list(MISSING)}")
        return self

    def schedule(self, available: int) -> list[int]:
        """The cumulative samples per method after each round: round_size, 2 round_size, ... up to the cap.

        Parameters
        ----------
        available : int
            Eligible samples (the cap is the smaller of this and ``max_samples``).

        Returns
        -------
        list of int
        """
        cap = min(int(available), self.max_samples)
        out = list(range(self.round_size, cap, self.round_size))
        return out + [cap] if cap > 0 else []

    def race_threshold(self, schedule: list[int]) -> float:
        """The per-round racing threshold: ``race_alpha`` over the rounds at which the rule is applied.

        Parameters
        ----------
        schedule : list of int
            The cumulative samples per round (``schedule``).

        Returns
        -------
        float
            0 when racing is off or never applies.
        """
        tests = sum(1 for n in schedule[:-1] if n >= self.decision_samples(schedule))  # not after the last round
        return self.race_alpha / tests if tests and self.race_alpha > 0 else 0.0

    def decision_samples(self, schedule: list[int]) -> int:
        """The samples from which decisions are taken: ``min_samples``, or the cap when fewer are available.

        Parameters
        ----------
        schedule : list of int
            The cumulative samples per round.

        Returns
        -------
        int
        """
        return min(self.min_samples, schedule[-1]) if schedule else self.min_samples

    def rank_options(self) -> dict[str, Any]:
        """The ``mc_mrr`` keyword arguments of this rule.

        Returns
        -------
        dict
        """
        return dict(n_draws=self.n_draws, dist=self.dist, missing=self.missing, seed=self.seed,
                    weights=self.weights, per_family=self.per_family)

    def describe(self) -> str:
        """The rule in one sentence, for the plan and decision.json.

        Returns
        -------
        str
        """
        budget = [b for b in (self.budget_s and format_seconds(self.budget_s).replace("about ", ""),
                              self.budget_passes and f"{self.budget_passes:,.0f} passes") if b]
        race = (f"methods with P(rank <= {self.top_k}) below {self.race_alpha:g} / rounds lose the re-explaining "
                "metrics" if self.race_alpha > 0 else "no racing")
        return (f"rounds of {self.round_size} samples up to {self.max_samples}; from {self.min_samples} samples, stop "
                f"when the leader's P(rank 1) or P(top-{self.top_k} set) >= {self.confidence:g}; {race}"
                + (f"; budget {' or '.join(budget)}" if budget else ""))


def _label(name: str) -> str:
    return EXPLAINERS.get(name).label if name in EXPLAINERS else str(name)


def parse_budget(text: str) -> tuple[float | None, float | None]:
    """``--budget``: seconds and/or passes from ``"10m"``, ``"600s"``, ``"1.5h"``, ``"5000passes"`` or a comma list.

    Parameters
    ----------
    text : str
        One or more budgets with their unit (s, m, h, passes), comma-separated.

    Returns
    -------
    tuple of (float or None, float or None)
        (seconds, passes).

    Raises
    ------
    XaiError
        For a budget without a unit, an unknown unit, a value that is not positive, or the same kind twice.
    """
    secs = passes = None
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise XaiError("--budget is empty; give e.g. --budget 10m, 600s or 5000passes")
    for part in parts:
        m = re.fullmatch(r"([0-9][0-9_.eE+]*)\s*([a-z]+)", part.replace(",", ""))
        unit = m.group(2) if m else ""
        if not m or unit not in _UNITS:
            raise XaiError(f"--budget '{part}' needs a number and a unit (s, m, h or passes), e.g. --budget 10m, "
                           f"600s or 5000passes")
        try:
            value = float(m.group(1).replace("_", ""))
        except ValueError:
            raise XaiError(f"--budget '{part}': '{m.group(1)}' is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise XaiError(f"--budget '{part}' must be positive")
        if _UNITS[unit] is None:
            if passes is not None:
                raise XaiError(f"--budget names passes twice ('{text}'); give one passes budget")
            passes = value
        else:
            if secs is not None:
                raise XaiError(f"--budget names a time twice ('{text}'); give one time budget")
            secs = value * _UNITS[unit]
    return secs, passes


@dataclass(frozen=True)
class Standing:
    """What one round's ranking says, read by the rules.

    Attributes
    ----------
    leader : str
        The method most often first.
    p_leader : float
        Its P(rank 1).
    top : tuple of str
        The k methods of highest expected MRR.
    p_top : float
        P(those k are exactly the top k).
    p_in_top : dict of str to float
        Every method's P(rank <= k).
    k : int
        The k used (the rule's top_k, fewer when fewer methods are ranked).
    """

    leader: str
    p_leader: float
    top: tuple[str, ...]
    p_top: float
    p_in_top: dict[str, float]
    k: int


def standing(result: RankingResult, k: int) -> Standing:
    """The leader, the top-k set and how sure each is, from ``mc_mrr(..., top_k=k)``.

    Parameters
    ----------
    result : RankingResult
        A ranking made with ``top_k=k``.
    k : int
        The k.

    Returns
    -------
    Standing

    Raises
    ------
    XaiError
        When the ranking was made without ``top_k=k``.
    """
    if k not in result.p_top_set:
        raise XaiError(f"the ranking has no P(top-{k} set); rank with mc_mrr(..., top_k={k})")
    p1 = result.rank_probabilities[1].astype(float)
    leader = str(p1.idxmax())
    p_in = result.rank_probabilities[list(range(1, k + 1))].sum(axis=1)
    return Standing(leader, round(float(p1.max()), 6), tuple(map(str, result.table.index[:k])),
                    round(float(result.p_top_set[k]), 6), {str(m): round(float(p), 6) for m, p in p_in.items()}, k)


def decided(s: Standing, rule: DecisionRule) -> str | None:
    """Which stopping rule holds: ``"leader"``, ``"top_k"`` or None.

    Parameters
    ----------
    s : Standing
        The round's standing.
    rule : DecisionRule
        The rule.

    Returns
    -------
    str or None
    """
    if s.p_leader >= rule.confidence:
        return "leader"
    if s.p_top >= rule.confidence:
        return "top_k"
    return None


def to_race(s: Standing, threshold: float, raced: set[str] | frozenset[str], controls: set[str]
            ) -> list[tuple[str, float]]:
    """Methods to race out now: P(rank <= k) below ``threshold``, not a control, not raced already.

    Parameters
    ----------
    s : Standing
        The round's standing.
    threshold : float
        The per-round threshold (``DecisionRule.race_threshold``).
    raced : set of str
        Methods raced out before.
    controls : set of str
        Methods never raced (the controls).

    Returns
    -------
    list of (str, float)
        (method, its P(rank <= k)), most hopeless first.
    """
    out = [(m, p) for m, p in s.p_in_top.items() if p < threshold and m not in raced and m not in controls]
    return sorted(out, key=lambda t: t[1])


def stop_sentence(because: str, s: Standing | None, result: RankingResult | None, rounds: int, samples: int,
                  rule: DecisionRule, spent: str = "", label=None, complete: bool = True) -> str:
    """Why the run stopped, in words; the ranking's own sentence comes from ``ranking_words.headline``.

    Parameters
    ----------
    because : str
        One of ``STOP_REASONS``.
    s : Standing, optional
        The last round's standing (None when nothing could be ranked).
    result : RankingResult, optional
        The last round's ranking.
    rounds : int
        Rounds run.
    samples : int
        Samples per method at the stop.
    rule : DecisionRule
        The rule.
    spent : str
        What was spent, e.g. "4 min 50 s, 120,000 passes" (for a budget stop).
    label : callable, optional
        Method name -> display name (default: the explainer's registered label).
    complete : bool
        Whether the last round was complete (a budget may stop one midway).

    Returns
    -------
    str
    """
    label = label or _label
    where = (f"after {rounds} round{'s' if rounds != 1 else ''} ({samples} samples per method)" if complete else
             f"during round {rounds} (which aimed at {samples} samples per method)")
    said = f" {headline(result, label)}" if result is not None else ""
    conf = f"{100 * rule.confidence:.0f} %"
    if because == "decided" and s is not None:
        if s.p_leader >= rule.confidence:
            return f"Stopped {where}: decided, the leader is first in at least {conf} of the draws.{said}"
        return (f"Stopped {where}: decided, the top {s.k} ({', '.join(label(m) for m in s.top)}) are separated from "
                f"the rest in {100 * s.p_top:.0f} % of the draws.{said}")
    if because == "budget":
        return (f"Stopped {where}: the budget was spent ({spent}) before a decision at {conf}.{said}"
                + (" More samples or a larger budget would narrow it." if result is not None else
                   " Nothing could be ranked yet: give a larger budget."))
    return (f"Stopped {where}: every sample up to the cap is used, and no decision at {conf} was reached.{said} "
            f"A larger cap (--n) might decide it; the methods may also be truly tied.")
