"""One look for every figure: projector-legible fonts, colour-blind-safe palettes, a shared signed scale."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

# Diverging, colour-blind safe (blue = negative, white = 0, red = positive; ColorBrewer RdBu).
DIVERGING = "RdBu_r"
SEQUENTIAL = "Viridis"
# Okabe–Ito, distinguishable with every common colour-vision deficiency.
QUALITATIVE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
NUCLEOTIDE_COLOURS = {"A": "#009E73", "C": "#0072B2", "G": "#E69F00", "T": "#D55E00"}
FONT_SIZE = 15


def style(fig: go.Figure, *, title: str | None = None, height: int | None = None,
          x: str | None = None, y: str | None = None, legend: bool | None = None) -> go.Figure:
    """Apply the house style; ``x``/``y`` label the axes (give units where there are any)."""
    fig.update_layout(template="plotly_white", font=dict(size=FONT_SIZE), colorway=QUALITATIVE,
                      margin=dict(l=60, r=20, t=60 if title else 30, b=50), title=title,
                      title_font=dict(size=FONT_SIZE + 3))
    if height:
        fig.update_layout(height=height)
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    if legend is not None:
        fig.update_layout(showlegend=legend)
    return fig


def symmetric_range(*arrays: np.ndarray, quantile: float = 1.0) -> float:
    """Half-width of the shared colour scale: max |value| (or its ``quantile``) over all maps, never 0."""
    vals = np.concatenate([np.abs(np.asarray(a, dtype=np.float64)).ravel() for a in arrays]) if arrays else np.zeros(1)
    vals = vals[np.isfinite(vals)]
    m = float(np.quantile(vals, quantile)) if len(vals) else 0.0
    return m if m > 0 else 1.0
