"""Worker processes of an explore run: how many this machine allows, and dying with the run that started them."""

from __future__ import annotations

import os
import signal
import time

from mnist_core.errors import LabError

# Each worker process holds a TensorFlow runtime and its own training images (over 3 GB seen for 12 workers
# of one trial); more workers than cores only queue.
MAX_WORKERS = 4
PARENT_PID_ENV = "MNIST_EXPLORE_PARENT"  # a worker process's parent, to die with it
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def max_workers() -> int:
    """The most worker processes a run may start here: one per CPU core, and never over MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def check_workers(workers: int, n_trials: int) -> None:
    """Refuse, in one line, a worker count this machine cannot carry or that has no trial to run."""
    if n_trials < 1 or workers < 1:
        raise LabError("--trials and --workers must be at least 1")
    most = max_workers()
    if workers > most:
        raise LabError(f"--workers {workers}: at most {most} on this machine (one per CPU core, "
                       f"never over {MAX_WORKERS})")
    if workers > n_trials:
        raise LabError(f"--workers {workers} with --trials {n_trials}: a worker would have no trial; "
                       f"use --workers {n_trials} or fewer")


def die_with_parent() -> None:
    """In a worker process: die with the run that started it, even a SIGKILLed one, so no orphan trains on
    unseen. Linux: the kernel's SIGKILL on the parent's death (PR_SET_PDEATHSIG); elsewhere a polling thread."""
    import ctypes
    import threading

    expected = int(os.environ.get(PARENT_PID_ENV) or os.getppid())
    try:
        armed = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        armed = False
    if os.getppid() != expected:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_exit_when_orphaned, args=(expected,), daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
