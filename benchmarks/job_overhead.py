"""Training from the dashboard costs nothing extra: mnist_core.jobs.start against the plain CLI.

Usage: .venv/bin/python benchmarks/job_overhead.py [--quick]

The same tiny spec (one 32-unit hidden layer, 1 epoch on the full training set) is trained
alternately through `python -m mnist_core train --spec --config --name` and through jobs.start
(which runs that same command with --events and --stop-file, and is polled every 50 ms the way a
caller would). Each wall time runs from launch until the process has exited, for both alike: a job
reports "done" as soon as the model is saved, about 1.5 s before its process has torn TensorFlow
down, and stopping its clock there made jobs look 20% faster than the CLI. The time to "done" is
recorded too, as that is when the dashboard shows the result. Pairs are interleaved so both see the
same background load; the table gives the median and range of the per-pair ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

from mnist_core import jobs, registry  # noqa: E402
from mnist_core import spec as specs  # noqa: E402

GOAL = 1.10
SPEC = specs.ModelSpec(kind="mlp", dense_layers=[specs.DenseLayer(32)])
CONFIG = specs.TrainConfig(epochs=1, batch_size=128, seed=0)


def via_cli(folder: Path, name: str) -> float:
    (folder / "spec.json").write_text(specs.to_json(SPEC))
    (folder / "config.json").write_text(specs.to_json(CONFIG))
    cmd = [sys.executable, "-m", "mnist_core", "train", "--spec", str(folder / "spec.json"),
           "--config", str(folder / "config.json"), "--name", name, "--quiet"]
    t0 = time.perf_counter()
    # Its own session, like a command typed in a terminal and like a job: with the kernel's autogroup
    # scheduling a new session gets its own CPU share, so launching both alike keeps the comparison fair.
    subprocess.run(cmd, cwd=common.ROOT, check=True, stdout=subprocess.DEVNULL, start_new_session=True)
    return time.perf_counter() - t0


def via_job(name: str) -> tuple[float, float]:
    """(seconds to the process's exit, seconds to the job's "done" event)."""
    t0 = time.perf_counter()
    job = jobs.start_train(SPEC, CONFIG, name)
    final = jobs.wait(job.id, timeout=900, poll=0.05)
    to_done = time.perf_counter() - t0
    if final.state != "done":
        raise SystemExit(f"job {job.id} ended {final.state}: {final.message}")
    pid = json.loads((Path(os.environ["MNIST_JOBS_DIR"]) / job.id / jobs.INFO).read_text())["pid"]
    while True:  # the job's process is this process's child, so it can be waited for like the CLI's
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
        except ChildProcessError:  # already reaped by subprocess's own clean-up
            break
        time.sleep(0.05)
    return time.perf_counter() - t0, to_done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 pair instead of 5")
    args = parser.parse_args()
    pairs = 1 if args.quick else 5
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["MNIST_MODELS_DIR"] = str(root / "models")
        os.environ["MNIST_JOBS_DIR"] = str(root / "jobs")
        # Untimed: the first TensorFlow start after a while reads its libraries from disk (seen: 25 s
        # instead of 7 s), which would land on whichever side happened to go first.
        via_cli(root, "overhead-warm-up")
        for i in range(pairs):
            order = ("cli", "job") if i % 2 == 0 else ("job", "cli")  # alternate who goes first
            row = {}
            for how in order:
                name = f"overhead-{how}-{i}"
                if how == "cli":
                    row["cli"] = via_cli(root, name)
                else:
                    row["job"], row["job_to_done_event"] = via_job(name)
                assert registry.exists(name)
            row["ratio"] = row["job"] / row["cli"]
            rows.append(row)
            print(f"pair {i}: cli {row['cli']:.2f} s, job {row['job']:.2f} s (done event at "
                  f"{row['job_to_done_event']:.2f} s), ratio {row['ratio']:.3f}", flush=True)
    ratios = [r["ratio"] for r in rows]
    targets = [
        common.target("job / plain CLI wall time", ratios, f"<= {GOAL:.2f}", "x", statistics.median(ratios) <= GOAL),
        common.target("plain CLI wall time (tiny spec, 1 epoch)", [r["cli"] for r in rows], "(reference)", "s", None),
        common.target("job: launch to its done event (result shown)", [r["job_to_done_event"] for r in rows],
                      "(report)", "s", None),
    ]
    common.write("job_overhead", targets, {"pairs": rows, "spec": specs.to_dict(SPEC), "config": specs.to_dict(CONFIG)},
                 args.quick)


if __name__ == "__main__":
    main()
