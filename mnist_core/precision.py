"""Training precision: float32 by default; bfloat16 mixed precision on request, where the CPU has bf16
instructions.

Measured on this 2-core AMD EPYC (avx512_bf16), one training step, interleaved, mixed_bfloat16 vs float32
(`.venv/bin/python benchmarks/precision.py`): cnn-classic 2.2x and best-cnn 1.5x faster, while fast-cnn
(4 MFLOPs per image) ran 8% slower, because its small convolutions are memory-bound and the casts cost more
than the faster arithmetic saves. But best-cnn trained in bf16 ended at 99.43% on the test set (seed 0,
`benchmarks/best_cnn.py --seeds 0`) against 99.56-99.61% in float32 (seeds 0-2): more than the 0.1 point
the lab lets speed cost. So float32 stays the default, and bf16 is a choice:
  MNIST_PRECISION=mixed_bfloat16  bf16 for every model (float32 on a CPU without bf16 instructions)
  MNIST_PRECISION=auto            bf16 only for models of MIN_FORWARD_FLOPS or more per image, where it is faster
  MNIST_PRECISION=float32         the default

Mixed precision only changes how training computes: variables stay float32, and the model that is saved is
rebuilt in float32 with the trained weights (as_float32), so prediction, export and every cache see the same
kind of model whatever precision trained it. The precision used is recorded in the model's metadata.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras

from mnist_core import cost
from mnist_core.errors import LabError
from mnist_core.spec import ModelSpec

FLOAT32 = "float32"
MIXED_BF16 = "mixed_bfloat16"
AUTO = "auto"
PRECISIONS = (FLOAT32, MIXED_BF16)
DEFAULT = FLOAT32  # see the module docstring: bf16 cost best-cnn 0.2-0.3 points of test accuracy
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # oneDNN runs bf16 matmuls and convolutions natively with either
MIN_FORWARD_FLOPS = 8_000_000  # per image, for AUTO: best-cnn (15.4 M) gains, fast-cnn (3.4 M) loses
OVERRIDE_VARIABLE = "MNIST_PRECISION"


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def choose(spec: ModelSpec) -> str:
    """The precision to train `spec` in on this machine (see the module docstring)."""
    asked = os.environ.get(OVERRIDE_VARIABLE) or DEFAULT
    if asked not in (*PRECISIONS, AUTO):
        raise LabError(f"{OVERRIDE_VARIABLE}={asked!r} is not one of {', '.join((*PRECISIONS, AUTO))}")
    if asked == FLOAT32 or not cpu_has_bf16():
        return FLOAT32
    if asked == AUTO and cost.estimate(spec).forward_flops < MIN_FORWARD_FLOPS:
        return FLOAT32
    return MIXED_BF16


@contextmanager
def policy(name: str) -> Iterator[None]:
    """Keras's global dtype policy set to `name` while layers are built (they keep it), restored afterwards."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def as_float32(model: keras.Model, build_float32) -> keras.Model:
    """`model`'s weights in a float32 copy made by `build_float32()`; `model` itself if it is float32 already.
    A mixed-precision model's variables are float32, so the copy is exact."""
    if all(layer.dtype_policy.name == FLOAT32 for layer in model.layers):
        return model
    with policy(FLOAT32):
        copy = build_float32()
    copy.set_weights(model.get_weights())
    return copy
