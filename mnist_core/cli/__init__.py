"""python -m mnist_core download|train|finetune|test|predict|models|explore

One module per command, each with `add_parser(sub)` and `run(args, events)`. Every user mistake ends
with one line on stderr and exit code 2; nothing is half-written. A stopped run exits 3. A command that
fails writes one "failed" event (with --events), here in main().
"""

from __future__ import annotations

import os
import sys

from mnist_core import fsutil
from mnist_core.cli import common, download, explore, finetune, models, predict, test, train
from mnist_core.display import printable
from mnist_core.errors import LabError
from mnist_core.tf_quiet import import_tensorflow, use_lab_settings

COMMANDS = (download, train, finetune, test, predict, models, explore)
WITHOUT_TENSORFLOW = ("download", "models")
EXIT_USER_ERROR = 2


def make_parser() -> common.LabParser:
    parser = common.LabParser(prog="python -m mnist_core", description="MNIST Model Lab, headless.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=common.LabParser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    use_lab_settings()
    args = make_parser().parse_args(argv)
    events = None
    try:
        if args.command not in WITHOUT_TENSORFLOW:
            import_tensorflow()
        events = common.EventWriter(getattr(args, "events", None), getattr(args, "quiet", False))
        return args.run(args, events) or 0
    except LabError as exc:
        _record(events, exc)
        print(f"error: {printable(common.first_line(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        _record(events, exc)
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if said := fsutil.describe_os_error(exc):  # a full disk or a permission: the user's to fix, in words
            _record(events, LabError(said))
            print(f"error: {printable(said)}", file=sys.stderr)
            return EXIT_USER_ERROR
        # A bug, not a user mistake: the last resort, still one line, traceback on request.
        _record(events, exc)
        if os.environ.get("MNIST_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(set MNIST_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    finally:
        if events is not None:
            events.close()


def _record(events: common.EventWriter | None, exc: BaseException) -> None:
    if events is not None:
        events.failed(exc)  # never raises: on a full disk the failure is still printed
