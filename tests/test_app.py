"""Home page and navigation (AppTest, no browser)."""
from app_helpers import no_exception, open_page


def test_home_shows_every_bundled_dataset_as_a_card(app_store):
    from xai_core.data import DATASETS

    at = open_page()
    no_exception(at)
    text = " ".join(m.value for m in at.markdown)
    for name in DATASETS.names():
        assert f"**{name}**" in text
    assert len([b for b in at.button if b.label == "Open"]) == len(DATASETS.names())


def test_open_button_goes_to_the_data_page(app_store):
    at = open_page(dataset=None)
    open_grain = [b for b in at.button if b.key == "open_grain"][0]
    open_grain.click().run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Data & model"]
    # AppTest replays the sidebar widget's old value, so the dataset switch itself is checked in a real
    # browser (tests/test_e2e_browser.py opens grain and dna-motifs-small this way).
