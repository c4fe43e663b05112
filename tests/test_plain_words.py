"""Plain words and labelled figures (issue 16): figures legible with 10 classes, downloads named by what they
hold, captions computed from the scale drawn, labels over identifiers, the presentation view."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import ui
from tests.app_helpers import no_exception, open_page, plotly_figures
from xai_core.explain_files import download_name, safe_part
from xai_core.figures import data as dfig
from xai_core.figures.explanations import gene_bars, map_scale, scale_caption, wrap_row
from xai_core.figures.sequence import sequence_logos

CLASSES = ["CD4+/CD25 T Reg", "CD4+/CD45RA+/CD25- Naive T", "CD4+/CD45RO+ Memory", "CD8+ Cytotoxic T",
           "CD8+/CD45RA+ Naive Cytotoxic", "CD14+ Monocyte", "CD19+ B", "CD34+", "CD56+ NK", "Dendritic"]


def test_download_names_say_dataset_model_method_class():
    name = download_name("pbmc68k", "mlp", "integrated_gradients", "CD14+ Monocyte", "top_genes", ext="csv")
    assert name == "pbmc68k__mlp__integrated_gradients__CD14+ Monocyte__top_genes.csv"
    assert "/" not in download_name("pbmc68k", "mlp", None, "CD4+/CD25 T Reg", "x", ext="png")
    assert safe_part('a:b"c') == "a-b-c" and safe_part("") == "x"


def test_csv_carries_what_it_holds():
    df = ui.labelled(pd.DataFrame({"rank": [1], "gene": ["CD14"]}), "pbmc68k", "mlp", cls="CD14+ Monocyte")
    assert list(df.columns[:3]) == ["dataset", "model", "class"] and df["class"].iloc[0] == "CD14+ Monocyte"
    kept = ui.labelled(pd.DataFrame({"method": ["Saliency"]}), "d", "m", method="saliency")
    assert kept["method"].iloc[0] == "Saliency"  # an existing column is never overwritten


def test_confusion_matrix_ten_classes_square_labelled_counted():
    cm = np.arange(100).reshape(10, 10)
    fig = dfig.confusion_matrix(cm, CLASSES)
    assert list(fig.layout.xaxis.ticktext) == CLASSES and list(fig.layout.yaxis.ticktext) == CLASSES
    assert fig.data[0].text[3][7] == "37"  # a count in every cell
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.height >= 480


def test_class_counts_and_heatmap_legible():
    y = np.repeat(np.arange(10), [30, 2, 6, 16, 13, 39, 29, 4, 9, 40])
    split = np.where(np.arange(len(y)) % 3 == 0, "test", "train")
    fig = dfig.class_counts(y, CLASSES, split)
    assert fig.data[0].orientation == "h" and fig.layout.height >= 44 * 10
    heat = dfig.expression_heatmap(np.random.default_rng(0).normal(size=(len(y), 5)), list("ABCDE"), y, CLASSES)
    ticks = [t.replace("<br>", " ") for t in heat.layout.xaxis.ticktext]
    assert len(ticks) == 10 and all(c.split()[-1] in t for c, t in zip(CLASSES, ticks))


def test_caption_follows_the_scale_drawn():
    unsigned = [np.abs(np.random.default_rng(0).normal(size=(2, 8, 8))) * 0.3]
    signed, top = map_scale(unsigned)
    text = scale_caption(signed, top, normalisation="dataset_max", pooling="abs")
    assert not signed and "0 to" in text and "centred at zero" not in text and "true class" in text
    assert "dataset_max" not in text and "largest" in text
    both = scale_caption(*map_scale([np.array([-1.0, 2.0])]), normalisation="none")
    assert "centred at zero" in both and "-2 to 2" in both


def test_panels_share_one_scale_random_included():
    maps = {"Saliency": np.abs(np.random.default_rng(1).normal(size=(2, 30))),
            "Random (control)": 9 * np.abs(np.random.default_rng(2).normal(size=(2, 30)))}
    fig = gene_bars(maps, [f"g{i}" for i in range(30)], ["s1<br>true: a<br>model: a (0.9)", "s2 · b"], k=5)
    ranges = {tuple(ax.range) for name, ax in fig.layout.to_plotly_json().items() if name.startswith("xaxis")
              for ax in [fig.layout[name]]}
    assert len(ranges) == 1 and next(iter(ranges))[0] == 0  # magnitudes: 0 to top, shared
    assert any("true: a" in (a.text or "") for a in fig.layout.annotations)
    logo = sequence_logos([("A", np.ones((4, 20)) * 0.1), ("Random (control)", np.ones((4, 20)))])
    assert logo.layout.yaxis.range == logo.layout.yaxis2.range
    assert wrap_row("id · true class") == "id<br>true class"


@pytest.mark.timeout(900)
def test_pbmc68k_data_page_figures():
    at = open_page("data_model", dataset="pbmc68k")
    no_exception(at)
    figs = plotly_figures(at)
    cm = next(f for f in figs if "Confusion" in str(f["layout"].get("title", "")))
    assert len(cm["layout"]["xaxis"]["ticktext"]) == 10
    assert all(str(t).strip() for row in cm["data"][0]["text"] for t in row)
    assert "true biomarkers" not in " ".join(c.value for c in at.caption)
    labels = [d.label for d in at.get("download_button")]
    assert "PNG image" in labels and "SVG (vector)" in labels


@pytest.mark.timeout(900)
def test_presentation_view_hides_downloads_and_keeps_the_link():
    at = open_page("data_model", dataset="simu-small", present=True)
    no_exception(at)
    assert not at.get("download_button")
    assert at.query_params.get("present") in (["1"], "1")
