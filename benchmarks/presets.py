"""Train every preset with the project's own CLI and record its test accuracy and seconds per epoch.

Usage: .venv/bin/python benchmarks/presets.py [--quick] [--only a,b]
  --quick trains 1 epoch per preset (seconds per epoch only; accuracy is then not the preset's claim).
Writes benchmarks/results/presets.json. Models go to a temp registry, never to saved_models/.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import common  # noqa: E402

from mnist_core.presets import PRESETS  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "presets.json"

# Each preset's test accuracy before issue 15's speed work began: this file at git e85941a (2026-11-22), and
# best-cnn's median of 3 seeds from benchmarks/best_cnn.py at git 21f3979. The yardstick of "speed never costs
# accuracy": a preset may end at most ALLOWED_DROP below it; report.py checks.
ACCURACY_BEFORE_SPEED_WORK = {"mlp-2x128": 0.9721, "mlp-784-dropout": 0.9813, "mlp-2x28": 0.9615,
                              "mlp-2x512-dropout": 0.9847, "mlp-2x512": 0.9855, "keras-convnet": 0.9915,
                              "cnn-classic": 0.9912, "best-cnn": 0.9959}
ALLOWED_DROP = 0.001  # 0.1 point


def run(name: str, quick: bool, registry: Path) -> dict:
    events = registry / f"{name}.jsonl"
    cmd = [sys.executable, "-m", "mnist_core", "train", "--preset", name, "--name", f"bench-{name}",
           "--events", str(events), "--quiet"]
    if quick:
        cmd += ["--epochs", "1"]
    env = dict(os.environ, MNIST_MODELS_DIR=str(registry))
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    epochs = [r for r in rows if r["event"] == "epoch"]
    done = next(r for r in rows if r["event"] == "done")
    seconds = [e["seconds"] for e in epochs]
    return {
        "preset": name,
        "epochs": len(epochs),
        "test_accuracy": done["test_accuracy"],
        "precision": json.loads((registry / f"bench-{name}" / "metadata.json").read_text()).get("precision"),
        "claimed_accuracy": PRESETS[name].claimed_accuracy,
        "seconds_per_epoch_median": statistics.median(seconds),
        "seconds_per_epoch_range": [min(seconds), max(seconds)],
        "wall_seconds": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated preset names")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(PRESETS)
    # Results are merged per preset and written after each one, so a long run can be
    # done in parts (cnn-classic alone takes many minutes) and an interruption loses little.
    report = json.loads(OUT.read_text()) if OUT.exists() else {"benchmark": "presets", "results": {}}
    report["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform()}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            result = run(name, args.quick, Path(tmp))
            result["quick"] = args.quick
            result["load_average_after"] = os.getloadavg()[0]
            # Rows of one file come from different runs and machines, so each says where and when it was measured.
            result["machine"] = common.machine()
            result["created"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            report["results"][name] = result
            print(json.dumps(result), flush=True)
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(report, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
