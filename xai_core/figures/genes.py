"""Figures of the Gene rankings page (pure plotly, no streamlit): inputs are plain numpy / pandas."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .theme import DIVERGING, QUALITATIVE, SEQUENTIAL, style, symmetric_range

KNOWN, OTHER = QUALITATIVE[3], QUALITATIVE[0]  # vermillion = known gene, blue = other gene


def top_genes(tables: dict[str, pd.DataFrame], known_label: str = "known gene", title: str | None = None,
              per_row: int = 3, x_label: str = "mean normalised attribution") -> go.Figure:
    """One horizontal bar chart per ranking (``per_row`` per row): the top genes (rank 1 on top), known
    genes highlighted."""
    names = list(tables)
    k = max((len(t) for t in tables.values()), default=1)
    cols = min(max(len(names), 1), per_row)
    rows = -(-max(len(names), 1) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.14,
                        vertical_spacing=min(0.3, 60 / (rows * (18 * k + 90))))
    shown = set()
    for j, name in enumerate(names):
        t = tables[name]
        r, j = j // cols + 1, j % cols + 1
        known = t["known"].to_numpy() if "known" in t else np.zeros(len(t), dtype=bool)
        for flag, label, colour in ((True, known_label, KNOWN), (False, "other gene", OTHER)):
            sel = t[known == flag]
            if len(sel) == 0:
                continue
            fig.add_trace(go.Bar(x=sel["score"], y=sel["gene"], orientation="h", marker_color=colour, name=label,
                                 legendgroup=label, showlegend=label not in shown and "known" in t,
                                 customdata=sel["rank"],
                                 hovertemplate="%{y}: rank %{customdata}, score %{x:.3g}<extra></extra>"),
                          row=r, col=j)
            shown.add(label)
        fig.update_yaxes(categoryorder="array", categoryarray=t["gene"].tolist()[::-1], row=r, col=j)
        fig.update_xaxes(title_text=x_label, row=r, col=j)
    style(fig, title=title, height=rows * (18 * k + 90) + 80)
    fig.update_yaxes(title_text="gene (rank 1 on top)", col=1)
    fig.update_layout(bargap=0.15)
    return fig


def recovery(curves: dict[str, tuple[np.ndarray, np.ndarray]], chance: float, title: str | None = None,
             known_label: str = "known genes") -> go.Figure:
    """Share of known genes among the top k, as k grows, one line per ranking, with the chance level."""
    fig = go.Figure()
    for name, (ks, prec) in curves.items():
        fig.add_trace(go.Scatter(x=ks, y=prec, mode="lines", name=name,
                                 hovertemplate=f"{name}<br>top %{{x}}: %{{y:.0%}}<extra></extra>"))
    if curves:
        ks = next(iter(curves.values()))[0]
        fig.add_trace(go.Scatter(x=[ks[0], ks[-1]], y=[chance, chance], mode="lines", name="chance",
                                 line={"dash": "dash", "color": "grey"}, hoverinfo="skip"))
    style(fig, title=title, height=420, x="top k genes of the class ranking", y=f"share that are {known_label}")
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return fig


def local_vs_global(local: dict[str, np.ndarray], shared: dict[str, np.ndarray], global_prec: dict[str, float] | None,
                    k: int, title: str | None = None, known_label: str = "known genes") -> go.Figure:
    """Per method: boxes over samples of (left) the share of known genes in each sample's top k with the class
    ranking's share as a diamond, and (right) the share of each sample's top k also in the class top k."""
    two = global_prec is not None
    fig = make_subplots(rows=1, cols=2 if two else 1, horizontal_spacing=0.1, subplot_titles=(
        [f"{known_label} in the top {k}", f"sample top {k} shared with the class top {k}"] if two
        else [f"sample top {k} shared with the class top {k}"]))
    for i, name in enumerate(shared):
        colour = QUALITATIVE[i % len(QUALITATIVE)]
        if two:
            fig.add_trace(go.Box(y=local[name], name=name, marker_color=colour, boxpoints="all", jitter=0.4,
                                 pointpos=0, legendgroup=name, showlegend=False,
                                 hovertemplate="one sample: %{y:.0%}<extra></extra>"), row=1, col=1)
            fig.add_trace(go.Scatter(x=[name], y=[global_prec[name]], mode="markers", legendgroup="global",
                                     marker={"symbol": "diamond", "size": 14, "color": "black"}, name="class ranking",
                                     showlegend=i == 0, hovertemplate="class ranking: %{y:.0%}<extra></extra>"),
                          row=1, col=1)
        fig.add_trace(go.Box(y=shared[name], name=name, marker_color=colour, boxpoints="all", jitter=0.4, pointpos=0,
                             showlegend=False, hovertemplate="one sample: %{y:.0%}<extra></extra>"),
                      row=1, col=2 if two else 1)
    style(fig, title=title, height=430)
    fig.update_yaxes(range=[-0.02, 1.02], tickformat=".0%")
    fig.update_yaxes(title_text="share of the sample's top genes", row=1, col=1)
    fig.update_xaxes(title_text="method")
    return fig


def local_heatmap(values: np.ndarray, local_ranks: np.ndarray, samples: list[str], genes: list[str],
                  title: str | None = None) -> go.Figure:
    """Samples x the class's top genes: each sample's normalised attribution (hover: its local rank)."""
    zmax = symmetric_range(values, quantile=0.99)
    fig = go.Figure(go.Heatmap(z=values, x=genes, y=samples, customdata=local_ranks, colorscale=DIVERGING,
                               zmin=-zmax, zmax=zmax, zmid=0, colorbar={"title": "normalised<br>attribution"},
                               hovertemplate="%{y}, %{x}<br>attribution %{z:.3g}<br>rank in this sample: "
                                             "%{customdata}<extra></extra>"))
    style(fig, title=title, height=max(320, 14 * len(samples) + 160),
          x="gene (class top genes, best on the left)", y="sample")
    fig.update_yaxes(autorange="reversed")
    return fig


def correlation_heatmap(corr: pd.DataFrame, title: str | None = None, axis: str = "ranking") -> go.Figure:
    """Symmetric Spearman matrix, -1 (blue) .. 1 (red), values written in the cells."""
    z = corr.to_numpy(dtype=float)
    fig = go.Figure(go.Heatmap(z=z, x=list(corr.columns), y=list(corr.index), colorscale=DIVERGING, zmin=-1, zmax=1,
                               zmid=0, text=np.round(z, 2), texttemplate="%{text}",
                               colorbar={"title": "Spearman ρ"},
                               hovertemplate="%{y} vs %{x}: ρ = %{z:.2f}<extra></extra>"))
    n = len(corr)
    style(fig, title=title, height=max(320, 50 * n + 150), x=axis, y=axis)
    fig.update_yaxes(autorange="reversed")
    return fig


def overlap_heatmap(mat: pd.DataFrame, k: int, title: str | None = None, axis: str = "ranking") -> go.Figure:
    """Share of top-k genes two rankings have in common (0 .. 1)."""
    z = mat.to_numpy(dtype=float)
    fig = go.Figure(go.Heatmap(z=z, x=list(mat.columns), y=list(mat.index), colorscale=SEQUENTIAL, zmin=0, zmax=1,
                               text=np.round(z, 2), texttemplate="%{text}",
                               colorbar={"title": f"shared<br>top {k}"},
                               hovertemplate="%{y} vs %{x}: %{z:.0%} shared<extra></extra>"))
    style(fig, title=title, height=max(320, 50 * len(mat) + 150), x=axis, y=axis)
    fig.update_yaxes(autorange="reversed")
    return fig


def de_scatter(de_rank: np.ndarray, attr_rank: np.ndarray, genes: list[str], known: np.ndarray | None,
               method: str, de_test: str, title: str | None = None, known_label: str = "known gene") -> go.Figure:
    """Every gene placed by its differential-expression rank (x) and attribution rank (y), log axes."""
    fig = go.Figure()
    known = np.zeros(len(genes), dtype=bool) if known is None else np.asarray(known, dtype=bool)
    genes = np.asarray(genes)
    for flag, label, colour, size in ((False, "other gene", OTHER, 5), (True, known_label, KNOWN, 9)):
        sel = known == flag
        if not sel.any():
            continue
        fig.add_trace(go.Scattergl(x=de_rank[sel], y=attr_rank[sel], mode="markers", name=label, text=genes[sel],
                                   marker={"color": colour, "size": size, "opacity": 0.85 if flag else 0.45},
                                   hovertemplate="%{text}<br>DE rank %{x}<br>attribution rank %{y}<extra></extra>"))
    n = len(genes)
    fig.add_trace(go.Scatter(x=[1, n], y=[1, n], mode="lines", name="same rank", line={"dash": "dot", "color": "grey"},
                             hoverinfo="skip"))
    style(fig, title=title, height=480, x=f"rank by differential expression ({de_test}, 1 = most up in the class)",
          y=f"rank by {method} (1 = strongest evidence)")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig
