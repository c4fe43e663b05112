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


# -- the first opening after a start says why it waits, with durations measured on this machine ------------------
def test_first_load_timings_round_trip_and_words(tmp_path):
    from dashboard import first_load

    assert first_load.measured(tmp_path, first_load.ENGINE) is None
    assert "not measured on this machine yet" in first_load.engine_message(None)
    first_load.record(tmp_path, first_load.ENGINE, 13.4)
    entry = first_load.measured(tmp_path, first_load.ENGINE)
    assert entry["seconds"] == 13.4
    msg = first_load.engine_message(entry)
    assert "torch, captum, zennit" in msg and "about 13 s here last time" in msg
    first_load.timings_path(tmp_path).write_text("not json")  # a damaged file is no estimate, never an error
    assert first_load.measured(tmp_path, first_load.ENGINE) is None
    first_load.record(tmp_path, "x", 1.0)
    assert first_load.measured(tmp_path, "x")["seconds"] == 1.0


def test_engine_import_is_timed_once_per_process(tmp_path, monkeypatch):
    from dashboard import first_load

    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path))
    monkeypatch.setattr(first_load, "_engine_loaded", False)
    first_load.load_engine()
    entry = first_load.measured(tmp_path, first_load.ENGINE)
    assert entry is not None and entry["seconds"] >= 0
    first_load.record(tmp_path, first_load.ENGINE, 99.0)
    first_load.load_engine()  # loaded already: nothing imported, nothing timed
    assert first_load.measured(tmp_path, first_load.ENGINE)["seconds"] == 99.0


def test_first_opening_of_a_dataset_is_measured_and_later_runs_are_not(app_store):
    from dashboard import first_load, state
    from xai_core.data import cache_dir

    at = open_page("explanations", dataset="simu-small")
    no_exception(at)
    model = state.model_choices("simu-small")[0]
    key = f"open: simu-small / {state.model_label(model)}"
    first = first_load.measured(cache_dir(), key)
    assert first is not None
    first_load.record(cache_dir(), key, 1234.0)
    at.run()  # a rerun: the model is loaded already, so nothing is timed
    no_exception(at)
    assert first_load.measured(cache_dir(), key)["seconds"] == 1234.0
    assert "1234" not in " ".join(str(i.value) for i in at.info)  # the message is gone once loaded
    first_load.record(cache_dir(), key, first["seconds"])
