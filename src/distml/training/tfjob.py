"""TFJob manifests from a TrainingSpec, built from the kubeflow-training SDK models.

We do not write TF_CONFIG into the pods: the Training Operator injects it into the
container named ``tensorflow`` (port ``tfjob-port``) with the pods' real service names,
which only it knows. A job of one replica gets none, and the worker trains alone.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from distml.kube import GPU_RESOURCE
from distml.training.spec import TrainingSpec

API_VERSION = "kubeflow.org/v1"
KIND = "TFJob"
CONTAINER_NAME = "tensorflow"  # the only container the operator gives TF_CONFIG
PORT_NAME, DEFAULT_PORT = "tfjob-port", 2222
#: Label on our TFJobs, and the operator's label on their pods.
RUN_LABEL = "distml.kubeflow.org/run"
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
#: The operator's labels on each pod: replica type (lower case) and index
#: (training-operator v1.9.0 pkg/apis/kubeflow.org/v1/common_types.go:24-28).
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"


def job_name(prefix: str, run_key: str) -> str:
    """A DNS-1123 name unique per run and stable for one run (so a restarted launcher finds its job)."""
    stem = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-")[:40] or "distml-train"
    return f"{stem}-{hashlib.sha256(run_key.encode()).hexdigest()[:10]}"


def backoff_limit(restarts_per_replica: int | None, replicas: int) -> int | None:
    """The TFJob's backoffLimit: ``restarts_per_replica`` restarts of every replica are tolerated.

    The operator sums the restarts of all running pods and fails the job once the sum reaches the
    limit (training-operator v1.9.0 pkg/core/job.go:95-132: ``result >= BackoffLimit``). Under
    MultiWorkerMirroredStrategy one fault restarts every worker, so a fixed limit would fail a job of
    many replicas at its first fault: the limit is ``restarts_per_replica x replicas + 1``.
    """
    if restarts_per_replica is None:
        return None
    return restarts_per_replica * replicas + 1


def build_tfjob(
    spec: TrainingSpec,
    *,
    name: str,
    namespace: str,
    owner: Any | None = None,
    labels: dict[str, str] | None = None,
) -> Any:
    """The KubeflowOrgV1TFJob for ``spec``; ``owner`` is a V1OwnerReference (the launching pod)."""
    from kubeflow.training import models as tm
    from kubernetes import client as k8s

    replicas = {}
    workers = spec.workers
    if spec.chief:
        replicas["Chief"] = _replica(spec, 1)
        workers -= 1
    if workers:
        replicas["Worker"] = _replica(spec, workers)
    policy = spec.run_policy
    return tm.KubeflowOrgV1TFJob(
        api_version=API_VERSION,
        kind=KIND,
        metadata=k8s.V1ObjectMeta(
            name=name,
            namespace=namespace,
            labels={RUN_LABEL: name, **(labels or {})},
            owner_references=[owner] if owner else None,
        ),
        spec=tm.KubeflowOrgV1TFJobSpec(
            run_policy=tm.KubeflowOrgV1RunPolicy(
                clean_pod_policy=policy.clean_pod_policy,
                backoff_limit=backoff_limit(policy.restarts_per_replica, spec.workers),
                ttl_seconds_after_finished=policy.ttl_seconds_after_finished,
                active_deadline_seconds=policy.active_deadline_seconds,
            ),
            tf_replica_specs=replicas,
        ),
    )


def _replica(spec: TrainingSpec, count: int) -> Any:
    from kubeflow.training import models as tm
    from kubernetes import client as k8s

    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    if spec.gpus_per_worker:
        limits[GPU_RESOURCE] = str(spec.gpus_per_worker)
    for key, value in (("cpu", spec.cpu), ("memory", spec.memory)):
        if value:
            requests[key] = limits[key] = value
    container = k8s.V1Container(
        name=CONTAINER_NAME,
        image=spec.image,
        command=list(spec.command),
        env=[k8s.V1EnvVar(name=key, value=value) for key, value in spec.env.items()] or None,
        ports=[k8s.V1ContainerPort(name=PORT_NAME, container_port=DEFAULT_PORT)],
        resources=k8s.V1ResourceRequirements(limits=limits or None, requests=requests or None),
        volume_mounts=[k8s.V1VolumeMount(name=_volume(p.claim), mount_path=p.mount_path) for p in spec.pvcs] or None,
    )
    pod = k8s.V1PodSpec(
        containers=[container],
        node_selector=dict(spec.node_selector) or None,
        tolerations=[toleration.to_k8s() for toleration in spec.tolerations] or None,  # fields as given
        volumes=[
            k8s.V1Volume(
                name=_volume(p.claim),
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=p.claim),
            )
            for p in spec.pvcs
        ]
        or None,
        service_account_name=spec.service_account,
    )
    template = k8s.V1PodTemplateSpec(
        # Istio's sidecar never exits, so a pod with one never completes and the job never succeeds.
        metadata=k8s.V1ObjectMeta(annotations={"sidecar.istio.io/inject": "false"}),
        spec=pod,
    )
    return tm.KubeflowOrgV1ReplicaSpec(replicas=count, restart_policy=spec.restart_policy, template=template)


def _volume(claim: str) -> str:
    """The claim's volume name: a DNS-1123 label, while a claim name may hold dots and be longer."""
    label = re.sub(r"[^a-z0-9-]+", "-", f"pvc-{claim}".lower())
    if len(label) > 63:  # keep distinct claims distinct after cutting
        label = f"{label[:52].rstrip('-')}-{hashlib.sha256(claim.encode()).hexdigest()[:10]}"
    return label
