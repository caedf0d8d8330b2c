"""Inspect's embedding map: the mapped test images as Vega-Lite points (tooltips carry each digit's image)."""

import base64
import io

import numpy as np
import pandas as pd
from PIL import Image

from mnist_core import inspect


def map_points(emap: inspect.EmbeddingMap, x_test: np.ndarray) -> pd.DataFrame:
    """One row per mapped test image; `image` is a PNG data URL, which Vega's tooltip shows as the picture."""
    def url(img):
        buf = io.BytesIO()
        Image.fromarray(img).resize((56, 56), Image.Resampling.NEAREST).save(buf, "PNG", optimize=True)
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    wrong = emap.predicted != emap.labels
    return pd.DataFrame({"x": emap.coords[:, 0], "y": emap.coords[:, 1], "label": emap.labels.astype(str),
                         "predicted": emap.predicted, "index": emap.indices,
                         "kind": np.where(wrong, "misclassified", "right"),
                         "image": [url(x_test[i]) for i in emap.indices]})


def embedding_spec(points: pd.DataFrame, place: np.ndarray) -> dict:
    """Vega-Lite: the mapped test images coloured by label, misclassified ones as crosses, this input as a diamond.

    The input's point travels as a named dataset, so the spec stays the same from input to input and the
    browser only moves the diamond instead of redrawing 2,000 points.
    """
    star = pd.DataFrame({"x": [float(place[0])], "y": [float(place[1])], "what": ["this input"]})
    return {"height": 520, "datasets": {"points": points, "this_input": star}, "layer": [
        {"params": [{"name": "zoom", "select": "interval", "bind": "scales"}],  # one layer only: names must be unique
         "data": {"name": "points"}, "mark": {"type": "point", "filled": True, "opacity": 0.6}, "encoding": {
            "x": {"field": "x", "type": "quantitative", "title": "PC 1"},
            "y": {"field": "y", "type": "quantitative", "title": "PC 2"},
            "color": {"field": "label", "type": "nominal", "scale": {"scheme": "category10"}},
            "shape": {"field": "kind", "type": "nominal", "title": None,
                      "scale": {"domain": ["right", "misclassified"], "range": ["circle", "cross"]}},
            "size": {"condition": {"test": "datum.kind == 'misclassified'", "value": 90}, "value": 25},
            "tooltip": [{"field": f} for f in ("image", "index", "label", "predicted")]}},
        {"data": {"name": "this_input"}, "mark": {"type": "point", "shape": "diamond", "size": 500, "filled": True, "color": "black",
                                "stroke": "white", "strokeWidth": 2},
         "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"},
                      "tooltip": [{"field": "what"}]}}]}
