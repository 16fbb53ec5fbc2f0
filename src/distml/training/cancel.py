"""Cancellation: a SIGTERM (KFP cancelling a task, Kubernetes stopping a pod) becomes an exception.

Python's default SIGTERM ends the process at once, skipping ``finally`` blocks; raising
instead lets the launchers stop their workers or delete their TFJob, and staged output folders
remove themselves, on the way out. Every ``distml`` command runs inside ``sigterm_cancels``.

A process that started others it cannot reach through ``finally`` blocks (``distml run`` and
``demo``: KFP's local runner starts each task as a child process, and a task may start training
workers in their own sessions or a model server) stops its whole process tree with
``stop_descendants`` before raising. The tree is read from ``/proc`` (Linux); elsewhere it is empty.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from distml.errors import DistmlError


class Cancelled(DistmlError):
    """The launcher got SIGTERM; what it started has been stopped."""


#: Set to "1" in the environment of KFP task processes that ``distml run`` starts: their component
#: bodies import distml, which then turns SIGTERM into Cancelled (see distml/__init__.py).
CANCEL_ENV = "DISTML_SIGTERM_CANCELS"


@contextmanager
def sigterm_cancels(what: str, *, before: Callable[[], None] | None = None) -> Iterator[None]:
    """Within the block, the first SIGTERM raises Cancelled (main thread only; elsewhere a no-op).

    Later SIGTERMs within the block are ignored, so the clean-up that the first one set off
    (inside the block: stopping workers, deleting a TFJob) is not cut short by a second one.
    ``before`` runs in the handler, before the raise (e.g. ``stop_descendants``).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    cancelled = False

    def cancel(signum: int, frame: object) -> None:
        nonlocal cancelled
        if cancelled:
            return
        cancelled = True
        if before is not None:
            before()
        raise Cancelled(f"{what} was cancelled (SIGTERM); what it started has been stopped")

    previous = signal.signal(signal.SIGTERM, cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cancel_this_process_on_sigterm() -> None:
    """From now on the first SIGTERM raises Cancelled in the main thread (for KFP task processes).

    Later ones are ignored, so they cannot cut short the clean-up the first one set off.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def cancel(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Cancelled("the task was cancelled (SIGTERM); what it started has been stopped")

    signal.signal(signal.SIGTERM, cancel)


def descendants(pid: int | None = None) -> set[int]:
    """Every living process below ``pid`` (default: this one), following parent links in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else []:
        if not entry.name.isdigit():
            continue
        with suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] not in ("Z", "X"):  # a zombie is dead already
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    pending = [os.getpid() if pid is None else pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def stop_descendants(grace: float = 5.0) -> None:
    """SIGTERM every process below this one, SIGKILL those still alive after ``grace`` seconds.

    Processes that appear meanwhile (a task runner starting the next task) are signalled too; a
    process is remembered once seen, so one whose parent died first (re-parented to init) is not lost.
    """
    seen: set[int] = set()
    deadline = time.monotonic() + grace
    while True:
        new = descendants() - seen
        for pid in new:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        seen |= new
        if not any(_alive(pid) for pid in seen) or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for pid in seen | descendants():
        if _alive(pid):
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
