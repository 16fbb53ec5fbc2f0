"""Upload pipelines to a Kubeflow Pipelines cluster, submit runs and follow them."""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kfp
import kfp_server_api
import urllib3
from kfp.dsl.graph_component import GraphComponent

from distml import __version__
from distml import pipelines as registry
from distml.errors import DistmlError
from distml.runs.compiled import compile_pipeline
from distml.runs.params import check_arguments
from distml.runs.progress import TaskProgress, TaskProgressCallback

FINAL_RUN_STATES = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"})
PROBE_TIMEOUT_S = 5.0
#: The oldest Kubeflow Pipelines backend that runs these pipelines: dsl.Collected of parameters and
#: artifacts came with kubeflow/pipelines commit ed828b513a "feat(backend/sdk): enable dsl.Collected
#: for parameters & artifacts (#11725)", first tagged 2.14.0.
MIN_KFP_BACKEND = (2, 14, 0)


def check_api_url(host: str) -> str:
    """HOST if it is an http(s) URL (without its trailing slash), else an error that shows the form."""
    if not re.match(r"^https?://[^/\s]+", host):
        raise DistmlError(
            f"{_redacted(host)!r} is not an http(s) URL", where="--host", hint="Write e.g. --host http://localhost:8080"
        )
    return host.rstrip("/")


def _check_host(host: str) -> str:
    """Fail fast on a host that does not answer as a KFP 2.x API, naming it and what to check."""
    host = check_api_url(host)
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
        raise DistmlError(f"{_redacted(url)} answered HTTP {err.code} {err.reason}", where=shown, hint=hint) from err
    except OSError as err:  # URLError, refused, DNS, timeout
        reason = getattr(err, "reason", err)
        raise DistmlError(
            f"cannot reach Kubeflow Pipelines at {shown}: {reason}", where="--host", hint=reach_hint
        ) from err
    try:
        health = json.loads(body)
    except ValueError as err:
        raise DistmlError(
            f"{_redacted(url)} did not answer with JSON (a login page or another service?)",
            where=shown,
            hint="Point --host at the Kubeflow Pipelines 2.x API; behind a login, use a port-forward to ml-pipeline-ui",
        ) from err
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
        raise DistmlError(f"{action} failed: HTTP {err.status}: {message}", where=host) from err
    except urllib3.exceptions.HTTPError as err:
        raise DistmlError(
            f"{action} failed: lost the connection ({err})",
            where=host,
            hint="Check that the KFP API is still reachable",
        ) from err


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
    on_progress: TaskProgressCallback | None = None,
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
    on_progress: TaskProgressCallback | None,
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
