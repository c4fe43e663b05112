"""The home page renders the dataset catalogue without exceptions (AppTest, no browser)."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def test_home_lists_every_bundled_dataset():
    from xai_core.data import DATASETS

    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["name"]) == set(DATASETS.names())
    assert set(table["modality"]) == {"expression", "image", "sequence"}
