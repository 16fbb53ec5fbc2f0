"""Where we talk to Kubernetes: credentials and the namespace, the same for training and serving.

In a pod (a KFP task) the service account's token and namespace; elsewhere the kubeconfig
($KUBECONFIG or ~/.kube/config) and its current context's namespace. Kubeflow runs a user's
pipelines in the user's profile namespace, so "the namespace we run in" is the default target
of TFJobs and InferenceServices, not a fixed one such as ``kubeflow``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distml.errors import DistmlError

#: The extended resource of NVIDIA's device plugin: what GPU requests and limits name.
GPU_RESOURCE = "nvidia.com/gpu"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
#: The Role that lets a pipeline's service account create TFJobs and InferenceServices, and its file.
RBAC_ROLE, RBAC_FILE = "distml-pipeline-runner", "manifests/rbac.yaml"


@dataclass(frozen=True)
class CustomResource:
    """A custom resource we write (TFJob, InferenceService): where its API is, and what provides it."""

    kind: str  # "TFJob"
    group: str  # "kubeflow.org"
    version: str  # "v1"
    plural: str  # "tfjobs"
    provider: str  # "Training Operator v1.9": installs the CRD and its controller
    install_hint: str

    @property
    def resource(self) -> str:
        """``tfjobs.kubeflow.org``: how kubectl and RBAC name it."""
        return f"{self.plural}.{self.group}"


def api_status(err: Any) -> dict[str, Any]:
    """The Status object an ApiException carries in its body (``{}`` when it carries none)."""
    try:
        body = json.loads(err.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def api_message(err: Any) -> str:
    """The API server's own words for an ApiException, else its HTTP reason."""
    return str(api_status(err).get("message") or err.reason or "")


def object_missing(err: Any, resource: CustomResource) -> bool:
    """A 404 about one object of RESOURCE (its API exists), not about the API or the namespace.

    The API server names the object in the Status's ``details`` (kind = the plural, name) only
    when the resource type is served; a missing CRD or namespace gives other details.
    """
    details = api_status(err).get("details") or {}
    return err.status == 404 and details.get("kind") == resource.plural and bool(details.get("name"))


def api_error(err: Any, verb: str, resource: CustomResource, namespace: str, name: str = "") -> DistmlError:
    """An ApiException on RESOURCE as one error that says what to do: the one translator for
    training and serving (raise it ``from err``, so ``--debug`` shows the API's answer)."""
    status = api_status(err)
    message = api_message(err)
    where = f"namespace {namespace}"
    if err.status == 403:
        return DistmlError(
            f"forbidden: cannot {verb} {resource.resource} in namespace {namespace} ({message})",
            hint=f"Bind the pipeline's service account to the Role {RBAC_ROLE} in {RBAC_FILE} "
            f"(kubectl apply -n {namespace} -f {RBAC_FILE}).",
        )
    if err.status == 401:
        return DistmlError("unauthorized by the API server", where=where, hint="Check your kubeconfig or token.")
    if err.status == 404 and not object_missing(err, resource):
        if (status.get("details") or {}).get("kind") == "namespaces":
            return DistmlError(
                f"namespace {namespace} does not exist", hint="Create it or pass an existing --namespace."
            )
        return DistmlError(
            f"the API server has no {resource.resource}/{resource.version} ({resource.provider} is not installed) "
            f"for namespace {namespace}",
            hint=resource.install_hint,
        )
    target = f"{resource.kind} {namespace}/{name}" if name else f"{resource.resource} in namespace {namespace}"
    keep = f" The {resource.kind} that was serving is unchanged." if verb == "patch" else ""
    return DistmlError(
        f"{verb} {target} refused: HTTP {err.status} {status.get('reason') or err.reason}: {message}",
        hint=f"Fix the setting the message names.{keep}",
    )


def unreachable_error(err: BaseException) -> DistmlError:
    """The API server did not answer (refused, reset, timed out): raise it ``from err``."""
    return DistmlError(f"cannot reach the Kubernetes API: {err}", hint="Check the cluster address in your kubeconfig.")


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
        ) from err
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
