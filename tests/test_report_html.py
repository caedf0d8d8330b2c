"""Compare's downloadable report: one self-contained HTML file, built from the real metadata of saved models."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pandas as pd

from mnist_core import compare, registry


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.sources, self.plots, self.text = 0, [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if attrs.get(key):
                self.sources.append(attrs[key])
        if "plotly-graph-div" in (attrs.get("class") or ""):
            self.plots += 1

    def handle_data(self, data):
        self.text.append(data)


def test_report_is_self_contained_and_escapes_names(registry_with, small_mnist):
    from dashboard import report_html

    root = registry_with("tiny", default=True)
    hostile = "<img src=x onerror=alert(1)>"
    meta = {n: registry.read_metadata(n) for n in ("tiny", "default")}
    meta[hostile] = meta.pop("tiny") | {"name": hostile}
    table = pd.DataFrame(compare.table_rows(meta))
    pairs = [{"model A": hostile, "model B": "default", "only A right": 3, "only B right": 40, "p": 1e-9,
              "Holm p": 1e-9, "significant": True}]
    robust = {"default": json.loads(json.dumps(_robustness(small_mnist)))}  # as read back from its cache
    page = report_html.build(meta, table, {"test accuracy": "{:.2%}"}, ["default is the most accurate."], pairs,
                             robust, {})
    parsed = _Collect()
    parsed.feed(page)
    assert parsed.sources == []  # nothing fetched from anywhere: no src, no href
    assert len(page) > 1_000_000 and "Plotly" in page  # the library itself (several MB) is inline
    assert page.count("<script") == parsed.scripts and parsed.plots == 1 + 2 + 1  # curves, 2 confusion, robustness
    assert hostile not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    text = " ".join(parsed.text)
    assert f"{meta['default']['test']['accuracy']:.2%}" in text
    assert "Not measured yet" in text and re.search(r"Not measured yet: &lt;img|Not measured yet: <img", page)
    assert root.is_dir()


def _robustness(small_mnist) -> dict:
    from mnist_core import robustness

    return robustness.evaluate(registry.load("default"), small_mnist, subset=50, names=["shift", "rotation"])
