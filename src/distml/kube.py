"""Where we talk to Kubernetes: credentials and the namespace, the same for training and serving.

In a pod (a KFP task) the service account's token and namespace; elsewhere the kubeconfig
($KUBECONFIG or ~/.kube/config) and its current context's namespace. Kubeflow runs a user's
pipelines in the user's profile namespace, so "the namespace we run in" is the default target
of TFJobs and InferenceServices, not a fixed one such as ``kubeflow``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from distml.errors import DistmlError

#: The extended resource of NVIDIA's device plugin: what GPU requests and limits name.
GPU_RESOURCE = "nvidia.com/gpu"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def api_client(context: str | None = None) -> Any:
    """An ApiClient from the pod's service account, or else from the kubeconfig (optionally a context)."""
    from kubernetes import client, config

    try:
        if context is None and SERVICE_ACCOUNT_NAMESPACE.exists():
            config.load_incluster_config()
        else:
            config.load_kube_config(config_file=_kubeconfig(), context=context)
    except config.ConfigException as err:
        raise DistmlError(
            f"no Kubernetes configuration: {err}",
            hint="Run inside the cluster, or set KUBECONFIG / ~/.kube/config (or use --dry-run).",
        ) from None
    return client.ApiClient()


def manifest(model: Any) -> dict[str, Any]:
    """A Kubernetes SDK model (a TFJob, an InferenceService, ...) as the JSON the API server receives:
    camelCase keys, no None fields (the kubernetes client's own serializer)."""
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(model)


def manifest_yaml(model: Any) -> str:
    """The manifest of ``model`` as YAML, fields in the SDK's order (what ``--dry-run`` prints)."""
    import yaml

    return yaml.safe_dump(manifest(model), sort_keys=False)


def current_namespace() -> str:
    """The pod's namespace in a cluster, else the kubeconfig context's, else ``default``."""
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip()
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=_kubeconfig())
    except (config.ConfigException, FileNotFoundError):
        return "default"
    return (active or {}).get("context", {}).get("namespace") or "default"


def _kubeconfig() -> str | None:
    """$KUBECONFIG as it is now (the kubernetes package reads it once, at import)."""
    return os.environ.get("KUBECONFIG") or None
