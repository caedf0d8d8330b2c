"""dashboard/charts.py: the figures the pages draw, checked on real MNIST digits."""

from __future__ import annotations

import numpy as np

from dashboard import charts


def test_image_grid_tiles_each_digit_under_its_own_title(small_mnist):
    images = small_mnist.x_test[:12]
    titles = [f"#{i}: {y}" for i, y in enumerate(small_mnist.y_test[:12])]
    fig = charts.image_grid(images, titles, cols=5, tile_px=40)
    mosaic = np.asarray(fig.data[0].z, dtype=float)
    gap = 28 // 7
    band = gap + int(np.ceil(16 * 28 / 40))
    assert mosaic.shape == (3 * (28 + band), 5 * (28 + gap))  # 12 tiles in rows of 5
    for i, title in enumerate(titles):
        r, c = divmod(i, 5)
        y, x = r * (28 + band) + band, c * (28 + gap)
        np.testing.assert_allclose(mosaic[y : y + 28, x : x + 28], images[i] / 255.0)
        note = fig.layout.annotations[i]
        assert note.text == title
        assert x <= note.x <= x + 28 and note.y == y - 0.5  # centred above its own tile
    assert len(fig.layout.annotations) == 12
    assert np.isnan(mosaic[:band]).all()  # the title band is blank, not black


def test_image_grid_hover_names_the_image_under_the_pointer(small_mnist):
    hover = [f"test #{i}" for i in range(3)]
    fig = charts.image_grid(small_mnist.x_test[:3], cols=3, hover=hover)
    labels = np.asarray(fig.data[0].customdata, dtype=object)
    mosaic = np.asarray(fig.data[0].z, dtype=float)
    assert not fig.layout.annotations  # no titles asked for
    for i, text in enumerate(hover):
        x = i * (28 + 28 // 7)
        assert set(labels[-28:, x : x + 28].ravel()) == {text}
    assert np.isnan(mosaic[np.asarray(labels == "")]).all()  # gaps carry neither image nor hover text
