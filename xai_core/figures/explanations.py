"""Side-by-side explanation grids: rows are samples, columns are methods, one shared signed colour scale.

Images: the attribution heatmap over the grey image, the lesion mask outlined. Expression: the top genes of
each map as signed bars with gene names, true biomarkers marked. Sequences: see ``sequence.py``.
"""
from __future__ import annotations

import base64
import io
import re

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


def wrap_name(label: str, width: int = 12) -> str:
    """``wrap`` that may also break after a slash ("CD4+/CD45RA+/CD25- Naive T" has few spaces)."""
    return wrap(label.replace("/", "/ "), width).replace("/ ", "/")


def wrap_row(label: str, width: int = 24) -> str:
    """A row label ("id<br>true: class<br>model: prediction (p)", or "id · rest") with every line wrapped to
    about ``width`` characters."""
    lines = label.split("<br>") if "<br>" in label else label.split(" · ", 1)
    return "<br>".join(wrap_name(line, width) for line in lines)


def wrap(label: str, width: int = 12) -> str:
    """Break a long label onto lines of about ``width`` characters (plotly titles do not wrap)."""
    words = label.split()
    if any(len(w) > width for w in words):  # a long CamelCase word ("EpsilonPlusFlat") breaks before capitals
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label).split()
    lines, cur = [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return "<br>".join(lines + [cur])


# Plain names for the post-processing choices (the names are those of xai_core.explainers' POOLINGS and
# NORMALISATIONS registries; an unknown name is shown as it is).
POOLING_LABELS = {"sum": "sum of channels", "mean": "mean of channels", "max": "largest channel (signed)",
                  "abs": "largest |channel| (magnitude)"}
NORMALISATION_LABELS = {"none": "none (raw values)", "per_map_max": "per map: ÷ its largest |value|",
                        "per_map_p99": "per map: ÷ its 99th percentile",
                        "dataset_max": "all maps: ÷ their largest |value|",
                        "dataset_p99": "all maps: ÷ their 99th percentile"}


def pooling_label(name: str) -> str:
    """The plain name of a channel pooling (``POOLING_LABELS``)."""
    return POOLING_LABELS.get(name, name)


def normalisation_label(name: str) -> str:
    """The plain name of a normalisation (``NORMALISATION_LABELS``)."""
    return NORMALISATION_LABELS.get(name, name)


def map_scale(maps: list[np.ndarray], quantile: float = 1.0) -> tuple[bool, float]:
    """(whether any value is negative, the top of the shared scale): the scale every panel of a grid shares,
    from −top to +top when signed, else from 0 to top."""
    signed = any((np.asarray(m) < 0).any() for m in maps)
    return signed, symmetric_range(*maps, quantile=quantile)


def scale_caption(signed: bool, top: float, *, what: str = "colour", normalisation: str = "none",
                  pooling: str | None = None) -> str:
    """How to read a grid's shared scale, computed from what is drawn (``map_scale``).

    Says which class is explained (each sample's true class: the engine explains the label), what the
    ``what`` (colour or bar length) means for a signed or a magnitude-only scale, its numeric range, and the
    post-processing behind it in plain words."""
    rng = f"{-top:.3g} to {top:.3g}" if signed else f"0 to {top:.3g}"
    towards = {"colour": ("Red pushes", "blue pushes"), "bar length": ("Red bars push", "blue bars push"),
               "letter height": ("Letters above the line push", "letters below it push")
               }.get(what, ("Positive values push", "negative values push"))
    if signed:
        meaning = (f"{towards[0]} towards the explained class, {towards[1]} against it; one {what} scale, "
                   f"centred at zero, from {rng}, shared by every panel.")
    else:
        bigger = {"colour": "brighter", "bar length": "longer", "letter height": "taller"}.get(what, "larger")
        meaning = (f"Every value is ≥ 0 (magnitude only, the sign is dropped): {bigger} = more influence on the "
                   f"explained class, whether for or against it; one {what} scale from {rng}, shared by every panel.")
    post = [f"normalisation: {normalisation_label(normalisation)}"]
    if pooling:
        post.insert(0, f"channel pooling: {pooling_label(pooling)}")
    return (f"The explained class is each sample's **true class** (shown in its row label, beside the model's "
            f"prediction). {meaning} ({'; '.join(post)}.)")


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
    titles = ["input"] + [wrap(m, 10) for m in methods]
    fig = make_subplots(rows=n, cols=cols, horizontal_spacing=0.008, vertical_spacing=0.03 / max(n, 1),
                        column_titles=titles, row_titles=[wrap_row(r) for r in row_labels])
    for i in range(n):
        img = images[i]
        fig.add_trace(go.Image(source=png_uri(to_rgb8(img)), hoverinfo="skip"), row=i + 1, col=1)
        grey = png_uri(np.repeat((_grey(img) * 255).astype(np.uint8)[..., None], 3, -1))
        outline = mask_outline(masks[i]) if masks is not None and masks[i].any() else None
        for j, m in enumerate(methods, start=2):
            fig.add_trace(go.Image(source=grey, hoverinfo="skip"), row=i + 1, col=j)
            # float32 whatever the post-processing returned: 4 bytes a value in the figure (plotly sends arrays
            # in binary), never 8, and no rounding that would flatten maps of small raw values
            fig.add_trace(go.Heatmap(z=np.asarray(maps[m][i], dtype=np.float32), coloraxis="coloraxis",
                                     opacity=opacity, name=m,
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
    lines = max(t.count("<br>") + 1 for t in titles)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0),
                      margin=dict(l=170, r=10, t=44 + 17 * lines, b=30))
    fig.update_annotations(font_size=13 if cols < 7 else 12)
    row_set = {wrap_row(r) for r in row_labels}
    fig.for_each_annotation(lambda a: a.update(textangle=0, x=0, xref="paper", xanchor="right", xshift=-8,
                                               align="right", font_size=12) if a.text in row_set else None)
    return fig


def gene_bars(maps: dict[str, np.ndarray], gene_names: list[str], row_labels: list[str], *, k: int = 15,
              markers: set[int] | None = None, marker_label: str = "true biomarker") -> go.Figure:
    """Top-``k`` genes by |attribution| per (sample, method) as horizontal bars; ``markers`` starred.

    ``maps``: method label -> (N, G). Every panel shares one x range (``map_scale``): −top to +top when a
    value is negative (colour shows the sign), 0 to top when all are magnitudes. Row labels sit at the right,
    horizontal; the marker legend is a note above the columns, clear of their titles.
    """
    methods = list(maps)
    n = len(row_labels)
    markers = markers or set()
    titles = [wrap(m, 22) for m in methods]
    fig = make_subplots(rows=n, cols=len(methods), column_titles=titles, row_titles=[wrap_row(r) for r in row_labels],
                        horizontal_spacing=0.09, vertical_spacing=0.05)
    signed, r = map_scale(list(maps.values()))
    x_range = [-r * 1.05, r * 1.05] if signed else [0, r * 1.05]
    for i in range(n):
        for j, m in enumerate(methods, start=1):
            a = np.asarray(maps[m][i], dtype=np.float64)
            top = np.argsort(-np.abs(a), kind="stable")[:k][::-1]
            names = [("★ " if g in markers else "") + gene_names[g] for g in top]
            fig.add_trace(go.Bar(x=a[top], y=names, orientation="h", name=m, showlegend=False,
                                 marker_color=np.where(a[top] >= 0, "#B2182B", "#2166AC"),
                                 hovertemplate="%{y}<br>attribution %{x:.3g}<extra></extra>"), row=i + 1, col=j)
    fig.update_xaxes(range=x_range)
    fig.update_yaxes(tickfont=dict(size=11))
    fig.update_xaxes(title_text="attribution (red +, blue −)" if signed else "|attribution|", row=n,
                     title_standoff=4)
    style(fig, height=max(320, (22 * k + 70) * n + 90))
    lines = max(t.count("<br>") + 1 for t in titles)
    # margins computed here, not by plotly's automargin: automargin measures every gene label and lays the figure
    # out again, which was two thirds of the browser's time to draw this figure (76 -> 45 ms for 4 samples)
    longest = max((len(t) for tr in fig.data for t in tr.y), default=8)
    fig.update_xaxes(automargin=False)
    fig.update_yaxes(automargin=False)
    fig.update_layout(margin=dict(l=min(320, 16 + int(7.2 * longest)), r=200,
                                  t=40 + 17 * lines + (22 if markers else 0), b=50))
    row_set = {wrap_row(lab) for lab in row_labels}
    fig.for_each_annotation(lambda a: a.update(textangle=0, x=1, xref="paper", xanchor="left", xshift=8,
                                               align="left", font_size=12) if a.text in row_set else None)
    if markers:
        fig.add_annotation(text=f"★ = {marker_label}", xref="paper", yref="paper", x=0, y=1, yanchor="bottom",
                           yshift=17 * lines + 12, showarrow=False, xanchor="left", font=dict(size=13))
    return fig
