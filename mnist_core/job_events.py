"""A job's events file (events.jsonl): read its tail and keep only the events the job panel can draw.

The job writes one JSON object a line while it runs; a reader may see a half-written last line, a file
truncated or filled by something else, or events with missing numbers. None of these may crash a page.
"""

from __future__ import annotations

import json
from pathlib import Path

from mnist_core import fsutil

MAX_EVENT_BYTES = 8 * 1024 * 1024  # a status reads at most the last 8 MB of events (about 40,000 lines)
LIST_EVENT_BYTES = 64 * 1024  # a listing needs only the last events, to tell the state
# The numbers each event kind must carry for the panel to draw it; an event without them is skipped, not a crash.
EVENT_NUMBERS = {"batch": ("epoch", "batch", "steps", "loss", "accuracy", "elapsed"), "epoch": ("epoch",)}
OPTIONAL_NUMBERS = ("images", "elapsed", "seconds", "val_loss", "val_accuracy", "epochs", "steps_per_epoch")


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _well_formed(event) -> bool:
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return False
    return (all(is_number(event.get(k)) for k in EVENT_NUMBERS.get(event["event"], ()))
            and all(is_number(event[k]) for k in OPTIONAL_NUMBERS if event.get(k) is not None))


def read_events(path: Path, max_bytes: int = MAX_EVENT_BYTES) -> list[dict]:
    """The events in the last `max_bytes` of the file; a half-written last line waits for the next poll."""
    events = []
    try:
        lines = fsutil.read_tail_lines(path, max_bytes)
    except OSError:
        return []
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            break  # the writer is mid-line; the rest arrives on the next poll
        if _well_formed(event):
            events.append(event)
    return events
