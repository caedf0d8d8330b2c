"""A child process for the save tests (issue 5, case 4). It is killed or raced by the test, so it must be
its own process. Usage: python save_worker.py MODE SIGNAL_DIR [SEED]

  train-kill      the CLI's `train` on the fixture data; blocks inside the weight writer and says so
  overwrite-kill  registry.save(overwrite=True); blocks after moving the old model aside and says so
  race            waits for SIGNAL_DIR/go, then saves a model to "race-overwrite" with overwrite=True and
                  to "race" without (exit 0 saved both, 2 refused "race")
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

mode, signal_dir = sys.argv[1], Path(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0


def block_here() -> None:
    (signal_dir / "blocked").touch()  # the test SIGKILLs us once it sees this
    time.sleep(600)


def small_model(seed: int):
    import keras

    from mnist_core.build import build
    from mnist_core.spec import DenseLayer, ModelSpec

    keras.utils.set_random_seed(seed)
    return build(ModelSpec(kind="mlp", dense_layers=[DenseLayer(16)]))


if mode == "train-kill":
    import numpy as np
    from keras.src.saving import saving_lib

    from mnist_core import cli, data

    with np.load(ROOT / "tests" / "fixtures" / "mnist_small.npz") as npz:
        fixture = data.Mnist(npz["x_train"], npz["y_train"], npz["x_test"], npz["y_test"], source="fixture")
    data.load = lambda *a, **k: fixture
    saving_lib.H5IOStore.__setitem__ = lambda self, key, value: block_here()
    sys.exit(cli.main(["train", "--spec", str(signal_dir / "spec.json"), "--epochs", "1", "--batch-size", "64",
                       "--name", "fresh", "--quiet"]))

if mode == "overwrite-kill":
    from mnist_core import registry

    real_rename = os.rename

    def rename(src, dst):
        real_rename(src, dst)
        if Path(dst).name.startswith(".tmp-") and "-old-" in Path(dst).name:
            block_here()  # the old model is aside, the new one not yet in place

    model = small_model(seed)
    registry.os.rename = rename
    registry.save("keep", model, {"seed": seed}, overwrite=True)
    sys.exit(0)

if mode == "race":
    from mnist_core import registry
    from mnist_core.errors import LabError

    model = small_model(seed)
    (signal_dir / f"ready-{seed}").touch()
    while not (signal_dir / "go").exists():
        time.sleep(0.005)
    try:
        registry.save("race-overwrite", model, {"seed": seed}, overwrite=True)  # both win, one after the other
        registry.save("race", model, {"seed": seed})  # the second one to arrive is refused
    except LabError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    sys.exit(0)

sys.exit(f"unknown mode {mode}")
