"""MNIST Model Lab core library: data, specs, training, registry, evaluation, inference.

No Streamlit here: the dashboard and the CLI are both thin layers over this package.
"""

__all__ = ["LabError"]

from mnist_core.errors import LabError  # noqa: E402
