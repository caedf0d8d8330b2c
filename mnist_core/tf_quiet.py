"""Import TensorFlow without its C++ start-up chatter.

TensorFlow prints oneDNN/CUDA notices to fd 2 before its logging is configured, so
TF_CPP_MIN_LOG_LEVEL cannot silence them; they would bury the CLI's one-line errors.
"""

import os
import sys


def import_tensorflow():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
