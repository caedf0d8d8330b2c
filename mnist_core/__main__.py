import os
import sys

# TensorFlow's C++ start-up chatter is noise for CLI users; set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mnist_core.cli import main  # noqa: E402

sys.exit(main())
