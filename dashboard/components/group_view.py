"""Compare's seed groups and sweeps: every group with at least 2 saved runs, one table row per group (one per
value for a sweep) with mean ± sd, range and n; accuracy against a swept value; mean training curves with a
band; and Welch's t-test between two sets of runs, said in words.

Groups come from the whole registry, not only the models picked above: a group is many models, and
picking each of them by hand is what groups spare the user. The groups of the picked models are shown first.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import cache, charts, charts_groups
from mnist_core import group_stats
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError
from mnist_core.groups import format_value

MAX_SHOWN = 8  # groups drawn at once: each adds a table row or more, and curves
PICK, METRIC, SIDE_A, SIDE_B = "groups_pick", "groups_metric", "groups_welch_a", "groups_welch_b"
ss = st.session_state


def _kind(group: group_stats.Group) -> str:
    if group.kind == "seeds":
        return f"{len(group.members)} seeds"
    return f"sweep of {group.setting} over {len(group.values())} values, {len(group.members)} runs"


def _table(groups: list[group_stats.Group]) -> pd.DataFrame:
    rows = []
    for group in groups:
        for row in group_stats.rows(group):
            sd = f" ± {row['sd']:.2%}" if row["n"] > 1 else " (1 run)"
            rows.append({"group": group.name,
                         "setting": "seeds only" if row["value"] is None
                         else f"{row['setting']} = {format_value(row['value'])}",
                         "n": row["n"], "test accuracy, mean ± sd": f"{row['mean']:.2%}{sd}",
                         "range": f"{row['min']:.2%} – {row['max']:.2%}", "models": ", ".join(row["models"])})
    return pd.DataFrame(rows)


def _sets(groups: list[group_stats.Group]) -> dict[str, list[group_stats.Member]]:
    """The sets of runs the curves and the t-test work on: a seed group whole, a sweep per value."""
    sets = {}
    for group in groups:
        if group.kind == "seeds":
            sets[group.label()] = group.members
        else:
            sets.update({group.label(v): group.at(v) for v in group.values()})
    return sets


def _sweeps(groups: list[group_stats.Group]) -> None:
    colors = charts.model_colors([g.name for g in groups])
    for group in (g for g in groups if g.kind == "sweep"):
        rows = group_stats.rows(group)
        runs = {v: [m.accuracy for m in group.at(v)] for v in group.values()}
        st.markdown(f"**{markdown_literal(group.name)}**: test accuracy against {markdown_literal(group.setting)}")
        st.plotly_chart(charts_groups.accuracy_vs_value(group.setting, rows, runs, colors[group.name]),
                        key=f"groups_sweep_{group.id}", config={"displayModeBar": False})


def _curves(sets: dict[str, list[group_stats.Member]]) -> None:
    metric = st.radio("Curve", ["accuracy", "loss"], horizontal=True, key=METRIC,
                      help="Training loss or accuracy as the runs learned (Keras's running mean over each epoch).")
    curves = {label: group_stats.mean_curve([m.metadata for m in members], metric) for label, members in sets.items()}
    st.plotly_chart(charts_groups.mean_curves(curves, metric), key="groups_curves", config={"displayModeBar": False})
    st.caption("Each line is the mean of a set's runs over the epochs all of them reached; the band is ± 1 "
               "standard deviation: how far seeds alone move a run.")


def _welch(sets: dict[str, list[group_stats.Member]]) -> None:
    testable = [label for label, members in sets.items() if len(members) >= 2]
    if len(testable) < 2:
        st.caption("Welch's t-test needs two sets of at least 2 runs each (two groups, or two values of a sweep).")
        return
    a, b = st.columns(2)
    first = a.selectbox("Compare", testable, key=SIDE_A)
    second = b.selectbox("with", [t for t in testable if t != first], key=SIDE_B)
    try:
        result = group_stats.welch([m.accuracy for m in sets[first]], [m.accuracy for m in sets[second]])
    except LabError as exc:
        st.info(f"{markdown_literal(first)} vs {markdown_literal(second)}: {exc}")
        return
    st.markdown(markdown_literal(group_stats.welch_sentence(first, second, result)))
    st.caption(f"t = {result['t']:.3f}, {result['df']:.1f} degrees of freedom (Welch: no equal-variance "
               "assumption). With few seeds only large differences can show; more seeds narrow it down.")


def render(picked: list[str], colors: dict[str, str]) -> None:
    """The section; `picked` (the models picked above) decides which groups are shown first. `colors` is the
    page's model colours: a group is many models, so groups get colours of their own."""
    entries = [(e.name, e.metadata) for e in cache.models() if e.ok]
    found = [g for g in group_stats.collect(entries) if len(g.members) >= 2]
    if not found:
        st.caption("No seed groups or sweeps saved yet. On Train, set **Repeat with seeds** above 1 or "
                   "**Vary one setting** to train one, and it appears here.")
        return
    found.sort(key=lambda g: not any(m.name in picked for m in g.members))  # stable: newest first otherwise
    names = {g.id: f"{g.name} ({_kind(g)})" for g in found}
    if PICK in ss:
        ss[PICK] = [gid for gid in ss[PICK] if gid in names]  # groups deleted since are dropped
    else:
        ss[PICK] = [g.id for g in found if any(m.name in picked for m in g.members)][:MAX_SHOWN] or \
            [g.id for g in found[:3]]
    chosen = st.multiselect("Groups", list(names), format_func=names.get, key=PICK, max_selections=MAX_SHOWN,
                            help=f"Every group with at least 2 saved runs; those of the models picked above first "
                                 f"(at most {MAX_SHOWN} at once).")
    groups = [g for g in found if g.id in chosen]
    if not groups:
        st.caption("Pick a group to see its runs.")
        return
    st.dataframe(_table(groups), hide_index=True)
    _sweeps(groups)
    sets = _sets(groups)
    _curves(sets)
    _welch(sets)
