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
    """Deploy ``model`` as InferenceService ``name``; outputs its URL and status.

    target="local" (the local runner's default) serves the model with KServe's Python model
    server in this task, checks one prediction over HTTP and stops it; target="kserve"
    creates or patches the InferenceService and waits until the generation it wrote is Ready.
    Both write the InferenceService YAML to ``manifest``. storage_uri: where the predictor reads
    the Model folder (pvc://, s3://, gs://); empty: the artifact's own object-store URI.
    tolerations: [{"key": ..., "value": ... (optional), "effect": "NoSchedule"}]; canary_traffic_percent
    -1 means no canary.
    """
    import logging
    from collections import namedtuple

    from distml.serving.isvc import ServingSpec, make_toleration
    from distml.serving.step import deploy_model

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = ServingSpec(
        name=name,
        storage_uri=storage_uri,
        namespace=namespace,
        model_format=model_format,
        gpus=gpus,
        node_selector=dict(node_selector),
        tolerations=[make_toleration(t["key"], t["effect"], t.get("value")) for t in tolerations],
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        canary_traffic_percent=None if canary_traffic_percent < 0 else canary_traffic_percent,
        service_account=service_account or None,
    )
    result = deploy_model(
        model.path, spec, target=target, model_uri=model.uri, manifest_path=manifest.path, timeout_s=timeout_seconds
    )
    manifest.metadata.update({"target": target, "storage_uri": result["storage_uri"], "status": result["status"]})
    outputs = namedtuple("Outputs", ["url", "status"])
    return outputs(result["url"], result["status"])
