"""python -m mnist_core download|train|finetune|test|predict|models|explore

Every user mistake ends with one line on stderr and exit code 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from mnist_core.errors import LabError
from mnist_core.tf_quiet import import_tensorflow

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other bad input
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def _print_table(rows: list[dict], columns: list[str]) -> None:
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)))


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


# ---------- commands ----------


def cmd_download(args) -> None:
    from mnist_core import data

    t0 = time.perf_counter()
    mnist = data.load(args.data, on_status=lambda m: print(m, file=sys.stderr) if args.verbose else None)
    print(f"source: {mnist.source}  ({time.perf_counter() - t0:.2f} s)")
    print(f"cache:  {data.cache_path()}")
    for key, fname in data.FILES.items():
        print(f"sha256 {data.sha256_of(getattr(mnist, key))}  {fname}")


class _EventSink:
    """Prints epochs for people and, with --events, appends every event as one JSON line."""

    def __init__(self, events_path: str | None, quiet: bool):
        try:
            self.fh = open(events_path, "a", buffering=1) if events_path else None
        except OSError as exc:
            raise LabError(f"--events {events_path}: cannot write ({exc.strerror or type(exc).__name__})") from None
        self.quiet = quiet

    def __call__(self, event: dict) -> None:
        if self.fh:
            self.fh.write(json.dumps(event) + "\n")
        if self.quiet:
            return
        kind = event["event"]
        if kind == "start":
            print(f"training: {event['params']:,} parameters, {event['epochs']} epochs x {event['steps_per_epoch']} "
                  f"steps, {event['train_size']} train / {event['validation_size']} validation images", flush=True)
        elif kind == "epoch":
            print(f"epoch {event['epoch']:>3}  {event['seconds']:6.1f}s  loss {event['loss']:.4f}  "
                  f"acc {event['accuracy']:.4f}  val_loss {event.get('val_loss', float('nan')):.4f}  "
                  f"val_acc {event.get('val_accuracy', float('nan')):.4f}", flush=True)
        elif kind == "done":
            print(f"saved {event['name']}: test accuracy {event['test_accuracy']:.4f}, "
                  f"test loss {event['test_loss']:.4f}", flush=True)
        elif kind in ("stopped", "failed"):
            print(f"{kind}: {event.get('message', '')}", file=sys.stderr, flush=True)


def _train_inputs(args):
    from mnist_core import spec as specs

    if args.preset and (args.spec or args.config):
        raise LabError("give either --preset or --spec/--config, not both")
    if args.preset:
        spec, config = specs.preset(args.preset).copy()
    elif args.spec:
        spec = specs.load_spec(args.spec)
        config = specs.load_config(args.config) if args.config else specs.TrainConfig()
    else:
        raise LabError("say what to train: --preset NAME or --spec FILE.json [--config FILE.json]")
    overrides = {k: getattr(args, k) for k in ("epochs", "batch_size", "seed", "learning_rate", "validation_split")
                 if getattr(args, k) is not None}
    return spec, replace(config, **overrides).validate()


def cmd_train(args) -> None:
    from mnist_core import registry
    from mnist_core.spec import to_json

    spec, config = _train_inputs(args)
    name = args.name if args.name is not None else registry.unique_name(args.preset or spec.describe())
    registry.check_free(name)
    sink = _EventSink(args.events, args.quiet)
    should_stop = _stop_checker(args.stop_file)
    if args.dry_run:
        print(to_json(spec))
        print(to_json(config))
        return
    from mnist_core import data
    from mnist_core.train import train_and_save

    try:
        mnist = data.load(args.data)
        metadata = train_and_save(spec, config, name, sink, should_stop, mnist, preset=args.preset)
    except BaseException as exc:
        sink({"event": "failed", "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
        raise
    if metadata is None:
        sys.exit(3)


def _stop_checker(stop_file: str | None):
    """A should_stop() that turns true on SIGTERM/SIGINT or once `stop_file` exists: training ends at the next batch."""
    requested = False

    def on_signal(signum, frame):
        nonlocal requested
        requested = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    path = Path(stop_file) if stop_file else None
    return lambda: requested or bool(path and path.exists())


def cmd_finetune(args) -> None:
    from mnist_core import registry
    from mnist_core.finetune import fine_tune

    if not registry.exists(registry.check_name(args.parent)):
        raise LabError(f"no model named {args.parent!r}")
    name = args.name or registry.unique_name(f"{args.parent}-mine")
    sink = _EventSink(args.events, args.quiet)
    try:
        metadata = fine_tune(args.parent, name, epochs=args.epochs, learning_rate=args.learning_rate,
                             on_event=sink, should_stop=_stop_checker(args.stop_file))
    except BaseException as exc:
        sink.quiet = True  # the error is printed once, by main()
        sink({"event": "failed", "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
        raise
    if metadata is None:
        sys.exit(3)
    before, after = metadata["fine_tune"]["before"], metadata["fine_tune"]["after"]
    held = metadata["fine_tune"]["held_out"]
    print(f"my digits ({f'{held} held out' if held else 'the tuned ones'}) "
          f"{before['my_digits_accuracy']:.4f} -> {after['my_digits_accuracy']:.4f}, "
          f"MNIST test {before['mnist_test_accuracy']:.4f} -> {after['mnist_test_accuracy']:.4f}")


def cmd_test(args) -> None:
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
    columns = ["model", "test_loss", "test_accuracy", "stored_accuracy", "macro_f1"]
    if args.csv:
        try:
            fh = open(args.csv, "w", newline="")
        except OSError as exc:
            raise LabError(f"--csv {args.csv}: cannot write ({exc.strerror or type(exc).__name__})") from None
        with fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows, columns)


def _image_paths(items: list[str]) -> list[Path]:
    paths = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(c for c in p.iterdir() if c.suffix.lower() in IMAGE_SUFFIXES and c.is_file())
            if not found:
                raise LabError(f"{p}: no PNG, JPEG, BMP or GIF files in this folder")
            paths.extend(found)
        elif p.is_file():
            paths.append(p)
        else:
            raise LabError(f"{p}: no such file or folder")
    return paths


def cmd_predict(args) -> None:
    from mnist_core import preprocess
    from mnist_core.predict import Predictor

    paths = _image_paths(args.images)
    prepared = []
    for p in paths:  # every file is checked before any model is loaded
        if p.stat().st_size > preprocess.MAX_BYTES:  # checked before reading, so a huge file is never loaded
            raise LabError(f"{p.name}: the file is larger than {preprocess.MAX_BYTES // (1024 * 1024)} MB")
        item = preprocess.image_to_mnist(p.read_bytes(), p.name)
        if item.empty:
            raise LabError(f"{p.name}: {item.message}")
        prepared.append(item)
    predictor = Predictor.load(args.model)
    results = []
    for path, item in zip(paths, prepared, strict=False):
        pred = predictor.classify(item.input)
        results.append({"file": str(path), "prediction": pred.digit,
                        "probabilities": [round(float(v), 6) for v in pred.probabilities]})
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        probs = " ".join(f"{d}:{p:.3f}" for d, p in enumerate(r["probabilities"]))
        print(f"{r['file']}: {r['prediction']}  ({probs})")


def cmd_models(args) -> None:
    from mnist_core import registry

    if args.action == "rename":
        if len(args.names) != 2:
            raise LabError("usage: models rename OLD NEW")
        registry.rename(*args.names)
        print(f"renamed {args.names[0]} -> {args.names[1]}")
        return
    if args.action == "reimport":
        if len(args.names) != 1:
            raise LabError("usage: models reimport NAME")
        meta = registry.reimport(args.names[0])
        print(f"re-imported {args.names[0]}: test accuracy {meta['test']['accuracy']:.4f}, sha256 {meta['model_sha256']}")
        return
    if args.action == "delete":
        if len(args.names) != 1:
            raise LabError("usage: models delete NAME")
        registry.delete(args.names[0])
        print(f"deleted {args.names[0]}")
        return
    if args.names:
        raise LabError(f"unexpected arguments: {' '.join(args.names)}")
    rows = [e.row() for e in registry.list_models()]
    if args.json:
        print(json.dumps(rows, indent=1))
    elif not rows:
        print(f"no saved models in {registry.models_dir()}")
    else:
        _print_table(rows, ["name", "status", "type", "parameters", "test_accuracy", "epochs", "train_seconds",
                            "created", "reason"])


def _explore_space(args) -> dict | None:
    """--space FILE and the per-dimension flags, merged (a flag overrides the file); None if neither."""
    from mnist_core import search

    space = search.load_space(args.space) if args.space else {}
    for dim in search.DIMENSIONS:
        text = getattr(args, f"dim_{dim}")
        if text is not None:
            space[dim] = search.parse_values(dim, text)
    return space or None


def cmd_explore(args) -> None:
    from mnist_core import search

    if args.list:
        rows = search.list_studies(search.open_storage(args.storage))
        _print_table(rows, ["study", "trials", "best_val_accuracy", "started"]) if rows else print("no studies yet")
        return
    if not args.study:
        raise LabError("say which study: --study NAME (or --list)")
    should_stop = _stop_checker(args.stop_file)
    if args.delete:
        search.delete_study(args.study, search.open_storage(args.storage))
        print(f"deleted study {args.study}")
        return
    if args.save_best:
        sink = _EventSink(args.events, args.quiet)
        try:
            meta = search.save_best(args.study, args.save_best, storage_url=args.storage, train_limit=args.train_limit,
                                    on_event=sink, should_stop=should_stop)
        except BaseException as exc:  # into the events file for the page; main() prints the one line
            if sink.fh:
                sink.fh.write(json.dumps({"event": "failed", "message": str(exc).splitlines()[0] if str(exc)
                                          else type(exc).__name__}) + "\n")
            raise
        if meta is None:
            sys.exit(3)
        print(f"best trial {meta['explore']['trial']} retrained on {meta['explore']['train_images']:,} images "
              f"(train+validation) and saved as {args.save_best}")
        return
    if args.worker:
        search.work(args.study, args.storage, args.trials, args.sampler, args.seed, args.timeout, args.heartbeat,
                    should_stop)
        return
    events = open(args.events, "a", buffering=1) if args.events else None
    emit = (lambda e: events.write(json.dumps(e) + "\n")) if events else (lambda e: None)
    emit({"event": "start", "study": args.study})
    try:
        result = search.run(args.study, storage_url=args.storage, space=_explore_space(args), n_trials=args.trials,
                            workers=args.workers, sampler=args.sampler, seed=args.seed, timeout=args.timeout,
                            train_limit=args.train_limit, epochs=args.train_epochs, heartbeat=args.heartbeat,
                            should_stop=should_stop, stop_file=args.stop_file)
    except BaseException as exc:
        emit({"event": "failed", "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
        raise
    print()
    rows = [{**r, "seconds": f"{r['seconds']:.1f}" if r["seconds"] is not None else None} for r in result.rows]
    _print_table(rows, list(dict.fromkeys(k for r in rows for k in r)))
    try:
        number, value, params = search.best_params(result.study)
        print(f"\nbest: trial {number}, validation accuracy {value:.4f}, params {json.dumps(params)}")
        print(f"keep it: python -m mnist_core explore --study {args.study} --save-best NAME")
    except LabError as exc:
        print(f"\n{exc}")
    emit({"event": "stopped" if should_stop() else "done", "message": f"{len(result.rows)} trials in the study"})
    if any(result.worker_codes):
        sys.exit(1)


# ---------- parser ----------


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mnist_core", description="MNIST Model Lab, headless.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("download", help="fetch, verify and cache MNIST")
    p.add_argument("--data", help="folder or .npz to read MNIST from (also: MNIST_DATA)")
    p.add_argument("-v", "--verbose", action="store_true", help="say which sources were tried")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("train", help="train a preset or a spec and save it")
    p.add_argument("--preset")
    p.add_argument("--spec", help="ModelSpec JSON file")
    p.add_argument("--config", help="TrainConfig JSON file")
    p.add_argument("--name", help="registry name (default: derived from the preset or spec)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--validation-split", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--data")
    p.add_argument("--events", help="append every progress event to this JSON-lines file")
    p.add_argument("--stop-file", help="stop cleanly at the next batch once this file exists")
    p.add_argument("--job-id", help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="print the validated spec and config, train nothing")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("finetune", help="train a copy of a saved model on my digits mixed with MNIST, save it")
    p.add_argument("--parent", required=True, help="the saved model to start from (it stays unchanged)")
    p.add_argument("--name", help="name of the new model (default: PARENT-mine)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--events", help="append every progress event to this JSON-lines file")
    p.add_argument("--stop-file", help="stop cleanly at the next batch once this file exists")
    p.add_argument("--job-id", help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("test", help="re-evaluate saved models on the 10,000 test images")
    p.add_argument("--models", required=True, help="comma-separated model names")
    p.add_argument("--csv", help="also write the table to this CSV file")
    p.add_argument("--json", action="store_true")
    p.add_argument("--data")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("predict", help="classify image files or folders of images")
    p.add_argument("images", nargs="+")
    p.add_argument("--model", default="default")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("models", help="list saved models; models rename OLD NEW; models delete NAME; "
                       "models reimport NAME (accept a model.keras changed outside the lab, after safety checks)")
    p.add_argument("action", nargs="?", choices=["list", "rename", "delete", "reimport"], default="list")
    p.add_argument("names", nargs="*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    from mnist_core import search  # light: Optuna and TensorFlow load only when a command runs

    p = sub.add_parser("explore", help="hyperparameter search on Optuna: run, resume, list, save the best")
    p.add_argument("--study", help="study name; re-running the same command resumes it")
    p.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://user:pw@host/db (default: explore/studies.db)")
    p.add_argument("--trials", type=int, default=10, help="trials to add in this run, split between the workers")
    p.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--sampler", choices=search.SAMPLERS, default="tpe")
    p.add_argument("--seed", type=int, help="sampler seed (worker i uses seed+i)")
    p.add_argument("--space", help="search space JSON: {\"rate\": [0.001, 0.01], \"dense\": {\"low\": 32, \"high\": 256}}")
    for dim, (_, what) in search.DIMENSIONS.items():
        p.add_argument(f"--{dim}", dest=f"dim_{dim}", metavar="V1,V2,...", help=f"values to try: {what}")
    p.add_argument("--train-limit", type=int, help=f"train each trial on the first N training images (default "
                   f"{search.DEFAULT_TRAIN_LIMIT}; 0 = all 60,000); fixed when the study is created")
    p.add_argument("--train-epochs", type=int, help=f"epochs per trial when --epochs is not searched "
                   f"(default {search.DEFAULT_EPOCHS}); fixed when the study is created")
    p.add_argument("--save-best", metavar="NAME", help="retrain the best trial on train+validation, save it as NAME")
    p.add_argument("--list", action="store_true", help="list the studies in the storage")
    p.add_argument("--delete", action="store_true", help="delete the study (saved models stay)")
    p.add_argument("--heartbeat", type=int, default=search.HEARTBEAT_SECONDS,
                   help="seconds between worker heartbeats; a trial silent for 3 of them is marked failed")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--events", help=argparse.SUPPRESS)
    p.add_argument("--stop-file", help="stop cleanly once this file exists")
    p.add_argument("--name", help=argparse.SUPPRESS)  # job label given by jobs' launcher
    p.add_argument("--job-id", help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_explore)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = make_parser().parse_args(argv)
    try:
        if args.command not in ("download", "models"):
            import_tensorflow()
        args.func(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user mistake: still one line, traceback on request
        if os.environ.get("MNIST_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(set MNIST_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0
