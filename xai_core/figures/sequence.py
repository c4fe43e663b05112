"""Interactive sequence logos in plotly: real letter glyphs scaled per position, with a motif track.

Letters are the outlines of DejaVu Sans Bold (matplotlib's TextPath), normalised to a unit box. Every letter of
one nucleotide in one logo is a single SVG path (a layout shape with an even-odd fill, so the counter of the A
stays open), and the motif track is one path of bars: the browser draws a 200-bp logo as a handful of paths
rather than filled traces and hundreds of bar and marker elements, which is what keeps it quick to draw (see
docs/benchmarks.md, "Dashboard latency"). Positive attributions stack upwards, negative ones downwards (glyphs
flipped), largest nearest the axis last. The hover (the values at each position) rides on an invisible line
through the positions.
"""
from __future__ import annotations

import math
from functools import cache

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .theme import NUCLEOTIDE_COLOURS, style

ALPHABET = "ACGT"
TRACK_COLOUR = "#555555"


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


def warm_glyphs() -> None:
    """Compute the four glyphs now (importing matplotlib, about 1 s), so the first logo drawn later does not."""
    for a in ALPHABET:
        glyph(a)


def _decimals(top: float, digits: int = 4) -> int:
    """Decimals that keep ``digits`` significant digits of a value as large as ``top``."""
    return max(0, digits - 1 - math.floor(math.log10(top))) if top > 0 else digits


def _subpath(xs: np.ndarray, ys: np.ndarray, xd: int, yd: int) -> str:
    pts = "L".join(f"{x:.{xd}f},{y:.{yd}f}" for x, y in zip(xs, ys))
    return f"M{pts}Z"


def letter_paths(heights: np.ndarray, width: float = 0.9) -> dict[str, str]:
    """One SVG path per nucleotide for a (4, L) matrix of signed heights: every glyph of that letter, outlines
    and holes, as closed sub-paths (fill them even-odd). Empty for a letter that never shows."""
    heights = np.asarray(heights, dtype=np.float64)
    top = float(np.abs(heights).sum(0).max()) if heights.size else 0.0
    xd, yd = 3, _decimals(top)
    out: dict[str, list[str]] = {a: [] for a in ALPHABET}
    for pos in range(heights.shape[1]):
        col = heights[:, pos]
        for sign in (1, -1):
            vals = sorted((abs(v), k) for k, v in enumerate(col) if v * sign > 0)  # small first: nearest the axis
            base = 0.0
            for h, k in vals:
                outer, holes = glyph(ALPHABET[k])
                for p in outer + holes:
                    px = pos - width / 2 + p[:, 0] * width
                    py = sign * (base + p[:, 1] * h)
                    out[ALPHABET[k]].append(_subpath(px, py, xd, yd))
                base += h
    return {a: "".join(parts) for a, parts in out.items()}


def _axis_refs(fig: go.Figure, row: int, col: int) -> tuple[str, str]:
    ref = fig.get_subplot(row, col)
    return ref.xaxis.plotly_name.replace("axis", ""), ref.yaxis.plotly_name.replace("axis", "")


def add_logo(fig: go.Figure, heights: np.ndarray, row: int = 1, col: int = 1, positions: np.ndarray | None = None,
             showlegend: bool = True) -> None:
    """Add the logo of ``heights`` (4, L) to a subplot: one even-odd filled path per nucleotide (a layout shape),
    an invisible line through the positions whose hover gives the four values, and with ``showlegend`` a legend
    entry per nucleotide (an empty trace in its colour; a click on it hides or shows that letter, since the
    shapes share its legend group)."""
    heights = np.nan_to_num(np.asarray(heights, dtype=np.float64))
    xref, yref = _axis_refs(fig, row, col)
    for a, path in letter_paths(heights).items():
        if not path:
            continue
        fig.add_shape(type="path", path=path, fillcolor=NUCLEOTIDE_COLOURS[a], fillrule="evenodd",
                      line=dict(width=0), xref=xref, yref=yref, layer="above", name=a, legendgroup=a,
                      showlegend=False)
        if showlegend:
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=a, legendgroup=a, showlegend=True,
                                     marker=dict(symbol="square", size=12, color=NUCLEOTIDE_COLOURS[a]),
                                     hoverinfo="skip"), row=row, col=col)
    total = heights.sum(0)
    # the four values per position travel as one binary (L, 4) array, formatted by the hover template
    template = "position %{x}<br>" + "<br>".join(f"{a}: %{{customdata[{k}]:+.3~g}}" for k, a in enumerate(ALPHABET))
    fig.add_trace(go.Scatter(x=np.arange(heights.shape[1]), y=total.astype(np.float32), mode="lines",
                             line=dict(width=0), name="values", customdata=heights.T.astype(np.float32),
                             hovertemplate=template + "<extra></extra>", showlegend=False), row=row, col=col)


def motif_track(fig: go.Figure, ic: np.ndarray, row: int, col: int = 1) -> None:
    """Information content of the planted PWM per position (bits): where the true motifs are. One path of bars,
    and an invisible line through the positions for the hover."""
    ic = np.nan_to_num(np.asarray(ic, dtype=np.float64))
    xref, yref = _axis_refs(fig, row, col)
    bars = "".join(f"M{p - 0.4:.1f},0V{v:.3f}H{p + 0.4:.1f}V0Z" for p, v in enumerate(ic) if v > 0)
    if bars:
        fig.add_shape(type="path", path=bars, fillcolor=TRACK_COLOUR, line=dict(width=0), xref=xref, yref=yref,
                      layer="above", name="planted motif (bits)", showlegend=False)
    fig.add_trace(go.Scatter(x=np.arange(len(ic)), y=ic.astype(np.float32), mode="lines", line=dict(width=0),
                             name="planted motif (bits)",
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
    # fixed margins instead of plotly's automargin, which measures every tick label and lays the figure out again:
    # half the browser's time to draw a logo figure (105 -> 50 ms); the labels are short numbers and two titles
    fig.update_xaxes(automargin=False)
    fig.update_yaxes(automargin=False)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=0.995, yref="container", xanchor="center", x=0.6),
                      title=dict(x=0, xanchor="left", font=dict(size=15)), margin=dict(l=72, t=70, b=56))
    return fig
