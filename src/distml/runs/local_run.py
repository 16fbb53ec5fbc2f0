"""Run a pipeline on KFP's local subprocess runner, with per-task progress and one folder per run."""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from kfp import dsl, local
from kfp.dsl.graph_component import GraphComponent

from distml import pipelines as registry
from distml.errors import DistmlError
from distml.runs.params import check_arguments
from distml.runs.progress import TaskProgress, TaskProgressCallback
from distml.training.cancel import CANCEL_ENV, Cancelled, stop_descendants

DEFAULT_RUNS_DIR = Path("distml-runs")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: The last line of a Python traceback: ``ValueError: ...``, ``distml.errors.DistmlError: ...``.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Cancelled)\b(?::|$)")
_MAX_CAUSE_CHARS = 500


def _shortened(text: str) -> str:
    return text if len(text) <= _MAX_CAUSE_CHARS else text[: _MAX_CAUSE_CHARS - 3] + "..."


@dataclass
class LocalRun:
    """Where a local run left its results, and what it produced."""

    pipeline: str
    run_dir: Path
    log_file: Path
    state: str = "RUNNING"
    seconds: float = 0.0
    arguments: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # the pipeline's own outputs; artifacts as paths
    task_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # task path -> output -> value or path
    tasks: list[TaskProgress] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what KFP's local runner ignored, each said once
    error: str | None = None

    def write_summary(self) -> Path:
        """``run.json`` beside the task folders: state, times, arguments and outputs."""
        summary = {
            **asdict(self),
            "run_dir": str(self.run_dir),
            "log_file": str(self.log_file),
            "tasks": [asdict(task) for task in self.tasks],
        }
        path = self.run_dir / "run.json"
        partial = path.with_name(".run.json.partial")
        partial.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        partial.replace(path)
        return path


class _TaskLogWatcher(logging.Filter):
    """Turns KFP local's per-task log records into TaskProgress events.

    KFP's local runner swaps the root logger's handlers for each message it logs, so this sits on
    the root logger as a filter (which KFP leaves alone) and lets every record through.

    The iterations of a ``dsl.ParallelFor`` log the same task name, each from its own thread
    (and a thread runs one task at a time), so a task's start and end are paired by thread:
    pairing them in order of start would give a later iteration that ends first the
    duration of an earlier one.
    """

    _started = re.compile(r"^Executing task '(?P<task>.+)'$")
    _finished = re.compile(r"^Task '(?P<task>.+)' finished with status (?P<status>\w+)$")
    _skipped = re.compile(r"^Skipping (?:conditional )?task (?P<task>\S+)")
    _states: ClassVar[dict[str, str]] = {"SUCCESS": "SUCCEEDED", "FAILURE": "FAILED"}

    def __init__(self, started: float, report: TaskProgressCallback, output: _Tee | None = None) -> None:
        super().__init__()
        self._run_started = started
        self._report = report
        self._output = output
        self._starts: dict[tuple[int | None, str], float] = {}  # (thread, task) -> when it started
        self._lock = threading.Lock()
        #: Each failed task with the last error lines of its own output, in the order they failed.
        self.failures: dict[str, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = _ANSI.sub("", record.getMessage())
        now = time.monotonic()
        elapsed = now - self._run_started
        with self._lock:
            if match := self._started.match(message):
                self._starts[record.thread, match["task"]] = now
                if self._output is not None and record.thread is not None:
                    self._output.forget_output(record.thread)
                self._report(TaskProgress(match["task"], "RUNNING", elapsed))
            elif match := self._finished.match(message):
                seconds = now - self._starts.pop((record.thread, match["task"]), now)
                state = self._states.get(match["status"], match["status"])
                if state == "FAILED" and self._output is not None and record.thread is not None:
                    cause = self._output.last_error(record.thread)
                    self.failures.setdefault(match["task"], cause or "no output")
                self._report(TaskProgress(match["task"], state, elapsed, seconds))
            elif match := self._skipped.match(message):
                self._report(TaskProgress(match["task"], "SKIPPED", elapsed))
        return True


class _Tee(io.TextIOBase):
    """Stands in for stdout during a local run: KFP's chatter (task output, executor inputs) goes to
    the log file, and to the terminal too if asked; progress callbacks print to the terminal.

    KFP prints from several threads at once (dsl.ParallelFor), so which way a write goes is decided
    per thread, never by swapping sys.stdout back and forth. A thread runs one task at a time and
    prints that task's output (kfp 2.17.0 kfp/local/subprocess_task_handler.py:108-136), so the last
    lines each thread wrote are the end of its task's output: what a failure shows of its cause.
    """

    _TAIL_LINES = 40

    def __init__(self, log: io.TextIOBase, terminal: io.TextIOBase, echo: bool) -> None:
        self._log = log
        self._terminal = terminal
        self._echo = echo
        self._lock = threading.Lock()
        self._local = threading.local()
        self._tails: dict[int, deque[str]] = {}  # thread -> its last non-blank lines
        self._partial: dict[int, str] = {}  # thread -> the start of a line not ended yet

    @contextlib.contextmanager
    def to_terminal(self) -> Iterator[None]:
        """Writes from this thread, inside the block, go to the terminal only."""
        self._local.to_terminal = True
        try:
            yield
        finally:
            self._local.to_terminal = False

    def write(self, text: str) -> int:
        with self._lock:
            if getattr(self._local, "to_terminal", False):
                self._terminal.write(text)
                return len(text)
            plain = _ANSI.sub("", text)
            self._log.write(plain)
            self._remember(plain)
            if self._echo:
                self._terminal.write(text)
        return len(text)

    def _remember(self, text: str) -> None:
        thread = threading.get_ident()
        *lines, self._partial[thread] = (self._partial.get(thread, "") + text).split("\n")
        tail = self._tails.setdefault(thread, deque(maxlen=self._TAIL_LINES))
        tail.extend(line.strip() for line in lines if line.strip())

    def forget_output(self, thread: int) -> None:
        """A new task starts in THREAD: what it wrote before belongs to another task."""
        with self._lock:
            self._tails.pop(thread, None)
            self._partial.pop(thread, None)

    def last_error(self, thread: int) -> str | None:
        """The error that ended the output of THREAD's task: its last exception line onwards, else its last line."""
        with self._lock:
            lines = [*self._tails.get(thread, ()), self._partial.get(thread, "").strip()]
        lines = [line for line in lines if line]
        for index in range(len(lines) - 1, -1, -1):
            if _EXCEPTION_LINE.match(lines[index]):
                return _shortened(" ".join(lines[index:]))
        return _shortened(lines[-1]) if lines else None

    def flush(self) -> None:
        self._log.flush()
        self._terminal.flush()


#: KFP's local runner warns for every task (kfp 2.17.0 kfp/local/subprocess_task_handler.py:79-84, the
#: image; kfp/local/orchestrator/task_executor.py:34-68, pod settings): what it says is about the runner.
_NOT_IN_IMAGE = re.compile(r"custom or non-Python base image")
_IGNORED_SETTINGS = re.compile(r"settings \[(?P<settings>[^\]]*)\] have no effect in the current local runner")
_RUNNER_WARNINGS = (r".*custom or non-Python base image", r"Task .* have no effect in the current local runner")


class _RunnerNotes:
    """Says once what KFP's local runner ignores, instead of its warning per task (dozens in a
    ParallelFor, between the progress lines); every other warning is shown as before."""

    def __init__(self, say: Callable[[str], None], show_other: Callable[..., None]) -> None:
        self._say = say
        self._show_other = show_other
        self._lock = threading.Lock()
        self.said: list[str] = []
        self._settings: set[str] = set()

    def showwarning(self, message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        text = str(message)
        with self._lock:
            if _NOT_IN_IMAGE.search(text):
                note = "KFP's local runner runs every task in this Python environment, not in its container image"
                if note in self.said:
                    return
            elif settings := _IGNORED_SETTINGS.search(text):
                new = [name.strip(" '\"") for name in settings["settings"].split(",")]
                new = [name for name in new if name and name not in self._settings]
                if not new:
                    return
                self._settings.update(new)
                note = f"KFP's local runner ignores the tasks' {', '.join(new)} settings (they apply on a cluster)"
            else:
                self._show_other(message, category, *args, **kwargs)
                return
            self.said.append(note)
        self._say(note)


@contextlib.contextmanager
def _runner_notes(say: Callable[[str], None]) -> Iterator[_RunnerNotes]:
    """Route the local runner's per-task warnings through one _RunnerNotes (from every thread) for the block."""
    with warnings.catch_warnings():
        for pattern in _RUNNER_WARNINGS:  # each one reaches the notes, whatever filters were set before
            warnings.filterwarnings("always", message=pattern)
        notes = _RunnerNotes(say, warnings.showwarning)
        warnings.showwarning = notes.showwarning
        yield notes


def _failure_summary(kfp_message: str, failures: Mapping[str, str]) -> str:
    """KFP's message plus the task that failed first and the error its output ended with.

    KFP names the failed task (``Inner task failed: 'measure' inside 'condition-1'``) but not why,
    and where the orchestration itself fails (a ValueError of its own) not even that; the cause
    is the end of the task's output, in the log.
    """
    if not failures:
        return kfp_message
    (task, cause), *others = failures.items()
    more = f" (and {len(others)} more failed task{'s' if len(others) > 1 else ''})" if others else ""
    return f"{kfp_message.rstrip('.')}; task {task}: {cause}{more}"


def _new_run_dir(out_dir: Path, name: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        run_dir = out_dir / (f"{name}-{stamp}" if attempt == 0 else f"{name}-{stamp}-{attempt}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise DistmlError(f"too many runs of {name} in {out_dir} this second", where=str(out_dir))


def _as_result(value: Any) -> Any:
    """Artifacts by their local path, everything else as it is."""
    if isinstance(value, dsl.Artifact):
        return value.uri
    if isinstance(value, list):
        return [_as_result(item) for item in value]
    return value


def _task_outputs(kfp_run_dir: Path) -> dict[str, dict[str, Any]]:
    """Outputs of every task, read from the executor_output.json KFP leaves in each task folder."""
    results: dict[str, dict[str, Any]] = {}
    for executor_output in sorted(kfp_run_dir.rglob("executor_output.json")):
        content = json.loads(executor_output.read_text())
        outputs: dict[str, Any] = dict(content.get("parameterValues", {}))
        for name, entry in content.get("artifacts", {}).items():
            uris = [artifact.get("uri") for artifact in entry.get("artifacts", [])]
            outputs[name] = uris[0] if len(uris) == 1 else uris
        results[executor_output.parent.relative_to(kfp_run_dir).as_posix()] = outputs
    return results


@contextlib.contextmanager
def _tasks_stopped_on_interrupt(what: str) -> Iterator[None]:
    """SIGTERM or SIGINT stops every task process (and all they started) before the run unwinds.

    KFP's local runner starts each task as a child process and waits for it from worker threads
    (kfp 2.17.0 kfp/local/subprocess_task_handler.py:116-136, orchestrator/enhanced_dag_orchestrator.py:266-315,
    ``executor.shutdown(wait=True)``), so an exception in the main thread alone would wait for every
    task to finish. The handler stops the whole process tree first, a reaper thread stops the tasks
    the runner still starts while it unwinds, and later signals are ignored until the clean-up is
    done. Tasks see ``DISTML_SIGTERM_CANCELS=1`` and so run their own clean-up on SIGTERM.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted: list[int] = []
    unwound = threading.Event()

    def reap() -> None:
        while not unwound.wait(0.1):
            stop_descendants(grace=1.0)

    def on_signal(signum: int, frame: object) -> None:
        if interrupted:
            return
        interrupted.append(signum)
        stop_descendants()
        threading.Thread(target=reap, daemon=True).start()
        raise KeyboardInterrupt if signum == signal.SIGINT else Cancelled(f"{what} was cancelled (SIGTERM)")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous_env = os.environ.get(CANCEL_ENV)
    os.environ[CANCEL_ENV] = "1"
    try:
        yield
        if interrupted:  # KFP turned the exception into a failed task: still a cancelled run
            raise KeyboardInterrupt if interrupted[0] == signal.SIGINT else Cancelled(f"{what} was cancelled (SIGTERM)")
    finally:
        unwound.set()
        if interrupted:
            stop_descendants(grace=1.0)
        if previous_env is None:
            os.environ.pop(CANCEL_ENV, None)
        else:
            os.environ[CANCEL_ENV] = previous_env
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_pipeline_locally(
    pipeline: str | GraphComponent,
    params: Mapping[str, Any] | None = None,
    *,
    out_dir: Path = DEFAULT_RUNS_DIR,
    on_progress: TaskProgressCallback | None = None,
    on_note: Callable[[str], None] | None = None,
    echo_logs: bool = False,
) -> LocalRun:
    """Run a pipeline (by registry name, or a pipeline function) on KFP's local subprocess runner.

    Each run gets its own folder under OUT_DIR: KFP's task folders, ``kfp-local.log`` (every
    task's own output; also shown on stdout with ECHO_LOGS) and ``run.json`` (summary). A
    failed task raises DistmlError naming it and the log; run.json then says FAILED. What the
    local runner ignores (the container image, accelerator settings) goes to ON_NOTE once, not
    as a warning per task.
    """
    component = registry.get_pipeline(pipeline) if isinstance(pipeline, str) else pipeline
    name = pipeline if isinstance(pipeline, str) else component.name
    arguments = dict(params or {})
    check_arguments(component, arguments)
    run_dir = _new_run_dir(Path(out_dir).resolve(), name)
    run = LocalRun(pipeline=name, run_dir=run_dir, log_file=run_dir / "kfp-local.log", arguments=arguments)

    started = time.monotonic()
    root_logger = logging.getLogger()
    with run.log_file.open("w") as log:
        stdout = _Tee(log, sys.stdout, echo=echo_logs)

        def report(progress: TaskProgress) -> None:
            run.tasks.append(progress)
            if on_progress is not None:
                with stdout.to_terminal():
                    on_progress(progress)

        def note(text: str) -> None:
            run.notes.append(text)
            stdout.write(f"note: {text}\n")  # into the log
            if on_note is not None:
                with stdout.to_terminal():
                    on_note(text)

        watcher = _TaskLogWatcher(started, report, output=stdout)
        root_logger.addFilter(watcher)
        original_level, original_handlers, original_print = root_logger.level, root_logger.handlers, builtins.print
        to_log = logging.StreamHandler(stdout)
        to_log.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))
        root_logger.handlers = [to_log]
        root_logger.setLevel(min(original_level or logging.INFO, logging.INFO))
        try:
            report(TaskProgress("run", "RUNNING", 0.0))
            with (
                contextlib.redirect_stdout(stdout),
                _runner_notes(note),
                _tasks_stopped_on_interrupt(f"the local run of {name}"),
            ):
                local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir / "tasks"))
                task = component(**arguments)
            run.state = "SUCCEEDED"
            run.outputs = {key: _as_result(value) for key, value in task.outputs.items()}
        except (RuntimeError, ValueError) as err:  # KFP's way of saying a task, or its orchestration, failed
            run.state, run.error = "FAILED", _failure_summary(_ANSI.sub("", str(err)), watcher.failures)
        except BaseException as err:  # interrupted, or a bug: keep the traceback, but say FAILED in run.json
            run.state, run.error = "FAILED", f"stopped by {type(err).__name__}: {err}"
            raise
        finally:
            # KFP saves and restores these around each message, which interleaving tasks (dsl.ParallelFor)
            # undo: records dropped or sent to a stray stderr handler, print left indented after the run.
            root_logger.removeFilter(watcher)
            root_logger.handlers = original_handlers
            root_logger.setLevel(original_level)
            builtins.print = original_print
            run.seconds = time.monotonic() - started
            tasks_dir = run_dir / "tasks"
            kfp_runs = sorted(p for p in tasks_dir.iterdir() if p.is_dir()) if tasks_dir.is_dir() else []
            if kfp_runs:
                run.task_outputs = _task_outputs(kfp_runs[-1])
            report(TaskProgress("run", run.state, run.seconds, run.seconds))
            run.write_summary()
    if run.state != "SUCCEEDED":
        raise DistmlError(
            f"pipeline {name} failed: {run.error}",
            where=str(run_dir),
            hint=f"The failing task's own output is in {run.log_file}",
        )
    return run
