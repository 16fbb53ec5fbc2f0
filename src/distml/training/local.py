"""The local launcher: N worker processes on this machine, talking over loopback.

Its dry run lists each worker's command line and TF_CONFIG; ``run`` starts exactly those. Here we
write TF_CONFIG ourselves (on a cluster the Training Operator does): each worker gets
the same cluster (one free 127.0.0.1 port per worker) and its own task index. Workers run
in their own process groups; if one fails, or the launcher is cancelled, every group is
terminated, so no process outlives the run. When one worker dies its peers fail soon after
(their collective ops lose it), so the error names the worker that exited first.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distml.errors import DistmlError
from distml.folders import read_model_metrics
from distml.ports import free_ports
from distml.training.cancel import CANCEL_ENV, sigterm_cancels
from distml.training.launchers import DryRun, Launcher
from distml.training.worker import WorkerConfig, worker_args

#: Module every worker process runs, in both launchers.
WORKER_MODULE = "distml.training.worker"
TAIL_LINES = 20


class WorkerFailed(DistmlError):
    """A local worker exited non-zero; names it and carries its last log lines."""


def tf_config(ports: list[int], index: int) -> str:
    """TF_CONFIG of worker ``index`` in a cluster of loopback workers (worker 0 is the chief)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


@dataclass(frozen=True)
class WorkerProcess:
    """One local worker as it will be started: its name, command line and TF_CONFIG ("" for a lone worker)."""

    name: str
    argv: list[str]
    tf_config: str


def plan_workers(args: list[str], workers: int) -> list[WorkerProcess]:
    """The ``workers`` processes that run ``python -m distml.training.worker <args>``, with a free port each.

    A lone worker gets no TF_CONFIG (it trains alone, as a TFJob of one replica does).
    """
    if workers < 1:
        raise DistmlError(f"--workers must be at least 1 (got {workers})")
    ports = free_ports(workers) if workers > 1 else []
    argv = [sys.executable, "-m", WORKER_MODULE, *args]
    return [
        WorkerProcess(f"worker-{index}", argv, tf_config(ports, index) if ports else "") for index in range(workers)
    ]


def describe_workers(processes: list[WorkerProcess]) -> str:
    """The dry run's text: each worker's command line and TF_CONFIG, as a person would type them."""
    cluster = "on 127.0.0.1" if len(processes) > 1 else "alone (no TF_CONFIG)"
    lines = [f"# local launcher: {len(processes)} worker process(es) {cluster}; nothing was started"]
    for process in processes:
        lines.append(f"{process.name}:")
        lines.append(f"  command: {shlex.join(process.argv)}")
        if process.tf_config:
            lines.append(f"  TF_CONFIG: {process.tf_config}")
    return "\n".join(lines) + "\n"


def run_local_workers(
    worker_args: list[str],
    workers: int,
    *,
    log_dir: str | os.PathLike[str],
    progress: Callable[[str], None] | None = None,
    started: Callable[[dict[str, int]], None] | None = None,
    timeout: float | None = None,
) -> dict[str, Path]:
    """Run ``python -m distml.training.worker <worker_args>`` as ``workers`` processes; wait for all.

    See run_worker_processes for the logs, the progress and the failures.
    """
    return run_worker_processes(
        plan_workers(worker_args, workers), log_dir=log_dir, progress=progress, started=started, timeout=timeout
    )


def run_worker_processes(
    planned: list[WorkerProcess],
    *,
    log_dir: str | os.PathLike[str],
    progress: Callable[[str], None] | None = None,
    started: Callable[[dict[str, int]], None] | None = None,
    timeout: float | None = None,
) -> dict[str, Path]:
    """Start the planned workers (plan_workers) and wait for all.

    Each worker's output goes to ``<log_dir>/worker-<i>.log``; its progress lines (those
    starting with its name) are passed to ``progress``. ``started`` receives the workers'
    process ids. Returns the log files. Raises WorkerFailed when a worker fails (the others
    are stopped first), DistmlError on timeout; a SIGTERM stops every worker too.
    """
    logs = Path(log_dir)
    logs.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen] = {}
    exits: queue.Queue[str] = queue.Queue()
    readers: list[threading.Thread] = []
    report = _one_at_a_time(progress) if progress else None
    tails: dict[str, deque[str]] = {}
    with sigterm_cancels("the local training run"):  # also while stopping: a second SIGTERM must not kill us
        try:
            for plan in planned:
                name = plan.name
                env = {**os.environ, "PYTHONUNBUFFERED": "1"}
                env.pop("TF_CONFIG", None)
                env.pop(CANCEL_ENV, None)  # a worker ends on SIGTERM at once; this launcher stops it
                if plan.tf_config:
                    env["TF_CONFIG"] = plan.tf_config
                process = subprocess.Popen(
                    plan.argv,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    encoding="utf-8",
                    errors="replace",  # a stray byte must not end the reader (the worker would block on a full pipe)
                    env=env,
                    start_new_session=True,  # its own process group: stopping it stops its children too
                )
                processes[name] = process
                threading.Thread(target=_report_exit, args=(process, name, exits), daemon=True).start()
                tails[name] = deque(maxlen=TAIL_LINES)
                reader = threading.Thread(
                    target=_copy_output, args=(process, name, logs / f"{name}.log", tails[name], report), daemon=True
                )
                reader.start()
                readers.append(reader)
            if started:
                started({name: process.pid for name, process in processes.items()})
            _wait(processes, exits, tails, timeout, readers)
        finally:
            _stop(processes.values())
            for reader in readers:
                reader.join(timeout=5)
    return {name: logs / f"{name}.log" for name in processes}


def _report_exit(process: subprocess.Popen, name: str, exits: queue.Queue[str]) -> None:
    """Reap one worker and queue its name: the queue holds the workers in the order they exited."""
    process.wait()
    exits.put(name)


def _wait(
    processes: dict[str, subprocess.Popen],
    exits: queue.Queue[str],
    tails: dict[str, deque[str]],
    timeout: float | None,
    readers: list[threading.Thread],
) -> None:
    """Return when every worker exited 0; raise WorkerFailed for the first to exit non-zero, or on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    running = set(processes)
    while running:
        try:
            name = exits.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            # from None: queue.Empty says no more than the message
            raise DistmlError(f"training did not finish within {timeout:.0f} s; the workers were stopped") from None
        running.discard(name)
        code = processes[name].returncode
        if code != 0:
            _stop(processes.values())
            for reader in readers:
                reader.join(timeout=5)
            last = "\n".join(f"  | {line}" for line in tails[name]) or "  | (no output)"
            raise WorkerFailed(
                f"{name} exited with code {code}{_signal_name(code)}; "
                f"the other workers were stopped. Its last log lines:\n{last}"
            )


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f" (killed by {signal.Signals(-code).name})"
        except ValueError:
            return ""
    return ""


def _one_at_a_time(progress: Callable[[str], None]) -> Callable[[str], None]:
    """``progress`` behind a lock: every worker's reader thread calls it, and two prints at once interleave."""
    lock = threading.Lock()

    def report(line: str) -> None:
        with lock:
            progress(line)

    return report


def _copy_output(
    process: subprocess.Popen,
    name: str,
    log_file: Path,
    tail: deque[str],
    progress: Callable[[str], None] | None,
) -> None:
    """Copy a worker's output to its log file; pass its own progress lines on."""
    assert process.stdout is not None
    with log_file.open("w", encoding="utf-8") as log:
        for line in process.stdout:
            log.write(line)
            log.flush()
            text = line.rstrip("\n")
            tail.append(text)
            if progress and (text.startswith(f"{name} ") or text.startswith("error:")):
                progress(text)


def _stop(processes: Iterable[subprocess.Popen], grace: float = 5.0) -> None:
    """SIGTERM each running worker's process group, then SIGKILL what is left after ``grace``.

    Interrupted (a second SIGTERM or Ctrl-C while the workers shut down), it SIGKILLs at once:
    the workers run in their own sessions, so nothing else would stop them.
    """
    running = [process for process in processes if process.returncode is None]
    try:
        for process in running:
            _signal_group(process, signal.SIGTERM)
        end = time.monotonic() + grace
        for process in running:
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, end - time.monotonic()))
    finally:
        for process in running:
            if process.returncode is None:
                _signal_group(process, signal.SIGKILL)
    for process in running:
        process.wait()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    """Signal the group of a worker seen not yet reaped (a pid just freed is not reused at once)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


@dataclass(frozen=True)
class LocalRequest:
    """What the local launcher starts: the worker processes, and the config whose model folder they write."""

    config: WorkerConfig
    processes: list[WorkerProcess]


class LocalLauncher(Launcher):
    """Worker processes on this machine; ``log_dir`` keeps their logs (else a temporary folder does)."""

    name = "local"

    def __init__(self, *, options: Any | None = None, **settings: Any) -> None:
        if options is not None:
            raise DistmlError(
                "the local launcher takes no options",
                hint="ClusterOptions (image, namespace, placement) are for launcher=kubernetes.",
            )
        super().__init__(**settings)

    def dryrun(self, config: WorkerConfig, workers: int) -> DryRun[LocalRequest]:
        processes = plan_workers(worker_args(config), workers)
        return DryRun(self.name, LocalRequest(config, processes), describe_workers(processes))

    def schedule(self, dry_run: DryRun[LocalRequest]) -> dict[str, Any]:
        request: LocalRequest = self._own(dry_run)
        with tempfile.TemporaryDirectory(prefix="distml-train-logs-") as scratch:
            run_worker_processes(
                request.processes, log_dir=self.log_dir or scratch, progress=self.progress, timeout=self.timeout
            )
        return read_model_metrics(request.config.out)


LAUNCHER = LocalLauncher
