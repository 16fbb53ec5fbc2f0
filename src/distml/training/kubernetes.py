"""The Kubernetes launcher: run a TrainingSpec as a TFJob and see it through.

``KubernetesLauncher`` is the launcher of distml.training.launchers: its dry run is the TFJob
manifest (no API call); ``run`` stages the data onto the shared volume, creates that TFJob through
``TFJobLauncher`` and copies the model back. ``ClusterOptions`` says where and how the job's pods run.

Unlike the TFJob launcher Kubeflow Pipelines once shipped, it names each run's job
uniquely and re-attaches to it when restarted, owns the job by the launching pod (when it
runs in one), follows the replicas' logs into its own log while the job runs, reports a
Failed job as a failure naming the failed replica with its last log lines and the events
(saved to files before the job is deleted), and deletes the job on timeout and on SIGTERM.
It talks to the API with the kubernetes client's CustomObjectsApi rather than
TrainingClient, whose errors hide the HTTP status we need to explain 403 and 404.

Why follow the logs: whenever the operator itself ends a job (backoffLimit, activeDeadline)
it deletes every pod before it writes Failed (training-operator v1.9.0
pkg/controller.v1/common/job.go:206-247), so reading the logs after Failed finds nothing.
Under our restartPolicy ExitCode a worker's own error keeps its pod (distml.training.spec),
and the report reads it; in every other case the lines followed while the job ran are what
is left.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from distml import kube
from distml.errors import DistmlError
from distml.folders import MODEL_METRICS, read_model_metrics
from distml.staging import staged_folder
from distml.training.cancel import sigterm_cancels
from distml.training.launchers import DryRun, Launcher
from distml.training.spec import PvcMount, TrainingSpec, worker_command
from distml.training.tfjob import (
    CONTAINER_NAME,
    JOB_NAME_LABEL,
    REPLICA_INDEX_LABEL,
    REPLICA_TYPE_LABEL,
    build_tfjob,
    job_name,
)
from distml.training.worker import WorkerConfig

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"
INSTALL_OPERATOR = (
    'kubectl apply --server-side -k "github.com/kubeflow/training-operator.git/'
    'manifests/overlays/standalone?ref=v1.9.0"'
)
TFJOBS = kube.CustomResource(
    kind="TFJob",
    group=GROUP,
    version=VERSION,
    plural=PLURAL,
    provider="Training Operator",
    install_hint=f"Install Training Operator v1.9: {INSTALL_OPERATOR}",
)
LOG_TAIL_LINES = 50
#: Seconds by which two log reads of a pod overlap; the lines read twice are dropped by their timestamp.
LOG_OVERLAP_S = 5
#: Statuses worth waiting out while polling: throttling and a busy or restarting API server.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class TrainingFailed(DistmlError):
    """The TFJob ended Failed (or did not finish in time); details were saved before deletion."""


@dataclass
class JobResult:
    """How a TFJob ended: its name, final state, seconds waited and whether it was re-attached."""

    name: str
    state: str
    seconds: float
    attached: bool


@dataclass
class ReplicaSeen:
    """One replica (``worker-1``) as the launcher saw it across its pods: restarts, last exit, last log lines."""

    name: str
    pod: str = ""
    uid: str = ""
    container_restarts: int = 0
    restarts: int = 0
    last_exit: str = ""  # "exit code 1 (Error)": the last non-zero termination seen
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))
    log_cursor: tuple[str, str] = ("", "")  # sort key and text of the last timestamp read from this pod
    read_at: float | None = None  # monotonic time of that read
    log_problem: str = ""  # why the last read failed, said once


class TFJobLauncher:
    """Create (or re-attach to) a TFJob, wait for it, clean up; ``api_client`` is a kubernetes ApiClient."""

    def __init__(
        self,
        api_client: Any,
        *,
        namespace: str,
        poll_interval: float = 10.0,
        progress: Callable[[str], None] | None = None,
        failure_dir: str | os.PathLike[str] | None = None,
        delete_when_done: bool = True,
    ) -> None:
        from kubernetes import client as k8s

        self.custom = k8s.CustomObjectsApi(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.namespace = namespace
        self.poll_interval = poll_interval
        self.progress = progress or (lambda line: None)
        self.failure_dir = Path(failure_dir) if failure_dir else None
        self.delete_when_done = delete_when_done
        self.replicas: dict[str, ReplicaSeen] = {}
        self._said_about_pods = ""

    def run(self, spec: TrainingSpec, *, name: str, timeout: float, owner: Any | None = None) -> JobResult:
        """Run the job to its end; raise TrainingFailed on Failed or timeout, Cancelled on SIGTERM."""
        job = build_tfjob(spec, name=name, namespace=self.namespace, owner=owner)
        restart_limit = job.spec.run_policy.backoff_limit
        started = time.monotonic()
        state = "Unknown"
        with sigterm_cancels(f"TFJob {name}"):  # around the clean-up too: a second SIGTERM must not skip it
            try:
                attached = self._create_or_attach(job, name)
                state, last_seen = self._wait(name, timeout, started, restart_limit)
                seconds = time.monotonic() - started
                if state == "Failed":
                    raise TrainingFailed(self._failure_report(name, last_seen))
            finally:  # after the failure report: the logs are read before the pods go
                if state != "Succeeded" or self.delete_when_done:
                    self._delete(name)
        return JobResult(name, state, seconds, attached)

    # ------------------------------------------------------------------ API calls

    def _create_or_attach(self, job: Any, name: str) -> bool:
        """True when a job of this name exists already (a restarted launcher): wait for it instead."""
        existing = self._find(name)
        if existing is not None:
            self.progress(f"tfjob {name}: already exists, re-attaching")
            return True
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, kube.manifest(job))
        except ApiException as err:
            if err.status == 409:  # created meanwhile by an earlier attempt of this run
                self.progress(f"tfjob {name}: already exists, re-attaching")
                return True
            raise kube.api_error(err, "create", TFJOBS, self.namespace, name) from err
        self.progress(f"tfjob {name}: created in namespace {self.namespace}")
        return False

    def _find(self, name: str) -> dict | None:
        """The job, or None when there is none of this name."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as err:
            if kube.object_missing(err, TFJOBS):
                return None
            raise kube.api_error(err, "get", TFJOBS, self.namespace, name) from err

    def _delete(self, name: str) -> None:
        """Delete the job; a failure to do so is reported, never raised (it would hide why we delete)."""
        from kubernetes import client as k8s
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, body=k8s.V1DeleteOptions(propagation_policy="Background")
            )
            self.progress(f"tfjob {name}: deleted")
        except ApiException as err:
            if err.status != 404:
                self.progress(f"tfjob {name}: could not delete it ({err.status} {err.reason}); delete it by hand")
        except _unreachable() as err:
            self.progress(f"tfjob {name}: could not delete it ({_unreachable_reason(err)}); delete it by hand")

    def _wait(self, name: str, timeout: float, started: float, restart_limit: int | None) -> tuple[str, dict]:
        """Poll until Succeeded or Failed, reporting state, elapsed time and replica counts when they change,
        and following the replicas' pods and logs.

        Returns the final state and the job as last seen. Raises TrainingFailed on timeout, and when the
        replicas restarted ``restart_limit`` times: the operator does not count the pods it recreates under
        restartPolicy ExitCode (it sums container restartCounts, 0 for pods that never restart in place,
        pkg/core/job.go:113-132; its other check needs NumRequeues of a FakeWorkQueue, always 0:
        pkg/controller.v1/common/job.go:176,197 and pkg/common/util/fake_workqueue.go:56), so we do.
        """
        last = None
        job: dict = {}
        while True:
            polled = self._poll(name)
            if polled is not None:
                job = polled
            status = job.get("status") or {}
            state = _state(status)
            elapsed = time.monotonic() - started
            line = f"{state} {_replica_counts(status)}"
            if line != last:
                self.progress(f"tfjob {name}: {line} elapsed={elapsed:.0f}s")
                last = line
            self._follow(name, job)
            if state in ("Succeeded", "Failed"):
                return state, job
            restarts = sum(replica.restarts for replica in self.replicas.values())
            if restart_limit is not None and restarts and restarts >= restart_limit:
                cause = f"its replicas restarted {restarts} times, reaching the limit of {restart_limit}"
                raise TrainingFailed(
                    self._failure_report(name, job, cause=cause),
                    hint="Fix what the log lines show; or allow more restarts (RunPolicy.restarts_per_replica).",
                )
            if elapsed > timeout:
                cause = f"it did not finish within {timeout:.0f} s (last state {state}); it was deleted"
                raise TrainingFailed(self._failure_report(name, job, cause=cause), hint=self._saved_hint())
            time.sleep(self.poll_interval)

    def _poll(self, name: str) -> dict | None:
        """The job, or None after a transient API error (logged): a flaky API server must not end the wait."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as err:
            if err.status in TRANSIENT_STATUSES:
                self.progress(f"tfjob {name}: API error {err.status} {err.reason}, retrying")
                return None
            if kube.object_missing(err, TFJOBS):
                raise TrainingFailed(
                    f"TFJob {name} was deleted while it ran (not by this launcher)",
                    where=f"namespace {self.namespace}",
                    hint="Check who deletes TFJobs there (a TTL, a cleanup job, a person), then run again.",
                ) from err
            raise kube.api_error(err, "get", TFJOBS, self.namespace, name) from err
        except _unreachable() as err:
            self.progress(f"tfjob {name}: {_unreachable_reason(err)}, retrying")
            return None

    # ------------------------------------------------------------------ following the replicas

    def _follow(self, name: str, job: dict) -> None:
        """Look at the job's pods: count restarts, keep exits, and copy new log lines into our log."""
        for pod in self._pods(name):
            replica = self._observe(name, pod)
            if replica is not None and pod.status is not None and pod.status.phase != "Pending":
                self._read_new_lines(replica)

    def _observe(self, name: str, pod: Any) -> ReplicaSeen | None:
        """Update what we know of the pod's replica; report a replaced pod or a restarted container."""
        key = _replica_key(pod)
        replica = self.replicas.setdefault(key, ReplicaSeen(key))
        uid = pod.metadata.uid or pod.metadata.name
        restarts = sum(c.restart_count or 0 for c in (pod.status.container_statuses if pod.status else None) or [])
        if replica.uid and uid != replica.uid:
            # ExitCode: the operator deleted the pod of a retryable exit and made a new one (pod.go:350-366).
            replica.restarts += 1
            replica.log_cursor, replica.read_at, replica.container_restarts = ("", ""), None, 0
            self.progress(f"tfjob {name}: {key} restarted in a new pod (restarts so far: {replica.restarts})")
        elif restarts > replica.container_restarts:
            # OnFailure: the kubelet restarted the container in place; its last lines are in the previous log.
            replica.restarts += restarts - replica.container_restarts
            self._read_new_lines(replica, previous=True)
            self.progress(f"tfjob {name}: {key} restarted in place (restarts so far: {replica.restarts})")
        replica.uid, replica.pod, replica.container_restarts = uid, pod.metadata.name, restarts
        replica.last_exit = _last_exit(pod) or replica.last_exit
        return replica

    def _read_new_lines(self, replica: ReplicaSeen, *, previous: bool = False) -> None:
        """Read the pod's log since the last read (with some overlap, dropped by timestamp) into our log."""
        from kubernetes.client.exceptions import ApiException

        options: dict[str, Any] = {"container": CONTAINER_NAME, "timestamps": True, "previous": previous}
        if replica.read_at is not None:
            options["since_seconds"] = int(time.monotonic() - replica.read_at) + LOG_OVERLAP_S
        read_at = time.monotonic()
        try:
            text = self.core.read_namespaced_pod_log(replica.pod, self.namespace, **options) or ""
        except ApiException as err:
            self._log_problem(replica, f"{err.status} {kube.api_message(err)}")
            return
        except _unreachable() as err:
            self._log_problem(replica, _unreachable_reason(err))
            return
        replica.read_at, replica.log_problem = read_at, ""
        for line in text.splitlines():
            stamp, _, body = line.partition(" ")
            key = _stamp_key(stamp)
            if key <= replica.log_cursor[0] and replica.log_cursor[0]:
                continue
            replica.log_cursor = (key, stamp)
            replica.tail.append(body)
            self.progress(f"{replica.name} | {body}")

    def _log_problem(self, replica: ReplicaSeen, problem: str) -> None:
        if problem != replica.log_problem:
            self.progress(f"logs of {replica.name} (pod {replica.pod}) unavailable: {problem}")
            replica.log_problem = problem

    # ------------------------------------------------------------------ failures

    def _failure_report(self, name: str, job: dict, *, cause: str | None = None) -> str:
        """The error message of a failed job (``job`` as last polled); saves logs and events on the way.

        Names the replicas whose pods failed; when the operator deleted them all (backoffLimit,
        activeDeadline), the replicas whose exits we saw while following; else says so. Shows the
        last log lines of the first one: from its pod when it is left, else the lines followed.
        """
        pods = self._pods(name)
        for pod in pods:
            self._observe(name, pod)
        failed_pods = [pod for pod in pods if _pod_failed(pod)]
        final_logs = {pod.metadata.name: self._log(pod.metadata.name) for pod in failed_pods}
        named = [self.replicas[_replica_key(pod)] for pod in failed_pods]
        if not named:  # the operator deleted them: the replicas we saw exit, else those we saw restart
            named = [replica for replica in self.replicas.values() if replica.last_exit]
            named = named or sorted((r for r in self.replicas.values() if r.restarts), key=lambda r: -r.restarts)
        self._save_failure(name, job, final_logs)
        status = job.get("status") or {}
        conditions = status.get("conditions") or []
        reason = cause or next((c.get("message") for c in reversed(conditions) if c.get("type") == "Failed"), "")
        saved = f" Logs and events saved to {self.failure_dir}." if self.failure_dir else ""
        if not named:
            counts = _replica_counts(status) or "no replica statuses"
            return (
                f"TFJob {name} failed: {reason}. No failed replica is left to name ({counts}): the operator "
                f"deletes every pod when the backoff limit or the active deadline ends a job.{saved}"
                + "".join(self._tail_text(replica, final_logs) for replica in self.replicas.values())
            )
        who = ", ".join(f"{replica.name} (pod {replica.pod}{_exit_note(replica)})" for replica in named)
        first = named[0]
        return f"TFJob {name} failed: {who} failed. {reason}{saved}" + self._tail_text(first, final_logs)

    def _tail_text(self, replica: ReplicaSeen, final_logs: dict[str, str]) -> str:
        """' Last log lines of worker-1:' and the lines, from the pod's final log or else from the lines followed."""
        lines = _log_lines(final_logs.get(replica.pod, "")) or list(replica.tail)
        if lines:
            body = "\n".join(f"  | {line}" for line in lines[-LOG_TAIL_LINES // 2 :])
        else:
            problem = replica.log_problem or final_logs.get(replica.pod) or "the API server returned none"
            body = f"  | (no log lines: {problem})"
        return f"\nLast log lines of {replica.name}:\n{body}"

    def _save_failure(self, name: str, job: dict, final_logs: dict[str, str]) -> None:
        """Save every replica's log (its pod's final log, else the lines followed), the events and the status."""
        if not self.failure_dir:
            return
        self.failure_dir.mkdir(parents=True, exist_ok=True)
        for replica in self.replicas.values():
            text = final_logs.get(replica.pod) if _log_lines(final_logs.get(replica.pod, "")) else None
            text = text if text is not None else "\n".join(replica.tail) + "\n"
            (self.failure_dir / f"{replica.pod or replica.name}.log").write_text(text, encoding="utf-8")
        events = self._events(name, [replica.pod for replica in self.replicas.values()])
        (self.failure_dir / "events.txt").write_text("\n".join(events) + "\n", encoding="utf-8")
        (self.failure_dir / "tfjob-status.json").write_text(
            json.dumps(job.get("status") or {}, indent=2) + "\n", encoding="utf-8"
        )

    def _pods(self, name: str) -> list[Any]:
        """The job's pods (the operator's job-name label), or none when they cannot be listed (said once)."""
        from kubernetes.client.exceptions import ApiException

        problem = ""
        try:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"{JOB_NAME_LABEL}={name}").items
        except ApiException as err:
            problem, pods = f"{err.status} {err.reason}", []
        except _unreachable() as err:
            problem, pods = _unreachable_reason(err), []
        if problem and problem != self._said_about_pods:
            self.progress(f"tfjob {name}: cannot list its pods ({problem})")
        self._said_about_pods = problem
        return pods

    def _log(self, pod: str) -> str:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.core.read_namespaced_pod_log(
                pod, self.namespace, container=CONTAINER_NAME, tail_lines=LOG_TAIL_LINES * 4
            ) or ""
        except ApiException as err:
            return f"(logs unavailable: {err.status} {kube.api_message(err)})"
        except _unreachable() as err:
            return f"(logs unavailable: {_unreachable_reason(err)})"

    def _events(self, name: str, pods: list[str]) -> list[str]:
        from kubernetes.client.exceptions import ApiException

        try:
            events = self.core.list_namespaced_event(self.namespace).items
        except ApiException as err:
            return [f"(events unavailable: {err.status} {err.reason})"]
        except _unreachable() as err:
            return [f"(events unavailable: {_unreachable_reason(err)})"]
        wanted = {name, *pods}
        return [
            f"{e.type} {e.involved_object.kind}/{e.involved_object.name} {e.reason}: {e.message}"
            for e in events
            if e.involved_object and e.involved_object.name in wanted
        ]

    def _saved_hint(self) -> str | None:
        return f"Pod logs and events were saved to {self.failure_dir}." if self.failure_dir else None


def launching_pod_owner(environ: os._Environ | dict[str, str] = os.environ, namespace: str | None = None) -> Any:
    """A V1OwnerReference to the KFP task pod this runs in (KFP sets KFP_POD_NAME/KFP_POD_UID), or None.

    Kubernetes owners must live in the same namespace: when the job goes elsewhere there is no owner.
    """
    name, uid = environ.get("KFP_POD_NAME"), environ.get("KFP_POD_UID")
    pod_namespace = environ.get("KFP_NAMESPACE") or (
        kube.SERVICE_ACCOUNT_NAMESPACE.read_text().strip() if kube.SERVICE_ACCOUNT_NAMESPACE.exists() else None
    )
    if not (name and uid) or (namespace and pod_namespace and namespace != pod_namespace):
        return None
    from kubernetes import client as k8s

    return k8s.V1OwnerReference(api_version="v1", kind="Pod", name=name, uid=uid)


def _unreachable() -> tuple[type[BaseException], ...]:
    """What a call raises when the API server cannot be reached: connection refused or reset, timeouts."""
    from urllib3.exceptions import HTTPError

    return (HTTPError, OSError)


def _unreachable_reason(err: BaseException) -> str:
    return f"API unreachable ({type(err).__name__})"


def _state(status: dict) -> str:
    conditions = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
    return conditions[-1]["type"] if conditions else "Pending"


def _replica_counts(status: dict) -> str:
    parts = []
    for replica, counts in sorted((status.get("replicaStatuses") or {}).items()):
        shown = ",".join(f"{key}={counts[key]}" for key in ("active", "succeeded", "failed") if counts.get(key))
        parts.append(f"{replica}[{shown or 'none'}]")
    return " ".join(parts)


def _stamp_key(stamp: str) -> str:
    """A sortable form of a log line's RFC 3339 timestamp (fractions padded: RFC3339Nano drops trailing zeros)."""
    seconds, dot, rest = stamp.partition(".")
    if not dot:
        return stamp
    digits = rest.rstrip("Z")
    return f"{seconds}.{digits:0<9}Z"


def _log_lines(text: str) -> list[str]:
    """The lines of a log read after the job ended; none when it is our own "(logs unavailable...)" note."""
    return [] if text.startswith("(logs unavailable") else text.splitlines()


def _last_exit(pod: Any) -> str:
    """'exit code 137 (OOMKilled)' of the tensorflow container's last non-zero termination, or ''."""
    for container in (pod.status.container_statuses if pod.status else None) or []:
        if container.name != CONTAINER_NAME:
            continue
        for state in (container.state, container.last_state):
            terminated = state.terminated if state else None
            if terminated and terminated.exit_code:
                return f"exit code {terminated.exit_code}" + (f" ({terminated.reason})" if terminated.reason else "")
    return ""


def _exit_note(replica: ReplicaSeen) -> str:
    notes = [replica.last_exit] if replica.last_exit else []
    notes += [f"{replica.restarts} restarts"] if replica.restarts else []
    return "".join(f", {note}" for note in notes)


def _pod_failed(pod: Any) -> bool:
    status = pod.status
    if status is None:
        return False
    if status.phase == "Failed":
        return True
    for container in status.container_statuses or []:
        for state in (container.state, container.last_state):
            terminated = state.terminated if state else None
            if terminated and terminated.exit_code:
                return True
    return False


def _replica_key(pod: Any) -> str:
    """``worker-1`` from the operator's labels (pkg/controller.v1/common/pod.go:402-404), else the pod's name."""
    labels = pod.metadata.labels or {}
    kind = labels.get(REPLICA_TYPE_LABEL)
    index = labels.get(REPLICA_INDEX_LABEL)
    return f"{kind}-{index}" if kind and index is not None else pod.metadata.name


# ---------------------------------------------------------------------- the launcher


@dataclass
class ClusterOptions:
    """How the launcher runs a TFJob: ``pods`` says where and how its replicas run, the rest is the launcher's.

    ``pods`` is a TrainingSpec (one type for the pods' image and placement, not a copy of its
    fields) whose command and worker count the launch fills in from the training; build it with
    ``pod_template``. ``pvc`` is the volume shared by the launcher and the pods (the data goes
    there and the model comes back); the launch adds it to the pods' volumes.
    """

    pods: TrainingSpec
    namespace: str = ""  # empty: the namespace we run in (the pod's, or the kubeconfig context's)
    pvc: PvcMount | None = None
    timeout: float = 6 * 3600
    poll_interval: float = 10.0
    run_key: str = ""  # stable per run (the component passes its output URI); empty: a new job every call


def pod_template(image: str, **placement: Any) -> TrainingSpec:
    """ClusterOptions.pods running ``image``; ``placement`` takes TrainingSpec's fields (gpus_per_worker,
    node_selector, tolerations, chief, cpu, memory, service_account, run_policy, ...).

    Its command and worker count are placeholders: cluster_spec sets them from the training.
    """
    return TrainingSpec(image=image, command=[], **placement)


def cluster_spec(config: WorkerConfig, workers: int, options: ClusterOptions) -> TrainingSpec:
    """The TrainingSpec of a TFJob that runs ``config`` (its paths as the pods see them)."""
    pvcs = [*options.pods.pvcs, options.pvc] if options.pvc else options.pods.pvcs
    return replace(options.pods, command=worker_command(config), workers=workers, pvcs=pvcs)


def job_name_for(config: WorkerConfig, options: ClusterOptions) -> str:
    """The TFJob's name: the same for every attempt of a run with a ``run_key``, else new each call."""
    return job_name(f"distml-{config.model}", options.run_key or uuid.uuid4().hex)


@dataclass(frozen=True)
class TFJobRequest:
    """What the Kubernetes launcher creates: the job (name, namespace, filled-in spec, owner) and its folders.

    ``config`` is the training as given (the data to stage, the model folder to fill here);
    ``job_config`` is the same with the paths the pods see (on the shared volume, with a PVC).
    """

    name: str
    namespace: str
    spec: TrainingSpec
    owner: Any | None
    config: WorkerConfig
    job_config: WorkerConfig


class KubernetesLauncher(Launcher):
    """A TFJob placed per ``options`` (ClusterOptions, required); ``api_client`` for tests, else the kubeconfig's.

    ``log_dir`` receives a failed job's replica logs and events; ``timeout`` defaults to options.timeout.
    """

    name = "kubernetes"

    def __init__(self, *, options: ClusterOptions | None = None, api_client: Any | None = None, **settings: Any):
        if options is None:
            raise DistmlError("launcher=kubernetes needs ClusterOptions (image, namespace, placement)")
        super().__init__(options=options, **settings)
        self.cluster = options
        self.api_client = api_client

    def dryrun(self, config: WorkerConfig, workers: int) -> DryRun[TFJobRequest]:
        """The TFJob (and its YAML) that ``run`` would create; reads the kubeconfig's namespace, calls no API."""
        options = replace(self.cluster, namespace=self.cluster.namespace or kube.current_namespace())
        name = job_name_for(config, options)
        job_config = _on_volume(config, options, name) if options.pvc else config
        spec = cluster_spec(job_config, workers, options)
        owner = launching_pod_owner(namespace=options.namespace)
        request = TFJobRequest(name, options.namespace, spec, owner, config, job_config)
        manifest = build_tfjob(spec, name=name, namespace=options.namespace, owner=owner)
        return DryRun(self.name, request, kube.manifest_yaml(manifest))

    def schedule(self, dry_run: DryRun[TFJobRequest]) -> dict[str, Any]:
        """Run the job; with a PVC, stage the data onto it and copy the model back to ``config.out``.

        Without a PVC, ``config.data`` and ``config.out`` must already be paths the pods can reach.
        With one, the job works in ``<mount>/distml/<job name>``, which is removed when the run ends,
        failed or not; a retry of the same run (same ``run_key``) whose job had already exported
        its model copies that model instead of training again. So when only the copy back fails,
        the exported model stays on the volume for that retry.
        """
        request: TFJobRequest = self._own(dry_run)
        name, config, job_config, pvc = request.name, request.config, request.job_config, self.cluster.pvc
        if not pvc:
            self._launch(request)
            return read_model_metrics(config.out)
        report = self.progress or (lambda line: None)
        if not Path(pvc.mount_path).is_dir():
            raise DistmlError(
                f"the PVC {pvc.claim} is not mounted here at {pvc.mount_path}",
                hint="Mount the same PVC in the launching pod (kfp.kubernetes.mount_pvc) so data and model can "
                "be copied; or pass --data and --out as paths on the volume, without --pvc.",
            )
        _check_output_folder(config.out)  # now, not after hours of training
        job_root = Path(job_config.out).parent
        try:
            if MODEL_METRICS.exists(job_config.out):
                report(f"tfjob {name}: an earlier attempt of this run exported the model already; copying it")
            else:
                _stage_copy(Path(config.data), Path(job_config.data))
                self._launch(request)
            with staged_folder(config.out, what="model folder") as staging:
                shutil.copytree(job_config.out, staging, dirs_exist_ok=True)
        except BaseException:
            if self.cluster.run_key and MODEL_METRICS.exists(job_config.out):  # trained: a retry copies
                report(f"tfjob {name}: the model stays on the volume at {job_config.out} for a retry of this run")
                for scratch in job_root.iterdir():  # the data, the backup, any staging folder
                    if scratch != job_config.out:
                        shutil.rmtree(scratch, ignore_errors=True)
            else:
                shutil.rmtree(job_root, ignore_errors=True)
            raise
        shutil.rmtree(job_root, ignore_errors=True)
        return read_model_metrics(config.out)

    def _launch(self, request: TFJobRequest) -> None:
        """Create the requested TFJob and see it through (TFJobLauncher builds the same manifest from the spec)."""
        jobs = TFJobLauncher(
            self.api_client if self.api_client is not None else kube.api_client(),
            namespace=request.namespace,
            poll_interval=self.cluster.poll_interval,
            progress=self.progress,
            failure_dir=self.log_dir,
        )
        timeout = self.timeout if self.timeout is not None else self.cluster.timeout
        jobs.run(request.spec, name=request.name, timeout=timeout, owner=request.owner)


LAUNCHER = KubernetesLauncher


def _check_output_folder(out: Path) -> None:
    """The model folder must be new or empty, and its parent creatable."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DistmlError("model folder is not empty", where=str(out), hint="Choose a new or empty --out folder.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DistmlError(f"cannot create the model folder's parent ({err.strerror})", where=str(out.parent)) from err


def _stage_copy(source: Path, target: Path) -> None:
    """Copy a folder so that ``target`` exists only complete (a crash mid-copy leaves no half folder)."""
    if target.exists():
        return
    with staged_folder(target, what="data folder on the volume") as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)


def _on_volume(config: WorkerConfig, options: ClusterOptions, name: str) -> WorkerConfig:
    """The same config with data and output in a per-job folder on the shared volume."""
    assert options.pvc is not None
    root = Path(options.pvc.mount_path) / "distml" / name
    return replace(config, data=root / "data", out=root / "model", backup_dir=root / "backup")
