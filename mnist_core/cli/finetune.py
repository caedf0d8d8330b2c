"""`finetune`: train a copy of a saved model on my digits mixed with MNIST, save it."""

from __future__ import annotations

from mnist_core.cli.common import stop_checker
from mnist_core.cli.train import EXIT_STOPPED, add_job_flags
from mnist_core.errors import LabError


def add_parser(sub) -> None:
    p = sub.add_parser("finetune", help="train a copy of a saved model on my digits mixed with MNIST, save it")
    p.add_argument("--parent", required=True, help="the saved model to start from (it stays unchanged)")
    p.add_argument("--name", help="name of the new model (default: PARENT-mine)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    add_job_flags(p)
    p.set_defaults(run=run)


def run(args, events) -> int | None:
    from mnist_core import registry
    from mnist_core.finetune import fine_tune

    if not registry.exists(registry.check_name(args.parent)):
        raise LabError(f"no model named {args.parent!r}")
    name = args.name or registry.unique_name(f"{args.parent}-mine")
    should_stop, _ = stop_checker(args.stop_file)  # a stopped fine-tune keeps nothing
    metadata = fine_tune(args.parent, name, epochs=args.epochs, learning_rate=args.learning_rate,
                         on_event=events, should_stop=should_stop)
    if metadata is None:
        return EXIT_STOPPED
    before, after = metadata["fine_tune"]["before"], metadata["fine_tune"]["after"]
    held = metadata["fine_tune"]["held_out"]
    print(f"my digits ({f'{held} held out' if held else 'the tuned ones'}) "
          f"{before['my_digits_accuracy']:.4f} -> {after['my_digits_accuracy']:.4f}, "
          f"MNIST test {before['mnist_test_accuracy']:.4f} -> {after['mnist_test_accuracy']:.4f}")
    return None
