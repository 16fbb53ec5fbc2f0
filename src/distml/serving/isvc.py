"""The KServe InferenceService for a Model folder, built with the kserve SDK's typed models.

``storage_uri`` is the URI of a distml Model folder (``pvc://``, ``s3://`` or ``gs://``). The
predictor reads:

* ``tensorflow``: ``<uri>/model``, the TF Serving base path holding version ``1/``. KServe's
  runtime ``kserve-tensorflow-serving`` pulls ``tensorflow/serving:2.6.2`` unless ``runtimeVersion``
  says otherwise (kserve/kserve config/runtimes/kustomization.yaml:22-24 at aaac4e29), and once
  ``runtimeVersion`` is set it no longer appends ``-gpu`` for GPU pods itself
  (pkg/controller/v1beta1/inferenceservice/utils/utils.go:348-356, UpdateImageTag). So every
  InferenceService here names its TF Serving release: DEFAULT_TF_SERVING_VERSION, with ``-gpu``
  added when it asks for GPUs.
* ``onnx``: ``<uri>/triton``, the Triton model repository every ONNX Model folder carries
  (distml.training.model_folder). KServe's only default runtime for ``modelFormat: onnx`` is
  Triton, started with ``--model-store=/mnt/models`` (config/runtimes/kserve-tritonserver.yaml:24-42),
  and Triton wants ``<repository>/<model name>/<version>/model.onnx``; V2 clients address the
  repository's model name, which ``distml serve`` answers under too.

An ``s3://`` URI needs a service account whose secret carries the keys and
``serving.kserve.io/s3-endpoint``: KServe mounts the credentials of the predictor's service
account, ``default`` when none is named (pkg/credentials/service_account_credentials.go:212-232),
and the namespace's ``default`` has none for KFP's MinIO. So an s3:// spec without one is refused
(docs/cluster-setup.md, manifests/serving-s3.yaml).

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
from distml.tolerations import Toleration
from distml.training.model_folder import SAVED_MODEL_DIR, TRITON_DIR

FORMATS = ("tensorflow", "onnx")
STORAGE_SCHEMES = ("pvc://", "s3://", "gs://")
SCALE_METRICS = ("cpu", "memory", "concurrency", "rps")
#: The newest TF Serving release (tensorflow/serving#4129: 2.20.0 is out, none for TF 2.21 yet).
#: Our SavedModels use only core ops of tf-keras layers, which TF Serving 2.20 has; a newer release
#: can be named with runtime_version.
DEFAULT_TF_SERVING_VERSION = "2.20.0"
MANAGED_BY = {"app.kubernetes.io/managed-by": "distml"}
#: A Kubernetes namespace: a DNS-1123 label (validation.IsDNS1123Label).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
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
    tolerations: list[Toleration] = field(default_factory=list)
    min_replicas: int = 1
    max_replicas: int = 1
    scale_metric: str | None = None
    scale_target: int | None = None
    canary_traffic_percent: int | None = None
    service_account: str | None = None
    #: The runtime image's tag (``runtimeVersion``); None: DEFAULT_TF_SERVING_VERSION for tensorflow,
    #: KServe's own Triton release for onnx. A TF Serving release gets ``-gpu`` when gpus > 0.
    runtime_version: str | None = None

    def runtime_tag(self) -> str | None:
        """The ``runtimeVersion`` the InferenceService carries."""
        if self.model_format != "tensorflow":
            return self.runtime_version or None
        version = self.runtime_version or DEFAULT_TF_SERVING_VERSION
        return f"{version}-gpu" if self.gpus and not version.endswith("-gpu") else version

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
        if self.storage_uri.startswith("s3://") and not self.service_account:
            raise DistmlError(
                f"storage URI {self.storage_uri} is on S3, but no service account gives the predictor its keys "
                "(KServe would use the namespace's `default`, which has none)",
                hint="Pass the service account whose secret carries the S3 keys and serving.kserve.io/s3-endpoint "
                "(serving_service_account / --service-account; docs/cluster-setup.md, manifests/serving-s3.yaml).",
            )
        if self.runtime_version is not None and not re.fullmatch(r"[\w][\w.\-]{0,127}", self.runtime_version):
            raise DistmlError(f"runtime version {self.runtime_version!r} is not an image tag", hint="e.g. 2.20.0")
        if self.namespace and not DNS_LABEL.match(self.namespace):
            raise DistmlError(
                f"namespace {self.namespace!r} is not a DNS-1123 label",
                hint="Use at most 63 lowercase letters, digits and '-'.",
            )
        for field_name, quantity in (("cpu", self.cpu), ("memory", self.memory)):
            check_quantity(field_name, quantity)
        for toleration in self.tolerations:
            toleration.check()
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


def check_quantity(name: str, value: str) -> None:
    """A positive Kubernetes quantity ("1", "500m", "2Gi"), parsed by the kubernetes client's own rules."""
    from kubernetes.utils.quantity import parse_quantity

    try:
        positive = parse_quantity(value) > 0
    except (ValueError, TypeError):
        positive = None
    if not positive:
        raise DistmlError(
            f"{name} {value!r} is not a positive Kubernetes quantity",
            hint='Write e.g. "1", "500m" (CPU) or "2Gi" (memory).',
        )


def storage_uri_of_artifact(uri: str) -> str | None:
    """The KServe storage URI of a KFP artifact URI: gs:// and s3:// as they are, minio:// as s3://."""
    if uri.startswith(("gs://", "s3://")):
        return uri
    if uri.startswith("minio://"):
        return "s3://" + uri.removeprefix("minio://")
    return None


def predictor_storage_uri(model_folder_uri: str, model_format: str) -> str:
    """Where the predictor reads: ``<uri>/model`` (TF Serving base path) or ``<uri>/triton`` (Triton repository)."""
    base = model_folder_uri.rstrip("/")
    return f"{base}/{SAVED_MODEL_DIR}" if model_format == "tensorflow" else f"{base}/{TRITON_DIR}"


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
        runtime_version=spec.runtime_tag(),
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
        tolerations=[toleration.to_k8s() for toleration in spec.tolerations] or None,
        service_account_name=spec.service_account,
    )
    return V1beta1InferenceService(
        api_version=f"{constants.KSERVE_GROUP}/{constants.KSERVE_V1BETA1_VERSION}",
        kind=constants.KSERVE_KIND_INFERENCESERVICE,
        metadata=V1ObjectMeta(name=spec.name, namespace=spec.namespace, labels=dict(MANAGED_BY)),
        spec=V1beta1InferenceServiceSpec(predictor=predictor),
    )
