"""Where the lab keeps things. Each location can be moved by an environment variable,
which is how the tests point the lab at throwaway folders."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _dir(env: str, default: Path) -> Path:
    return Path(os.environ.get(env) or default)


def cache_dir() -> Path:
    return _dir("MNIST_CACHE_DIR", PROJECT_ROOT / "data")


def models_dir() -> Path:
    return _dir("MNIST_MODELS_DIR", PROJECT_ROOT / "saved_models")


def jobs_dir() -> Path:
    return _dir("MNIST_JOBS_DIR", PROJECT_ROOT / "jobs")


def explore_dir() -> Path:
    """Hyperparameter studies (the embedded Optuna database) live here; git-ignored."""
    return _dir("MNIST_EXPLORE_DIR", PROJECT_ROOT / "explore")
