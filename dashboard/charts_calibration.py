"""Plotly figure builders for Compare's Calibration section (data from mnist_core.calibration reports)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.charts import inert, model_colors

RIGHT_COLOR, WRONG_COLOR = "#21c354", "#ff4b4b"
PERFECT_COLOR = "#888888"


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    if isinstance(kw.get("title"), str):
        kw["title"] = inert(kw["title"])
    fig.update_layout(height=height, **{"margin": dict(l=10, r=10, t=30, b=10), **kw})
    return fig


def reliability_diagram(bins_by_model: Mapping[str, Sequence[Mapping]], colors: Mapping[str, str] | None = None,
                        title: str = "") -> go.Figure:
    """One line per model through its non-empty bins: x the bin's mean top-label confidence, y how often that
    top label was right; marker area grows with the bin's share of images. The dashed diagonal is perfect
    calibration: below it a model is over-confident, above it under-confident."""
    colors = {**model_colors(list(bins_by_model)), **(colors or {})}
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration", hoverinfo="skip",
                               line=dict(color=PERFECT_COLOR, dash="dash")))
    for name, rows in bins_by_model.items():
        used = [r for r in rows if r["count"]]
        total = sum(r["count"] for r in used) or 1
        share = np.array([r["count"] / total for r in used])
        fig.add_trace(go.Scatter(
            x=[r["confidence"] for r in used], y=[r["accuracy"] for r in used], mode="lines+markers",
            name=inert(name), line=dict(color=colors[name]),
            marker=dict(size=6 + 18 * np.sqrt(share), color=colors[name]),
            customdata=[[r["count"], r["lower"], r["upper"]] for r in used],
            hovertemplate="confidence %{customdata[1]:.0%}–%{customdata[2]:.0%}: mean %{x:.1%}, right %{y:.1%} "
                          "(%{customdata[0]:,} images)<extra>" + inert(name) + "</extra>"))
    fig.update_xaxes(title="confidence in the top label", range=[0, 1.01], tickformat=".0%")
    fig.update_yaxes(title="how often it was right", range=[0, 1.01], tickformat=".0%")
    # The legend sits between the title and the plot: models can be many, and the title must stay readable.
    return _layout(fig, 420, title=title or None, margin=dict(l=10, r=10, t=70, b=10),
                   legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))


def confidence_histogram(histograms: Mapping, title: str = "") -> go.Figure:
    """Top-label confidence of right and of wrong answers, each as a share of its own group (wrong answers
    are few; counts are in the hover and the legend)."""
    edges = np.asarray(histograms["edges"], dtype=float)
    centres, width = (edges[:-1] + edges[1:]) / 2, float(edges[1] - edges[0])
    fig = go.Figure()
    for key, label, color in (("right", "right", RIGHT_COLOR), ("wrong", "wrong", WRONG_COLOR)):
        counts = np.asarray(histograms[key], dtype=float)
        total = counts.sum()
        fig.add_trace(go.Bar(
            x=centres, y=counts / total if total else counts, width=width, name=f"{label} ({int(total):,})",
            marker_color=color, opacity=0.6, customdata=counts,
            hovertemplate=f"{label}: " + "%{y:.1%} (%{customdata:,.0f} images) near %{x:.0%}<extra></extra>"))
    fig.update_xaxes(title="confidence in the top label", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title="share of answers", tickformat=".0%")
    return _layout(fig, 280, title=title or None, barmode="overlay", margin=dict(l=10, r=10, t=60, b=10),
                   legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
