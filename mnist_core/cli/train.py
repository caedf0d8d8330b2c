"""`train`: train a preset or a spec file, save it to the registry; with --seeds N and/or --vary SETTING=V1,V2,
a group of runs in one process, one after another (mnist_core.groups)."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from mnist_core import spec as specs
from mnist_core.cli.common import stop_checker
from mnist_core.errors import LabError

MAX_SEEDS = 10  # mnist_core.groups.MAX_SEEDS, repeated here so --help needs no import of numpy
OVERRIDES = ("epochs", "batch_size", "seed", "learning_rate", "validation_split", "patience")  # TrainConfig fields
EXIT_STOPPED = 3


def add_parser(sub) -> None:
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
    p.add_argument("--patience", type=int, help="early stopping: end once the validation loss has not improved "
                   "for this many epochs, keeping the best epoch's weights (0 = off)")
    p.add_argument("--data")
    p.add_argument("--seeds", type=int, help=f"train N runs with seeds s, s+1, ... (at most {MAX_SEEDS}) as one group")
    p.add_argument("--vary", metavar="SETTING=V1,V2,...", help="train one run per value of one setting, e.g. "
                   "dense_layers[0].dropout=0,0.2,0.5 (2 to 8 values; at most 10 runs with --seeds)")
    add_job_flags(p)
    p.add_argument("--dry-run", action="store_true", help="print the validated spec and config, train nothing")
    p.set_defaults(run=run)


def add_job_flags(p) -> None:
    """The flags every long command takes, so a background job can follow and stop it."""
    p.add_argument("--events", help="append every progress event to this JSON-lines file")
    p.add_argument("--stop-file", help="stop cleanly at the next batch once this file exists; if it says "
                   "'keep', keep the model at its best epoch so far")
    p.add_argument("--job-id", help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")


def inputs(args) -> tuple[specs.ModelSpec, specs.TrainConfig]:
    """The spec and config from --preset or --spec/--config, with the flag overrides applied; validated."""
    if args.preset and (args.spec or args.config):
        raise LabError("give either --preset or --spec/--config, not both")
    if args.preset:
        spec, config = specs.preset(args.preset).copy()
    elif args.spec:
        spec = specs.load_spec(args.spec)
        config = specs.load_config(args.config) if args.config else specs.TrainConfig()
    else:
        raise LabError("say what to train: --preset NAME or --spec FILE.json [--config FILE.json]")
    overrides = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k) is not None}
    return spec, replace(config, **overrides).validate()


def run(args, events) -> int | None:
    from mnist_core import registry

    spec, config = inputs(args)
    name = args.name if args.name is not None else registry.unique_name(args.preset or spec.describe())
    if args.seeds is not None or args.vary is not None:
        return run_group(args, spec, config, name, events)
    registry.check_free(name)
    should_stop, keep_on_stop = stop_checker(args.stop_file)
    if args.dry_run:
        print(specs.to_json(spec))
        print(specs.to_json(config))
        return None
    from mnist_core import data
    from mnist_core.train import train_and_save

    mnist = data.load(args.data)
    metadata = train_and_save(spec, config, name, events, should_stop, mnist, preset=args.preset,
                              keep_on_stop=keep_on_stop)
    return EXIT_STOPPED if metadata is None else None


def run_group(args, spec: specs.ModelSpec, config: specs.TrainConfig, name: str, events) -> int | None:
    """Every run of a seed group or sweep, one after another in this process, each saved as it ends.

    Each run's events carry "run" and "runs"; a "run" event opens each run; a run's own "done"/"stopped"
    become "run_done"/"run_stopped", so the job ends ("done" or "stopped") only once, after the last run.
    A stop ends the whole group; the runs already saved stay."""
    from mnist_core import groups

    setting, values = groups.parse_vary(args.vary, spec) if args.vary is not None else (None, None)
    runs = groups.plan(spec, config, name, seeds=1 if args.seeds is None else args.seeds, setting=setting,
                       values=values)
    should_stop, keep_on_stop = stop_checker(args.stop_file)
    if args.dry_run:
        for run in runs:
            value = f"  {setting.path}={groups.format_value(run.value)}" if setting else ""
            print(f"{run.index}/{len(runs)}  {run.name}  seed {run.config.seed}{value}")
        return None
    from mnist_core import data
    from mnist_core.train import train_and_save

    mnist = data.load(args.data)
    group_id, path = args.job_id or groups.new_group_id(), setting.path if setting else None
    started, saved = time.perf_counter(), []
    for run in runs:
        tag = {"run": run.index, "runs": len(runs)}

        def tagged(event: dict, tag=tag) -> None:
            kind = event.get("event")
            events({**event, **tag, "event": f"run_{kind}" if kind in ("done", "stopped") else kind})

        events({"event": "run", **tag, "name": run.name, "elapsed": time.perf_counter() - started})
        meta = train_and_save(run.spec, run.config, run.name, tagged, should_stop, mnist,
                              preset=None if setting else args.preset, keep_on_stop=keep_on_stop,
                              extra_metadata={"group": run.record(group_id, name, path, len(runs))})
        if meta is not None:
            saved.append(run.name)
            if not args.quiet:
                print(f"run {run.index}/{len(runs)}: saved {run.name}, test accuracy {meta['test']['accuracy']:.4f}",
                      flush=True)
        if should_stop():
            message = (f"stopped by request after {len(saved)} of {len(runs)} runs; "
                       + (f"saved: {', '.join(saved)}" if saved else "nothing was saved"))
            events({"event": "stopped", "message": message, "models": saved})
            return EXIT_STOPPED
    events({"event": "done", "name": name, "group": group_id, "models": saved, "runs": len(runs)})
    if not args.quiet:
        print(f"group {name}: {len(saved)} runs saved", flush=True)
    return None
