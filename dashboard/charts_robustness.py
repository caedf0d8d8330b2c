"""Plotly figure builders for the robustness view: accuracy along each ladder, and one digit through them."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard import charts

COLUMNS = 5  # subplots per row of the curves figure


def curves(results: Mapping[str, Mapping], colors: Mapping[str, str]) -> go.Figure:
    """Accuracy against severity, one subplot per perturbation, one colour per model (legend once per model).

    `results` maps a model name to mnist_core.robustness.evaluate's dict; every result has the same ladders."""
    ladders = next(iter(results.values()))["perturbations"]
    rows = math.ceil(len(ladders) / COLUMNS)
    fig = make_subplots(rows=rows, cols=COLUMNS, subplot_titles=[charts.inert(lad["label"]) for lad in ladders.values()],
                        horizontal_spacing=0.04, vertical_spacing=0.16)
    for k, (name, ladder) in enumerate(ladders.items()):
        row, col = divmod(k, COLUMNS)
        for model, result in results.items():
            fig.add_trace(go.Scatter(
                x=ladder["levels"], y=result["perturbations"][name]["accuracy"], mode="lines+markers",
                name=charts.inert(model), legendgroup=model, showlegend=k == 0,
                line=dict(color=colors.get(model)), marker=dict(size=5),
                hovertemplate=f"{charts.inert(model)}<br>{ladder['unit']} %{{x:g}}: %{{y:.1%}}<extra></extra>"),
                row=row + 1, col=col + 1)
        fig.update_xaxes(title_text=charts.inert(ladder["unit"]), title_font=dict(size=10), row=row + 1, col=col + 1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    fig.update_annotations(font_size=11)
    fig.update_layout(height=300 * rows + 60, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.12))
    return fig


def example_strip(strips: Mapping[str, list], ladders: Mapping[str, Mapping], tile_px: int = 52) -> go.Figure:
    """One digit through every ladder: a row per perturbation, a tile per level titled with its severity."""
    width = max(len(images) for images in strips.values())
    blank = np.full((28, 28), np.nan)
    tiles, titles = [], []
    for name, images in strips.items():
        ladder = ladders[name]
        for i in range(width):
            tiles.append(images[i] if i < len(images) else blank)
            titles.append(f"{name} {ladder['levels'][i]:g}" if i < len(images) else "")
    return charts.image_grid(tiles, titles, cols=width, tile_px=tile_px)
