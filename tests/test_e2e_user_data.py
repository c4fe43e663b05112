"""Your own data in a real browser (Debian chromium + Playwright against `streamlit run app.py`, see
tests/e2e.py): a small CSV by its path and a small image folder as a .zip upload go through the Add your
data page (detected format, preview, a short training), then Explanations draws a heatmap on the images.

Runs on a private cache folder; skipped when chromium is missing outside CI, like test_e2e_browser.py.
Screenshots go to $XAI_SCREENSHOTS when set, otherwise to the test's temporary folder.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests import e2e

pytestmark = pytest.mark.skipif(e2e.chromium_path() is None and os.environ.get("CI") != "true",
                                reason="Debian chromium is not installed (apt-get install chromium); CI installs it")

FIG = ".st-key-fig_x_fig_0"


def write_csv(path: Path, n: int = 60, genes: int = 12) -> Path:
    rng = np.random.default_rng(0)
    y = np.array(["A", "B"] * (n // 2))
    X = rng.normal(size=(n, genes))
    X[y == "B", :3] += 3.0
    rows = ["id,label," + ",".join(f"G{j}" for j in range(genes))]
    rows += [f"cell{i},{y[i]}," + ",".join(f"{v:.3f}" for v in X[i]) for i in range(n)]
    path.write_text("\n".join(rows) + "\n")
    return path


def write_image_zip(folder: Path, per_class: int = 12, size: int = 32) -> Path:
    """A folder ``leaves/{healthy,spotted}/*.png`` (spotted ones have a bright square), zipped."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = folder / "leaves"
    for c in ("healthy", "spotted"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            a = (rng.random((size, size, 3)) * 90).astype("uint8")
            if c == "spotted":
                r, q = rng.integers(4, size - 12, 2)
                a[r:r + 8, q:q + 8] = 250
            Image.fromarray(a).save(root / c / f"{c}_{i}.png")
    out = folder / "leaves.zip"
    with zipfile.ZipFile(out, "w") as z:
        for p in sorted(root.rglob("*.png")):
            z.write(p, p.relative_to(folder))
    return out


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = Path(os.environ.get("XAI_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e_user")
    with e2e.server(d / "results.sqlite", env={"XAI_CORE_CACHE": str(d / "cache")}) as url, e2e.browser() as p:
        p.goto(f"{url}/add_data")
        e2e.wait_page(p, "Add your data")
        yield p


def _clean(page) -> None:
    assert e2e.exceptions(page) == []
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.all_inner_texts()


def _import_and_train(page, name: str, epochs: int | None = None) -> None:
    page.wait_for_selector(".st-key-ad_import button:not([disabled])")
    page.locator(".st-key-ad_name input").fill(name)
    page.keyboard.press("Enter")
    e2e.wait_idle(page)
    e2e.click_key(page, "ad_import")
    page.wait_for_selector(f'h3:has-text("Preview: {name}")')
    e2e.wait_idle(page)
    _clean(page)
    if epochs:
        page.locator(".st-key-ad_epochs input").fill(str(epochs))
        page.keyboard.press("Enter")
        e2e.wait_idle(page)
    e2e.click_key(page, "ad_train")
    page.wait_for_selector('[data-testid="stAlertContentSuccess"]:has-text("test accuracy")', timeout=300_000)
    e2e.wait_idle(page)
    _clean(page)
    chosen = page.locator('[data-testid="stSidebar"] .st-key-dataset input').input_value()
    assert chosen.startswith(f"{name} (") and "yours" in chosen, chosen  # selected in the sidebar


def test_csv_by_path(page, tmp_path, shots):
    csv = write_csv(tmp_path / "cells.csv")
    page.get_by_text("a path on this machine").click()
    page.wait_for_selector(".st-key-ad_path input")
    page.locator(".st-key-ad_path input").fill(str(csv))
    page.keyboard.press("Enter")
    page.wait_for_selector('text="table"')
    _import_and_train(page, "cells", epochs=3)
    metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
    assert any("Samples" in m and "60" in m for m in metrics), metrics
    assert page.locator(".st-key-fig_ad_counts .js-plotly-plot").count() == 1  # classes and counts
    page.screenshot(path=str(shots / "add_data_csv.png"))


def test_image_zip_upload_then_explanations_heatmap(page, tmp_path, shots):
    zpath = write_image_zip(tmp_path)
    page.get_by_text("an upload").click()
    page.wait_for_selector(".st-key-ad_upload input[type=file]", state="attached")
    page.locator(".st-key-ad_upload input[type=file]").set_input_files(str(zpath))
    page.wait_for_selector('text="image-folder"')
    _import_and_train(page, "leaves", epochs=2)
    e2e.plot_drawn(page, "ad_images", ".layer-above image, image")  # example images
    page.screenshot(path=str(shots / "add_data_images.png"))

    e2e.goto_page(page, "Explanations")
    _clean(page)
    e2e.run_if_needed(page, "x_run", f"{FIG} .js-plotly-plot .heatmaplayer image")
    _clean(page)
    assert page.locator(f"{FIG} .heatmaplayer image").count() > 0
    page.locator(FIG).scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "explanations_user_images.png"))
