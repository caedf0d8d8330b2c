"""Compare's "Download report": one self-contained HTML file that opens anywhere, offline.

plotly.js is embedded once, inline, so the file needs no server and no network; every figure comes from the
same builders the page uses. Model names are data: everything written into the HTML is escaped.
"""

from __future__ import annotations

import html
from datetime import datetime

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard import charts, charts_calibration, charts_robustness

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.note{color:#666;font-size:13px}
.grid{display:flex;flex-wrap:wrap;gap:8px}.grid>div{flex:1 1 320px}"""


def _table(df: pd.DataFrame, formats: dict[str, str]) -> str:
    shown = df.copy()
    for column, fmt in formats.items():
        if column in shown:
            shown[column] = [("—" if v is None or (isinstance(v, float) and np.isnan(v)) else fmt.format(v))
                             for v in shown[column]]
    return shown.to_html(index=False, escape=True, na_rep="—")


class _Figures:
    """Turns figures into HTML divs; the first one carries plotly.js inline, the rest reuse it."""

    def __init__(self) -> None:
        self.first = True

    def __call__(self, fig: go.Figure) -> str:
        # The page's figures sit in narrow columns with tight margins; a report page has room for tick labels.
        fig.update_layout(margin=dict(l=70, r=20))
        fig.update_xaxes(automargin=True)
        fig.update_yaxes(automargin=True)
        out = fig.to_html(full_html=False, include_plotlyjs="inline" if self.first else False,
                          config={"displaylogo": False})
        self.first = False
        return out


def build(meta: dict[str, dict], table: pd.DataFrame, table_formats: dict[str, str], verdict: list[str],
          pairs: list[dict] | None, robustness: dict[str, dict], calibration: dict[str, dict]) -> str:
    """The report as one HTML string. `robustness` and `calibration` hold the results already measured
    (models not measured yet are named as missing, never measured here: building must stay quick)."""
    names = list(meta)
    colors = charts.model_colors(names)
    figure = _Figures()
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>MNIST Model Lab: {esc(', '.join(names))}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>Comparison of {esc(', '.join(names))}</h1>",
             f"<p class='note'>MNIST Model Lab report, {datetime.now():%Y-%m-%d %H:%M}. Test metrics on the 10,000 "
             "MNIST test digits; timings measured side by side on the machine that served the page.</p>",
             "<h2>Table</h2>", _table(table, table_formats)]
    if verdict:
        parts += ["<h2>Verdict</h2><ul>", *[f"<li>{esc(s)}</li>" for s in verdict], "</ul>"]
    parts += ["<h2>Training curves</h2>", figure(charts.training_curves(meta, "accuracy", ("train", "validation"),
                                                                        colors=colors))]
    parts.append("<h2>Confusion matrices</h2><div class='grid'>")
    for name, m in meta.items():
        parts.append(f"<div>{figure(charts.confusion_matrix(np.asarray(m['test']['confusion_matrix']), title=name))}</div>")
    parts.append("</div>")
    if pairs:
        parts += ["<h2>Significance: McNemar's exact test, every pair (Holm-corrected)</h2>",
                  _table(pd.DataFrame(pairs), {"p": "{:.3g}", "Holm p": "{:.3g}"})]
    parts.append("<h2>Robustness</h2>")
    if robustness:
        parts.append(figure(charts_robustness.curves(robustness, colors)))
    missing = [n for n in names if n not in robustness]
    if missing:
        parts.append(f"<p class='note'>Not measured yet: {esc(', '.join(missing))} (open Robustness on Compare).</p>")
    parts.append("<h2>Calibration</h2>")
    if calibration:
        bins = {n: r["before"]["reliability"] for n, r in calibration.items()}
        parts.append(figure(charts_calibration.reliability_diagram(bins, colors)))
    missing = [n for n in names if n not in calibration]
    if missing:
        parts.append(f"<p class='note'>Not measured yet: {esc(', '.join(missing))}.</p>")
    parts.append("</body></html>")
    return "".join(parts)
