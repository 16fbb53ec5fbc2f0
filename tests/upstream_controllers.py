"""The controllers envtest lacks, played by the tests: what they write, where, and in which order.

Each action follows the upstream source it names (Training Operator v1.9.0, KServe master at
aaac4e294); our code reads only what the real controller writes. They run as the admin
(system:masters), as the controllers' own service accounts would, never as the pipeline runner.

``FakeKubelet``: pods/log is served by the kubelet of the pod's node, which envtest has none of. A
Node whose address is 127.0.0.1 and whose kubelet port is a small HTTPS server here makes the real
API server proxy ``GET pods/{name}/log`` to that server, with the caller's RBAC checked first.
"""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

NODE = "fake-kubelet"
TF_GROUP, TF_VERSION, TF_PLURAL = "kubeflow.org", "v1", "tfjobs"
KS_GROUP, KS_VERSION, KS_PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- kubelet (logs only)


class FakeKubelet:
    """Serves ``/containerLogs/{namespace}/{pod}/{container}`` for the pods on Node ``fake-kubelet``.

    ``lines[pod]`` are (RFC 3339 timestamp, text); the query's ``timestamps``, ``sinceSeconds`` and
    ``tailLines`` are honoured as the kubelet does, so the launcher's incremental reads are real.
    """

    def __init__(self, admin: Any, pki: Path) -> None:
        from kubernetes import client

        self.lines: dict[str, list[tuple[datetime.datetime, str]]] = {}
        self.requests: list[str] = []
        kubelet = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kubelet.requests.append(self.path)
                url = urllib.parse.urlsplit(self.path)
                pod = url.path.split("/")[3]
                body = kubelet.render(pod, urllib.parse.parse_qs(url.query)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki / "apiserver.crt", pki / "apiserver.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        core = client.CoreV1Api(admin)
        core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
        endpoint = {"kubeletEndpoint": {"Port": self.server.server_address[1]}}
        addresses = [{"type": "InternalIP", "address": "127.0.0.1"}]
        core.patch_node_status(NODE, {"status": {"addresses": addresses, "daemonEndpoints": endpoint}})

    def say(self, pod: str, *texts: str) -> None:
        for text in texts:
            self.lines.setdefault(pod, []).append((datetime.datetime.now(datetime.UTC), text))
            time.sleep(0.001)  # distinct timestamps, as a real container's lines have

    def render(self, pod: str, query: dict[str, list[str]]) -> str:
        lines = self.lines.get(pod, [])
        if "sinceSeconds" in query:
            since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=int(query["sinceSeconds"][0]))
            lines = [line for line in lines if line[0] >= since]
        if "tailLines" in query:
            lines = lines[-int(query["tailLines"][0]) :]
        stamped = query.get("timestamps") == ["true"]
        # The kubelet's RFC3339Nano drops trailing zeros of the fraction: keep that quirk.
        return "".join(
            (f"{stamp.strftime('%Y-%m-%dT%H:%M:%S.%f').rstrip('0')}Z " if stamped else "") + text + "\n"
            for stamp, text in lines
        )

    def close(self) -> None:
        self.server.shutdown()


# ---------------------------------------------------------------- Training Operator v1.9.0


def set_job_condition(status: dict, kind: str, reason: str, message: str, state: str = "True") -> None:
    """pkg/util/status.go:103-149 (setCondition, filterOutCondition): nothing changes once Failed; the
    condition of the same type is replaced and appended last; Running and Restarting replace each
    other; Running turns False when Succeeded or Failed comes."""
    conditions = status.setdefault("conditions", [])
    if any(c["type"] == "Failed" and c["status"] == "True" for c in conditions):
        return
    kept = []
    for condition in conditions:
        if condition["type"] == kind or {kind, condition["type"]} == {"Running", "Restarting"}:
            continue
        if kind in ("Succeeded", "Failed") and condition["type"] == "Running":
            condition = {**condition, "status": "False"}
        kept.append(condition)
    stamp = now()
    kept.append(
        {
            "type": kind,
            "status": state,
            "reason": reason,
            "message": message,
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
        }
    )
    status["conditions"] = kept


class TrainingOperator:
    """Training Operator v1.9.0's TFJob controller, one reconcile at a time, driven by the test."""

    def __init__(self, admin: Any, namespace: str, kubelet: FakeKubelet | None = None) -> None:
        from kubernetes import client

        self.custom = client.CustomObjectsApi(admin)
        self.core = client.CoreV1Api(admin)
        self.namespace = namespace
        self.kubelet = kubelet

    def job(self, name: str, timeout: float = 20) -> dict:
        """The job, once the launcher has created it."""
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.custom.get_namespaced_custom_object(TF_GROUP, TF_VERSION, self.namespace, TF_PLURAL, name)
            except ApiException as err:
                if err.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def write_status(self, name: str, status: dict) -> None:
        """The operator's UpdateJobStatusInApiServer: the whole status through /status."""
        self.custom.patch_namespaced_custom_object_status(
            TF_GROUP, TF_VERSION, self.namespace, TF_PLURAL, name, {"status": status}
        )

    def created(self, name: str) -> dict:
        """tfjob_controller.go:656-659: the Created condition when the job is first seen."""
        self.job(name)
        status: dict = {}
        set_job_condition(status, "Created", "TFJobCreated", f"TFJob {name} is created.")
        self.write_status(name, status)
        return status

    def replicas(self, name: str) -> list[tuple[str, int, str]]:
        """(type as in the spec, index, pod name) of every replica: pod names per common/util.go:50-53."""
        spec = self.job(name)["spec"]["tfReplicaSpecs"]
        return [
            (kind, index, f"{name}-{kind.lower()}-{index}")
            for kind, replica in spec.items()
            for index in range(replica.get("replicas", 1))
        ]

    def start_pods(self, name: str, status: dict) -> None:
        """common/pod.go:383-474 creates one pod per replica with the labels of job_controller.go:236-242 and
        pod.go:402-408; once they run, tfjob_controller.go:477-481 (or :446-449 with a Chief) says Running."""
        for kind, index, pod in self.replicas(name):
            self.create_pod(name, kind, index, pod)
        self.recount(name, status)
        set_job_condition(status, "Running", "TFJobRunning", f"TFJob {self.namespace}/{name} is running.")
        status.setdefault("startTime", now())
        self.write_status(name, status)

    def create_pod(self, name: str, kind: str, index: int, pod: str) -> None:
        labels = {
            "training.kubeflow.org/operator-name": "tfjob-controller",
            "training.kubeflow.org/job-name": name,
            "training.kubeflow.org/replica-type": kind.lower(),
            "training.kubeflow.org/replica-index": str(index),
        }
        spec: dict = {"containers": [{"name": "tensorflow", "image": "img"}], "restartPolicy": "Never"}
        if self.kubelet:
            spec["nodeName"] = NODE
        self.core.create_namespaced_pod(
            self.namespace,
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "labels": labels}, "spec": spec},
        )
        self.set_pod_state(pod, "Running", {"running": {"startedAt": now()}})

    def set_pod_state(self, pod: str, phase: str, state: dict, restarts: int = 0, last: dict | None = None) -> None:
        """What the kubelet reports through pods/status: phase and the tensorflow container's state."""
        container = {
            "name": "tensorflow",
            "image": "img",
            "imageID": "",
            "ready": phase == "Running",
            "restartCount": restarts,
            "state": state,
            "lastState": last or {},
        }
        self.core.patch_namespaced_pod_status(
            pod, self.namespace, {"status": {"phase": phase, "containerStatuses": [container]}}
        )

    def recount(self, name: str, status: dict) -> None:
        """core/status.go:24-49: replica statuses counted afresh from the pods' phases on every reconcile."""
        counts: dict[str, dict[str, int]] = {}
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"training.kubeflow.org/job-name={name}"
        ).items
        kinds = {kind.lower(): kind for kind, _, _ in self.replicas(name)}
        for kind in kinds.values():
            counts[kind] = {}
        for pod in pods:
            kind = kinds[pod.metadata.labels["training.kubeflow.org/replica-type"]]
            key = {"Running": "active", "Succeeded": "succeeded", "Failed": "failed"}.get(pod.status.phase)
            if key:
                counts[kind][key] = counts[kind].get(key, 0) + 1
        status["replicaStatuses"] = counts

    def worker_exits(self, name: str, status: dict, pod: str, exit_code: int, reason: str = "Error") -> None:
        """A container exits non-zero under restartPolicy ExitCode (pods run with restartPolicy Never,
        core/pod.go:81-88). Retryable (>= 128, train_util.go:24-26): the pod is deleted and made again,
        condition Restarting (common/pod.go:352-366). Otherwise the job fails (pod.go:367-373) and the
        next reconcile deletes only the Running and Pending pods under cleanPodPolicy Running
        (common/job.go:122-126, 53-66): the failed pod stays."""
        terminated = {"terminated": {"exitCode": exit_code, "reason": reason, "finishedAt": now()}}
        self.set_pod_state(pod, "Failed", terminated)
        kind = next(kind for kind, _, pod_name in self.replicas(name) if pod_name == pod)
        if exit_code >= 128:
            self.core.delete_namespaced_pod(pod, self.namespace, grace_period_seconds=0)
            message = f"job {name} is restarting because {kind} replica(s) failed."
            set_job_condition(status, "Restarting", "TFJobRestarting", message)
            self.recount(name, status)
            self.write_status(name, status)
            index = next(i for _, i, pod_name in self.replicas(name) if pod_name == pod)
            self.create_pod(name, kind, index, pod)
            set_job_condition(status, "Running", "TFJobRunning", f"TFJob {self.namespace}/{name} is running.")
            self.recount(name, status)
            self.write_status(name, status)
            return
        set_job_condition(
            status, "Failed", "TFJobFailed", f'job "{name}" is failing because "{kind}" replica(s) failed.'
        )
        self.recount(name, status)
        status["completionTime"] = now()
        self.write_status(name, status)
        for pod_item in self.core.list_namespaced_pod(
            self.namespace, label_selector=f"training.kubeflow.org/job-name={name}"
        ).items:
            if pod_item.status.phase in ("Running", "Pending"):
                self.core.delete_namespaced_pod(pod_item.metadata.name, self.namespace, grace_period_seconds=0)

    def crash(self, name: str, status: dict, pod: str, exit_code: int, reason: str = "Error") -> None:
        """A container of ``pod`` exits ``exit_code``; what follows depends on the replica's restartPolicy.

        ExitCode: :meth:`worker_exits`. OnFailure: the kubelet restarts the container in the same pod
        (restartCount + 1, lastState terminated); the job fails once the restartCounts of the running
        pods sum to backoffLimit (core/job.go:95-132), through :meth:`backoff_limit_reached`.
        """
        job = self.job(name)
        kind = next(kind for kind, _, pod_name in self.replicas(name) if pod_name == pod)
        if job["spec"]["tfReplicaSpecs"][kind]["restartPolicy"] != "OnFailure":
            self.worker_exits(name, status, pod, exit_code, reason)
            return
        current = self.core.read_namespaced_pod(pod, self.namespace).status.container_statuses[0].restart_count
        last = {"terminated": {"exitCode": exit_code, "reason": reason, "finishedAt": now()}}
        self.set_pod_state(pod, "Running", {"running": {"startedAt": now()}}, restarts=current + 1, last=last)
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"training.kubeflow.org/job-name={name}"
        ).items
        restarts = sum(
            c.restart_count for p in pods if p.status.phase == "Running" for c in p.status.container_statuses
        )
        limit = job["spec"]["runPolicy"].get("backoffLimit")
        if limit is not None and (restarts >= limit or (limit == 0 and restarts > 0)):
            self.backoff_limit_reached(name, status)

    def backoff_limit_reached(self, name: str, status: dict) -> None:
        """common/job.go:192-247 under OnFailure: past the backoff limit every pod is deleted first
        (DeletePodsAndServices ignores cleanPodPolicy while the job is not finished, :48-51), then Failed."""
        for pod in self.core.list_namespaced_pod(
            self.namespace, label_selector=f"training.kubeflow.org/job-name={name}"
        ).items:
            self.core.delete_namespaced_pod(pod.metadata.name, self.namespace, grace_period_seconds=0)
        message = f"Job {name} has failed because it has reached the specified backoff limit"
        status["completionTime"] = now()
        set_job_condition(status, "Failed", "TFJobFailed", message)
        self.write_status(name, status)

    def succeed(self, name: str, status: dict) -> None:
        """tfjob_controller.go:463-476: worker 0 (or the Chief) exits 0 and the job is Succeeded."""
        first = self.replicas(name)[0][2]
        self.set_pod_state(first, "Succeeded", {"terminated": {"exitCode": 0, "reason": "Completed"}})
        self.recount(name, status)
        status["completionTime"] = now()
        set_job_condition(
            status, "Succeeded", "TFJobSucceeded", f"TFJob {self.namespace}/{name} successfully completed."
        )
        self.write_status(name, status)


# ---------------------------------------------------------------- KServe (master, aaac4e294)


class KServeController:
    """What KServe's InferenceService controller writes to ``/status``.

    Serverless (Knative): ``observedGeneration`` and the predictor's revisions are copied from the
    Knative Service (inference_service_status.go:567-636); raw: observedGeneration from the
    Deployment (:360-458). Ready = PredictorReady and IngressReady (:296-299). ``modelStatus`` per
    PropagateModelStatus (:721-819): InProgress while pods load, UpToDate once Ready and, serverless,
    latestCreatedRevision == latestReadyRevision; BlockedByFailedLoad with lastFailureInfo on a crash.
    """

    def __init__(self, admin: Any, namespace: str) -> None:
        from kubernetes import client

        self.custom = client.CustomObjectsApi(admin)
        self.namespace = namespace

    def get(self, name: str) -> dict:
        return self.custom.get_namespaced_custom_object(KS_GROUP, KS_VERSION, self.namespace, KS_PLURAL, name)

    def wait_generation(self, name: str, generation: int, timeout: float = 20) -> dict:
        """The ISVC once its spec is at ``generation`` (the controller is triggered by the write)."""
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + timeout
        while True:
            try:
                isvc = self.get(name)
                if isvc["metadata"].get("generation", 0) >= generation:
                    return isvc
            except ApiException as err:
                if err.status != 404:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} never reached generation {generation}")
            time.sleep(0.05)

    def write(self, name: str, status: dict) -> None:
        """The controller's Status().Update (controller.go:420-440): the whole status."""
        isvc = self.get(name)
        isvc["status"] = status
        self.custom.replace_namespaced_custom_object_status(KS_GROUP, KS_VERSION, self.namespace, KS_PLURAL, name, isvc)

    @staticmethod
    def serverless(
        *,
        ksvc_generation: int,
        created: str,
        ready_revision: str | None,
        ready: bool,
        name: str,
        transition: str | None = None,
        failure: dict | None = None,
    ) -> dict:
        """A serverless status: Knative's ready revision and condition, propagated (:567-636, :783-795)."""
        state = "True" if ready else "Unknown"
        conditions = [
            {"type": "IngressReady", "status": "True" if ready_revision else "Unknown"},
            {"type": "LatestDeploymentReady", "status": state},
            {"type": "PredictorConfigurationReady", "status": state},
            {"type": "PredictorReady", "status": state},
            {"type": "PredictorRouteReady", "status": "True" if ready_revision else "Unknown"},
            {"type": "Ready", "status": state},
            {"type": "RoutesReady", "status": "True" if ready_revision else "Unknown"},
            {"type": "Stopped", "status": "False"},
        ]
        predictor = {"latestCreatedRevision": created}
        if ready_revision:
            predictor["latestReadyRevision"] = ready_revision
        model = {
            "transitionStatus": transition or ("UpToDate" if ready and created == ready_revision else "InProgress")
        }
        if failure:
            model["lastFailureInfo"] = failure
        return {
            "observedGeneration": ksvc_generation,
            "deploymentMode": "Knative",  # "Serverless" before KServe 0.16
            "conditions": [{**c, "lastTransitionTime": now()} for c in conditions],
            "components": {"predictor": predictor},
            "modelStatus": model,
            "url": f"http://{name}.example.com",
        }

    @staticmethod
    def raw(*, deployment_generation: int, ready: bool, name: str) -> dict:
        """A raw Deployment's status: PredictorReady from Available/Progressing (:360-458); Loaded, so UpToDate,
        as soon as it is Ready (:783-788); no revisions."""
        state = "True" if ready else "Unknown"
        reason = "NewReplicaSetAvailable" if ready else "ReplicaSetUpdated"
        conditions = [
            {"type": "IngressReady", "status": "True"},
            {"type": "PredictorReady", "status": state, "reason": reason},
            {"type": "Ready", "status": state, "reason": None if ready else reason},
            {"type": "Stopped", "status": "False"},
        ]
        return {
            "observedGeneration": deployment_generation,
            "deploymentMode": "RawDeployment",
            "conditions": [{k: v for k, v in {**c, "lastTransitionTime": now()}.items() if v} for c in conditions],
            "components": {"predictor": {}},
            "modelStatus": {"transitionStatus": "UpToDate" if ready else "InProgress"},
            "url": f"http://{name}.example.com",
        }
