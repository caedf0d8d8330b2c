"""`test`: re-evaluate saved models on the 10,000 test images; a table, CSV or JSON."""

from __future__ import annotations

import csv
import json

from mnist_core.cli.common import print_table
from mnist_core.errors import LabError

COLUMNS = ["model", "test_loss", "test_accuracy", "stored_accuracy", "macro_f1"]


def add_parser(sub) -> None:
    p = sub.add_parser("test", help="re-evaluate saved models on the 10,000 test images")
    p.add_argument("--models", required=True, help="comma-separated model names")
    p.add_argument("--csv", help="also write the table to this CSV file")
    p.add_argument("--json", action="store_true")
    p.add_argument("--data")
    p.set_defaults(run=run)


def run(args, events) -> None:
    from mnist_core import data, evaluate, registry

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if not names:
        raise LabError("--models needs at least one model name")
    models = {n: registry.load(n) for n in names}  # every name checked before the slow part
    mnist = data.load(args.data)
    rows = []
    for name, model in models.items():
        stored = registry.read_metadata(name).get("test", {})
        result, _ = evaluate.evaluate(model, mnist.x_test, mnist.y_test)
        rows.append({"model": name, "test_loss": result["loss"], "test_accuracy": result["accuracy"],
                     "stored_accuracy": stored.get("accuracy"), "macro_f1": result["macro_f1"]})
    if args.csv:
        try:
            fh = open(args.csv, "w", newline="")
        except OSError as exc:
            raise LabError(f"--csv {args.csv}: cannot write ({exc.strerror or type(exc).__name__})") from None
        with fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_table(rows, COLUMNS)
