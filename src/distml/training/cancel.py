"""Cancellation: a SIGTERM (KFP cancelling a task, Kubernetes stopping a pod) becomes an exception.

Python's default SIGTERM ends the process at once, skipping ``finally`` blocks; raising
instead lets the launchers stop their workers or delete their TFJob on the way out.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from distml.errors import DistmlError


class Cancelled(DistmlError):
    """The launcher got SIGTERM; what it started has been stopped."""


@contextmanager
def sigterm_cancels(what: str) -> Iterator[None]:
    """Within the block, the first SIGTERM raises Cancelled (main thread only; elsewhere a no-op).

    Later SIGTERMs within the block are ignored, so the clean-up that the first one set off
    (inside the block: stopping workers, deleting a TFJob) is not cut short by a second one.
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
        raise Cancelled(f"{what} was cancelled (SIGTERM); what it started has been stopped")

    previous = signal.signal(signal.SIGTERM, cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
