"""The deploy step of a pipeline: serve a Model folder locally (check one prediction) or on KServe.

Either way the InferenceService manifest is written to a file: the one applied on the cluster,
or, for the local target, the one that would be applied.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from distml.errors import DistmlError
from distml.kube import manifest_yaml
from distml.serving.isvc import ServingSpec, build_inference_service, storage_uri_of_artifact
from distml.tolerations import tolerations_from_dicts
from distml.training.model_folder import ONNX_FILE, TRITON_DIR, triton_model_name

log = logging.getLogger(__name__)

TARGETS = ("local", "kserve")
#: Storage URI written into the local target's manifest when the model has no object-store URI.
LOCAL_PLACEHOLDER_URI = "pvc://models/{name}"


def deploy_step(
    model_dir: str,
    model_uri: str,
    manifest_path: str,
    *,
    name: str,
    target: str = "local",
    storage_uri: str = "",
    model_format: str = "tensorflow",
    runtime_version: str = "",
    gpus: int = 0,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    min_replicas: int = 1,
    max_replicas: int = 1,
    canary_traffic_percent: int = -1,
    service_account: str = "",
    namespace: str = "",
    timeout_seconds: int = 600,
) -> dict[str, Any]:
    """The deploy_kserve component's body: its inputs as they come from KFP (JSON lists, "" and -1 for unset).

    Kept here, not in the component, so an uploaded pipeline runs the library's logic of the image
    it names instead of a copy frozen into its YAML.
    """
    if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int) or timeout_seconds < 1:
        raise DistmlError(f"timeout_seconds = {timeout_seconds!r} is not a whole number of seconds >= 1")
    spec = ServingSpec(
        name=name,
        storage_uri=storage_uri,
        namespace=namespace,
        model_format=model_format,
        runtime_version=runtime_version or None,
        gpus=gpus,
        node_selector=dict(node_selector or {}),
        tolerations=tolerations_from_dicts(tolerations, where="tolerations"),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        canary_traffic_percent=None if canary_traffic_percent < 0 else canary_traffic_percent,
        service_account=service_account or None,
    )
    return deploy_model(
        model_dir, spec, target=target, model_uri=model_uri, manifest_path=manifest_path, timeout_s=timeout_seconds
    )


def deploy_model(
    model_dir: str | os.PathLike[str],
    spec: ServingSpec,
    *,
    target: str = "local",
    model_uri: str = "",
    manifest_path: str | os.PathLike[str] | None = None,
    instances: Any = None,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Deploy ``model_dir`` per ``spec``; returns {"url", "status", "storage_uri", ...}.

    An empty ``spec.namespace`` means the pod's (kserve) or ``default`` (local). An empty
    ``spec.storage_uri`` is taken from ``model_uri`` (the artifact's gs://, s3:// or minio://
    URI); the local target falls back to a placeholder PVC URI, the kserve target refuses.
    """
    if target not in TARGETS:
        raise DistmlError(f"deploy target {target!r} unknown", hint=f"Use one of: {', '.join(TARGETS)}.")
    triton_name = triton_model_name(model_dir)
    if spec.model_format == "onnx" and triton_name is None:
        raise DistmlError(
            f"the Model folder has no Triton repository ({TRITON_DIR}/<name>/1/{ONNX_FILE}), which KServe's "
            "ONNX runtime (Triton) needs",
            where=str(model_dir),
            hint="Train with onnx=True (this version writes it), or deploy with model_format=tensorflow.",
        )
    if not spec.storage_uri:
        derived = storage_uri_of_artifact(model_uri)
        if derived is None and target == "kserve":
            raise DistmlError(
                f"no storage URI, and the model's URI {model_uri!r} is not on object storage",
                hint="Pass storage_uri (pvc://, s3:// or gs://) where the predictor can read the Model folder.",
            )
        spec.storage_uri = derived or LOCAL_PLACEHOLDER_URI.format(name=spec.name)
    if not spec.namespace:
        from distml.kube import current_namespace

        spec.namespace = current_namespace() if target == "kserve" else "default"
    isvc = build_inference_service(spec)
    if manifest_path is not None:
        Path(manifest_path).parent.mkdir(parents=True, exist_ok=True)
        Path(manifest_path).write_text(manifest_yaml(isvc), encoding="utf-8")
    if target == "local":
        from distml.serving.local import serve_and_check

        report = serve_and_check(model_dir, spec.name, instances)
        log.info("local model server answered %s at %s", report["http_status"], report["url"])
        url = report["v2_url"] if spec.model_format == "onnx" else report["url"]
        return {"url": url, "status": report["status"], "storage_uri": spec.storage_uri}
    from distml.kube import api_client
    from distml.serving.deploy import deploy_inference_service

    result = deploy_inference_service(isvc, api_client(), timeout_s=timeout_s, progress=log.info)
    return {
        "url": predict_url(result.url, spec, triton_name),
        "status": result.status,
        "storage_uri": spec.storage_uri,
        "action": result.action,
    }


def predict_url(service_url: str, spec: ServingSpec, triton_name: str | None) -> str:
    """The prediction URL under an InferenceService's URL: V2 on Triton's model name, else TF Serving's V1.

    KServe's TF Serving runtime names the model after the InferenceService (``--model_name={{.Name}}``,
    kserve/kserve config/runtimes/kserve-tensorflow-serving.yaml:28); Triton after its repository folder.
    """
    if not service_url:
        return ""
    if spec.model_format == "onnx":
        return f"{service_url}/v2/models/{triton_name}/infer"
    return f"{service_url}/v1/models/{spec.name}:predict"
