"""Progress of a pipeline run, local or on a cluster: what the CLI and the notebooks print."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskProgress:
    """A task (or the whole run, task="run") changed state; elapsed since the run started."""

    task: str
    state: str
    elapsed_s: float
    seconds: float | None = None  # the task's own duration, once it finished


TaskProgressCallback = Callable[[TaskProgress], None]
