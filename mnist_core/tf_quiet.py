"""Import TensorFlow without its C++ start-up chatter, and with the lab's settings.

TensorFlow prints oneDNN/CUDA notices to fd 2 before its logging is configured, so
TF_CPP_MIN_LOG_LEVEL cannot silence them; they would bury the CLI's one-line errors.
"""

import os
import sys

ONEDNN_OPTS = "TF_ENABLE_ONEDNN_OPTS"
# Set to 1, TensorFlow keeps its own oneDNN default: benchmarks run the Keras recipe so, as its users would.
TENSORFLOW_DEFAULTS = "MNIST_TENSORFLOW_DEFAULTS"
# Read once, when TensorFlow is imported; a value already in the environment wins.
SETTINGS = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # On a CPU with AVX2 alone, TensorFlow 2.21 ran the lab's convolutions through Eigen (oneDNN only as a
    # matrix multiply, one small one per image for each gradient) unless this is set explicitly; then they are
    # oneDNN's own convolution primitives. fast-cnn's whole process took 30.4, 26.4 and 31.3 s instead of 44.4,
    # 33.1 and 34.9 s (seeds 0-2, pairs run back to back; test 99.00, 99.04, 99.06%), seen with ONEDNN_VERBOSE=1.
    ONEDNN_OPTS: "1",
}


def use_lab_settings() -> None:
    """Before anything imports TensorFlow: the settings above, where the environment does not say otherwise."""
    keep_tensorflows = os.environ.get(TENSORFLOW_DEFAULTS) == "1"
    for name, value in SETTINGS.items():
        if not (keep_tensorflows and name == ONEDNN_OPTS):
            os.environ.setdefault(name, value)


def import_tensorflow():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    use_lab_settings()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.constant(0) + 0  # the first op initialises the runtime, which logs too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tf
