"""Figures of the Method ranking page (pure plotly): E[MRR] with intervals, rank probabilities,
per-metric ranks, metric agreement, and the aggregated explanation against its components."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import theme
from .metrics import GREY, direction_hint, method_label, metric_label

AGGREGATE_COLOUR, COMPONENT_COLOUR = theme.QUALITATIVE[3], theme.QUALITATIVE[0]
COMPONENT_SYMBOLS = ["circle", "square", "triangle-up", "cross", "x", "star"]


def _labelled(fig: go.Figure, axis: str, names, labeller) -> go.Figure:
    """Show the registries' labels on ``axis`` while the traces keep the identifiers (hover, CSV, tests)."""
    names = [str(n) for n in names]
    getattr(fig, f"update_{axis}axes")(tickmode="array", tickvals=names, ticktext=[labeller(n) for n in names])
    return fig


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def _group_colour(method: str, aggregate: str | None, components) -> str:
    if aggregate is not None and method == aggregate:
        return AGGREGATE_COLOUR
    return COMPONENT_COLOUR if method in set(components or ()) else GREY


def mrr_intervals(table: pd.DataFrame, *, aggregate: str | None = None, components=(), height: int | None = None
                  ) -> go.Figure:
    """Expected MRR per method (index) with its 95% interval as horizontal error bars, best on top.

    ``table`` needs columns mrr, mrr_lo, mrr_hi. The aggregate (if any) is drawn as a red diamond.
    """
    t = table.sort_values("mrr", ascending=False, kind="stable")
    methods = [str(m) for m in t.index]
    colours = [_group_colour(m, aggregate, components) if aggregate else theme.QUALITATIVE[0] for m in methods]
    symbols = ["diamond" if m == aggregate else "circle" for m in methods]
    fig = go.Figure(go.Scatter(
        x=t["mrr"], y=methods, mode="markers", marker=dict(size=13, color=colours, symbol=symbols),
        error_x=dict(type="data", symmetric=False, array=(t["mrr_hi"] - t["mrr"]).clip(lower=0),
                     arrayminus=(t["mrr"] - t["mrr_lo"]).clip(lower=0), thickness=2),
        customdata=[[float(lo), float(hi), method_label(m)] for lo, hi, m in zip(t["mrr_lo"], t["mrr_hi"], methods)],
        name="expected MRR",
        hovertemplate=("%{customdata[2]} (%{y})<br>expected MRR %{x:.3f}<br>95%: %{customdata[0]:.3f} – "
                       "%{customdata[1]:.3f}<extra></extra>")))
    theme.style(fig, title="Expected mean reciprocal rank with 95% interval",
                x="expected mean reciprocal rank (↑ higher is better; 1 = best on every metric)",
                y="explanation method", height=height or 120 + 40 * len(methods), legend=False)
    fig.update_yaxes(categoryorder="array", categoryarray=methods, autorange="reversed")
    fig.update_xaxes(range=[0, 1.05])
    return _labelled(fig, "y", methods, method_label)


def rank_probability_heatmap(probs: pd.DataFrame, *, height: int | None = None) -> go.Figure:
    """Methods (rows, best first) x rank (columns 1..M): the probability (in %) of each rank over the draws."""
    z = 100 * probs.to_numpy(float)
    ranks = [_ordinal(int(r)) for r in probs.columns]
    fig = go.Figure(go.Heatmap(z=z, x=ranks, y=[str(m) for m in probs.index], zmin=0, zmax=100,
                               colorscale=theme.SEQUENTIAL, colorbar=dict(title="P (%)"),
                               text=np.round(z).astype(int), texttemplate="%{text}%",
                               hovertemplate="%{y} ranks %{x}: %{z:.1f}%<extra></extra>"))
    theme.style(fig, title="How sure is the ranking? Probability of each rank (Monte Carlo draws)",
                x="rank by MRR (1st = best)", y="explanation method", height=height or 140 + 40 * len(probs))
    fig.update_yaxes(autorange="reversed")
    return _labelled(fig, "y", probs.index, method_label)


def metric_rank_heatmap(ranks: pd.DataFrame, directions: dict[str, str] | None = None, *,
                        height: int | None = None) -> go.Figure:
    """Methods x metrics: each method's rank on each metric's mean score (1 = best, ties averaged)."""
    directions = directions or {}
    cols = [f"{metric_label(m)} {'↓' if directions.get(m) == 'lower' else '↑'}" for m in ranks.columns]
    z = ranks.to_numpy(float)
    fig = go.Figure(go.Heatmap(z=z, x=cols, y=[str(m) for m in ranks.index], colorscale=theme.SEQUENTIAL,
                               reversescale=True, zmin=1, zmax=max(2, len(ranks)), colorbar=dict(title="rank"),
                               text=np.vectorize(lambda v: "" if not np.isfinite(v) else f"{v:g}")(z),
                               texttemplate="%{text}", hovertemplate="%{y} on %{x}: rank %{z:g}<extra></extra>"))
    theme.style(fig, title="Rank on each metric (1 = best; ↑/↓: higher/lower score is better)", x="metric",
                y="explanation method", height=height or 160 + 40 * len(ranks))
    fig.update_yaxes(autorange="reversed")
    return _labelled(fig, "y", ranks.index, method_label)


def agreement_heatmap(corr: pd.DataFrame, *, w: float | None = None, p_value: float | None = None,
                      measure: str = "Spearman ρ", height: int | None = None) -> go.Figure:
    """Metric x metric correlation of the methods' oriented mean scores (+1: the metrics rank methods alike).

    ``w``: Kendall's W over all metrics, shown in the title (None or NaN: not computable)."""
    z = corr.to_numpy(float)
    names = [str(m) for m in corr.columns]
    text = np.vectorize(lambda v: "n/a" if not np.isfinite(v) else f"{v:.2f}")(z)
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, zmin=-1, zmax=1, zmid=0, colorscale=theme.DIVERGING,
                               colorbar=dict(title=measure), text=text, texttemplate="%{text}",
                               hovertemplate=f"%{{y}} vs %{{x}}: {measure} %{{z:.2f}}<extra></extra>"))
    if w is not None and np.isfinite(w):
        head = f"Kendall's W = {w:.2f}" + (f" (p = {p_value:.2g})" if p_value is not None else "")
    else:
        head = "Kendall's W: n/a"
    theme.style(fig, title=f"Do the metrics agree? {head}", x="metric", y="metric",
                height=height or 200 + 45 * len(names))
    fig.update_yaxes(autorange="reversed")
    return fig


def score_bars(values: pd.Series, *, label: str, higher_better: bool = True, aggregate: str | None = None,
               components=(), height: int | None = None) -> go.Figure:
    """Horizontal bars of one ranking score per method (best on top); aggregate/components highlighted."""
    v = values.sort_values(ascending=not higher_better, kind="stable")
    methods = [str(m) for m in v.index]
    fig = go.Figure(go.Bar(x=v.to_numpy(float), y=methods, orientation="h", name=label,
                           marker_color=[_group_colour(m, aggregate, components) if aggregate else
                                         theme.QUALITATIVE[0] for m in methods],
                           hovertemplate="%{y}: %{x:.3g}<extra></extra>"))
    theme.style(fig, title=label, x=f"{label} ({direction_hint('higher' if higher_better else 'lower')})",
                y="explanation method", height=height or 120 + 40 * len(methods), legend=False)
    fig.update_yaxes(categoryorder="array", categoryarray=methods, autorange="reversed")
    return _labelled(fig, "y", methods, method_label)


def aggregate_vs_components(ranks: pd.DataFrame, aggregate: str, components, *, height: int | None = None
                            ) -> go.Figure:
    """Per metric (x), the rank of the aggregated explanation (red diamonds, joined) against its
    components (blue, one symbol each) and the other methods (grey); one trace per method, rank 1 on top.
    Methods are spread a little around each metric so that tied ranks stay visible."""
    metrics = [str(m) for m in ranks.columns]
    components = [c for c in components if c in ranks.index and c != aggregate]
    order = ([aggregate] if aggregate in ranks.index else []) + components + \
        [m for m in ranks.index if m != aggregate and m not in components]
    offsets = np.linspace(-0.25, 0.25, len(order)) if len(order) > 1 else np.zeros(1)
    fig = go.Figure()
    for j, m in enumerate(order):
        is_agg, is_comp = m == aggregate, m in components
        colour = _group_colour(m, aggregate, components)
        symbol = "diamond" if is_agg else COMPONENT_SYMBOLS[components.index(m) % len(COMPONENT_SYMBOLS)] \
            if is_comp else "circle"
        fig.add_trace(go.Scatter(
            x=np.arange(len(metrics)) + offsets[j], y=ranks.loc[m].to_numpy(float), customdata=metrics,
            name=m + (" (component)" if is_comp else ""), mode="lines+markers" if is_agg else "markers",
            marker=dict(color=colour, size=16 if is_agg else 11, symbol=symbol,
                        opacity=1 if (is_agg or is_comp) else 0.55),
            line=dict(color=colour, width=2), hovertemplate=f"{m}<br>%{{customdata}}: rank %{{y:g}}<extra></extra>"))
    theme.style(fig, title="The aggregated explanation against its components, metric by metric", x="metric",
                y="rank on the metric (1 = best)", height=height or 440, legend=True)
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(metrics))), ticktext=metrics,
                     range=[-0.5, len(metrics) - 0.5])
    fig.update_yaxes(autorange="reversed", dtick=1)
    return fig
