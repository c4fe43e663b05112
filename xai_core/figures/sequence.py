"""Interactive sequence logos in plotly: real letter glyphs scaled per position, with a motif track.

Letters are the outlines of DejaVu Sans Bold (matplotlib's TextPath), normalised to a unit box and drawn as
filled polygons, one trace per nucleotide, so a 200-bp logo is 4–8 traces rather than 800 shapes. Positive
attributions stack upwards, negative ones downwards (glyphs flipped), largest nearest the axis last.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .theme import NUCLEOTIDE_COLOURS, style

ALPHABET = "ACGT"


@cache
def glyph(letter: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(outer polygons, holes) of ``letter`` in the unit box [0, 1] x [0, 1]."""
    from matplotlib.font_manager import FontProperties  # noqa: PLC0415 - matplotlib (about 1 s): only logo glyphs
    from matplotlib.textpath import TextPath  # noqa: PLC0415 - matplotlib (about 1 s): only logo glyphs

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
                        X.extend(np.round(px, 3).tolist() + [None])  # 3 decimals: a third of the JSON
                        Y.extend(np.round(sign * base + py, 4).tolist() + [None])
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


def focus_window(ic: np.ndarray | None, heights: np.ndarray, width: int = 60) -> tuple[float, float]:
    """An x range of ``width`` bp centred on the planted motifs (or on the largest attributions)."""
    L = heights.shape[-1]
    if width >= L:
        return -0.5, L - 0.5
    signal = np.asarray(ic if ic is not None and np.nanmax(ic) > 0 else np.abs(heights).sum(0), dtype=np.float64)
    smooth = np.convolve(np.nan_to_num(signal), np.ones(width), mode="valid")  # sum over each window
    start = int(np.argmax(smooth))
    return start - 0.5, start + width - 0.5


def sequence_logos(blocks: list[tuple[str, np.ndarray]], ic: np.ndarray | None = None, *, title: str | None = None,
                   y_label: str = "attribution", window: int | None = 60) -> go.Figure:
    """One logo per (label, (4, L) heights) stacked with a shared x axis, plus the motif track below.

    ``window``: show that many bp around the planted motifs first (letters stay legible at 1280 px);
    the whole sequence is one double-click (autoscale) away. ``None`` shows it all.
    """
    rows = len(blocks) + (ic is not None)
    heights = [1.0] * len(blocks) + ([0.45] if ic is not None else [])
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=heights,
                        subplot_titles=[b[0] for b in blocks]
                        + (["planted motifs (ground truth)"] if ic is not None else []))
    # one y range for every logo (controls included), so letter heights compare across methods
    hi = max([float(np.clip(np.asarray(h), 0, None).sum(0).max()) for _, h in blocks] + [1e-12])
    lo = min([float(np.clip(np.asarray(h), None, 0).sum(0).min()) for _, h in blocks] + [0.0])
    pad = 0.05 * (hi - lo)
    for r, (_, h) in enumerate(blocks, start=1):
        add_logo(fig, h, row=r, showlegend=r == 1)
        fig.update_yaxes(title_text=y_label, row=r, col=1, zeroline=True, zerolinecolor="#999",
                         range=[lo - pad if lo < 0 else 0, hi + pad], title_standoff=4)
    if ic is not None:
        motif_track(fig, ic, rows)
        fig.update_yaxes(title_text="bits", range=[0, 2.05], row=rows, col=1)
    fig.update_xaxes(title_text="position (bp) · double-click to see the whole sequence" if window else
                     "position (bp)", row=rows, col=1)
    if window and blocks:
        fig.update_xaxes(range=list(focus_window(ic, blocks[0][1], window)))
    style(fig, title=title, height=170 * len(blocks) + (110 if ic is not None else 0) + 110)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=0.995, yref="container", xanchor="center", x=0.6),
                      title=dict(x=0, xanchor="left", font=dict(size=15)), margin=dict(t=70))
    return fig
