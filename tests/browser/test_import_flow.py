"""Import a tf-keras .h5 through Home's "Import a model" control in Chromium (the page's own file input), then
find it on Compare and read a digit with it on Draw. Screenshots at 1400 and 800 px go to
tests/artifacts/import_*.png."""

import io
import shutil

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests import foreign_models
from tests.browser.conftest import ARTIFACTS, screenshot

DIGIT = 0  # index in the fixture's test digits (a 7)


@pytest.fixture(scope="module")
def foreign_h5(small_mnist, tmp_path_factory):
    path, model = foreign_models.keras2_mlp_h5(tmp_path_factory.mktemp("browser_foreign"), small_mnist, "symmetric")
    return path, model


@pytest.mark.browser
@pytest.mark.parametrize("width", [1400, 800])
def test_import_then_compare_and_draw(page, app_server, foreign_h5, small_mnist, tmp_path, width):
    path, model = foreign_h5
    name = f"notebook-{width}"
    try:
        page.set_viewport_size({"width": width, "height": 1000})
        app_server.open(page, "/")
        page.get_by_text("Import a model trained elsewhere").click()
        app_server.wait_idle(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(path))
        page.get_by_text(path.name).first.wait_for()
        app_server.wait_idle(page)
        name_box = page.get_by_label("Name", exact=True)
        expect(name_box).to_have_value(path.stem)  # suggested from the file's name
        name_box.fill(name)
        name_box.press("Enter")
        app_server.wait_idle(page)
        page.get_by_role("button", name="Import", exact=True).click()
        page.get_by_text(f"Imported {name}:").wait_for(timeout=180_000)
        app_server.wait_idle(page)
        assert page.get_by_text(f"Input scaling of {name}: symmetric (measured best").count() == 1
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0
        assert (app_server.models_dir / name / "model.keras").is_file()
        screenshot(page, ARTIFACTS / f"import_home_{width}.png")

        app_server.open(page, f"/compare?models=default,{name}")
        page.get_by_test_id("stMultiSelect").first.get_by_text(name, exact=True).wait_for()
        app_server.wait_idle(page, timeout_ms=240_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        screenshot(page, ARTIFACTS / f"import_compare_{width}.png")

        image = tmp_path / "seven.png"
        buffer = io.BytesIO()
        Image.fromarray(255 - small_mnist.x_test[DIGIT]).resize((140, 140)).save(buffer, "PNG")
        image.write_bytes(buffer.getvalue())
        app_server.open(page, "/draw")
        sidebar_box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Model")
        sidebar_box.click()
        page.get_by_role("option", name=name, exact=True).click(timeout=10_000)
        app_server.wait_idle(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(image))
        page.get_by_text(image.name).wait_for()
        app_server.wait_idle(page)
        metric = page.locator('[data-testid="stMetric"]').filter(has_text="Prediction")
        metric.wait_for(timeout=60_000)
        assert metric.locator('[data-testid="stMetricValue"]').inner_text().strip() == str(small_mnist.y_test[DIGIT])
        expect(sidebar_box.locator("input").first).to_have_value(name)  # the prediction above is the imported model's
        screenshot(page, ARTIFACTS / f"import_draw_{width}.png")
    finally:  # the browser tests share one registry: later tests expect their own picks
        shutil.rmtree(app_server.models_dir / name, ignore_errors=True)
