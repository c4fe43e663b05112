"""Study figures drawn from a study's ``results.json`` (pure plotly, no streamlit): one builder per figure kind.

``BUILDERS[kind](data, title=...)`` takes the figure's ``data`` as laid out in ``xai_core.studies.base`` and
returns a plotly figure; ``build(entry)`` does it for one entry of ``StudyResult.figures``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import theme
from .explanations import mask_outline, png_uri, wrap
from .sequence import sequence_logos


def _f(values) -> np.ndarray:
    """Numbers with None (JSON's NaN) as NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _colour(i: int) -> str:
    return theme.QUALITATIVE[i % len(theme.QUALITATIVE)]


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


def _title(title: str | None) -> str | None:
    return wrap(title, 90) if title and len(title) > 90 else title


def _top_legend(fig: go.Figure) -> None:
    """The legend in one row (or more) between the title and the plot, so a long title never runs into it."""
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0),
                      title=dict(y=0.98, yanchor="top"))
    if fig.layout.showlegend:
        fig.update_layout(margin=dict(t=90))


def _series(data: dict[str, Any]) -> dict[str, np.ndarray]:
    """The series with at least one number (a paper without numbers for a quick run adds no empty bars)."""
    out = {str(k): _f(v) for k, v in (data.get("series") or {}).items()}
    return {k: v for k, v in out.items() if np.isfinite(v).any()}


def bar(data: dict[str, Any], title: str | None = None) -> go.Figure:
    """Grouped bars, one colour per series, with error bars where ``error`` gives them."""
    x = [str(v) for v in data.get("x", [])]
    errors = data.get("error") or {}
    fig = go.Figure()
    for i, (name, ys) in enumerate(_series(data).items()):
        err = errors.get(name)
        fig.add_trace(go.Bar(
            x=x, y=ys, name=name, marker_color=_colour(i),
            error_y=dict(type="data", array=_f(err), visible=True, color="#333") if err is not None else None,
            hovertemplate=f"{name}<br>%{{x}}: %{{y:.3g}}" + (" ± %{error_y.array:.2g}" if err is not None else "")
                          + "<extra></extra>"))
    fig.update_layout(barmode="group", bargap=0.25)
    theme.style(fig, title=_title(title), height=460, x=data.get("x_title", ""), y=data.get("y_title", ""),
                legend=len(fig.data) > 1)
    _top_legend(fig)
    return fig


def _highlighted(data: dict[str, Any], n: int) -> np.ndarray:
    """``highlight``: one flag per point, or the labels of the points to highlight."""
    h = data.get("highlight")
    if not h:
        return np.zeros(n, bool)
    if len(h) == n and all(isinstance(v, (bool, int)) or v is None for v in h):
        return np.array([bool(v) for v in h])
    wanted = {str(v) for v in h}
    return np.array([str(lab) in wanted for lab in data.get("label", [""] * n)])


def scatter(data: dict[str, Any], title: str | None = None) -> go.Figure:
    """Points (one colour per ``group``) with their labels on hover; highlighted points larger and labelled;
    an optional fitted ``line``."""
    x, y = _f(data.get("x", [])), _f(data.get("y", []))
    n = len(x)
    labels = [str(v) for v in data.get("label") or [""] * n]
    groups = [str(g) for g in data.get("group") or [""] * n]
    hi = _highlighted(data, n)
    xt, yt = data.get("x_title", "x"), data.get("y_title", "y")
    hover = f"<b>%{{text}}</b><br>{xt}: %{{x:.3g}}<br>{yt}: %{{y:.3g}}<extra>%{{fullData.name}}</extra>"
    fig = go.Figure()
    for i, g in enumerate(dict.fromkeys(groups)):
        idx = np.array([k for k in range(n) if groups[k] == g], dtype=int)
        fig.add_trace(go.Scatter(x=x[idx], y=y[idx], mode="markers", name=g or "points", text=[labels[k] for k in idx],
                                 marker=dict(size=9, color=_colour(i), opacity=0.8, line=dict(width=0.5, color="#333")),
                                 hovertemplate=hover))
    if hi.any():
        idx = np.flatnonzero(hi)
        fig.add_trace(go.Scatter(x=x[idx], y=y[idx], mode="markers+text", name="highlighted",
                                 text=[labels[k] for k in idx], textposition="top center", textfont=dict(size=12),
                                 marker=dict(size=15, symbol="diamond", color="rgba(0,0,0,0)",
                                             line=dict(width=2, color="#000")),
                                 hovertemplate=hover))
    line = data.get("line")
    if line:
        pts = np.array([[np.nan if v is None else v for v in p] for p in line], dtype=np.float64)
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="lines", name=data.get("line_name", "fit"),
                                 line=dict(color="#555", dash="dash", width=2), hoverinfo="skip"))
    theme.style(fig, title=_title(title), height=500, x=xt, y=yt, legend=len(fig.data) > 1)
    _top_legend(fig)
    return fig


def line(data: dict[str, Any], title: str | None = None) -> go.Figure:
    """One line per series, with a shaded [low, high] band where ``band`` gives one."""
    x = data.get("x", [])
    bands = data.get("band") or {}
    fig = go.Figure()
    series = _series(data)
    for i, (name, ys) in enumerate(series.items()):
        c = _colour(i)
        if bands.get(name):
            lo, hi = _f(bands[name][0]), _f(bands[name][1])
            fig.add_trace(go.Scatter(x=x, y=hi, mode="lines", line=dict(width=0), showlegend=False,
                                     legendgroup=name, hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=x, y=lo, mode="lines", line=dict(width=0), fill="tonexty",
                                     fillcolor=_rgba(c, 0.2), showlegend=False, legendgroup=name, hoverinfo="skip",
                                     name=f"{name} band"))
        fig.add_trace(go.Scatter(x=x, y=ys, mode="lines+markers", name=name, legendgroup=name,
                                 line=dict(color=c, width=2.5), marker=dict(size=6),
                                 hovertemplate=f"{name}<br>%{{x}}: %{{y:.3g}}<extra></extra>"))
    theme.style(fig, title=_title(title), height=460, x=data.get("x_title", ""), y=data.get("y_title", ""),
                legend=len(series) > 1)
    _top_legend(fig)
    return fig


def heatmap(data: dict[str, Any], title: str | None = None) -> go.Figure:
    """A labelled matrix; diverging colours centred on 0 when it has negative values, else sequential."""
    z = np.array([[np.nan if v is None else v for v in row] for row in data.get("z", [])], dtype=np.float64)
    x = [str(v) for v in data.get("x", range(z.shape[1] if z.ndim == 2 else 0))]
    y = [str(v) for v in data.get("y", range(len(z)))]
    finite = z[np.isfinite(z)]
    if finite.size and finite.min() < 0:
        r = theme.symmetric_range(finite)
        colours = dict(colorscale=theme.DIVERGING, zmin=-r, zmax=r, zmid=0)
    else:
        colours = dict(colorscale=theme.SEQUENTIAL)
    small = z.size and z.shape[0] <= 15 and z.shape[1] <= 15
    text = [[f"{v:.2g}" if np.isfinite(v) else "" for v in row] for row in z] if small else None
    label = data.get("z_title") or data.get("colorbar") or ""
    fig = go.Figure(go.Heatmap(z=z, x=x, y=y, text=text, texttemplate="%{text}" if small else None, **colours,
                               colorbar=dict(title=dict(text=label, side="right")),
                               hovertemplate="%{y}<br>%{x}<br>%{z:.3g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-35 if max((len(s) for s in x), default=0) > 6 else 0)
    return theme.style(fig, title=_title(title or data.get("title")), height=max(360, 140 + 30 * len(y)),
                       x=data.get("x_title", ""), y=data.get("y_title", ""))


def _grey_png(z: np.ndarray) -> str:
    g = np.nan_to_num(z)
    lo, hi = float(g.min()), float(g.max())
    g8 = ((g - lo) / (hi - lo if hi > lo else 1) * 255).astype(np.uint8)
    return png_uri(np.repeat(g8[..., None], 3, -1))


def images(data: dict[str, Any], title: str | None = None) -> go.Figure:
    """A grid of panels: images in grey, attribution maps in red (+) / blue (−) on a symmetric scale (one
    shared scale when the maps' magnitudes are alike, else one per map), a mask ``outline`` drawn on top."""
    panels = data.get("panels") or []
    n = max(len(panels), 1)
    cols = int(data.get("cols") or min(n, 5))
    rows = -(-n // cols)
    zs = [np.array([[np.nan if v is None else v for v in r] for r in p.get("z", [])], dtype=np.float64)
          for p in panels]
    maps = [z for z, p in zip(zs, panels) if p.get("kind", "map") == "map"]
    ranges = [theme.symmetric_range(z, quantile=0.99) for z in maps]
    shared = bool(ranges) and max(ranges) / min(ranges) <= 10
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.01, vertical_spacing=0.08 / rows,
                        subplot_titles=[wrap(str(p.get("title", "")), 22) for p in panels])
    first_map = next((k for k, p in enumerate(panels) if p.get("kind", "map") == "map"), None)
    legend_done = False
    for k, (p, z) in enumerate(zip(panels, zs)):
        r, c = k // cols + 1, k % cols + 1
        if p.get("kind", "map") == "image":
            fig.add_trace(go.Image(source=_grey_png(z), hoverinfo="skip"), row=r, col=c)
        else:
            lim = max(ranges) if shared else theme.symmetric_range(z, quantile=0.99)
            fig.add_trace(go.Heatmap(z=np.round(z, 5), zmin=-lim, zmax=lim, zmid=0, colorscale=theme.DIVERGING,
                                     showscale=shared and k == first_map,
                                     colorbar=dict(title=dict(text="attribution", side="right"), len=0.8),
                                     name=str(p.get("title", "")),
                                     hovertemplate="x %{x}, y %{y}<br>%{z:.3g}<extra>%{fullData.name}</extra>"),
                          row=r, col=c)
        if p.get("outline") is not None:
            m = np.asarray(p["outline"], dtype=float) > 0
            if m.any():
                ox, oy = mask_outline(m, decimals=2)
                fig.add_trace(go.Scatter(x=ox, y=oy, mode="lines", hoverinfo="skip", name="mask (ground truth)",
                                         line=dict(color="#F0E442" if p.get("kind") == "image" else "black", width=2),
                                         showlegend=not legend_done), row=r, col=c)
                legend_done = True
    fig.update_xaxes(visible=False, constrain="domain")
    for k in range(1, rows * cols + 1):  # square cells in image orientation (row 0 at the top)
        fig.update_yaxes(visible=False, autorange="reversed", constrain="domain", scaleanchor=f"x{k if k > 1 else ''}",
                         row=(k - 1) // cols + 1, col=(k - 1) % cols + 1)
    theme.style(fig, title=_title(title), height=int(90 + rows * max(150, 1000 / cols)), legend=legend_done)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0),
                      margin=dict(l=10, r=90 if shared else 10, t=80 if title else 50, b=30))
    fig.update_annotations(font_size=13)
    if maps and not shared:
        fig.add_annotation(text="each map on its own symmetric scale (red +, blue −)", showarrow=False,
                           xref="paper", yref="paper", x=1, y=-0.02, xanchor="right", yanchor="top",
                           font=dict(size=12, color="#555"))
    return fig


def logos(data: dict[str, Any], title: str | None = None) -> go.Figure:
    """One sequence logo per map ((L, 4) per position A, C, G, T) above the planted motifs' information."""
    blocks = []
    for name, m in (data.get("maps") or {}).items():
        a = np.array([[np.nan if v is None else v for v in r] for r in m], dtype=np.float64)
        blocks.append((str(name), a.T if a.ndim == 2 and a.shape[1] == 4 else a))
    ic = data.get("pwm_ic")
    ic = _f(ic) if ic else None
    return sequence_logos(blocks, ic, title=_title(title), y_label=data.get("y_title", "attribution"))


BUILDERS = {"bar": bar, "scatter": scatter, "line": line, "heatmap": heatmap, "images": images, "logos": logos}


def build(entry: dict[str, Any]) -> go.Figure:
    """The figure of one ``StudyResult.figures`` entry."""
    kind = entry.get("kind")
    if kind not in BUILDERS:
        raise ValueError(f"figure '{entry.get('name')}' has kind '{kind}'; known kinds: {', '.join(BUILDERS)}")
    return BUILDERS[kind](entry.get("data") or {}, title=entry.get("title"))
