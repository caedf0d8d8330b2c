"""`models`: list the registry; rename, delete, or re-import a model; save an ensemble of saved models."""

from __future__ import annotations

import json

from mnist_core.cli import export as export_cli
from mnist_core.cli import importer as import_cli
from mnist_core.cli.common import print_table
from mnist_core.display import printable
from mnist_core.errors import LabError

COLUMNS = ["name", "status", "type", "parameters", "test_accuracy", "epochs", "train_seconds", "created", "reason"]


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list saved models; models rename OLD NEW; models delete NAME; "
                       "models reimport NAME (accept a model.keras changed outside the lab, after safety checks); "
                       "models ensemble A,B[,...] [--name N] (save their averaged probabilities as one entry); "
                       f"{export_cli.USAGE}; {import_cli.USAGE}; {import_cli.RESCALE_USAGE}")
    p.add_argument("action", nargs="?", choices=["list", "rename", "delete", "reimport", "ensemble", "export", "import", "rescale"],
                   default="list")
    p.add_argument("names", nargs="*")
    p.add_argument("--name", help="with ensemble: the new entry's name (default: ensemble-A-B-...); with import: "
                   "the imported model's name")
    p.add_argument("--json", action="store_true")
    export_cli.add_arguments(p)
    import_cli.add_arguments(p)
    p.set_defaults(run=run)


def _want(names: list[str], count: int, usage: str) -> None:
    if len(names) != count:
        raise LabError(f"usage: {usage}")


def run(args, events) -> None:
    from mnist_core import registry

    if args.action == "rename":
        _want(args.names, 2, "models rename OLD NEW")
        registry.rename(*args.names)
        print(f"renamed {args.names[0]} -> {args.names[1]}")
    elif args.action == "reimport":
        _want(args.names, 1, "models reimport NAME")
        from mnist_core.interop.reimport import reimport

        meta = reimport(args.names[0])
        print(f"re-imported {args.names[0]}: test accuracy {meta['test']['accuracy']:.4f}, "
              f"sha256 {meta['model_sha256']}")
    elif args.action == "ensemble":
        _want(args.names, 1, "models ensemble A,B[,...] [--name N]")
        _ensemble(args.names[0].split(","), args.name)
    elif args.action == "export":
        return export_cli.run(args)
    elif args.action in ("import", "rescale"):
        return import_cli.run(args) if args.action == "import" else import_cli.run_rescale(args)
    elif args.action == "delete":
        _want(args.names, 1, "models delete NAME")
        registry.delete(args.names[0])
        print(f"deleted {args.names[0]}")
    elif args.names:
        raise LabError(f"unexpected arguments: {' '.join(args.names)}")
    else:
        rows = [e.row() for e in registry.list_models()]
        if args.json:
            print(json.dumps(rows, indent=1))
        elif not rows:
            print(f"no saved models in {printable(registry.models_dir())}")
        else:  # a folder's name is data: a newline in it must not print a fake row, nor ESC clear the screen
            print_table([{k: printable(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows], COLUMNS)


def _ensemble(members: list[str], name: str | None) -> None:
    from mnist_core import ensemble, registry
    from mnist_core.tf_quiet import import_tensorflow

    members = [m.strip() for m in members]
    ensemble.check_members(members)  # bounds and names before TensorFlow loads
    if name is not None:
        registry.check_free(registry.check_name(name))
    import_tensorflow()
    meta = ensemble.save(members, name)
    print(f"saved {printable(meta['name'])} ({printable(meta['description'])}): "
          f"test accuracy {meta['test']['accuracy']:.4f}")
