"""Home and Data in a real browser: each renders without an exception box; screenshots go to tests/artifacts/."""

import pytest


@pytest.mark.browser
@pytest.mark.parametrize("path,heading", [("/", "MNIST Model Lab"), ("/data", "Data")])
def test_page_renders(page, app_server, path, heading):
    app_server.open(page, path)
    page.get_by_role("heading", name=heading, exact=True).first.wait_for()
    if path == "/data":
        page.locator(".js-plotly-plot").nth(3).wait_for()  # distribution, samples, means, test images
    else:
        page.get_by_text("sha256 checksums").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
