"""On /draw, upload photos of real MNIST digits on ruled and squared paper (tests/paper_digits.py) through the
page's own file input: the digit is read, the isolation steps are shown, and a photo of two digits says
"Not sure" instead of a Prediction. Screenshots at 1400 px and 800 px go to tests/artifacts/draw_upload_*.png."""

import pytest

from tests.browser.conftest import ARTIFACTS, screenshot
from tests.paper_digits import paper_photo, png

FIVE, SEVEN, TWO = 15, 0, 1  # indices in the fixture's test digits


def prediction_text(page) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Prediction")
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def upload(page, app_server, path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.get_by_text(path.name).wait_for()
    app_server.wait_idle(page)


def remove_upload(page, app_server) -> None:
    page.locator('[data-testid="stFileChipDeleteBtn"] button').first.click()
    page.get_by_text("draw a digit").wait_for()
    app_server.wait_idle(page)


@pytest.mark.browser
@pytest.mark.parametrize("width", [1400, 800])
def test_upload_digits_on_ruled_and_squared_paper(page, app_server, small_mnist, tmp_path, width):
    page.set_viewport_size({"width": width, "height": 1000})
    files = {
        "five_ruled.png": paper_photo([small_mnist.x_test[FIVE]], paper="ruled"),
        "five_squared.png": paper_photo([small_mnist.x_test[FIVE]], paper="squared", seed=3),
        "seven_two_squared.png": paper_photo([small_mnist.x_test[SEVEN], small_mnist.x_test[TWO]], paper="squared",
                                             shape=(200, 340)),
    }
    for name, image in files.items():
        (tmp_path / name).write_bytes(png(image))
    app_server.open(page, "/draw")
    page.get_by_text("draw a digit").wait_for()
    page.get_by_text("Show preprocessing steps").click()
    app_server.wait_idle(page)

    for name in ("five_ruled.png", "five_squared.png"):
        upload(page, app_server, tmp_path / name)
        page.get_by_text("ruled lines removed").wait_for()  # the isolation is shown, step by step
        assert prediction_text(page) == "5", name
        assert page.get_by_text("Not sure").count() == 0
        screenshot(page, ARTIFACTS / f"draw_upload_{name.removesuffix('.png')}_{width}.png")
        remove_upload(page, app_server)

    upload(page, app_server, tmp_path / "seven_two_squared.png")
    page.get_by_text("Not sure: two separate marks of similar size").wait_for()
    assert page.locator('[data-testid="stMetric"]').filter(has_text="Prediction").count() == 0
    screenshot(page, ARTIFACTS / f"draw_upload_two_digits_{width}.png")
