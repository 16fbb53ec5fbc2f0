"""The Kubernetes launcher: run a TrainingSpec as a TFJob and see it through.

Unlike the TFJob launcher Kubeflow Pipelines once shipped, it names each run's job
uniquely and re-attaches to it when restarted, owns the job by the launching pod (when it
runs in one), reports a Failed job as a failure naming the failed replica with its last log
lines and the events (saved to files before the job is deleted), and deletes the job on
timeout and on SIGTERM. It talks to the API with the kubernetes client's CustomObjectsApi
rather than TrainingClient, whose errors hide the HTTP status we need to explain 403 and 404.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distml import kube
from distml.errors import DistmlError
from distml.training.cancel import sigterm_cancels
from distml.training.spec import TrainingSpec
from distml.training.tfjob import CONTAINER_NAME, JOB_NAME_LABEL, build_tfjob, to_dict

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"
RBAC_ROLE, RBAC_FILE = "distml-pipeline-runner", "manifests/rbac.yaml"
INSTALL_OPERATOR = (
    'kubectl apply --server-side -k "github.com/kubeflow/training-operator.git/'
    'manifests/overlays/standalone?ref=v1.9.0"'
)
LOG_TAIL_LINES = 50
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

    def run(self, spec: TrainingSpec, *, name: str, timeout: float, owner: Any | None = None) -> JobResult:
        """Run the job to its end; raise TrainingFailed on Failed or timeout, Cancelled on SIGTERM."""
        job = build_tfjob(spec, name=name, namespace=self.namespace, owner=owner)
        started = time.monotonic()
        state = "Unknown"
        with sigterm_cancels(f"TFJob {name}"):  # around the clean-up too: a second SIGTERM must not skip it
            try:
                attached = self._create_or_attach(job, name)
                state, last_seen = self._wait(name, timeout, started)
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
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, to_dict(job))
        except ApiException as err:
            if err.status == 409:  # created meanwhile by an earlier attempt of this run
                self.progress(f"tfjob {name}: already exists, re-attaching")
                return True
            raise self._api_error(err, "create", "tfjobs.kubeflow.org") from None
        self.progress(f"tfjob {name}: created in namespace {self.namespace}")
        return False

    def _find(self, name: str) -> dict | None:
        """The job, or None when there is none of this name."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as err:
            if err.status == 404 and _job_missing(err):
                return None
            raise self._api_error(err, "get", "tfjobs.kubeflow.org") from None

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

    def _wait(self, name: str, timeout: float, started: float) -> tuple[str, dict]:
        """Poll until Succeeded or Failed, reporting state, elapsed time and replica counts when they change.

        Returns the final state and the job as last seen.
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
            if state in ("Succeeded", "Failed"):
                return state, job
            if elapsed > timeout:
                self._save_failure(name, job)
                raise TrainingFailed(
                    f"TFJob {name} did not finish within {timeout:.0f} s (last state {state}); it was deleted",
                    hint=self._saved_hint(),
                )
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
            if err.status == 404 and _job_missing(err):
                raise TrainingFailed(
                    f"TFJob {name} was deleted while it ran (not by this launcher)",
                    where=f"namespace {self.namespace}",
                    hint="Check who deletes TFJobs there (a TTL, a cleanup job, a person), then run again.",
                ) from None
            raise self._api_error(err, "get", "tfjobs.kubeflow.org") from None
        except _unreachable() as err:
            self.progress(f"tfjob {name}: {_unreachable_reason(err)}, retrying")
            return None

    # ------------------------------------------------------------------ failures

    def _failure_report(self, name: str, job: dict) -> str:
        """The error message of a Failed job (``job`` as last polled); saves logs and events on the way."""
        failed_pods, logs = self._save_failure(name, job)
        conditions = (job.get("status") or {}).get("conditions") or []
        reason = next((c.get("message") for c in reversed(conditions) if c.get("type") == "Failed"), "")
        replica = ", ".join(failed_pods) or "unknown replica"
        tail = "\n".join(f"  | {line}" for line in logs[-LOG_TAIL_LINES // 2 :]) or "  | (no logs)"
        saved = f" Logs and events saved to {self.failure_dir}." if self.failure_dir else ""
        return f"TFJob {name} failed: {replica} failed. {reason}{saved} Last log lines of {replica}:\n{tail}"

    def _save_failure(self, name: str, job: dict) -> tuple[list[str], list[str]]:
        """Save pod logs, events and the job's status; return the failed pods and the first one's log lines."""
        pods = self._pods(name)
        failed = [pod for pod in pods if _pod_failed(pod)]
        texts: dict[str, str] = {}
        for pod in failed or pods:
            texts[pod.metadata.name] = self._log(pod.metadata.name)
        events = self._events(name, [pod.metadata.name for pod in pods])
        if self.failure_dir:
            self.failure_dir.mkdir(parents=True, exist_ok=True)
            for pod_name, text in texts.items():
                (self.failure_dir / f"{pod_name}.log").write_text(text, encoding="utf-8")
            (self.failure_dir / "events.txt").write_text("\n".join(events) + "\n", encoding="utf-8")
            (self.failure_dir / "tfjob-status.json").write_text(
                json.dumps(job.get("status") or {}, indent=2) + "\n", encoding="utf-8"
            )
        names = [_replica_name(pod) for pod in failed]
        first = texts[failed[0].metadata.name].splitlines() if failed else []
        return names, first

    def _pods(self, name: str) -> list[Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.core.list_namespaced_pod(self.namespace, label_selector=f"{JOB_NAME_LABEL}={name}").items
        except ApiException as err:
            self.progress(f"tfjob {name}: cannot list its pods ({err.status} {err.reason})")
        except _unreachable() as err:
            self.progress(f"tfjob {name}: cannot list its pods ({_unreachable_reason(err)})")
        return []

    def _log(self, pod: str) -> str:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.core.read_namespaced_pod_log(
                pod, self.namespace, container=CONTAINER_NAME, tail_lines=LOG_TAIL_LINES * 4
            )
        except ApiException as err:
            return f"(logs unavailable: {err.status} {err.reason})"
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

    def _api_error(self, err: Any, verb: str, resource: str) -> DistmlError:
        """A 404 or 403 from the API server as an error that says what to do."""
        where = f"namespace {self.namespace}"
        if err.status == 404 and not _job_missing(err):
            if "namespaces" in (err.body or ""):
                return DistmlError(f"namespace {self.namespace} does not exist", hint="Pass an existing --namespace.")
            return DistmlError(
                "Training Operator not installed: the cluster has no TFJob resource (kubeflow.org/v1 tfjobs)",
                where=where,
                hint=f"Install Training Operator v1.9: {INSTALL_OPERATOR}",
            )
        if err.status == 403:
            return DistmlError(
                f"forbidden: cannot {verb} {resource}",
                where=where,
                hint=f"Bind the service account to the Role {RBAC_ROLE} from {RBAC_FILE} "
                f"(kubectl apply -n {self.namespace} -f {RBAC_FILE}).",
            )
        if err.status == 401:
            return DistmlError("unauthorized by the API server", where=where, hint="Check your kubeconfig or token.")
        return DistmlError(f"Kubernetes API error on {verb} {resource}: {err.status} {err.reason}", where=where)


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


def _job_missing(err: Any) -> bool:
    """A 404 about the job itself (the resource type exists) rather than about the TFJob API."""
    try:
        details = json.loads(err.body or "{}").get("details") or {}
    except ValueError:
        return False
    return details.get("kind") == "tfjobs" and bool(details.get("name"))


def _state(status: dict) -> str:
    conditions = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
    return conditions[-1]["type"] if conditions else "Pending"


def _replica_counts(status: dict) -> str:
    parts = []
    for replica, counts in sorted((status.get("replicaStatuses") or {}).items()):
        shown = ",".join(f"{key}={counts[key]}" for key in ("active", "succeeded", "failed") if counts.get(key))
        parts.append(f"{replica}[{shown or 'none'}]")
    return " ".join(parts)


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


def _replica_name(pod: Any) -> str:
    labels = pod.metadata.labels or {}
    kind = labels.get("training.kubeflow.org/replica-type")
    index = labels.get("training.kubeflow.org/replica-index")
    return f"{kind}-{index} (pod {pod.metadata.name})" if kind and index is not None else f"pod {pod.metadata.name}"
