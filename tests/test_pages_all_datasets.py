"""Every page opens without an exception or error box on every small bundled dataset (AppTest, no runs).

The paper-size datasets (hundreds of MB each) are walked in a real browser by
``scripts/sweep_pages.py`` instead; their results are in docs/benchmarks.md.
"""
import pytest
from app_helpers import no_exception, open_page

from dashboard import pages

SMALL = ["simu-small", "pbmc68k", "breast-cancer", "grain", "dna-motifs-small"]
# every page but the two that take the user's files (their own tests: test_page_add_data.py, test_page_add_model.py)
PAGES = pages.of_kind(pages.HOME, pages.DATASET, pages.STUDIES)


@pytest.mark.parametrize("dataset", SMALL)
def test_every_page_opens(dataset, app_store):
    at = open_page(None, dataset=dataset)
    no_exception(at)
    for page in PAGES:
        at.switch_page(page.file).run()
        no_exception(at)
        assert at.title, f"{page.slug} drew no title on {dataset}"
