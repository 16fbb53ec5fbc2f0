"""KFP component ``deploy_kserve``: serve a Model on KServe, or check it with the local KServe model server."""

from typing import Dict, List, NamedTuple  # noqa: UP035 - KFP's type parser wants typing generics

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def deploy_kserve(
    model: dsl.Input[dsl.Model],
    manifest: dsl.Output[dsl.Artifact],
    name: str,
    target: str = "local",
    storage_uri: str = "",
    model_format: str = "tensorflow",
    runtime_version: str = "",
    gpus: int = 0,
    node_selector: Dict[str, str] = {},  # noqa: B006, UP006 - KFP reads defaults from the signature
    tolerations: List[Dict[str, str]] = [],  # noqa: B006, UP006
    min_replicas: int = 1,
    max_replicas: int = 1,
    canary_traffic_percent: int = -1,
    service_account: str = "",
    namespace: str = "",
    timeout_seconds: int = 600,
) -> NamedTuple("Outputs", [("url", str), ("status", str)]):
    """Serve a Model folder as a KServe InferenceService, or check it with KServe's local model server.

    Args:
        model: The Model folder to serve.
        name: The InferenceService's name (and the served model's).
        target: "local" serves the model with KServe's Python model server in this task, checks
            one prediction over HTTP and stops it; "kserve" creates or patches the
            InferenceService and waits until it is Ready.
        storage_uri: Where the predictor reads the Model folder (pvc://, s3://, gs://); empty:
            the artifact's own object-store URI, which needs service_account.
        model_format: "tensorflow" (TF Serving reads the SavedModel) or "onnx" (Triton reads
            the folder's Triton repository).
        runtime_version: The serving runtime's image tag; empty: TF Serving 2.20.0 (-gpu with
            GPUs), or KServe's default Triton.
        gpus: GPUs of the predictor.
        node_selector: Node labels the predictor's pods must match, e.g. {"pool": "gpu"}.
        tolerations: Tolerations of the predictor's pods in Kubernetes' fields, e.g.
            [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}].
        min_replicas: Fewest predictor replicas.
        max_replicas: Most predictor replicas.
        canary_traffic_percent: Share of traffic for the new revision; -1: no canary.
        service_account: The predictor's service account, whose secret holds the S3 keys and
            endpoint for s3:// and artifact URIs (docs/cluster-setup.md).
        namespace: Where the InferenceService runs; empty: the namespace this task runs in.
        timeout_seconds: How long to wait for the InferenceService (or local server) to be Ready.

    Returns:
        manifest: The InferenceService YAML (applied with target="kserve"; written with either target).
        url: The prediction URL.
        status: "Ready" (a failure to become Ready fails the task).
    """
    import logging
    from collections import namedtuple

    from distml.serving.deploy_step import deploy_step

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = deploy_step(
        model.path,
        model.uri,
        manifest.path,
        name=name,
        target=target,
        storage_uri=storage_uri,
        model_format=model_format,
        runtime_version=runtime_version,
        gpus=gpus,
        node_selector=node_selector,
        tolerations=tolerations,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        canary_traffic_percent=canary_traffic_percent,
        service_account=service_account,
        namespace=namespace,
        timeout_seconds=timeout_seconds,
    )
    manifest.metadata.update({"target": target, "storage_uri": result["storage_uri"], "status": result["status"]})
    return namedtuple("Outputs", ["url", "status"])(result["url"], result["status"])
