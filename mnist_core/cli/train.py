"""`train`: train a preset or a spec file, save it to the registry."""

from __future__ import annotations

import argparse
from dataclasses import replace

from mnist_core import spec as specs
from mnist_core.cli.common import stop_checker
from mnist_core.errors import LabError

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
