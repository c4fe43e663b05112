"""Every page opens without an exception or error box on every small bundled dataset (AppTest, no runs).

The paper-size datasets (hundreds of MB each) are walked in a real browser by
``scripts/sweep_pages.py`` instead; their results are in docs/benchmarks.md.
"""
import pytest

from app_helpers import no_exception, open_page

SMALL = ["simu-small", "pbmc68k", "breast-cancer", "grain", "dna-motifs-small"]
PAGES = ["home", "data_model", "explanations", "gene_rankings", "metrics", "method_ranking", "model_selection", "studies"]


@pytest.mark.parametrize("dataset", SMALL)
def test_every_page_opens(dataset, app_store):
    at = open_page(None, dataset=dataset)
    no_exception(at)
    for page in PAGES:
        at.switch_page(f"views/{page}.py").run()
        no_exception(at)
        assert at.title, f"{page} drew no title on {dataset}"
