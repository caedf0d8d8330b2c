"""Optuna's study charts in the lab's words: "validation accuracy", "trial", "epoch".

Optuna labels its figures for any objective ("Objective Value", "Trial", "Step", "Intermediate Value");
a study here always maximises validation accuracy, reported once per epoch, so the figures say so.
"""

from __future__ import annotations

import streamlit as st

TARGET = "validation accuracy"
HEIGHT = 420


def parallel_coordinates(study):
    from optuna import visualization as vis

    fig = vis.plot_parallel_coordinate(study, target_name=TARGET)
    fig.update_layout(title_text="Each trial's parameters and validation accuracy")
    return fig


def history(study):
    from optuna import visualization as vis

    fig = vis.plot_optimization_history(study, target_name=TARGET)
    fig.data = [t for t in fig.data if t.name != "Infeasible Trial"]  # always empty: lab studies have no constraints
    fig.for_each_trace(lambda t: t.update(name="best so far") if t.name == "Best Value" else None)
    fig.update_layout(title_text="Validation accuracy by trial", xaxis_title_text="trial",
                      yaxis_title_text=TARGET)
    return fig


def importances(study):
    from optuna import visualization as vis

    fig = vis.plot_param_importances(study, target_name=TARGET)
    fig.update_traces(hovertemplate="%{y}: %{x:.2f}<extra></extra>")  # Optuna's names the distribution class
    fig.update_layout(title_text="How much each parameter mattered to validation accuracy",
                      xaxis_title_text="importance (share of the variation in validation accuracy)",
                      yaxis_title_text="parameter")
    return fig


def learning_curves(study):
    from optuna import visualization as vis

    fig = vis.plot_intermediate_values(study)
    fig.for_each_trace(lambda t: t.update(name=f"trial {t.name.removeprefix('Trial')}")
                       if t.name and t.name.startswith("Trial") else None)
    fig.update_layout(title_text="Validation accuracy after each epoch (pruned trials end early)",
                      xaxis_title_text="epoch", yaxis_title_text=TARGET)
    return fig


CHARTS = {"Parallel coordinates": parallel_coordinates, "History": history, "Importances": importances,
          "Learning curves": learning_curves}


def show(study, key: str = "explore") -> None:
    """The four charts in tabs. A chart Optuna cannot draw yet (e.g. importances before two finished
    trials) says so in its tab."""
    for tab, build in zip(st.tabs(list(CHARTS)), CHARTS.values(), strict=True):
        with tab:
            try:
                fig = build(study)
            except Exception as exc:  # Optuna refuses until it has enough finished trials
                st.caption(f"Not available yet: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                continue
            fig.update_layout(height=HEIGHT, margin={"t": 40, "b": 10})
            st.plotly_chart(fig, key=f"{key}_{build.__name__}")
