"""Model selection figures: a population as performance vs consistency with its Pareto front, per-member
bars and the members' pairwise agreement (pure plotly, no streamlit)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import theme

MEMBERS, FRONT, SELECTED = "members", "Pareto front", "selected model"


def _customdata(df: pd.DataFrame) -> list[list[str]]:
    return [[str(m), str(s)] for m, s in zip(df["member"], df["settings"])]


def population_scatter(table: pd.DataFrame, x: str, y: str, *, front: pd.DataFrame | None = None,
                       selected: str | None = None, colour: str | None = None, labels: dict[str, str] | None = None,
                       title: str | None = None) -> go.Figure:
    """Each member at (performance, consistency); colour = ground-truth interpretability when given (else
    one colour per architecture); the Pareto front as a line; the selected member as a star.

    Every trace carries ``customdata`` = [member, settings], so a click identifies the member.
    """
    labels = labels or {}
    lx, ly = labels.get(x, x), labels.get(y, y)
    ok = table[np.isfinite(table[x].astype(float)) & np.isfinite(table[y].astype(float))]
    hover = f"<b>%{{customdata[0]}}</b><br>%{{customdata[1]}}<br>{lx}: %{{x:.2f}}<br>{ly}: %{{y:.3f}}"
    fig = go.Figure()
    if colour is not None and colour in ok and np.isfinite(ok[colour].astype(float)).any():
        lc = labels.get(colour, colour)
        fig.add_trace(go.Scatter(
            x=ok[x], y=ok[y], mode="markers", name=MEMBERS, customdata=_customdata(ok),
            marker=dict(size=14, color=ok[colour].astype(float), colorscale=theme.SEQUENTIAL, showscale=True,
                        colorbar=dict(title=dict(text=lc, side="right")), line=dict(width=1, color="#333")),
            hovertemplate=hover + f"<br>{lc}: %{{marker.color:.3f}}<extra></extra>"))
    else:
        archs = list(dict.fromkeys(ok["arch"]))
        fig.add_trace(go.Scatter(
            x=ok[x], y=ok[y], mode="markers", name=MEMBERS, customdata=_customdata(ok),
            marker=dict(size=14, color=[theme.QUALITATIVE[archs.index(a) % len(theme.QUALITATIVE)] for a in ok["arch"]],
                        line=dict(width=1, color="#333")),
            hovertemplate=hover + "<extra></extra>"))
    if front is not None and len(front):
        f = front.sort_values(x)
        fig.add_trace(go.Scatter(x=f[x], y=f[y], mode="lines", name=FRONT, customdata=_customdata(f),
                                 line=dict(color=theme.QUALITATIVE[3], width=2, dash="dash"),
                                 hovertemplate=hover + "<extra>Pareto front</extra>"))
    if selected is not None and (ok["member"] == selected).any():
        s = ok[ok["member"] == selected]
        fig.add_trace(go.Scatter(x=s[x], y=s[y], mode="markers", name=SELECTED, customdata=_customdata(s),
                                 marker=dict(symbol="star", size=26, color=theme.QUALITATIVE[1],
                                             line=dict(width=1.5, color="#000")),
                                 hovertemplate=hover + "<extra>selected</extra>"))
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.02, x=1, xanchor="right"),
                      clickmode="event+select")
    return theme.style(fig, title=title, height=520, x=lx, y=ly)


def member_bars(table: pd.DataFrame, metric: str, *, label: str | None = None, selected: str | None = None,
                title: str | None = None) -> go.Figure:
    """One horizontal bar per member for ``metric`` (best at the top); the selected member highlighted."""
    d = table[["member", "settings", metric]].copy()
    d[metric] = d[metric].astype(float)
    d = d.sort_values(metric, ascending=True, na_position="first")
    colours = [theme.QUALITATIVE[1] if m == selected else theme.QUALITATIVE[0] for m in d["member"]]
    fig = go.Figure(go.Bar(x=d[metric], y=d["member"], orientation="h", marker_color=colours,
                           customdata=_customdata(d), name=label or metric,
                           hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>"
                                         f"{label or metric}: %{{x:.3f}}<extra></extra>"))
    return theme.style(fig, title=title, height=max(300, 60 + 32 * len(d)), x=label or metric, legend=False)


def agreement_heatmap(matrix: np.ndarray, names: list[str], *, title: str | None = None) -> go.Figure:
    """Pairwise agreement (mean per-sample Spearman correlation of the maps) between members."""
    m = np.asarray(matrix, dtype=float)
    text = [[f"{v:.2f}" if np.isfinite(v) else "" for v in row] for row in m]
    fig = go.Figure(go.Heatmap(z=m, x=names, y=names, zmin=-1, zmax=1, colorscale=theme.DIVERGING, text=text,
                               texttemplate="%{text}" if len(names) <= 12 else None,
                               colorbar=dict(title=dict(text="Spearman ρ", side="right")),
                               hovertemplate="%{y}<br>vs %{x}<br>ρ = %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return theme.style(fig, title=title, height=max(360, 120 + 34 * len(names)))
