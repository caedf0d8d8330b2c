"""Inspect page speed with a CNN (the shipped default model): seconds per change of input.

Usage: .venv/bin/python benchmarks/inspect_speed.py [--quick]

1. Core: everything the page computes for a new input (activations, layer table, feature maps, saliency,
   Grad-CAM, embedding, 8 neighbours among 10,000 training images, placement on the PCA map), with the
   per-model parts (helper models, neighbour index, map) built once beforehand, as the page caches them.
2. Page: /inspect in Streamlit's AppTest; after the first load fills the caches, the test-image index is
   changed N times (--quick: 3) and each full rerun is timed. Goal: under 2 s per change.
The registry is a temp folder holding a copy of the shipped default model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import common

GOAL_SECONDS = 2.0


def core_times(n: int) -> list[float]:
    import numpy as np

    from mnist_core import data, inspect, registry

    mnist = data.load()
    insp = inspect.Inspector(registry.load("default"))
    index = inspect.NeighbourIndex.build(insp, mnist.x_train, mnist.y_train, 10000)
    emap = inspect.embedding_map(insp, mnist.x_test, mnist.y_test, 2000)
    times = []
    for i in range(n + 1):
        x = mnist.x_test[100 + i] / 255.0
        t0 = time.perf_counter()
        acts = insp.activations(x)
        cls = int(acts["digits"].argmax())
        insp.layer_table(acts)
        insp.feature_maps(acts)
        insp.saliency(x, cls)
        insp.grad_cam(x, cls)
        e = insp.embed(x)[0]
        index.query(e, 8)
        emap.project(e)
        if i:  # the first call traces the functions; the page pays that once per model
            times.append(time.perf_counter() - t0)
    return [float(np.round(t, 4)) for t in times]


def page_times(n: int) -> tuple[float, list[float]]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(common.ROOT / "dashboard" / "app.py"), default_timeout=600)
    t0 = time.perf_counter()
    at.switch_page("views/inspect.py").run()
    first = time.perf_counter() - t0
    if at.exception:
        raise SystemExit(f"the Inspect page failed: {at.exception[0].message}")
    times = []
    for i in range(1, n + 1):
        t0 = time.perf_counter()
        at.number_input(key="inspect_index").set_value(100 + i).run()
        times.append(round(time.perf_counter() - t0, 3))
        if at.exception:
            raise SystemExit(f"the Inspect page failed: {at.exception[0].message}")
    return first, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 3 if args.quick else 10
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(common.ROOT / "saved_models" / "default", os.path.join(tmp, "default"))
        os.environ["MNIST_MODELS_DIR"] = tmp
        os.environ["MNIST_JOBS_DIR"] = os.path.join(tmp, ".jobs")
        core = core_times(n)
        first, page = page_times(n)
    load = os.getloadavg()[0]
    targets = [
        common.target("Inspect: page rerun per new input (CNN)", page, f"< {GOAL_SECONDS} s", "s",
                      common.statistics.median(page) < GOAL_SECONDS),
        common.target("Inspect: core compute per new input (CNN)", core, "-", "s", None),
    ]
    common.write("inspect_speed", targets, {"first_load_seconds": round(first, 2), "page_seconds": page,
                                            "core_seconds": core, "load_average_after": load}, args.quick)


if __name__ == "__main__":
    main()
