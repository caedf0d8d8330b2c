"""Hyperparameter search on Optuna (the `explore` command and page), in three parts:

- `space`: the dimensions a study may search, the one validator of a search space, one trial's model
- `study`: where studies live (SQLite or PostgreSQL), create/resume/list/delete, samplers, the trials table
- `runner`: the objective, the worker loop, worker processes, and retraining the best trial as a model

Callers import the parts: `from mnist_core.explore import space, study, runner`.
"""
