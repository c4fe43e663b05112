"""Figures of the Metrics page: per-method score distributions and perturbation curves (plotly; a curve's axis
labels come from its metric's spec)."""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..explainers import EXPLAINERS
from ..metrics import METRICS

from . import theme

GREY = "#9E9E9E"


class CurveLabels(Mapping[str, tuple[str, str, str]]):
    """metric -> (x axis, y axis, what a good method does) of the per-sample curve it returns, read live from
    each metric's spec (``MetricSpec.curve``); only metrics that declare one are listed."""

    def __getitem__(self, metric: str) -> tuple[str, str, str]:
        curve = METRICS.get(metric).curve if metric in METRICS else None
        if curve is None:
            raise KeyError(metric)
        return curve.x, curve.y, curve.good

    def __iter__(self) -> Iterator[str]:
        return (s.name for s in METRICS.values() if s.curve is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


CURVES = CurveLabels()


def method_label(name: str) -> str:
    """The explainer registry's label of a method ("Integrated Gradients"), or the name when not registered."""
    return EXPLAINERS.get(name).label if name in EXPLAINERS.names() else name


def metric_label(name: str) -> str:
    """The metric registry's label of a metric ("Pixel flipping"), or the name when not registered."""
    return METRICS.get(name).label if name in METRICS.names() else name


def direction_hint(direction: str) -> str:
    return "↓ lower is better" if direction == "lower" else "↑ higher is better"


def method_colours(methods: list[str]) -> dict[str, str]:
    """One colour per method, stable across the figures of a page (order of ``methods``)."""
    return {m: theme.QUALITATIVE[i % len(theme.QUALITATIVE)] for i, m in enumerate(methods)}


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


def score_distribution(frame: pd.DataFrame, metric: str, *, kind: str = "violin", direction: str = "higher",
                       label: str | None = None, methods: list[str] | None = None,
                       colours: dict[str, str] | None = None, height: int = 420) -> go.Figure:
    """Per-method distribution of one metric's per-sample scores (violin or box, every sample a point).

    A set-level metric (one score per method, sample ``"*"``) is drawn as a point with its standard error.
    NaN scores are left out; a method with no finite score keeps its place on the axis and is named
    in a note under the plot.
    """
    if kind not in ("violin", "box"):
        raise ValueError(f"kind must be 'violin' or 'box', not {kind!r}")
    df = frame[frame["metric"] == metric]
    methods = list(methods) if methods is not None else list(pd.unique(df["method"]))
    colours = colours or method_colours(methods)
    fig, empty = go.Figure(), []
    set_level = len(df) > 0 and (df["sample"].astype(str) == "*").all()
    for mid in methods:
        rows = df[(df["method"] == mid) & np.isfinite(df["score"].astype(float))]
        m = method_label(mid)
        if not len(rows):
            empty.append(m)
            continue
        c = colours.get(mid, GREY)
        if set_level:
            se = rows["se"].astype(float).fillna(0.0).to_numpy() if "se" in rows else np.zeros(len(rows))
            fig.add_trace(go.Scatter(x=[m] * len(rows), y=rows["score"], mode="markers", name=m,
                                     marker=dict(color=c, size=12), error_y=dict(type="data", array=1.96 * se),
                                     hovertemplate=(f"{m}<br>score %{{y:.3g}} ± %{{error_y.array:.2g}} (95%)"
                                                    "<extra></extra>")))
        elif kind == "violin":
            fig.add_trace(go.Violin(x=[m] * len(rows), y=rows["score"], name=m, line_color=c, fillcolor=_rgba(c, 0.25),
                                    box_visible=True, meanline_visible=True, points="all", pointpos=0, jitter=0.3,
                                    marker=dict(size=5, color=c), text=rows["sample"].astype(str), spanmode="hard",
                                    hovertemplate=f"{m}<br>sample %{{text}}<br>score %{{y:.3g}}<extra></extra>"))
        else:
            fig.add_trace(go.Box(x=[m] * len(rows), y=rows["score"], name=m, marker_color=c, boxpoints="all",
                                 jitter=0.3, pointpos=0, boxmean=True, text=rows["sample"].astype(str),
                                 hovertemplate=f"{m}<br>sample %{{text}}<br>score %{{y:.3g}}<extra></extra>"))
    name = label or metric_label(metric)
    theme.style(fig, title=f"{name} ({direction_hint(direction)})", height=height, x="explanation method",
                y=f"score ({direction_hint(direction)})", legend=False)
    fig.update_xaxes(categoryorder="array", categoryarray=[method_label(m) for m in methods], type="category",
                     tickangle=-30 if len(methods) > 4 else 0)
    if empty:
        fig.add_annotation(text="no finite score: " + ", ".join(empty) + " (see the table of reasons)",
                           xref="paper", yref="paper", x=0, y=-0.22, showarrow=False, xanchor="left",
                           font=dict(size=theme.FONT_SIZE - 2, color="#555555"))
        fig.update_layout(margin=dict(b=90))
    return fig


def curve_summary(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean curve over samples and its 95% interval (mean ± 1.96 SE), NaN-aware; trailing all-NaN steps cut."""
    c = np.asarray(curves, dtype=float)
    keep = np.isfinite(c).any(axis=0)
    if not keep.any():
        return np.zeros(0), np.zeros(0), np.zeros(0)
    c = c[:, : int(np.nonzero(keep)[0].max()) + 1]
    n = np.isfinite(c).sum(axis=0)
    with warnings.catch_warnings():  # steps with 0 or 1 finite value: NaN mean / no spread, handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(c, axis=0)
        sd = np.nanstd(c, axis=0, ddof=1)
    half = 1.96 * np.where(n > 1, np.nan_to_num(sd), 0.0) / np.sqrt(np.maximum(n, 1))
    return mean, mean - half, mean + half


def perturbation_curves(curves: dict[str, np.ndarray | None], metric: str, *, label: str | None = None,
                        colours: dict[str, str] | None = None, height: int = 420) -> go.Figure:
    """Mean perturbation curve per method with a 95% band (two traces per method: band, then mean line).

    ``curves``: method -> (samples, steps) array (NaN past a sample's last step), or None when not stored.
    """
    methods = list(curves)
    colours = colours or method_colours(methods)
    x_label, y_label, good = CURVES.get(metric, ("step", "curve value", ""))
    fig = go.Figure()
    for mid in methods:
        if curves[mid] is None:
            continue
        mean, lo, hi = curve_summary(curves[mid])
        if not len(mean) or not np.isfinite(mean).any():
            continue
        c, m = colours.get(mid, GREY), method_label(mid)
        x = np.arange(1, len(mean) + 1)
        ok = np.isfinite(lo) & np.isfinite(hi)
        fig.add_trace(go.Scatter(x=np.r_[x[ok], x[ok][::-1]], y=np.r_[hi[ok], lo[ok][::-1]], fill="toself",
                                 fillcolor=_rgba(c, 0.18), line=dict(width=0), hoverinfo="skip",
                                 legendgroup=m, showlegend=False, name=f"{m} 95% band"))
        fig.add_trace(go.Scatter(x=x, y=mean, mode="lines", name=m, legendgroup=m, line=dict(color=c, width=2.5),
                                 hovertemplate=f"{m}<br>step %{{x}}<br>mean %{{y:.3g}}<extra></extra>"))
    title = f"{label or metric_label(metric)}: mean curve per method, 95% band" + (f" ({good})" if good else "")
    return theme.style(fig, title=title, height=height, x=x_label, y=y_label, legend=True)
