import sys

from mnist_core.tf_quiet import use_lab_settings

use_lab_settings()  # before anything imports TensorFlow: quiet start-up, oneDNN's convolutions

from mnist_core.cli import main  # noqa: E402

sys.exit(main())
