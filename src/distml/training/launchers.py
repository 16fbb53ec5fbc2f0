"""The launchers by name: one interface, ``dryrun()`` then ``run()``, and a name → module map.

Every launcher answers ``dryrun(config, workers)`` with what it would start (the local one: each
worker process's command line and TF_CONFIG; the Kubernetes one: the TFJob manifest) and starts
nothing; ``run(config, workers)`` launches exactly that (``schedule(dryrun(...))``) and returns
the chief's metrics.json. This is TorchX's split of ``Scheduler.submit`` into ``submit_dryrun`` and
``schedule``, whose dry run is an ``AppDryRunInfo`` holding the request and a printable form
(pytorch/torchx@b72ba038 torchx/schedulers/api.py:130-152 ``submit``, :155 ``schedule``, :171
``submit_dryrun``; torchx/specs/api.py:741 ``AppDryRunInfo``).

LAUNCHER_MODULES maps a name to the module that defines it (its ``LAUNCHER`` class), imported only
when that launcher is asked for, as TorchX's ``DEFAULT_SCHEDULER_MODULES``
(torchx/schedulers/__init__.py:16, same commit): ``launch.train``, the train component's step, the run parameters'
check and ``distml train --launcher`` all read it, so a launcher added here is offered everywhere.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from distml.errors import DistmlError

if TYPE_CHECKING:
    from distml.training.worker import WorkerConfig

#: Progress of training, one line at a time (worker output, job conditions).
LineProgress = Callable[[str], None]

LAUNCHER_MODULES: dict[str, str] = {
    "local": "distml.training.local",
    "kubernetes": "distml.training.kubernetes",
}

Request = TypeVar("Request")


@dataclass(frozen=True)
class DryRun(Generic[Request]):
    """What a launcher would start: ``request`` is what ``schedule`` launches, ``text`` what a person reads."""

    launcher: str
    request: Request
    text: str

    def __str__(self) -> str:
        return self.text


class Launcher(ABC):
    """Runs a WorkerConfig on ``workers`` workers somewhere; subclasses say where.

    ``options`` are the launcher's own settings (the Kubernetes launcher's ClusterOptions; the local
    launcher takes none), ``progress`` receives progress lines, ``log_dir`` keeps the workers' logs
    (local) or a failed job's logs and events (Kubernetes), ``timeout`` bounds the run in seconds.
    """

    name: ClassVar[str]

    def __init__(
        self,
        *,
        options: Any | None = None,
        progress: LineProgress | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.options = options
        self.progress = progress
        self.log_dir = log_dir
        self.timeout = timeout

    @abstractmethod
    def dryrun(self, config: WorkerConfig, workers: int) -> DryRun[Any]:
        """What ``run`` would start for ``config`` on ``workers`` workers; starts nothing, calls no API."""

    @abstractmethod
    def schedule(self, dry_run: DryRun[Any]) -> dict[str, Any]:
        """Start what ``dry_run`` describes, wait for it and return the chief's metrics.json."""

    def run(self, config: WorkerConfig, workers: int) -> dict[str, Any]:
        """Train: launch exactly what ``dryrun`` shows."""
        return self.schedule(self.dryrun(config, workers))

    def _own(self, dry_run: DryRun[Any]) -> Any:
        """The request of a dry run made by this kind of launcher (another's request would be misread)."""
        if dry_run.launcher != self.name:
            raise DistmlError(f"the {self.name} launcher cannot run a dry run of the {dry_run.launcher} launcher")
        return dry_run.request


def launcher_names() -> tuple[str, ...]:
    """The launchers' names, in the map's order (the first is the default)."""
    return tuple(LAUNCHER_MODULES)


def launcher_class(name: str) -> type[Launcher]:
    """The class of launcher ``name``, or a DistmlError that lists the names."""
    if name not in LAUNCHER_MODULES:
        raise DistmlError(f"launcher {name!r} unknown", hint=f"Use one of: {', '.join(launcher_names())}.")
    return importlib.import_module(LAUNCHER_MODULES[name]).LAUNCHER


def create_launcher(name: str, **settings: Any) -> Launcher:
    """Launcher ``name`` with ``settings`` (options, progress, log_dir, timeout; see Launcher)."""
    return launcher_class(name)(**settings)
