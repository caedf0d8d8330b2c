"""Plotly figure builders for seed groups and sweeps (mnist_core.group_stats): accuracy against a swept
setting's value with error bars, and mean training curves with a band."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from dashboard.charts import EMPTY_LOSS_TOP, inert, model_colors

LOG_SETTINGS = ("learning_rate",)  # values spread over decades: a log axis shows them evenly


def _rgba(color: str, alpha: float) -> str:
    """A plotly colour ("#rrggbb" or "rgb(r, g, b)") with transparency, for a band under its line."""
    if color.startswith("#") and len(color) == 7:
        r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    elif color.startswith("rgb(") and color.endswith(")"):
        r, g, b = (int(float(v)) for v in color[4:-1].split(","))
    else:
        return color
    return f"rgba({r}, {g}, {b}, {alpha})"


def accuracy_vs_value(setting: str, rows: Sequence[Mapping], runs: Mapping, color: str = "#636EFA") -> go.Figure:
    """Test accuracy at each value of a swept setting: the mean with ± 1 sd error bars, and every run as a
    small dot. `rows` are group_stats.rows of one sweep; `runs` maps each value to its runs' accuracies."""
    values = [r["value"] for r in rows]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    xs = values if numeric else [str(v) for v in values]
    fig = go.Figure()
    dots_x = [x for x, v in zip(xs, values, strict=True) for _ in runs.get(v, [])]
    dots_y = [a for v in values for a in runs.get(v, [])]
    fig.add_trace(go.Scatter(x=dots_x, y=dots_y, mode="markers", name="each run", marker=dict(color=color, size=6,
                             opacity=0.45), hovertemplate="%{x}<br>%{y:.2%}<extra>one run</extra>"))
    sds = [r["sd"] if r["n"] > 1 else 0.0 for r in rows]
    fig.add_trace(go.Scatter(x=xs, y=[r["mean"] for r in rows], mode="lines+markers", name="mean ± sd",
                             line=dict(color=color, width=2), marker=dict(color=color, size=10),
                             error_y=dict(type="data", array=sds, visible=True, thickness=1.5, width=6),
                             customdata=[[r["n"], s * 100] for r, s in zip(rows, sds, strict=True)],
                             hovertemplate="%{x}<br>mean %{y:.2%} ± %{customdata[1]:.2f} points"
                                           "<br>%{customdata[0]} runs<extra></extra>"))
    log = numeric and setting.split(".")[-1] in LOG_SETTINGS and min(values) > 0
    fig.update_xaxes(title=inert(setting), type="log" if log else ("linear" if numeric else "category"))
    fig.update_yaxes(title="test accuracy", tickformat=".1%")
    return fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.15))


def mean_curves(curves: Mapping[str, Mapping | None], metric: str = "accuracy",
                colors: Mapping[str, str] | None = None) -> go.Figure:
    """Each set of runs' mean training curve (group_stats.mean_curve) as a line, with a band of ± 1 sd
    around it; x is the epoch. Sets without a curve are named in a note instead of drawn."""
    colors = {**model_colors(list(curves)), **(colors or {})}
    fig, missing, top, bottom = go.Figure(), [], 0.0, 1.0
    for label, curve in curves.items():
        if not curve:
            missing.append(label)
            continue
        shown, color = inert(label), colors[label]
        mean, sd = curve["mean"], [s if s == s else 0.0 for s in curve["sd"]]  # nan (one run): no band
        upper = [m + s for m, s in zip(mean, sd, strict=True)]
        lower = [m - s for m, s in zip(mean, sd, strict=True)]
        top, bottom = max(top, *upper), min(bottom, *lower)
        fig.add_trace(go.Scatter(x=curve["epoch"] + curve["epoch"][::-1], y=upper + lower[::-1], fill="toself",
                                 fillcolor=_rgba(color, 0.2), line=dict(width=0), hoverinfo="skip",
                                 legendgroup=label, showlegend=False, name=f"{shown} ± sd"))
        fig.add_trace(go.Scatter(x=curve["epoch"], y=mean, mode="lines", legendgroup=label,
                                 name=f"{shown} (mean of {curve['n']})", line=dict(color=color, width=2),
                                 hovertemplate=f"{shown}<br>epoch %{{x:.2f}}<br>mean {metric} "
                                               + ("%{y:.2%}" if metric == "accuracy" else "%{y:.4f}")
                                               + "<extra></extra>"))
    fig.update_xaxes(title="epoch", rangemode="tozero")
    if metric == "accuracy":
        low = max(0.0, min(0.9, math.floor((bottom - 0.02) * 10) / 10))  # as charts.training_curves does
        fig.update_yaxes(title=f"training {metric}", tickformat=".0%", range=[low, 1.005])
    else:
        fig.update_yaxes(title=f"training {metric}", range=[0, top * 1.08 if top else EMPTY_LOSS_TOP])
    if missing:
        fig.add_annotation(text=f"no training curve recorded for {inert(', '.join(missing))}", xref="paper",
                           yref="paper", x=1, y=0.02, xanchor="right", showarrow=False, font=dict(color="gray"))
    return fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.18))
