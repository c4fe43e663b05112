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


def test_open_button_selects_the_dataset_and_goes_to_data_page(app_store):
    at = open_page()
    open_grain = [b for b in at.button if b.key == "open_grain"][0]
    open_grain.click().run()
    no_exception(at)
    assert at.session_state["dataset"] == "grain"
