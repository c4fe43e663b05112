"""Side-by-side explanation grids: rows are samples, columns are methods, one shared signed colour scale.

Images: the attribution heatmap over the grey image, the lesion mask outlined. Expression: the top genes of
each map as signed bars with gene names, true biomarkers marked. Sequences: see ``sequence.py``.
"""
from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots
from skimage.measure import find_contours

from .theme import DIVERGING, SEQUENTIAL, style, symmetric_range


def mask_outline(mask: np.ndarray, decimals: int | None = None) -> tuple[list, list]:
    """Contour of a boolean mask as x/y lists separated by None (pixel coordinates, rounded to ``decimals``
    when given: a smaller figure)."""
    xs, ys = [], []
    for c in find_contours(mask.astype(float), 0.5):
        if decimals is not None:
            c = c.round(decimals)
        xs.extend(c[:, 1].tolist() + [None])
        ys.extend(c[:, 0].tolist() + [None])
    return xs, ys


def png_uri(rgb: np.ndarray) -> str:
    """An (H, W, 3) uint8 picture as a PNG data URI: a few kB in the figure instead of H·W numbers of JSON."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def to_rgb8(img: np.ndarray) -> np.ndarray:
    """(C, H, W) image of any range -> (H, W, 3) uint8 (grey images repeated over 3 channels)."""
    rgb = np.moveaxis(img, 0, -1) if img.shape[0] == 3 else np.repeat(_grey(img)[..., None], 3, -1)
    lo, hi = float(rgb.min()), float(rgb.max())
    return ((rgb - lo) / (hi - lo if hi > lo else 1) * 255).astype(np.uint8)


def _grey(image: np.ndarray) -> np.ndarray:
    """(C, H, W) image in [any range] -> (H, W) grey in [0, 1]."""
    g = image.mean(0) if image.ndim == 3 else image
    lo, hi = float(g.min()), float(g.max())
    return (g - lo) / (hi - lo) if hi > lo else np.zeros_like(g)


def wrap(label: str, width: int = 12) -> str:
    """Break a long label onto lines of about ``width`` characters (plotly titles do not wrap)."""
    words, lines, cur = label.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return "<br>".join(lines + [cur])


def _colour_axis(maps: list[np.ndarray], signed: bool, quantile: float) -> dict:
    r = symmetric_range(*maps, quantile=quantile)
    if signed:
        return dict(colorscale=DIVERGING, cmin=-r, cmax=r, cmid=0.0)
    return dict(colorscale=SEQUENTIAL, cmin=0.0, cmax=r)


def image_grid(images: np.ndarray, maps: dict[str, np.ndarray], row_labels: list[str], *,
               masks: np.ndarray | None = None, opacity: float = 0.7, quantile: float = 0.99,
               colour_label: str = "attribution") -> go.Figure:
    """``images`` (N, C, H, W); ``maps`` method label -> (N, H, W) pooled maps; masks (N, H, W) bool or None."""
    methods = list(maps)
    n, cols = len(images), 1 + len(methods)
    signed = any((m < 0).any() for m in maps.values())
    fig = make_subplots(rows=n, cols=cols, horizontal_spacing=0.008, vertical_spacing=0.03 / max(n, 1),
                        column_titles=["input"] + [wrap(m) for m in methods], row_titles=row_labels)
    for i in range(n):
        img = images[i]
        fig.add_trace(go.Image(source=png_uri(to_rgb8(img)), hoverinfo="skip"), row=i + 1, col=1)
        grey = png_uri(np.repeat((_grey(img) * 255).astype(np.uint8)[..., None], 3, -1))
        outline = mask_outline(masks[i]) if masks is not None and masks[i].any() else None
        for j, m in enumerate(methods, start=2):
            fig.add_trace(go.Image(source=grey, hoverinfo="skip"), row=i + 1, col=j)
            fig.add_trace(go.Heatmap(z=np.round(maps[m][i], 4), coloraxis="coloraxis", opacity=opacity, name=m,
                                     hovertemplate=f"{m}<br>x %{{x}}, y %{{y}}<br>{colour_label} %{{z:.3g}}"
                                                   "<extra></extra>"),
                          row=i + 1, col=j)
            if outline is not None:
                fig.add_trace(go.Scatter(x=outline[0], y=outline[1], mode="lines", line=dict(color="black", width=2),
                                         name="lesion mask (ground truth)", showlegend=(i == 0 and j == 2),
                                         hoverinfo="skip"),
                              row=i + 1, col=j)
        if outline is not None:
            fig.add_trace(go.Scatter(x=outline[0], y=outline[1], mode="lines", line=dict(color="#F0E442", width=2),
                                     showlegend=False, hoverinfo="skip"), row=i + 1, col=1)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    for k in range(1, n * cols + 1):  # every cell square and in image orientation
        fig.update_yaxes(scaleanchor=f"x{k if k > 1 else ''}", row=(k - 1) // cols + 1, col=(k - 1) % cols + 1)
    ca = _colour_axis(list(maps.values()), signed, quantile)
    fig.update_layout(coloraxis=dict(colorbar=dict(title=colour_label), **ca))
    style(fig, height=int(110 + n * max(110, 880 / cols)), legend=True)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0),
                      margin=dict(l=10, r=10, t=70, b=30))
    fig.update_annotations(font_size=13)
    return fig


def gene_bars(maps: dict[str, np.ndarray], gene_names: list[str], row_labels: list[str], *, k: int = 15,
              markers: set[int] | None = None, marker_label: str = "true biomarker") -> go.Figure:
    """Top-``k`` genes by |attribution| per (sample, method) as signed horizontal bars; ``markers`` starred.

    ``maps``: method label -> (N, G). Bars share one symmetric x range; colour shows the sign.
    """
    methods = list(maps)
    n = len(row_labels)
    markers = markers or set()
    fig = make_subplots(rows=n, cols=len(methods), column_titles=methods, row_titles=row_labels,
                        horizontal_spacing=0.09, vertical_spacing=0.04)
    r = symmetric_range(*maps.values())
    for i in range(n):
        for j, m in enumerate(methods, start=1):
            a = np.asarray(maps[m][i], dtype=np.float64)
            top = np.argsort(-np.abs(a), kind="stable")[:k][::-1]
            names = [("★ " if g in markers else "") + gene_names[g] for g in top]
            fig.add_trace(go.Bar(x=a[top], y=names, orientation="h", name=m, showlegend=False,
                                 marker_color=np.where(a[top] >= 0, "#B2182B", "#2166AC"),
                                 hovertemplate="%{y}<br>attribution %{x:.3g}<extra></extra>"), row=i + 1, col=j)
            fig.update_xaxes(range=[-r * 1.05, r * 1.05], row=i + 1, col=j)
    fig.update_yaxes(tickfont=dict(size=11))
    fig.update_xaxes(title_text="attribution (red +, blue −)", row=n)
    note = f"★ = {marker_label}" if markers else None
    style(fig, height=max(320, (22 * k + 60) * n + 60), title=note)
    return fig
