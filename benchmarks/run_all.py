"""Run every benchmark, then print one summary table: target, goal, measured median, range, met?

Usage: .venv/bin/python benchmarks/run_all.py [--quick] [--best] [--only a,b] [--table]
  --quick   pass --quick to every benchmark (a smoke run of a few minutes)
  --best    also train best-cnn (about 5-7 minutes more); otherwise its last stored result is shown
  --table   run nothing, just print the table from benchmarks/results/*.json
Results land in benchmarks/results/*.json; `benchmarks/report.py` puts them into README.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import common

BENCHMARKS = ("time_to_accuracy", "speed_levers", "fit_stall", "precision", "predict_latency", "stroke_latency", "stop_latency", "app_pages", "estimate", "job_overhead", "job_eta",
              "eval_throughput", "inspect_speed", "robustness", "export_latency")


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(common.HEADER)]
    line = "  ".join("-" * w for w in widths)
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(common.HEADER, widths, strict=True)))
    print(line)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--best", action="store_true")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    failed = []
    if not args.table:
        names = args.only.split(",") if args.only else list(BENCHMARKS)
        runs = [[f"{n}.py"] + (["--quick"] if args.quick else []) for n in names]
        if args.best:
            runs.append(["best_cnn.py"])
        for argv in runs:
            print(f"\n=== {' '.join(argv)}", flush=True)
            t0 = time.perf_counter()
            code = subprocess.call([sys.executable, str(common.ROOT / "benchmarks" / argv[0]), *argv[1:]],
                                   cwd=common.ROOT)
            print(f"=== {argv[0]}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.perf_counter() - t0:.0f} s",
                  flush=True)
            if code:
                failed.append(argv[0])
    results = common.load_results()
    print()
    print_table(common.table_rows(results))
    m = results[0]["machine"] if results else common.machine()
    print(f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gb']} GB RAM")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
