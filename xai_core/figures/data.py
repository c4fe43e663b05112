"""Figures of the data and the model: confusion matrix, class counts, sample viewers per modality."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .explanations import mask_outline, png_uri, to_rgb8
from .theme import QUALITATIVE, SEQUENTIAL, style


def confusion_matrix(cm: np.ndarray, class_names: list[str]) -> go.Figure:
    """Counts with row percentages (true class rows, predicted columns)."""
    cm = np.asarray(cm)
    pct = cm / np.maximum(cm.sum(1, keepdims=True), 1) * 100
    text = [[f"{cm[i, j]}<br>{pct[i, j]:.0f}%" for j in range(cm.shape[1])] for i in range(cm.shape[0])]
    fig = go.Figure(go.Heatmap(z=pct, x=class_names, y=class_names, text=text, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=100, colorbar=dict(title="% of true class"),
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return style(fig, title="Confusion matrix (test set)", x="predicted class", y="true class",
                 height=max(320, 60 * len(class_names) + 160))


def class_counts(y: np.ndarray, class_names: list[str], split_of: np.ndarray) -> go.Figure:
    """Samples per class and split (``split_of``: 'train'/'test' per sample)."""
    fig = go.Figure()
    for k, split in enumerate(("train", "test")):
        sel = split_of == split
        counts = np.bincount(y[sel], minlength=len(class_names))
        fig.add_trace(go.Bar(x=class_names, y=counts, name=split, marker_color=QUALITATIVE[k]))
    fig.update_layout(barmode="group")
    return style(fig, title="Samples per class", x="class", y="samples", height=320)


def image_samples(images: np.ndarray, labels: list[str], masks: np.ndarray | None = None, cols: int = 4) -> go.Figure:
    """A grid of images (N, C, H, W) titled by ``labels``; lesion masks outlined in yellow when given."""
    n = len(images)
    rows = int(np.ceil(n / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=labels, horizontal_spacing=0.02, vertical_spacing=0.08)
    for i, img in enumerate(images):
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(go.Image(source=png_uri(to_rgb8(img)), hoverinfo="skip"), row=r, col=c)
        if masks is not None and masks[i].any():
            xs, ys = mask_outline(masks[i])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#F0E442", width=2),
                                     name="lesion mask", showlegend=i == 0, hoverinfo="skip"), row=r, col=c)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    style(fig, height=230 * rows + 60)
    fig.update_annotations(font_size=12)
    return fig


def embedding_scatter(coords: np.ndarray, y: np.ndarray, class_names: list[str], method: str,
                      hover: list[str] | None = None) -> go.Figure:
    fig = go.Figure()
    for c, name in enumerate(class_names):
        sel = y == c
        fig.add_trace(go.Scattergl(x=coords[sel, 0], y=coords[sel, 1], mode="markers", name=name,
                                   marker=dict(size=5, color=QUALITATIVE[c % len(QUALITATIVE)], opacity=0.75),
                                   text=None if hover is None else [hover[i] for i in np.flatnonzero(sel)],
                                   hovertemplate="%{text}<extra>" + name + "</extra>" if hover else None))
    label = method.upper()
    return style(fig, title=f"{label} of the samples, coloured by class", x=f"{label} 1", y=f"{label} 2", height=480)


def expression_heatmap(values: np.ndarray, gene_names: list[str], y: np.ndarray, class_names: list[str]) -> go.Figure:
    """Samples (columns, sorted by class) x genes (rows): standardised expression of the most variable genes."""
    order = np.argsort(y, kind="stable")
    v = values[order].T
    ticks = [class_names[c] for c in y[order]]
    fig = go.Figure(go.Heatmap(z=v, y=gene_names, x=np.arange(v.shape[1]), colorscale=SEQUENTIAL,
                               colorbar=dict(title="expression<br>(standardised)"),
                               customdata=np.array([ticks] * v.shape[0]),
                               hovertemplate="gene %{y}<br>sample %{x} (%{customdata})<br>value %{z:.2f}"
                                             "<extra></extra>"))
    bounds = np.flatnonzero(np.diff(y[order])) + 0.5
    for b in bounds:
        fig.add_vline(x=b, line_color="white", line_width=2)
    return style(fig, title="Most variable genes across samples (sorted by class)", x="samples (sorted by class)",
                 y="gene", height=max(420, 14 * len(gene_names) + 120))
