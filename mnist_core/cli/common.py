"""What every command shares: the one-line argument errors, tables, the one event writer, the stop checker."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from mnist_core.errors import LabError

KEEP = "keep"  # stop-file text meaning "stop, and keep the model at its best epoch so far"
MAX_STOP_FILE_BYTES = 64  # the stop file holds one word; anything longer is not "keep"


class LabParser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other bad input
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def first_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line, or its class name if it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def print_table(rows: list[dict], columns: list[str]) -> None:
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


class EventWriter:
    """The one writer of a command's events: with --events, every event is one JSON line in that file (the
    job panel reads it); unless quiet, training events are also printed for people.

    `failed(exc)` writes the one "failed" line; main() calls it for every command that ends in an error,
    and prints the error itself, so the writer never prints a failure."""

    def __init__(self, events_path: str | None = None, quiet: bool = False):
        self.path, self.quiet, self.failed_written = events_path, quiet, False
        try:
            self.fh = open(events_path, "a", buffering=1) if events_path else None
        except OSError as exc:
            raise LabError(f"--events {events_path}: cannot write ({exc.strerror or type(exc).__name__})") from None

    def __call__(self, event: dict) -> None:
        if self.fh:
            self.fh.write(json.dumps(event) + "\n")
        if not self.quiet:
            _print_event(event)

    def failed(self, exc: BaseException) -> None:
        """Record the failure once, as {"event": "failed", "message": <one line>}."""
        if self.fh and not self.failed_written:
            self.failed_written = True
            try:
                self.fh.write(json.dumps({"event": "failed", "message": first_line(exc)}) + "\n")
            except OSError:
                pass  # the events file's disk is full or gone: main() still prints the failure

    def close(self) -> None:
        if self.fh:
            fh, self.fh = self.fh, None
            try:
                fh.close()
            except OSError:
                pass  # a last line that cannot be flushed (full disk) must not hide the command's own result


def _print_event(event: dict) -> None:
    kind = event.get("event")
    if kind == "start" and "params" in event:
        print(f"training: {event['params']:,} parameters, {event['epochs']} epochs x {event['steps_per_epoch']} "
              f"steps, {event['train_size']} train / {event['validation_size']} validation images", flush=True)
    elif kind == "epoch":
        print(f"epoch {event['epoch']:>3}  {event['seconds']:6.1f}s  loss {event['loss']:.4f}  "
              f"acc {event['accuracy']:.4f}  val_loss {event.get('val_loss', float('nan')):.4f}  "
              f"val_acc {event.get('val_accuracy', float('nan')):.4f}", flush=True)
    elif kind == "done" and "test_accuracy" in event:
        how = " (stopped early: the model at its best epoch so far)" if event.get("stopped_early") else ""
        print(f"saved {event['name']}{how}: test accuracy {event['test_accuracy']:.4f}, "
              f"test loss {event['test_loss']:.4f}", flush=True)
    elif kind == "stopped":
        print(f"stopped: {event.get('message', '')}", file=sys.stderr, flush=True)


def stop_checker(stop_file: str | None) -> tuple[Callable[[], bool], Callable[[], bool]]:
    """(should_stop, keep_on_stop) for a long command.

    should_stop() turns true on SIGTERM/SIGINT or once `stop_file` exists; the work ends at the next batch.
    keep_on_stop() says what the stop means: true only if the stop file's text is "keep" (whitespace
    ignored), i.e. "keep the model as it is at its best epoch so far". An empty file, other text, or a
    signal means discard."""
    requested = False

    def on_signal(signum, frame):
        nonlocal requested
        requested = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    path = Path(stop_file) if stop_file else None

    def should_stop() -> bool:
        return requested or bool(path and path.exists())

    def keep_on_stop() -> bool:
        return stop_file_says_keep(path) if path else False

    return should_stop, keep_on_stop


def stop_file_says_keep(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            text = fh.read(MAX_STOP_FILE_BYTES + 1)
    except OSError:
        return False
    return len(text) <= MAX_STOP_FILE_BYTES and text.decode(errors="replace").strip() == KEEP
