"""The KServe InferenceService for a Model folder, built with the kserve SDK's typed models.

``storage_uri`` is the URI of a distml Model folder (``pvc://``, ``s3://`` or ``gs://``). The
predictor reads ``<uri>/model`` for ``tensorflow`` (the TF Serving base path holding version
``1/``) and ``<uri>`` for ``onnx`` (KServe's ONNX runtime loads ``model.onnx`` from that folder
and needs the V2 protocol).

No ``sidecar.istio.io/inject`` annotation is set: unlike TFJob pods, serving pods never have to
complete, and in a Kubeflow namespace the Istio sidecar carries the mesh's routing and
authorization, so injection is left to the namespace's policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from distml.errors import DistmlError
from distml.kube import GPU_RESOURCE

FORMATS = ("tensorflow", "onnx")
STORAGE_SCHEMES = ("pvc://", "s3://", "gs://")
SCALE_METRICS = ("cpu", "memory", "concurrency", "rps")
MANAGED_BY = {"app.kubernetes.io/managed-by": "distml"}
# KServe derives Knative service and host names from the InferenceService name: a DNS-1035 label, kept short.
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,43}[a-z0-9])?$")


@dataclass
class ServingSpec:
    """Everything the InferenceService says, with defaults for a small CPU service."""

    name: str
    storage_uri: str
    namespace: str = "default"
    model_format: str = "tensorflow"
    gpus: int = 0
    cpu: str = "1"
    memory: str = "2Gi"
    node_selector: dict[str, str] = field(default_factory=dict)
    #: ``kubernetes.client.V1Toleration`` objects (see distml.cli.options.parse_toleration).
    tolerations: list[Any] = field(default_factory=list)
    min_replicas: int = 1
    max_replicas: int = 1
    scale_metric: str | None = None
    scale_target: int | None = None
    canary_traffic_percent: int | None = None
    service_account: str | None = None

    def check(self) -> None:
        """Raise DistmlError for a value KServe would refuse (or silently misread)."""
        if not _NAME.match(self.name):
            raise DistmlError(
                f"InferenceService name {self.name!r} is not a DNS-1035 label of at most 45 characters",
                hint="Use lowercase letters, digits and '-', starting with a letter.",
            )
        if self.model_format not in FORMATS:
            raise DistmlError(f"model format {self.model_format!r} unknown", hint=f"Use one of: {', '.join(FORMATS)}.")
        if not self.storage_uri.startswith(STORAGE_SCHEMES) or len(self.storage_uri.split("://", 1)[1]) == 0:
            raise DistmlError(
                f"storage URI {self.storage_uri!r} is not pvc://, s3:// or gs://",
                hint="Point at the Model folder, e.g. pvc://models/run-1/model.",
            )
        if self.gpus < 0 or self.min_replicas < 0 or self.max_replicas < 1:
            raise DistmlError("GPUs and min replicas must be >= 0, max replicas >= 1")
        if self.min_replicas > self.max_replicas:
            raise DistmlError(f"min replicas {self.min_replicas} > max replicas {self.max_replicas}")
        if self.scale_metric is not None and self.scale_metric not in SCALE_METRICS:
            raise DistmlError(f"scale metric {self.scale_metric!r} unknown", hint=f"Use {', '.join(SCALE_METRICS)}.")
        if (self.scale_metric is None) != (self.scale_target is None):
            raise DistmlError("scale metric and scale target go together", hint="Give both or neither.")
        if self.canary_traffic_percent is not None and not 0 <= self.canary_traffic_percent <= 100:
            raise DistmlError(f"canary traffic percent {self.canary_traffic_percent} is not within 0..100")


def make_toleration(key: str, effect: str, value: str | None = None) -> Any:
    """A ``V1Toleration``: operator Equal with a value, else Exists (matches the key alone)."""
    from kubernetes.client import V1Toleration

    if value:
        return V1Toleration(key=key, operator="Equal", value=value, effect=effect)
    return V1Toleration(key=key, operator="Exists", effect=effect)


def storage_uri_of_artifact(uri: str) -> str | None:
    """The KServe storage URI of a KFP artifact URI: gs:// and s3:// as they are, minio:// as s3://."""
    if uri.startswith(("gs://", "s3://")):
        return uri
    if uri.startswith("minio://"):
        return "s3://" + uri.removeprefix("minio://")
    return None


def predictor_storage_uri(model_folder_uri: str, model_format: str) -> str:
    """Where the predictor reads: ``<uri>/model`` (TF Serving base path) or ``<uri>`` (holds model.onnx)."""
    base = model_folder_uri.rstrip("/")
    return f"{base}/model" if model_format == "tensorflow" else base


def build_inference_service(spec: ServingSpec) -> Any:
    """A ``V1beta1InferenceService`` for ``spec`` (checked first)."""
    from kserve import (
        V1beta1InferenceService,
        V1beta1InferenceServiceSpec,
        V1beta1ModelFormat,
        V1beta1ModelSpec,
        V1beta1PredictorSpec,
        constants,
    )
    from kubernetes.client import V1ObjectMeta, V1ResourceRequirements

    spec.check()
    requests = {"cpu": spec.cpu, "memory": spec.memory}
    limits = dict(requests)
    if spec.gpus:
        requests[GPU_RESOURCE] = str(spec.gpus)
        limits[GPU_RESOURCE] = str(spec.gpus)
    model = V1beta1ModelSpec(
        # The SDK writes name: '' otherwise; KServe names the predictor container this itself.
        name="kserve-container",
        model_format=V1beta1ModelFormat(name=spec.model_format),
        protocol_version="v2" if spec.model_format == "onnx" else "v1",
        storage_uri=predictor_storage_uri(spec.storage_uri, spec.model_format),
        resources=V1ResourceRequirements(requests=requests, limits=limits),
    )
    predictor = V1beta1PredictorSpec(
        model=model,
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        scale_metric=spec.scale_metric,
        scale_target=spec.scale_target,
        canary_traffic_percent=spec.canary_traffic_percent,
        node_selector=spec.node_selector or None,
        tolerations=spec.tolerations or None,
        service_account_name=spec.service_account,
    )
    return V1beta1InferenceService(
        api_version=f"{constants.KSERVE_GROUP}/{constants.KSERVE_V1BETA1_VERSION}",
        kind=constants.KSERVE_KIND_INFERENCESERVICE,
        metadata=V1ObjectMeta(name=spec.name, namespace=spec.namespace, labels=dict(MANAGED_BY)),
        spec=V1beta1InferenceServiceSpec(predictor=predictor),
    )


def to_dict(isvc: Any) -> dict[str, Any]:
    """The manifest as plain JSON types (camelCase keys, no None fields)."""
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(isvc)


def to_yaml(isvc: Any) -> str:
    import yaml

    return yaml.safe_dump(to_dict(isvc), sort_keys=False)
