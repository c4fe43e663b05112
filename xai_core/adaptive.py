"""Adaptive evaluation: samples are added in rounds until the ranking is decided, the budget is spent or the
samples run out; methods with no chance of the top k are raced out of the expensive metrics.

``AdaptiveRun(grid, rule).rounds()`` yields one ``RoundRecord`` per round. Round r scores the first n_r samples
of the evaluation's own sample order (``Evaluation.select_samples``: the first n are those of ``--n n``), through
the runner and its store: a cell already stored is read back, and a later fixed-n run reuses every cell computed
here. Within a round the metrics run cheap first, by cost class (the metric's ``needs``: ``explanation``, then
``model``, then ``reexplain``), and the budget is checked before each step (a step predicted not to fit is not
started; one that overruns is stopped between batches, its finished batches kept). After a complete round the
methods are ranked (``mc_mrr`` with ``top_k``), and the rules of ``xai_core.racing`` decide whether to stop and
whom to race out. Metrics not used in rankings (a reference such as PGR) are not computed here.

The loop sees the evaluation through a small interface (``Grid``; for a real ``Evaluation``, ``EvaluationGrid`` in
``xai_core.adaptive_grid``, also importable from here), so the same loop runs on synthetic scores with a known answer
in the tests. Progress: the runner's events, plus a ``Progress`` of stage ``"round"``
(``done`` rounds of ``total``) as each round starts.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import costs
from .adaptive_grid import EvaluationGrid as EvaluationGrid  # re-exported: the public name stays xai_core.adaptive's
from .adaptive_grid import Grid
from .errors import XaiError
from .explainers import is_control
from .progress import Progress, ProgressFn, notify
from .racing import DecisionRule, Standing, decided, standing, stop_sentence, to_race
from .ranking import RankingResult, mc_mrr

COST_ORDER = ("explanation", "model", "reexplain")  # a metric's ``needs``: cheapest first
EXPENSIVE = "reexplain"  # the class racing withholds: metrics that re-explain (robustness, randomisation)


@dataclass
class RoundRecord:
    """One round: what was computed and what the ranking says.

    Attributes
    ----------
    round : int
        1, 2, ...
    n : int
        The samples per method this round aimed at.
    complete : bool
        Every step of the round was computed (False when the budget stopped it).
    samples : dict
        Method -> {"cheap": samples on every cheap metric, "expensive": on every re-explaining metric}.
    leader, p_leader : str or None, float
        The method most often first, and its P(rank 1).
    top, p_top : list of str, float
        The top-k set by expected MRR, and P(it is exactly the top k).
    p_in_top : dict of str to float
        Every method's P(rank <= k).
    raced_out : list of dict
        Methods raced out after this round: method, p_in_top, threshold.
    seconds, passes : float
        Spent so far (passes: the plan's estimates of the cells computed, not those read back).
    left_out : dict of str to str
        Metric -> why it is not in this round's ranking (not yet computed for every method).
    unranked : list of str
        Methods with no score yet, so not in this round's ranking (a budget stopped the round before them).
    stopped_because : str or None
        One of ``racing.STOP_REASONS`` on the last round.
    sentence : str
        Why it stopped (the last round), else empty.
    ranking : RankingResult or None
        The round's ranking.
    """

    round: int
    n: int
    complete: bool
    samples: dict[str, dict[str, int | None]]
    leader: str | None
    p_leader: float
    top: list[str]
    p_top: float
    p_in_top: dict[str, float]
    raced_out: list[dict[str, Any]]
    seconds: float
    passes: float
    left_out: dict[str, str] = field(default_factory=dict)
    unranked: list[str] = field(default_factory=list)
    stopped_because: str | None = None
    sentence: str = ""
    ranking: RankingResult | None = field(default=None, repr=False)

    def line(self) -> str:
        """One line for the terminal: samples, leader, top k, raced out, spent.

        Returns
        -------
        str
        """
        lead = (f"leader {self.leader} P(rank 1) = {self.p_leader:.2f}; top {len(self.top)} "
                f"{{{', '.join(self.top)}}} P = {self.p_top:.2f}" if self.leader else "nothing ranked yet")
        raced = f"; raced out: {', '.join(r['method'] for r in self.raced_out)}" if self.raced_out else ""
        part = "" if self.complete else " (round not complete" + (
            f"; not ranked: {', '.join(self.unranked)})" if self.unranked else ")")
        return (f"round {self.round}: {self.n} samples{part}; {lead}{raced}; {self.seconds:.0f} s, "
                f"{self.passes:,.0f} passes")

    def to_dict(self) -> dict[str, Any]:
        """The record without the ranking object, for decision.json.

        Returns
        -------
        dict
        """
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "ranking"}


class _BudgetSpent(Exception):
    """Raised from the progress callback when the time budget is spent mid-step (caught by the loop)."""


class AdaptiveRun:
    """An evaluation in rounds until decided (the loop of this module's docstring).

    Parameters
    ----------
    grid : Grid
        The evaluation (``EvaluationGrid``) or a synthetic grid.
    rule : DecisionRule
        When to stop and whom to race.
    progress : ProgressFn, optional
        Gets the runner's events and one ``"round"`` event as each round starts.
    clock : callable
        Seconds (default ``time.perf_counter``); the tests give a synthetic clock.
    label : callable, optional
        Method name -> display name, for the stop sentence.
    started : float, optional
        The ``clock()`` value the time budget counts from (default: when ``rounds`` starts), e.g. when the command
        started, so that loading and planning count too.
    """

    def __init__(self, grid: Grid, rule: DecisionRule, progress: ProgressFn | None = None,
                 clock: Callable[[], float] = time.perf_counter, label: Callable[[str], str] | None = None,
                 started: float | None = None):
        self.grid, self.rule, self.progress, self.clock, self.label = grid, rule.check(), progress, clock, label
        self.started = started
        self.schedule = rule.schedule(grid.cap)
        self.threshold = rule.race_threshold(self.schedule)
        self.records: list[RoundRecord] = []
        self.raced: dict[str, dict[str, Any]] = {}
        self.passes = 0.0
        self.stopped_because: str | None = None
        self.sentence = ""
        self.scores = pd.DataFrame()
        self.ranked_scores = pd.DataFrame()
        self._start: float | None = None
        self._predicted_s = self._observed_s = self._observed_passes = 0.0
        self._budget_note = ""
        n_methods = len(grid.methods)
        if n_methods < 2:
            raise XaiError(f"an adaptive evaluation ranks methods: it needs at least 2, got {grid.methods}")
        if rule.top_k >= n_methods:
            raise XaiError(f"--top-k {rule.top_k} needs more than {rule.top_k} methods, got {n_methods}; "
                           f"give --top-k {n_methods - 1} or fewer, or more methods")

    # -- time and passes -----------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds since the run started (since ``started`` when given).

        Returns
        -------
        float
        """
        return 0.0 if self._start is None else self.clock() - self._start

    def _predict_s(self, passes: float, secs: float) -> float:
        """A step's seconds: the per-pass prediction scaled by how the run has gone so far (or, without a
        per-pass cost, the run's own seconds per pass)."""
        if self._observed_s < 1.0:
            return secs
        if self._predicted_s > 0:
            return secs * self._observed_s / self._predicted_s
        return passes * self._observed_s / self._observed_passes if self._observed_passes > 0 else secs

    def _over_budget(self, method: str, metrics: list[str], passes: float, secs: float) -> str | None:
        r = self.rule
        what = f"{method} on {', '.join(metrics)}"
        if r.budget_passes is not None and self.passes + passes > r.budget_passes:
            left = max(r.budget_passes - self.passes, 0)
            return f"the next step ({what}) needs about {passes:,.0f} passes, {left:,.0f} of the budget left"
        if r.budget_s is not None:
            left = r.budget_s - self.elapsed()
            need = self._predict_s(passes, secs)
            if left <= 0 or need > left:
                return (f"the next step ({what}) needs {costs.format_seconds(need)}, "
                        f"{costs.format_seconds(max(left, 0))} of the budget left")
        return None

    def _watch(self, e: Progress) -> None:
        if self.progress is not None:
            self.progress(e)
        if self.rule.budget_s is not None and self.elapsed() > self.rule.budget_s:
            raise _BudgetSpent

    # -- the rounds ----------------------------------------------------------------------------------------
    def _steps(self) -> Iterator[tuple[str, list[str]]]:
        """(method, metrics), cheap first: every method's attributions and the metrics that need nothing more, then
        the model's metrics, then the re-explaining ones; within a class one metric at a time for every method,
        cheapest metric first, and the methods cheapest to explain first. So a round the budget stops holds as
        many metrics complete for every method as it can (a metric enters the ranking only then)."""
        g = self.grid
        methods = sorted(g.methods, key=g.explain_cost)  # stable: the plan's order among equals
        for cls in COST_ORDER + tuple(sorted({g.cost_class(m) for m in g.metrics} - set(COST_ORDER))):
            ms = sorted((m for m in g.metrics if g.cost_class(m) == cls), key=g.metric_cost)
            if cls == "explanation":
                yield from ((method, ms) for method in methods if ms)
                continue
            for metric in ms:
                yield from ((method, [metric]) for method in methods
                            if not (cls == EXPENSIVE and method in self.raced))

    def rounds(self) -> Iterator[RoundRecord]:
        """Run the rounds, yielding each one's record; the last has ``stopped_because`` set.

        Yields
        ------
        RoundRecord
        """
        self._start = self.clock() if self.started is None else self.started
        decide_from = self.rule.decision_samples(self.schedule)
        for r, n in enumerate(self.schedule, start=1):
            notify(self.progress, r - 1, len(self.schedule), "round", f"round {r}: up to {n} samples per method")
            stop = self._compute_round(n)
            rec = self._assess(r, n, complete=stop is None)
            self.records.append(rec)
            s = self._standing(rec)
            if stop is None and s is not None and n >= decide_from and decided(s, self.rule):
                yield self._finish(rec, "decided", s)
                return
            if stop is None and self.rule.budget_s is not None and self.elapsed() >= self.rule.budget_s:
                stop = "the time budget is spent"
            if stop is not None:
                self._budget_note = stop
                yield self._finish(rec, "budget", s)
                return
            if n == self.schedule[-1]:
                yield self._finish(rec, "samples exhausted", s)
                return
            if s is not None and n >= decide_from and self.threshold > 0:
                controls = {m for m in self.grid.methods if is_control(m)}
                for m, p in to_race(s, self.threshold, set(self.raced), controls):
                    self.raced[m] = {"method": m, "round": r, "samples": n, "p_in_top": p,
                                     "threshold": self.threshold}
                    rec.raced_out.append(self.raced[m])
            yield rec

    def run(self) -> AdaptiveRun:
        """Run every round (``rounds`` without looking at them).

        Returns
        -------
        AdaptiveRun
            This run, finished.
        """
        for _ in self.rounds():
            pass
        return self

    def _compute_round(self, n: int) -> str | None:
        for group in self._groups():
            if len(group) > 1:  # a parallel grid: every method of the step at once, when the whole fits the budget
                costs_ = [self.grid.step_cost(method, ms, n) for method, ms in group]
                todo = [(step, c) for step, c in zip(group, costs_) if c[2]]
                passes, secs = sum(c[0] for _, c in todo), sum(c[1] for _, c in todo)
                if len(todo) > 1 and not self._over_budget(", ".join(m for (m, _), _ in todo), group[0][1], passes,
                                                           secs):
                    stop = self._compute([m for (m, _), _ in todo], group[0][1], n, passes, secs)
                    if stop:
                        return stop
                    continue
                group = [step for step, _ in todo]
            for method, ms in group:  # one step at a time: the budget is checked before each
                passes, secs, missing = self.grid.step_cost(method, ms, n)
                if not missing:
                    continue
                why = self._over_budget(method, ms, passes, secs)
                if why:
                    return why
                stop = self._compute([method], ms, n, passes, secs)
                if stop:
                    return stop
        return None

    def _groups(self) -> Iterator[list[tuple[str, list[str]]]]:
        """The round's steps: one per group on a grid that runs in this process; on a parallel grid, the
        consecutive steps that share their metrics (every method of one metric) form one group."""
        if not getattr(self.grid, "parallel", False):
            yield from ([step] for step in self._steps())
            return
        group: list[tuple[str, list[str]]] = []
        for step in self._steps():
            if group and step[1] != group[0][1]:
                yield group
                group = []
            group.append(step)
        if group:
            yield group

    def _compute(self, methods: list[str], ms: list[str], n: int, passes: float, secs: float) -> str | None:
        """Compute one step (one method, or on a parallel grid several); the stop reason if the budget ran out
        during it."""
        t0 = self.clock()
        try:
            if len(methods) == 1:
                self.grid.compute(methods[0], ms, n, self._watch)
            else:
                self.grid.compute_many(methods, ms, n, self._watch)
        except _BudgetSpent:
            left = sum(self.grid.step_cost(m, ms, n)[0] for m in methods)
            self.passes += max(passes - left, 0.0)
            return f"the time budget was spent during {', '.join(methods)} on {', '.join(ms)}"
        self.passes += passes
        self._predicted_s += secs
        self._observed_passes += passes
        self._observed_s += self.clock() - t0
        return None

    def _standing(self, rec: RoundRecord) -> Standing | None:
        if rec.ranking is None:
            return None
        return standing(rec.ranking, min(self.rule.top_k, len(rec.ranking.table) - 1))

    def _assess(self, r: int, n: int, complete: bool) -> RoundRecord:
        frame = self.grid.scores(n)
        self.scores = frame
        ranked = frame[frame["metric"].isin(self.grid.metrics)] if len(frame) else frame  # the ranked metrics
        seen = list(dict.fromkeys(ranked["method"])) if len(ranked) else []
        left_out = {}
        for metric in self.grid.metrics:
            have = set(ranked.loc[ranked["metric"] == metric, "method"]) if len(ranked) else set()
            lacking = [m for m in seen if m not in have]
            if lacking or not have:
                left_out[metric] = f"not computed yet for {', '.join(lacking) or 'any method'}"
        if len(ranked):
            ranked = ranked[~ranked["metric"].isin(left_out)]
        self.ranked_scores = ranked
        result, s = None, None
        if len(ranked) and ranked["method"].nunique() >= 2:
            k = min(self.rule.top_k, ranked["method"].nunique() - 1)
            result = mc_mrr(ranked, top_k=k, **self.rule.rank_options())
            s = standing(result, k)
        unranked = [m for m in self.grid.methods if m not in set(ranked["method"] if len(ranked) else ())]
        return RoundRecord(r, n, complete, self._samples(frame), s.leader if s else None, s.p_leader if s else 0.0,
                           list(s.top) if s else [], s.p_top if s else 0.0, dict(s.p_in_top) if s else {}, [],
                           self.elapsed(), self.passes, left_out, unranked, ranking=result)

    def _samples(self, frame: pd.DataFrame) -> dict[str, dict[str, int | None]]:
        """Method -> samples scored on every cheap / every expensive per-sample metric (None: no such metric)."""
        per, set_cells = _counts(frame)
        set_level = {x for _, x in set_cells}
        out = {}
        for m in self.grid.methods:
            got: dict[str, int | None] = {}
            for cls, expensive in (("cheap", False), ("expensive", True)):
                ms = [x for x in self.grid.metrics if (self.grid.cost_class(x) == EXPENSIVE) == expensive
                      and x not in set_level]
                got[cls] = min(per.get((m, x), 0) for x in ms) if ms else None
            out[m] = got
        return out

    def _finish(self, rec: RoundRecord, because: str, s: Standing | None) -> RoundRecord:
        self.stopped_because = rec.stopped_because = because
        spent = (f"{costs.format_seconds(self.elapsed()).replace('about ', '')}, {self.passes:,.0f} passes; "
                 f"{self._budget_note}" if because == "budget" else "")
        self.sentence = rec.sentence = stop_sentence(because, s, rec.ranking, rec.round, rec.n, self.rule, spent,
                                                     self.label, rec.complete)
        return rec

    # -- what it found -------------------------------------------------------------------------------------
    @property
    def ranking(self) -> RankingResult | None:
        """The last round's ranking (None before a round, or when fewer than two methods could be ranked)."""
        return self.records[-1].ranking if self.records else None

    def not_computed(self) -> list[dict[str, Any]]:
        """What a fixed run of the cap would have computed and this run did not, and why.

        Returns
        -------
        list of dict
            ``method`` (or "all"), ``metrics``, ``samples`` ("from-to", 1-based in the sample order), ``why``.
        """
        if not self.records:
            return []
        last = self.records[-1]
        out = []
        skipped = getattr(self.grid, "skipped", [])
        if skipped:
            out.append({"method": "all", "metrics": list(skipped), "samples": f"1-{self.grid.cap}",
                        "why": "not used in the ranking (a reference level, the same for every method); a fixed-n "
                               "evaluate computes it"})
        if last.n < self.grid.cap:
            out.append({"method": "all", "metrics": list(self.grid.metrics), "samples": f"{last.n + 1}-{self.grid.cap}",
                        "why": f"{last.stopped_because}: {self.sentence}"})
        per, set_level = _counts(self.scores)
        for m in self.grid.methods:
            short: dict[str, list[str]] = {}
            for x in self.grid.metrics:
                if per.get((m, x), 0) >= last.n or (m, x) in set_level:
                    continue
                race = self.raced.get(m)
                if race and self.grid.cost_class(x) == EXPENSIVE:
                    why = (f"raced out after round {race['round']}: P(rank <= {self.rule.top_k}) = "
                           f"{race['p_in_top']:.4f} < {race['threshold']:.3g} (race_alpha {self.rule.race_alpha:g} "
                           f"over the rounds the rule applies at)")
                else:
                    why = "the budget was spent before this step of the last round"
                short.setdefault(why, []).append(x)
            for why, ms in short.items():
                got = min(per.get((m, x), 0) for x in ms)
                out.append({"method": m, "metrics": ms, "samples": f"{got + 1}-{last.n}", "why": why})
        return out

    def decision(self) -> dict[str, Any]:
        """What ``decision.json`` holds: why it stopped, the rounds, samples per method, p_leader, raced out, not
        computed.

        Returns
        -------
        dict
        """
        last = self.records[-1] if self.records else None
        res = self.ranking
        floor = []
        if res is not None and "not_better_than_random" in res.table.columns:
            floor = [str(m) for m in res.table.index[res.table["not_better_than_random"].astype(bool)]]
        return {
            "stopped_because": self.stopped_because,
            "sentence": self.sentence,
            "rule": {**dataclasses.asdict(self.rule), "race_threshold_per_round": self.threshold,
                     "described": self.rule.describe()},
            "rounds": [r.to_dict() for r in self.records],
            "samples_per_method": last.samples if last else {},
            "samples": last.n if last else 0,
            "cap": self.grid.cap,
            "leader": last.leader if last else None,
            "p_leader": last.p_leader if last else 0.0,
            "top_k": last.top if last else [],
            "p_top_k": last.p_top if last else 0.0,
            "raced_out": list(self.raced.values()),
            "not_better_than_random": floor,
            "not_computed": self.not_computed(),
            "seconds": self.elapsed(),
            "passes": self.passes,
        }


def _counts(frame: pd.DataFrame) -> tuple[dict[tuple[str, str], int], set]:
    """(method, metric) -> per-sample rows, and the (method, metric) cells with a set-level row."""
    if not len(frame):
        return {}, set()
    is_set = frame["sample"].astype(str) == "*"
    per = frame[~is_set].groupby(["method", "metric"]).size()
    cells = set(map(tuple, frame.loc[is_set, ["method", "metric"]].to_numpy().tolist()))
    return {k: int(v) for k, v in per.items()}, cells
