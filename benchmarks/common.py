"""Shared by the benchmarks: the machine description, statistics, and the one result-file format.

Every benchmark writes benchmarks/results/<name>.json holding
  {"benchmark", "created", "quick", "machine", "targets": [row, ...], "details": {...}}
where each target row is {"target", "unit", "goal", "median", "min", "max", "n", "met"}.
run_all.py prints the rows as one table and report.py puts them in README.md.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from mnist_core.tf_quiet import use_lab_settings  # noqa: E402

use_lab_settings()  # benchmarks measure the lab as its jobs and pages run


@contextmanager
def scratch_lab() -> Iterator[Path]:
    """A throwaway registry and jobs folder for the jobs a benchmark launches (they inherit the environment)."""
    with tempfile.TemporaryDirectory() as root:
        os.environ["MNIST_MODELS_DIR"] = str(Path(root) / "models")
        os.environ["MNIST_JOBS_DIR"] = str(Path(root) / "jobs")
        yield Path(root)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    versions = {"python": platform.python_version()}
    for mod in ("tensorflow", "keras", "streamlit"):
        if mod in sys.modules:
            versions[mod] = getattr(sys.modules[mod], "__version__", "")
    return {"nproc": os.cpu_count(), "cpu": cpu, "simd": instruction_set(), "ram_gb": round(mem_kb / 2**20, 1),
            "load_average_1min": load, "system": platform.platform(), "versions": versions,
            "git_commit": _git_commit()}


# Machines called the same ("AMD EPYC", 2 cores) differ: a run measured with AVX2 alone took about 3x as
# long for the same robustness view as one with AVX-512, so each result says which it had.
REFERENCE_SIMD = "AVX-512 + BF16"  # the machine of every result written before the field existed


def instruction_set() -> str:
    """The widest vector instructions the CPU offers TensorFlow's kernels."""
    flags = set(next((line.split(":", 1)[1].split() for line in _read("/proc/cpuinfo").splitlines()
                      if line.startswith("flags")), []))
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return REFERENCE_SIMD
    return "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def percentile(values, q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def target(name: str, values, goal: str, unit: str, met: bool | None) -> dict:
    """One row of the summary table: the median and range of repeated measurements against a goal."""
    values = [float(v) for v in values if v is not None]
    return {"target": name, "unit": unit, "goal": goal,
            "median": statistics.median(values) if values else None,
            "min": min(values) if values else None, "max": max(values) if values else None,
            "n": len(values), "met": met}


def write(name: str, targets: list[dict], details: dict, quick: bool) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {"benchmark": name, "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "quick": quick, "machine": machine(), "targets": targets, "details": details}
    path.write_text(json.dumps(result, indent=1) + "\n")
    for row in targets:
        print(format_row(row))
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1 else f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def format_row(row: dict) -> str:
    met = {True: "yes", False: "NO", None: "n/a"}[row["met"]]
    return (f"{row['target']}: median {fmt(row['median'], row['unit'])} "
            f"(range {fmt(row['min'])}-{fmt(row['max'])}, n={row['n']}), goal {row['goal']}, met: {met}")


def load_results() -> list[dict]:
    """Every result file in the common format, in a fixed order (others in results/ are skipped)."""
    found = []
    for path in sorted(RESULTS.glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(result, dict) and "targets" in result:
            found.append(result)
    order = {name: i for i, name in enumerate(ORDER)}
    return sorted(found, key=lambda r: order.get(r["benchmark"], len(order)))


ORDER = ("time_to_accuracy", "best_cnn", "speed_levers", "fit_stall", "precision", "stroke_latency", "stop_latency", "predict_latency", "app_pages",
         "estimate", "job_overhead", "job_eta", "eval_throughput", "inspect_speed", "robustness", "export")


def table_rows(results: list[dict]) -> list[list[str]]:
    rows = []
    for result in results:
        missed = result.get("details", {}).get("keras_convnet_missed_target_for_seeds")
        for row in result["targets"]:
            name = row["target"]
            if missed and "speed-up" in name:
                cap = result["details"].get("keras_convnet_epoch_cap")
                name += (f" (a lower bound: keras-convnet had not reached 99.0% after {cap} epochs for "
                         f"{len(missed)} of {row['n']} seeds, so its full time counts)")
            rng = f"{fmt(row['min'])} - {fmt(row['max'])}" if row["n"] > 1 else "-"
            met = {True: "yes", False: "NO", None: ""}[row["met"]]
            rows.append([name, row["goal"], fmt(row["median"], row["unit"]), rng, str(row["n"]), met,
                         result["benchmark"] + (" (quick)" if result.get("quick") else "")])
    return rows


HEADER = ["target", "goal", "measured median", "range", "n", "met?", "benchmark"]


def proc_kb(pid: int | str, field: str) -> int:
    """A field of /proc/<pid>/status in kB (VmRSS, VmHWM: the peak resident memory, ...); pid "self" is this
    process. 0 when the process has ended or has no such field."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in text.splitlines() if line.startswith(field + ":")), 0)


def reset_peak() -> float:
    """Set this process's VmHWM back to its VmRSS (Linux's clear_refs 5), so a later peak is the work's own and
    not an earlier step's (loading MNIST peaks higher than most work). Returns the VmRSS it starts from."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return proc_kb("self", "VmRSS") / 1024
