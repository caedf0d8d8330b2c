"""Plotly figure builders: one function per chart kind, shared by every page."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go

DIGITS = [str(d) for d in range(10)]
GRAY = [[0.0, "black"], [1.0, "white"]]
# Plotly's ten defaults first (what a single-model chart has always looked like), then 24 darker ones.
PALETTE = tuple(plotly.colors.qualitative.Plotly) + tuple(plotly.colors.qualitative.Dark24)
X_AXES = {"epoch": "epoch", "images": "images seen", "seconds": "seconds"}  # training-curve x-axis choices
EMPTY_LOSS_TOP = 2.5  # a 10-class guess scores ln 10 = 2.3: the loss axis a run starts on


def model_colors(names: Sequence[str]) -> dict[str, str]:
    """One colour per model name, in the order given (repeats ignored): call once per page with the page's
    models and pass the result to every chart, so a model keeps its colour across the page.

    The first len(PALETTE) (34) names get distinct colours; more than that wrap around.
    """
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def inert(text) -> str:
    """Text from a file (a model name, a label) for a plotly title, legend, tick or annotation: plotly renders
    a subset of HTML there (links, styles, line breaks), so its markup characters are escaped."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    if isinstance(kw.get("title"), str):
        kw["title"] = inert(kw["title"])
    fig.update_layout(height=height, **{"margin": dict(l=10, r=10, t=30, b=10), **kw})
    return fig


def probability_bars(probs: np.ndarray, title: str = "") -> go.Figure:
    """Ten bars, the top one highlighted (none when all are zero: nothing drawn yet)."""
    probs = np.asarray(probs, dtype=float)
    top = int(probs.argmax()) if probs.max() > 0 else None
    colors = ["#ff4b4b" if i == top else "#7f8fa6" for i in range(10)]
    fig = go.Figure(go.Bar(x=DIGITS, y=probs, marker_color=colors, text=[f"{p:.0%}" for p in probs],
                           textposition="outside", hovertemplate="digit %{x}: %{y:.2%}<extra></extra>"))
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%", title="probability")
    fig.update_xaxes(title="digit", type="category")
    return _layout(fig, 260, title=title or None)


def probability_heatmap(names: list[str], probs: np.ndarray) -> go.Figure:
    """One row per model, one column per digit: how each model splits its belief."""
    probs = np.asarray(probs, dtype=float)
    fig = go.Figure(go.Heatmap(z=probs, x=DIGITS, y=[inert(n) for n in names], zmin=0, zmax=1, colorscale="Blues",
                               text=np.round(probs * 100).astype(int), texttemplate="%{text}",
                               hovertemplate="%{y}: digit %{x} %{z:.2%}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title="digit", type="category")
    return _layout(fig, 80 + 30 * len(names))


def image_grid(images, titles: list[str] | None = None, cols: int = 10, tile_px: int = 56,
               hover: list[str] | None = None) -> go.Figure:
    """Grayscale images (uint8 or floats in [0, 1], each HxW) tiled into one heatmap, a title above each tile.

    One trace for the whole grid keeps it fast with dozens of images.
    """
    images = [np.asarray(im, dtype=float) / (255.0 if np.asarray(im).dtype == np.uint8 else 1.0) for im in images]
    if not images:
        return _layout(go.Figure(), 60)
    h, w = images[0].shape
    title_px = 16 if titles else 0
    gap = max(2, h // 7)
    band = gap + int(np.ceil(title_px * h / tile_px))  # rows above each tile: the gap plus room for its title
    rows = -(-len(images) // cols)
    cols = min(cols, len(images))
    mosaic = np.full((rows * (h + band), cols * (w + gap)), np.nan)
    labels = np.full(mosaic.shape, "", dtype=object)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        y, x = r * (h + band) + band, c * (w + gap)
        mosaic[y : y + h, x : x + w] = im
        labels[y : y + h, x : x + w] = inert((hover or titles or [""] * len(images))[i])
    fig = go.Figure(go.Heatmap(z=mosaic, colorscale=GRAY, zmin=0, zmax=1, showscale=False,
                               customdata=labels, hovertemplate="%{customdata}<extra></extra>"))
    # One layout update with every title: add_annotation per tile validated the whole layout each time,
    # about 2 ms a tile, which was most of the Data page's rerun.
    notes = []
    for i, title in enumerate(titles or []):
        r, c = divmod(i, cols)
        notes.append(dict(x=c * (w + gap) + w / 2 - 0.5, y=r * (h + band) + band - 0.5, text=inert(title),
                          showarrow=False, yanchor="bottom", font=dict(size=11)))
    fig.update_layout(annotations=notes)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return _layout(fig, rows * (tile_px + title_px + 4) + 10, margin=dict(l=0, r=0, t=4, b=0),
                   plot_bgcolor="rgba(0,0,0,0)")


def class_distribution(counts: dict[str, np.ndarray]) -> go.Figure:
    """Grouped bars of images per digit, one group member per split (e.g. train, test)."""
    fig = go.Figure([go.Bar(name=split, x=DIGITS, y=np.asarray(c), hovertemplate="digit %{x}: %{y}<extra>" + split + "</extra>")
                     for split, c in counts.items()])
    fig.update_xaxes(title="digit", type="category")
    fig.update_yaxes(title="images")
    return _layout(fig, 300, barmode="group", legend=dict(orientation="h", y=1.1))


def _rows(meta: Mapping, key: str) -> list[Mapping]:
    # Metadata may be hand-edited or foreign: anything that is not a list of objects counts as absent.
    value = meta.get(key)
    return [row for row in value if isinstance(row, Mapping)] if isinstance(value, list) else []


def run_points(run: Sequence[Mapping] | Mapping) -> list[dict]:
    """A run's curve points: {"epoch", "images", "seconds"} plus "loss"/"accuracy" (training) or
    "val_loss"/"val_accuracy" (validation, once per epoch).

    `run` is either such a list already (live points from job events) or a model's metadata: its
    batch-resolution "curve" when it has one, else the training scores of its per-epoch "history"
    (models saved before curves were stored), with the validation scores of "history" in both cases.
    History rows lack "images" in old models; those points are left off an images axis.
    """
    if not isinstance(run, Mapping):
        return [dict(p) for p in run]
    history, curve = _rows(run, "history"), _rows(run, "curve")
    at = [{"epoch": h.get("epoch"), "images": h.get("images"), "seconds": h.get("elapsed")} for h in history]
    curve = [dict(p) for p in curve] or [
        {**x, "loss": h.get("loss"), "accuracy": h.get("accuracy")} for x, h in zip(at, history, strict=True)]
    validation = [{**x, "val_loss": h.get("val_loss"), "val_accuracy": h.get("val_accuracy")}
                  for x, h in zip(at, history, strict=True) if h.get("val_loss") is not None]
    return curve + validation


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def training_curves(runs: Mapping[str, Sequence[Mapping] | Mapping], metric: str = "loss",
                    splits: Sequence[str] = ("train", "validation"), x: str = "epoch",
                    colors: Mapping[str, str] | None = None, x_max: float | None = None) -> go.Figure:
    """Curves of `metric` ("loss" or "accuracy") against `x` ("epoch", "images" or "seconds"), one colour per run:
    training solid, validation dashed with a marker per epoch.

    `runs` maps a name to its points or its metadata (see run_points). `colors` maps names to colours
    (model_colors; names it lacks get one of their own). `x_max` fixes the right end of the x-axis, e.g. a
    live run's total epochs. The axes are sensible from the first point on: accuracy within 0-100%, loss
    from 0, x from 0; an empty chart shows those ranges and says it has no points.
    """
    colors = {**model_colors(list(runs)), **(colors or {})}
    keys = {"train": metric, "validation": f"val_{metric}"}
    fig, xs, ys, missing = go.Figure(), [], [], []
    for name, run in runs.items():
        points, shown = run_points(run), inert(name)
        drawn = False
        for split in splits:
            pts = sorted((p[x], p[keys[split]]) for p in points if _finite(p.get(x)) and _finite(p.get(keys[split])))
            if not pts:
                continue
            px, py = zip(*pts, strict=True)
            xs.extend(px)
            ys.extend(py)
            drawn = True
            dense = split == "train" and len(pts) > 30  # batch resolution: markers would hide the line
            fig.add_trace(go.Scatter(
                x=px, y=py, mode="lines" if dense else "lines+markers", legendgroup=name,
                name=f"{shown} {split}" if len(runs) > 1 else split,
                line=dict(color=colors[name], dash="solid" if split == "train" else "dash", width=2),
                marker=dict(color=colors[name], size=6, symbol="circle" if split == "train" else "diamond"),
                hovertemplate=f"{shown} {split}<br>{X_AXES.get(x, x)} %{{x:,.4~g}}<br>{metric} "
                              + ("%{y:.2%}" if metric == "accuracy" else "%{y:.4f}") + "<extra></extra>"))
        if not drawn and points:
            missing.append(name)
    right = max([*xs, x_max or 0.0]) or 1.0
    fig.update_xaxes(title=X_AXES.get(x, x), range=[0, right * 1.02], tickformat="~s" if x == "images" else None)
    if metric == "accuracy":
        low = max(0.0, min(0.9, math.floor((min(ys) - 0.02) * 10) / 10)) if ys else 0.0
        fig.update_yaxes(title=metric, tickformat=".0%", range=[low, 1.005])
    else:
        fig.update_yaxes(title=metric, range=[0, max(ys) * 1.08 if ys else EMPTY_LOSS_TOP])
    if missing:  # at the bottom, off the curves of the runs that have this axis
        fig.add_annotation(text=f"no {X_AXES.get(x, x)} recorded for {inert(', '.join(missing))}", xref="paper",
                           yref="paper", x=1, y=0.02, xanchor="right", showarrow=False, font=dict(color="gray"))
    elif not xs:
        fig.add_annotation(text="no points yet", xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                           font=dict(color="gray"))
    return _layout(fig, 320, legend=dict(orientation="h", y=1.15))


def confusion_matrix(cm, title: str = "", difference: bool = False) -> go.Figure:
    """Rows true digit, columns predicted.

    With difference=True, `cm` is compare.a_better_matrix (positive = A better, on and off the diagonal) drawn on
    a diverging scale centred on 0: blue where A does better, red where B does.
    """
    cm = np.asarray(cm)
    if difference:
        bound = max(1, int(np.abs(cm).max()))
        scale = dict(colorscale="RdBu", zmin=-bound, zmax=bound)  # RdBu runs red (low) to blue (high)
    else:
        # Log-ish colour so the small off-diagonal errors are visible next to ~1000 on the diagonal.
        scale = dict(colorscale="Blues", zmin=0, zmax=float(np.log1p(cm.max())) or 1.0)
    z = cm if difference else np.log1p(cm)
    hover = ("true %{y}, predicted %{x}: A better by %{customdata}<extra></extra>" if difference
             else "true %{y}, predicted %{x}: %{customdata}<extra></extra>")
    fig = go.Figure(go.Heatmap(z=z, x=DIGITS, y=DIGITS, text=cm, texttemplate="%{text}", customdata=cm, showscale=False,
                               hovertemplate=hover, **scale))
    fig.update_xaxes(title="predicted", type="category", side="bottom")
    fig.update_yaxes(title="true", type="category", autorange="reversed")
    return _layout(fig, 420, title=title or None)


def add_cell_picker(fig: go.Figure, cm) -> go.Figure:
    """Make every cell of a 10x10 confusion-matrix heatmap clickable.

    Streamlit's on_select ignores heatmap traces, so an invisible square marker sits on each cell
    (and carries the hover text); a selected point's x is the predicted digit and its y the true digit.
    """
    xs, ys = np.meshgrid(DIGITS, DIGITS)
    fig.add_trace(go.Scatter(x=xs.ravel(), y=ys.ravel(), mode="markers", showlegend=False,
                             customdata=np.asarray(cm).ravel(),
                             hovertemplate="true %{y}, predicted %{x}: %{customdata}<extra></extra>",
                             marker=dict(symbol="square", size=30, color="rgba(0,0,0,0)")))
    fig.update_layout(clickmode="event+select", dragmode=False)
    return fig


def per_class_bars(values: dict[str, list[float]], metric: str = "accuracy",
                   colors: Mapping[str, str] | None = None) -> go.Figure:
    """Grouped bars of a per-digit fraction (e.g. accuracy, precision), one bar per run in each digit group,
    coloured as `colors` says (model_colors)."""
    colors = {**model_colors(list(values)), **(colors or {})}
    fig = go.Figure([go.Bar(name=inert(name), x=DIGITS, y=np.asarray(v, dtype=float), marker_color=colors[name],
                            hovertemplate="digit %{x}: %{y:.2%}<extra>" + inert(name) + "</extra>")
                     for name, v in values.items()])
    lows = [min(v) for v in values.values() if len(v)]
    fig.update_yaxes(title=metric, tickformat=".0%", range=[max(0.0, min(lows, default=0.0) - 0.05), 1.0])
    fig.update_xaxes(title="digit", type="category")
    return _layout(fig, 300, barmode="group", legend=dict(orientation="h", y=1.15))
