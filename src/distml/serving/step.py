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
from distml.serving.isvc import ServingSpec, build_inference_service, storage_uri_of_artifact, to_yaml

log = logging.getLogger(__name__)

TARGETS = ("local", "kserve")
#: Storage URI written into the local target's manifest when the model has no object-store URI.
LOCAL_PLACEHOLDER_URI = "pvc://models/{name}"


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
        Path(manifest_path).write_text(to_yaml(isvc), encoding="utf-8")
    if target == "local":
        from distml.serving.local import serve_and_check

        report = serve_and_check(model_dir, spec.name, instances)
        log.info("local model server answered %s at %s", report["http_status"], report["url"])
        return {"url": report["url"], "status": report["status"], "storage_uri": spec.storage_uri}
    from distml.kube import api_client
    from distml.serving.deploy import deploy_inference_service

    result = deploy_inference_service(isvc, api_client(), timeout_s=timeout_s, progress=log.info)
    return {"url": result.url, "status": result.status, "storage_uri": spec.storage_uri, "action": result.action}
