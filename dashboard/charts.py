"""Plotly figure builders: one function per chart kind, shared by every page."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

DIGITS = [str(d) for d in range(10)]
GRAY = [[0.0, "black"], [1.0, "white"]]


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    fig.update_layout(height=height, **{"margin": dict(l=10, r=10, t=30, b=10), **kw})
    return fig


def probability_bars(probs: np.ndarray, title: str = "") -> go.Figure:
    """Ten bars, the top one highlighted."""
    probs = np.asarray(probs, dtype=float)
    colors = ["#ff4b4b" if i == int(probs.argmax()) else "#7f8fa6" for i in range(10)]
    fig = go.Figure(go.Bar(x=DIGITS, y=probs, marker_color=colors, text=[f"{p:.0%}" for p in probs],
                           textposition="outside", hovertemplate="digit %{x}: %{y:.2%}<extra></extra>"))
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%", title="probability")
    fig.update_xaxes(title="digit", type="category")
    return _layout(fig, 260, title=title or None)


def probability_heatmap(names: list[str], probs: np.ndarray) -> go.Figure:
    """One row per model, one column per digit: how each model splits its belief."""
    probs = np.asarray(probs, dtype=float)
    fig = go.Figure(go.Heatmap(z=probs, x=DIGITS, y=names, zmin=0, zmax=1, colorscale="Blues",
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
        labels[y : y + h, x : x + w] = (hover or titles or [""] * len(images))[i]
    fig = go.Figure(go.Heatmap(z=mosaic, colorscale=GRAY, zmin=0, zmax=1, showscale=False,
                               customdata=labels, hovertemplate="%{customdata}<extra></extra>"))
    # One layout update with every title: add_annotation per tile validated the whole layout each time,
    # about 2 ms a tile, which was most of the Data page's rerun.
    notes = []
    for i, title in enumerate(titles or []):
        r, c = divmod(i, cols)
        notes.append(dict(x=c * (w + gap) + w / 2 - 0.5, y=r * (h + band) + band - 0.5, text=title,
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


def training_curves(histories: dict[str, list[dict]], metric: str = "loss",
                    splits: tuple[str, ...] = ("train", "validation")) -> go.Figure:
    """Per-epoch curves of `metric` ("loss" or "accuracy") for each run, train solid and validation dashed.

    A history is the list of epoch dicts a run records (epoch, loss, accuracy, val_loss, val_accuracy, ...);
    fractional epochs (live progress within an epoch) plot as they are.
    """
    fig = go.Figure()
    keys = {"train": metric, "validation": f"val_{metric}"}
    for name, history in histories.items():
        for split in splits:
            points = [(h["epoch"], h[keys[split]]) for h in history if h.get(keys[split]) is not None]
            if not points:
                continue
            x, y = zip(*points, strict=True)
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"{name} {split}" if len(histories) > 1 else split,
                                     line=dict(dash="solid" if split == "train" else "dash")))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title=metric, tickformat=".1%" if metric == "accuracy" else None)
    return _layout(fig, 320, legend=dict(orientation="h", y=1.15))


def confusion_matrix(cm, title: str = "", difference: bool = False) -> go.Figure:
    """Rows true digit, columns predicted. With difference=True, a diverging scale centred on 0 (A minus B)."""
    cm = np.asarray(cm)
    if difference:
        bound = max(1, int(np.abs(cm).max()))
        scale = dict(colorscale="RdBu", zmin=-bound, zmax=bound)
    else:
        # Log-ish colour so the small off-diagonal errors are visible next to ~1000 on the diagonal.
        scale = dict(colorscale="Blues", zmin=0, zmax=float(np.log1p(cm.max())) or 1.0)
    z = cm if difference else np.log1p(cm)
    fig = go.Figure(go.Heatmap(z=z, x=DIGITS, y=DIGITS, text=cm, texttemplate="%{text}", customdata=cm, showscale=False,
                               hovertemplate="true %{y}, predicted %{x}: %{customdata}<extra></extra>", **scale))
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


def per_class_bars(values: dict[str, list[float]], metric: str = "accuracy") -> go.Figure:
    """Grouped bars of a per-digit fraction (e.g. accuracy, precision), one bar per run in each digit group."""
    fig = go.Figure([go.Bar(name=name, x=DIGITS, y=np.asarray(v, dtype=float),
                            hovertemplate="digit %{x}: %{y:.2%}<extra>" + name + "</extra>")
                     for name, v in values.items()])
    lows = [min(v) for v in values.values() if len(v)]
    fig.update_yaxes(title=metric, tickformat=".0%", range=[max(0.0, min(lows, default=0.0) - 0.05), 1.0])
    fig.update_xaxes(title="digit", type="category")
    return _layout(fig, 300, barmode="group", legend=dict(orientation="h", y=1.15))
