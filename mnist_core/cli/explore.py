"""`explore`: hyperparameter search on Optuna: run or resume a study, list, delete, save the best trial."""

from __future__ import annotations

import argparse
import json

from mnist_core.cli.common import print_table, stop_checker
from mnist_core.cli.train import EXIT_STOPPED, add_job_flags
from mnist_core.errors import LabError
from mnist_core.explore import space as spaces
from mnist_core.explore import study as studies

EXIT_WORKER_FAILED = 1


def add_parser(sub) -> None:
    p = sub.add_parser("explore", help="hyperparameter search on Optuna: run, resume, list, save the best")
    p.add_argument("--study", help="study name; re-running the same command resumes it")
    p.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://user:pw@host/db (default: explore/studies.db)")
    p.add_argument("--trials", type=int, default=10, help="trials to add in this run, split between the workers "
                   "(a trial skipped for repeating tried parameters does not count)")
    p.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine: at most one per CPU "
                   "core, never over 4 (explore.workers.MAX_WORKERS), and no more than --trials")
    p.add_argument("--sampler", choices=studies.SAMPLERS, default="tpe")
    p.add_argument("--seed", type=int, help="sampler seed (worker i uses seed+i)")
    p.add_argument("--space", help="search space JSON: {\"rate\": [0.001, 0.01], \"dense\": {\"low\": 32, \"high\": 256}}")
    for dim, (_, what) in spaces.DIMENSIONS.items():
        p.add_argument(f"--{dim}", dest=f"dim_{dim}", metavar="V1,V2,...", help=f"values to try: {what}")
    p.add_argument("--train-limit", type=int, help=f"train each trial on the first N training images (default "
                   f"{spaces.DEFAULT_TRAIN_LIMIT}; 0 = all 60,000); fixed when the study is created")
    p.add_argument("--train-epochs", type=int, help=f"epochs per trial when --epochs is not searched "
                   f"(default {spaces.DEFAULT_EPOCHS}); fixed when the study is created")
    p.add_argument("--save-best", metavar="NAME", help="retrain the best trial on train+validation, save it as NAME")
    p.add_argument("--list", action="store_true", help="list the studies in the storage")
    p.add_argument("--delete", action="store_true", help="delete the study (saved models stay)")
    p.add_argument("--heartbeat", type=int, default=studies.HEARTBEAT_SECONDS,
                   help="seconds between worker heartbeats; a trial silent for 3 of them is marked failed")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--name", help=argparse.SUPPRESS)  # job label given by the jobs launcher
    add_job_flags(p)
    p.set_defaults(run=run)


def search_space(args) -> spaces.SearchSpace | None:
    """--space FILE and the per-dimension flags, merged (a flag overrides the file) and checked once;
    None if neither is given."""
    raw = spaces.load_space_file(args.space) if args.space else {}
    for dim in spaces.DIMENSIONS:
        text = getattr(args, f"dim_{dim}")
        if text is not None:
            raw[dim] = spaces.parse_values(dim, text)
    return spaces.validate(raw) if raw or args.space else None


def run(args, events) -> int | None:
    from mnist_core.explore import runner

    if args.list:
        rows = studies.list_studies(studies.open_storage(args.storage))
        print_table(rows, ["study", "trials", "best_val_accuracy", "started"]) if rows else print("no studies yet")
        return None
    if not args.study:
        raise LabError("say which study: --study NAME (or --list)")
    if args.delete:
        studies.delete_study(args.study, studies.open_storage(args.storage))
        print(f"deleted study {args.study}")
        return None
    should_stop, keep_on_stop = stop_checker(args.stop_file)
    if args.save_best:
        meta = runner.save_best(args.study, args.save_best, storage_url=args.storage, train_limit=args.train_limit,
                                on_event=events, should_stop=should_stop, keep_on_stop=keep_on_stop)
        if meta is None:
            return EXIT_STOPPED
        print(f"best trial {meta['explore']['trial']} retrained on {meta['explore']['train_images']:,} images "
              f"(train+validation) and saved as {args.save_best}")
        return None
    if args.worker:
        from mnist_core.explore import workers

        workers.die_with_parent()
        runner.work(args.study, args.storage, args.trials, args.sampler, args.seed, args.timeout, args.heartbeat,
                    should_stop)
        return None
    return _run_study(args, events, should_stop)


def _run_study(args, events, should_stop) -> int | None:
    from mnist_core.explore import runner, workers

    workers.check_workers(args.workers, args.trials)  # before anything starts
    checked = search_space(args)  # before the start event: a bad space is a failed start, nothing created
    events({"event": "start", "study": args.study})
    result = runner.run(args.study, storage_url=args.storage, search_space=checked, n_trials=args.trials,
                        workers=args.workers, sampler=args.sampler, seed=args.seed, timeout=args.timeout,
                        train_limit=args.train_limit, epochs=args.train_epochs, heartbeat=args.heartbeat,
                        should_stop=should_stop, stop_file=args.stop_file)
    print()
    rows = [{**r, "seconds": f"{r['seconds']:.1f}" if r["seconds"] is not None else None} for r in result.rows]
    if rows:
        print_table(rows, list(dict.fromkeys(k for r in rows for k in r)))
    try:
        number, value, params = studies.best_params(result.study)
        print(f"\nbest: trial {number}, validation accuracy {value:.4f}, params {json.dumps(params)}")
        print(f"keep it: python -m mnist_core explore --study {args.study} --save-best NAME")
    except LabError as exc:
        print(f"\n{exc}")
    skipped = sum(r["state"] == "skipped" for r in result.rows)
    message = f"{len(result.rows) - skipped} trials in the study"
    if skipped:
        message += f" ({skipped} more skipped as repeats)"
    if result.exhausted:
        message += "; every combination of its search space has been tried"
    events({"event": "stopped" if should_stop() else "done", "study": args.study, "message": message})
    return EXIT_WORKER_FAILED if any(result.worker_codes) else None
