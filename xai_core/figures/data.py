"""Figures of the data and the model: confusion matrix, class counts, sample viewers per modality."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .explanations import mask_outline, png_uri, to_rgb8, wrap_name
from .theme import QUALITATIVE, SEQUENTIAL, style


def confusion_matrix(cm: np.ndarray, class_names: list[str]) -> go.Figure:
    """Counts with row percentages (true class rows, predicted columns); square cells, every label and count shown.

    With many classes the cell text is the count only (the row percentage is in the hover and the colour), and
    long class names are wrapped so all of them stay on the axes.
    """
    cm = np.asarray(cm)
    n = len(class_names)
    pct = cm / np.maximum(cm.sum(1, keepdims=True), 1) * 100
    many = n > 6
    text = [[f"{cm[i, j]}" if many else f"{cm[i, j]}<br>{pct[i, j]:.0f}%" for j in range(cm.shape[1])]
            for i in range(cm.shape[0])]
    labels = list(class_names)
    cell = 48 if many else 80
    side = max(300, cell * n)
    fig = go.Figure(go.Heatmap(z=pct, x=labels, y=labels, text=text, texttemplate="%{text}",
                               textfont=dict(size=11 if n > 8 else 13), colorscale="Blues", zmin=0, zmax=100,
                               xgap=1, ygap=1, colorbar=dict(title="% of<br>true class", thickness=14),
                               customdata=np.round(pct, 1),
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{text} samples "
                                             "(%{customdata}% of the true class)<extra></extra>"))
    fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=labels, ticktext=labels, scaleanchor="x",
                     constrain="domain", tickfont=dict(size=11 if n > 8 else 13))
    # few classes: horizontal labels, wrapped so two long names ("background grammar") do not run together
    fig.update_xaxes(tickmode="array", tickvals=labels,
                     ticktext=labels if n > 4 else [wrap_name(v) for v in labels], tickangle=-45 if n > 4 else 0,
                     constrain="domain", tickfont=dict(size=11 if n > 8 else 13))
    style(fig, title="Confusion matrix (test set)", x="predicted class", y="true class",
          height=side + (220 if n > 4 else 160))
    fig.update_layout(margin=dict(l=40, r=20, t=60, b=40))
    return fig


def class_counts(y: np.ndarray, class_names: list[str], split_of: np.ndarray) -> go.Figure:
    """Samples per class and split (``split_of``: 'train'/'test' per sample): horizontal bars, so long class
    names stay readable and the chart grows with the number of classes."""
    fig = go.Figure()
    labels = list(class_names)
    for k, split in enumerate(("train", "test")):
        sel = split_of == split
        counts = np.bincount(y[sel], minlength=len(class_names))
        fig.add_trace(go.Bar(y=labels, x=counts, name=split, orientation="h", marker_color=QUALITATIVE[k],
                             text=counts, textposition="outside", cliponaxis=False,
                             hovertemplate="%{y}<br>" + split + ": %{x} samples<extra></extra>"))
    fig.update_layout(barmode="group", legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    fig.update_yaxes(autorange="reversed", automargin=True)
    return style(fig, title="Samples per class", x="samples", y=None,
                 height=max(320, 44 * len(class_names) + 140))


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
    """Samples (columns, grouped by class) x genes (rows): standardised expression of the most variable genes.

    Each class's block of columns is labelled with its name on the x axis and separated by a white line."""
    order = np.argsort(y, kind="stable")
    v = values[order].T
    ys = y[order]
    present = np.unique(ys)
    block = {c: k for k, c in enumerate(present)}
    # every class gets a block of the same width (a class with 3 samples stays as visible as one with 40)
    rank = np.concatenate([np.arange((ys == c).sum()) for c in present])
    size = np.array([(ys == c).sum() for c in ys])
    xs = np.array([block[c] for c in ys]) + (rank + 0.5) / size
    ticks = [class_names[c] for c in ys]
    fig = go.Figure(go.Heatmap(z=v, y=gene_names, x=xs, colorscale=SEQUENTIAL,
                               colorbar=dict(title="expression<br>(standardised)"),
                               customdata=np.array([ticks] * v.shape[0]),
                               hovertemplate="gene %{y}<br>%{customdata}<br>value %{z:.2f}<extra></extra>"))
    for b in range(1, len(present)):
        fig.add_vline(x=b, line_color="white", line_width=3)
    n = len(present)
    fig.update_xaxes(tickmode="array", tickvals=[k + 0.5 for k in range(n)], range=[0, n],
                     ticktext=[wrap_name(f"{class_names[c]} (n={int((ys == c).sum())})", 10) for c in present],
                     tickangle=0 if n <= 12 else -90, tickfont=dict(size=11), showgrid=False)
    fig.update_yaxes(tickfont=dict(size=11))
    return style(fig, title="Most variable genes across samples (one equal-width block per class)", x=None,
                 y="gene", height=max(420, 14 * len(gene_names) + (200 if n > 4 else 120)))
