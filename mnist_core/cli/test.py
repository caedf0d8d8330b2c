"""`test`: re-evaluate saved models on the 10,000 test images; a table, CSV or JSON. With --robustness:
each model's accuracy along every perturbation ladder (mnist_core.robustness), cached per model file."""

from __future__ import annotations

import csv
import json
import sys

from mnist_core.cli.common import print_table
from mnist_core.errors import LabError

COLUMNS = ["model", "test_loss", "test_accuracy", "stored_accuracy", "macro_f1"]
MAX_ROBUSTNESS_MODELS = 8  # each uncached model costs up to half a minute of CPU


def add_parser(sub) -> None:
    from mnist_core.robustness import SUBSET

    p = sub.add_parser("test", help="re-evaluate saved models on the 10,000 test images")
    p.add_argument("--models", required=True, help="comma-separated model names")
    p.add_argument("--csv", help="also write the table to this CSV file")
    p.add_argument("--json", action="store_true")
    p.add_argument("--data")
    p.add_argument("--robustness", action="store_true",
                   help=f"accuracy along each perturbation ladder (shift, rotation, ..., PGD) on a seeded subset of "
                        f"the test set, at most {MAX_ROBUSTNESS_MODELS} models; cached per model file")
    p.add_argument("--subset", type=int, default=SUBSET, help=f"test images for --robustness (default {SUBSET})")
    p.add_argument("--seed", type=int, default=0, help="seed of the --robustness subset and perturbations")
    p.set_defaults(run=run)


def model_names(text: str) -> list[str]:
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise LabError("--models needs at least one model name")
    return names


def run(args, events) -> None:
    if args.robustness:
        return run_robustness(args)
    from mnist_core import data, evaluate, registry

    names = model_names(args.models)
    models = {n: registry.load(n) for n in names}  # every name checked before the slow part
    mnist = data.load(args.data)
    rows = []
    for name, model in models.items():
        stored = registry.read_metadata(name).get("test", {})
        result, _ = evaluate.evaluate(model, mnist.x_test, mnist.y_test)
        rows.append({"model": name, "test_loss": result["loss"], "test_accuracy": result["accuracy"],
                     "stored_accuracy": stored.get("accuracy"), "macro_f1": result["macro_f1"]})
    if args.csv:
        write_csv(args.csv, rows, COLUMNS)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_table(rows, COLUMNS)


def write_csv(path: str, rows: list[dict], columns: list[str]) -> None:
    try:
        fh = open(path, "w", newline="")
    except OSError as exc:
        raise LabError(f"--csv {path}: cannot write ({exc.strerror or type(exc).__name__})") from None
    with fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def run_robustness(args) -> None:
    from mnist_core import data, registry, robustness

    names = model_names(args.models)
    if len(names) > MAX_ROBUSTNESS_MODELS:
        raise LabError(f"--robustness takes at most {MAX_ROBUSTNESS_MODELS} models; {len(names)} given")
    models = {n: registry.load(n) for n in names}  # every name checked before the slow part
    mnist = data.load(args.data)
    robustness.subset_indices(len(mnist.x_test), args.subset, args.seed)  # the bound, before any work
    results = {}
    for name, model in models.items():
        if robustness.cached(name, mnist, subset=args.subset, seed=args.seed) is None:
            print(f"measuring {name} along every ladder ({args.subset} test images)...", file=sys.stderr)
        results[name] = robustness.for_model(name, mnist, model=model, subset=args.subset, seed=args.seed)
    rows = robustness_rows(results)
    if args.csv:
        write_csv(args.csv, rows, ["perturbation", "level", "unit", *names])
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print_table(rows, ["perturbation", "level", "unit", *names])
    first = next(iter(results.values()))
    print(f"\nAccuracy on {first['subset']} test images (seed {first['seed']}), ladder {first['version']}. "
          "summary = mean over perturbations of the mean accuracy over each one's non-identity levels:")
    print_table([{"model": n, "clean": r["clean_accuracy"], "summary": r["summary"]} for n, r in results.items()],
                ["model", "clean", "summary"])


def robustness_rows(results: dict[str, dict]) -> list[dict]:
    """One row per perturbation and level, one accuracy column per model."""
    first = next(iter(results.values()))
    rows = []
    for name, ladder in first["perturbations"].items():
        for i, level in enumerate(ladder["levels"]):
            rows.append({"perturbation": name, "level": f"{level:g}", "unit": ladder["unit"],
                         **{model: r["perturbations"][name]["accuracy"][i] for model, r in results.items()}})
    return rows
