"""Compile the pipelines, run them on KFP's local runner, upload and submit them to a cluster.

The CLI (``distml compile|run|submit|upload``) and the notebooks call these functions; they
report progress through a callback (TaskProgress: task, state, elapsed) instead of printing.
"""

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
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import kfp
import kfp_server_api
import urllib3
from kfp import compiler, dsl, local
from kfp.dsl.graph_component import GraphComponent

from distml import __version__
from distml import pipelines as registry
from distml.errors import DistmlError
from distml.tolerations import tolerations_from_dicts
from distml.training.cancel import CANCEL_ENV, Cancelled, stop_descendants

FINAL_RUN_STATES = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"})
PROBE_TIMEOUT_S = 5.0
#: The oldest Kubeflow Pipelines backend that runs these pipelines: dsl.Collected of parameters and
#: artifacts came with kubeflow/pipelines commit ed828b513a "feat(backend/sdk): enable dsl.Collected
#: for parameters & artifacts (#11725)", first tagged 2.14.0.
MIN_KFP_BACKEND = (2, 14, 0)
DEFAULT_RUNS_DIR = Path("distml-runs")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class TaskProgress:
    """A task (or the whole run, task="run") changed state; elapsed since the run started."""

    task: str
    state: str
    elapsed_s: float
    seconds: float | None = None  # the task's own duration, once it finished


ProgressCallback = Callable[[TaskProgress], None]


# --- parameters -------------------------------------------------------------------------------


def _kind(type_name: str) -> str:
    """The Python kind of a declared KFP input type ('Integer', 'typing.List[int]', ...)."""
    simple = {"Integer": "int", "Float": "float", "Boolean": "bool", "String": "str"}
    if type_name in simple:
        return simple[type_name]
    if type_name == "List" or type_name.startswith("typing.List") or type_name.startswith("list"):
        return "list"
    if type_name == "Dict" or type_name.startswith("typing.Dict") or type_name.startswith("dict"):
        return "dict"
    return "artifact"


def parameter_kinds(pipeline: GraphComponent) -> dict[str, str]:
    """Each pipeline parameter with its Python kind: int, float, bool, str, list, dict or artifact."""
    return {name: _kind(str(spec.type)) for name, spec in pipeline.component_spec.inputs.items()}


def convert_param(pipeline: GraphComponent, key: str, text: str) -> Any:
    """TEXT converted to the declared type of parameter KEY (lists and dicts as JSON)."""
    kinds = parameter_kinds(pipeline)
    where = f"--param {key}"
    if key not in kinds:
        known = ", ".join(sorted(kinds)) or "none"
        raise DistmlError(f"{pipeline.name} has no parameter {key!r}", where=where, hint=f"Parameters: {known}")
    kind = kinds[key]
    if kind == "artifact":
        raise DistmlError(f"{key!r} is an artifact input, not a parameter", where=where)
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered in {"true", "1", "yes"}:
                return True
            if lowered in {"false", "0", "no"}:
                return False
            raise ValueError(text)
        if kind in {"list", "dict"}:
            value = json.loads(text)
            if not isinstance(value, list if kind == "list" else dict):
                raise ValueError(text)
            return value
    except ValueError:
        example = {"int": "3", "float": "0.5", "bool": "true", "list": "[1, 2]", "dict": '{"a": 1}'}[kind]
        raise DistmlError(
            f"{text!r} is not a valid {kind}", where=where, hint=f"Give a {kind}, e.g. {key}={example}"
        ) from None
    return text


def parse_params(pipeline: GraphComponent, items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as pipeline arguments of their declared types."""
    arguments: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise DistmlError(f"{item!r} is not KEY=VALUE", where="--param", hint="Write e.g. --param epochs=3")
        arguments[key.strip()] = convert_param(pipeline, key.strip(), text)
    return arguments


def check_arguments(pipeline: GraphComponent, arguments: Mapping[str, Any]) -> None:
    """Unknown names, missing required parameters and bad tolerations, caught before anything runs.

    A ``*tolerations`` list reaches KFP task pods unchecked (kfp.kubernetes passes it to the pod as
    it is), so it is checked here by the rules the train and deploy steps apply (distml.tolerations).
    """
    specs = pipeline.component_spec.inputs
    unknown = sorted(set(arguments) - set(specs))
    if unknown:
        raise DistmlError(
            f"{pipeline.name} has no parameter {', '.join(unknown)}", hint=f"Parameters: {', '.join(sorted(specs))}"
        )
    missing = sorted(name for name, spec in specs.items() if not spec.optional and name not in arguments)
    if missing:
        raise DistmlError(f"{pipeline.name} needs {', '.join(missing)}", hint="Give them with --param KEY=VALUE")
    for name, value in arguments.items():
        if name.endswith("tolerations"):
            tolerations_from_dicts(value, where=name)


# --- compile ----------------------------------------------------------------------------------


def compile_pipeline(pipeline: GraphComponent, path: Path) -> Path:
    """Compile to PATH through a temporary name, so a failed compile leaves no half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".partial-{path.name}")
    try:
        compiler.Compiler().compile(pipeline, str(partial))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def compile_all(out_dir: Path = registry.COMPILED_DIR) -> list[Path]:
    """Every pipeline of the registry as ``<out_dir>/<name>.yaml``."""
    return [compile_pipeline(pipeline, out_dir / f"{name}.yaml") for name, pipeline in registry.all_pipelines().items()]


def stale_files(compiled: Mapping[str, Any], out_dir: Path) -> list[str]:
    """What differs between a fresh compile of COMPILED (name -> pipeline or component) and OUT_DIR."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, item in compiled.items():
            fresh = compile_pipeline(item, Path(tmp) / f"{name}.yaml")
            committed = out_dir / f"{name}.yaml"
            if not committed.is_file():
                problems.append(f"{committed}: missing")
            elif committed.read_bytes() != fresh.read_bytes():
                problems.append(f"{committed}: differs from a fresh compile")
    extra = sorted(p for p in out_dir.glob("*.yaml") if p.stem not in compiled) if out_dir.is_dir() else []
    problems.extend(f"{path}: no pipeline or component of that name" for path in extra)
    return problems


# --- local runner -----------------------------------------------------------------------------


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

    def __init__(self, started: float, report: ProgressCallback) -> None:
        super().__init__()
        self._run_started = started
        self._report = report
        self._starts: dict[tuple[int | None, str], float] = {}  # (thread, task) -> when it started
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        message = _ANSI.sub("", record.getMessage())
        now = time.monotonic()
        elapsed = now - self._run_started
        with self._lock:
            if match := self._started.match(message):
                self._starts[record.thread, match["task"]] = now
                self._report(TaskProgress(match["task"], "RUNNING", elapsed))
            elif match := self._finished.match(message):
                seconds = now - self._starts.pop((record.thread, match["task"]), now)
                state = self._states.get(match["status"], match["status"])
                self._report(TaskProgress(match["task"], state, elapsed, seconds))
            elif match := self._skipped.match(message):
                self._report(TaskProgress(match["task"], "SKIPPED", elapsed))
        return True


class _Tee(io.TextIOBase):
    """Stands in for stdout during a local run: KFP's chatter (task output, executor inputs) goes to
    the log file, and to the terminal too if asked; progress callbacks print to the terminal.

    KFP prints from several threads at once (dsl.ParallelFor), so which way a write goes is decided
    per thread, never by swapping sys.stdout back and forth.
    """

    def __init__(self, log: io.TextIOBase, terminal: io.TextIOBase, echo: bool) -> None:
        self._log = log
        self._terminal = terminal
        self._echo = echo
        self._lock = threading.Lock()
        self._local = threading.local()

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
            self._log.write(_ANSI.sub("", text))
            if self._echo:
                self._terminal.write(text)
        return len(text)

    def flush(self) -> None:
        self._log.flush()
        self._terminal.flush()


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


def run_local(
    pipeline: str | GraphComponent,
    params: Mapping[str, Any] | None = None,
    *,
    out_dir: Path = DEFAULT_RUNS_DIR,
    on_progress: ProgressCallback | None = None,
    echo_logs: bool = False,
) -> LocalRun:
    """Run a pipeline (by registry name, or a pipeline function) on KFP's local subprocess runner.

    Each run gets its own folder under OUT_DIR: KFP's task folders, ``kfp-local.log`` (every
    task's own output; also shown on stdout with ECHO_LOGS) and ``run.json`` (summary). A
    failed task raises DistmlError naming it and the log; run.json then says FAILED.
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

        watcher = _TaskLogWatcher(started, report)
        root_logger.addFilter(watcher)
        original_level, original_handlers, original_print = root_logger.level, root_logger.handlers, builtins.print
        to_log = logging.StreamHandler(stdout)
        to_log.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))
        root_logger.handlers = [to_log]
        root_logger.setLevel(min(original_level or logging.INFO, logging.INFO))
        try:
            report(TaskProgress("run", "RUNNING", 0.0))
            with contextlib.redirect_stdout(stdout), _tasks_stopped_on_interrupt(f"the local run of {name}"):
                local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir / "tasks"))
                task = component(**arguments)
            run.state = "SUCCEEDED"
            run.outputs = {key: _as_result(value) for key, value in task.outputs.items()}
        except RuntimeError as err:  # KFP's way of saying a task failed
            run.state, run.error = "FAILED", _ANSI.sub("", str(err))
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


# --- cluster (Kubeflow Pipelines API) ---------------------------------------------------------


def _check_host(host: str) -> str:
    """Fail fast on a host that does not answer as a KFP 2.x API, naming it and what to check."""
    if not re.match(r"^https?://[^/\s]+", host):
        raise DistmlError(
            f"{_redacted(host)!r} is not an http(s) URL", where="--host", hint="Write e.g. --host http://localhost:8080"
        )
    host = host.rstrip("/")
    shown = _redacted(host)
    url = f"{host}/apis/v2beta1/healthz"
    reach_hint = (
        "Check the URL, that the cluster is up and that the KFP API is reachable from here "
        "(e.g. `kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`, then --host http://localhost:8080)"
    )
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            hint = "The API needs credentials: use a port-forward to ml-pipeline-ui, or run inside the cluster"
        else:
            hint = "Point --host at the Kubeflow Pipelines 2.x API (the ml-pipeline-ui service or the Kubeflow gateway)"
        raise DistmlError(f"{_redacted(url)} answered HTTP {err.code} {err.reason}", where=shown, hint=hint) from None
    except OSError as err:  # URLError, refused, DNS, timeout
        reason = getattr(err, "reason", err)
        raise DistmlError(
            f"cannot reach Kubeflow Pipelines at {shown}: {reason}", where="--host", hint=reach_hint
        ) from None
    try:
        health = json.loads(body)
    except ValueError:
        raise DistmlError(
            f"{_redacted(url)} did not answer with JSON (a login page or another service?)",
            where=shown,
            hint="Point --host at the Kubeflow Pipelines 2.x API; behind a login, use a port-forward to ml-pipeline-ui",
        ) from None
    check_backend_version(health.get("tag_name") if isinstance(health, dict) else None, shown)
    return host


def check_backend_version(tag_name: str | None, host: str) -> None:
    """Refuse a KFP backend older than MIN_KFP_BACKEND, read from healthz's ``tag_name``.

    The API server answers ``{"commit_sha", "tag_name", "multi_user", ...}`` with tag_name from its
    image's TAG_NAME (kubeflow/pipelines 2.17.0 backend/src/apiserver/main.go:465-490, backend/Dockerfile:65-66;
    2.14.0 main.go:318-320). A build without a release tag says "unknown": then nothing can be told, and
    the run goes ahead.
    """
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+.].*)?", (tag_name or "").strip())
    if match is None:
        return
    version = tuple(int(part) for part in match.groups())
    if version < MIN_KFP_BACKEND:
        minimum = ".".join(map(str, MIN_KFP_BACKEND))
        raise DistmlError(
            f"Kubeflow Pipelines {tag_name} is too old: these pipelines need backend {minimum} or newer "
            "(dsl.Collected of parameters and artifacts)",
            where=host,
            hint=f"Upgrade Kubeflow Pipelines to {minimum}+ (docs/cluster-setup.md says how to check the version).",
        )


def connect(host: str) -> kfp.Client:
    """A kfp.Client for HOST, after a quick check that HOST answers as a KFP API."""
    host = _check_host(host)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _api_errors(host, "connecting"):
        warnings.simplefilter("ignore", FutureWarning)
        return kfp.Client(host=host)


def _redacted(url: str) -> str:
    """``url`` without the password of ``scheme://user:password@host`` (shown as ``***``)."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^/\s@]*@", r"\1:***@", url)


@contextlib.contextmanager
def _api_errors(host: str, action: str) -> Iterator[None]:
    """KFP API failures as one line naming the host (no password), the HTTP status and the server's message."""
    host = _redacted(host)
    try:
        yield
    except kfp_server_api.ApiException as err:
        message = err.reason or ""
        with contextlib.suppress(ValueError, TypeError):
            body = json.loads(err.body or "")
            message = body.get("message") or body.get("error_message") or message
        raise DistmlError(f"{action} failed: HTTP {err.status}: {message}", where=host) from None
    except urllib3.exceptions.HTTPError as err:
        raise DistmlError(
            f"{action} failed: lost the connection ({err})",
            where=host,
            hint="Check that the KFP API is still reachable",
        ) from None


def _compiled(name: str, folder: str) -> tuple[GraphComponent, Path]:
    pipeline = registry.get_pipeline(name)
    return pipeline, compile_pipeline(pipeline, Path(folder) / f"{name}.yaml")


@dataclass
class Submission:
    """A run submitted to a cluster: its id, last known state and where to follow it."""

    run_id: str
    url: str
    state: str
    seconds: float = 0.0


def submit(
    name: str,
    host: str,
    experiment: str = "Default",
    params: Mapping[str, Any] | None = None,
    *,
    namespace: str | None = None,
    wait: bool = True,
    timeout_s: float | None = None,
    poll_s: float = 10.0,
    on_progress: ProgressCallback | None = None,
) -> Submission:
    """Compile NAME afresh (so DISTML_IMAGE applies), start a run in EXPERIMENT, and follow it.

    With WAIT, polls the run until it finishes, reporting the run's and each task's state
    changes; a run that ends other than SUCCEEDED raises DistmlError naming its failed tasks.
    A timeout leaves the run going on the cluster and says so.
    """
    arguments = dict(params or {})
    with tempfile.TemporaryDirectory() as tmp:
        pipeline, path = _compiled(name, tmp)
        check_arguments(pipeline, arguments)
        client = connect(host)
        host = host.rstrip("/")
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        with _api_errors(host, f"submitting {name}"), contextlib.redirect_stdout(io.StringIO()):
            result = client.create_run_from_pipeline_package(
                str(path),
                arguments=arguments,
                run_name=f"{name}-{stamp}",
                experiment_name=experiment,
                namespace=namespace,
            )
    run_url = f"{_redacted(host)}/#/runs/details/{result.run_id}"
    submission = Submission(run_id=result.run_id, url=run_url, state="PENDING")
    if wait:
        _follow(client, host, submission, timeout_s=timeout_s, poll_s=poll_s, on_progress=on_progress)
    return submission


def _follow(
    client: kfp.Client,
    host: str,
    submission: Submission,
    *,
    timeout_s: float | None,
    poll_s: float,
    on_progress: ProgressCallback | None,
) -> None:
    started = time.monotonic()
    seen: dict[str, str] = {}
    while True:
        with _api_errors(host, f"reading run {submission.run_id}"):
            run = client.get_run(submission.run_id)
        elapsed = time.monotonic() - started
        submission.state, submission.seconds = run.state or "PENDING", elapsed
        tasks = (run.run_details.task_details or []) if run.run_details else []
        changes = {"run": submission.state} | {t.display_name: t.state for t in tasks if t.display_name and t.state}
        for task, state in changes.items():
            if seen.get(task) != state:
                seen[task] = state
                if on_progress is not None:
                    on_progress(TaskProgress(task, state, elapsed))
        if submission.state in FINAL_RUN_STATES:
            break
        if timeout_s is not None and elapsed > timeout_s:
            raise DistmlError(
                f"run {submission.run_id} still {submission.state} after {elapsed:.0f}s",
                where=host,
                hint=f"It goes on running on the cluster: follow it at {submission.url}",
            )
        time.sleep(poll_s)
    if submission.state != "SUCCEEDED":
        failed = sorted({t.display_name for t in tasks if t.state == "FAILED" and t.display_name})
        detail = f"; failed tasks: {', '.join(failed)}" if failed else ""
        reason = f": {run.error.message}" if run.error and run.error.message else ""
        raise DistmlError(
            f"run {submission.run_id} finished {submission.state}{reason}{detail}",
            where=host,
            hint=f"See the task logs at {submission.url}",
        )


@dataclass
class Upload:
    """A pipeline (created=True) or a new version of it, as stored by KFP."""

    pipeline_id: str
    display_name: str
    created: bool
    version_id: str | None = None
    version_name: str | None = None
    url: str = ""


def default_version_name() -> str:
    """Package version plus UTC time: unique per upload, and says which code it came from."""
    return f"{__version__}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def upload(name: str, host: str, version: str | None = None, *, namespace: str | None = None) -> Upload:
    """Upload NAME so it shows in the KFP UI: a new pipeline, or version VERSION of the existing one.

    KFP names the first version of a new pipeline after the pipeline; VERSION (default: package
    version and time) names each later upload.
    """
    with tempfile.TemporaryDirectory() as tmp:
        pipeline, path = _compiled(name, tmp)
        client = connect(host)
        host = host.rstrip("/")
        name_filter = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})
        with _api_errors(host, f"uploading {name}"), contextlib.redirect_stdout(io.StringIO()):
            found = client.list_pipelines(filter=name_filter, namespace=namespace).pipelines or []
            if not found:
                created = client.upload_pipeline(
                    str(path), pipeline_name=name, description=pipeline.description, namespace=namespace
                )
                return Upload(
                    pipeline_id=created.pipeline_id,
                    display_name=name,
                    created=True,
                    url=f"{_redacted(host)}/#/pipelines/details/{created.pipeline_id}",
                )
            pipeline_id = found[0].pipeline_id
            added = client.upload_pipeline_version(
                str(path), pipeline_version_name=version or default_version_name(), pipeline_id=pipeline_id
            )
    return Upload(
        pipeline_id=pipeline_id,
        display_name=name,
        created=False,
        version_id=added.pipeline_version_id,
        version_name=added.display_name,
        url=f"{_redacted(host)}/#/pipelines/details/{pipeline_id}/version/{added.pipeline_version_id}",
    )
