"""Levers on fast-cnn's whole process (`python -m mnist_core train --preset fast-cnn`, launch to exit): each
lever's run follows the plain run of the same seed, so the two see about the same load.

Usage: .venv/bin/python benchmarks/speed_levers.py [--seeds 0,1,2]
Writes results/speed_levers.json; report.py prints it as a table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import common
from time_to_accuracy import TARGET, cli_run

from mnist_core import precision, tf_quiet

LEVERS = {  # name: (extra CLI arguments, extra environment) for fast-cnn's whole process
    "plain": ([], {}),
    "bf16 mixed precision forced": ([], {precision.OVERRIDE_VARIABLE: precision.MIXED_BF16}),
    "batch 256": (["--batch-size", "256"], {}),
    "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)": ([], {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    # The lab asks for oneDNN's convolutions (mnist_core.tf_quiet); this is TensorFlow left to its own default.
    "TensorFlow's oneDNN default (MNIST_TENSORFLOW_DEFAULTS=1)": ([], {tf_quiet.TENSORFLOW_DEFAULTS: "1"}),
    "one inter-op thread (TF_NUM_INTEROP_THREADS=1)": ([], {"TF_NUM_INTEROP_THREADS": "1"}),
}


def levers(seeds: list[int]) -> None:
    """fast-cnn's whole process under each lever, interleaved round by round with the plain run."""
    runs = {name: [] for name in LEVERS}
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            for name, (args, env) in LEVERS.items():
                run = cli_run("fast-cnn", seed, Path(folder), args, env)
                print(f"  seed {seed} {name}: {run['seconds']:.1f} s, test {run['test_accuracy']:.4f}", flush=True)
                runs[name].append(run)
    common.write("speed_levers", targets_of(runs), {"seeds": seeds, "runs": runs}, quick=False)


def targets_of(runs: dict[str, list[dict]]) -> list[dict]:
    """The README rows of the levers' runs. A lever that asks for a precision its runs did not get says so:
    forcing bf16 on a CPU without bf16 instructions trains in float32, a second plain run, not a lever."""
    plain = runs["plain"]
    targets = []
    for lever, found in runs.items():
        asked = LEVERS[lever][1].get(precision.OVERRIDE_VARIABLE)
        used = sorted({str(r.get("precision")) for r in found})
        name = lever if asked in (None, *used) else f"{lever} (trained in {', '.join(used)}: no bf16 on this CPU)"
        ratios = [p["seconds"] / r["seconds"] for p, r in zip(plain, found, strict=True)]
        targets.append(common.target(f"fast-cnn whole process, {name}", [r["seconds"] for r in found],
                                     "(lever)", "s", None))
        if lever != "plain":
            targets.append(common.target(f"  speed-up of '{name}' over plain (same seed, same round)", ratios,
                                         "> 1 helps", "x", None))
        targets.append(common.target(f"  test accuracy, {name}", [r["test_accuracy"] for r in found],
                                     ">= 0.99 on every seed", "", all(r["test_accuracy"] >= TARGET for r in found)))
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--quick", action="store_true", help="seed 0 only")
    args = parser.parse_args()
    levers([0] if args.quick else [int(s) for s in args.seeds.split(",")])


if __name__ == "__main__":
    main()
