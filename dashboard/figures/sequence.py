"""Interactive sequence logos in plotly: real letter glyphs scaled per position, with a motif track.

Letters are the outlines of DejaVu Sans Bold (matplotlib's TextPath), normalised to a unit box and drawn as
filled polygons, one trace per nucleotide, so a 200-bp logo is 4–8 traces rather than 800 shapes. Positive
attributions stack upwards, negative ones downwards (glyphs flipped), largest nearest the axis last.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .theme import NUCLEOTIDE_COLOURS, style

ALPHABET = "ACGT"


@lru_cache(maxsize=None)
def glyph(letter: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(outer polygons, holes) of ``letter`` in the unit box [0, 1] x [0, 1]."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    path = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
    polys = [np.asarray(p) for p in path.to_polygons() if len(p) > 2]
    allv = np.concatenate(polys)
    lo, hi = allv.min(0), allv.max(0)
    polys = [(p - lo) / (hi - lo) for p in polys]

    def area(p):
        x, y = p[:, 0], p[:, 1]
        return 0.5 * float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))

    biggest = max(polys, key=lambda p: abs(area(p)))
    sign = np.sign(area(biggest))
    outer = [p for p in polys if np.sign(area(p)) == sign]
    holes = [p for p in polys if np.sign(area(p)) != sign]
    return outer, holes


def _letter_paths(heights: np.ndarray, width: float = 0.9) -> dict[str, tuple[list, list, list, list]]:
    """Polygon coordinates per letter for a (4, L) matrix of signed heights: {letter: (xs, ys, hx, hy)}."""
    out = {a: ([], [], [], []) for a in ALPHABET}
    L = heights.shape[1]
    for pos in range(L):
        col = heights[:, pos]
        for sign in (1, -1):
            vals = [(abs(v), k) for k, v in enumerate(col) if v * sign > 0]
            vals.sort()  # small letters first (nearest the axis), the largest on the outside
            base = 0.0
            for h, k in vals:
                outer, holes = glyph(ALPHABET[k])
                xs, ys, hx, hy = out[ALPHABET[k]]
                for polys, X, Y in ((outer, xs, ys), (holes, hx, hy)):
                    for p in polys:
                        px = pos - width / 2 + p[:, 0] * width
                        py = p[:, 1] * h if sign > 0 else -p[:, 1] * h
                        X.extend((px).tolist() + [None])
                        Y.extend((sign * base + py).tolist() + [None])
                base += h
    return out


def add_logo(fig: go.Figure, heights: np.ndarray, row: int = 1, col: int = 1, positions: np.ndarray | None = None,
             showlegend: bool = True) -> None:
    """Add the logo of ``heights`` (4, L) to a subplot: one filled trace per nucleotide, white holes."""
    heights = np.nan_to_num(np.asarray(heights, dtype=np.float64))
    paths = _letter_paths(heights)
    hover_x = np.arange(heights.shape[1])
    for a, (xs, ys, hx, hy) in paths.items():
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, fill="toself", mode="lines", line=dict(width=0),
                                     fillcolor=NUCLEOTIDE_COLOURS[a], name=a, legendgroup=a, hoverinfo="skip",
                                     showlegend=showlegend), row=row, col=col)
        if hx:
            fig.add_trace(go.Scatter(x=hx, y=hy, fill="toself", mode="lines", line=dict(width=0),
                                     fillcolor="white", hoverinfo="skip", showlegend=False), row=row, col=col)
    total = heights.sum(0)
    text = [f"position {p}<br>" + "<br>".join(f"{a}: {heights[k, p]:+.3g}" for k, a in enumerate(ALPHABET))
            for p in hover_x]
    fig.add_trace(go.Scatter(x=hover_x, y=total, mode="markers", marker=dict(size=6, opacity=0), name="values",
                             hovertext=text, hoverinfo="text", showlegend=False), row=row, col=col)


def motif_track(fig: go.Figure, ic: np.ndarray, row: int, col: int = 1) -> None:
    """Information content of the planted PWM per position (bits): where the true motifs are."""
    fig.add_trace(go.Bar(x=np.arange(len(ic)), y=ic, marker_color="#555555", name="planted motif (bits)",
                         hovertemplate="position %{x}<br>motif information %{y:.2f} bits<extra></extra>",
                         showlegend=False), row=row, col=col)


def sequence_logos(blocks: list[tuple[str, np.ndarray]], ic: np.ndarray | None = None, *, title: str | None = None,
                   sequence: str | None = None, y_label: str = "attribution") -> go.Figure:
    """One logo per (label, (4, L) heights) stacked with a shared x axis, plus the motif track below."""
    rows = len(blocks) + (ic is not None)
    heights = [1.0] * len(blocks) + ([0.45] if ic is not None else [])
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=heights,
                        subplot_titles=[b[0] for b in blocks] + (["planted motifs (ground truth)"] if ic is not None else []))
    for r, (_, h) in enumerate(blocks, start=1):
        add_logo(fig, h, row=r, showlegend=r == 1)
        fig.update_yaxes(title_text=y_label, row=r, col=1, zeroline=True, zerolinecolor="#999")
    if ic is not None:
        motif_track(fig, ic, rows)
        fig.update_yaxes(title_text="bits", range=[0, 2.05], row=rows, col=1)
    fig.update_xaxes(title_text="position (bp)", row=rows, col=1)
    style(fig, title=title, height=170 * len(blocks) + (110 if ic is not None else 0) + 90)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    return fig
