"""Create or update an InferenceService and wait until what we wrote is Ready, by KServe's own rules.

Idempotent: GET first; create when absent; otherwise a JSON merge patch only when our spec
is not already contained in the live one (deploying twice sends nothing the second time).
Settings we manage but no longer ask for (node selector, tolerations, canary percent, GPU
limit, ...) are patched to null so they really go. Nothing here ever deletes: a refused patch
leaves the serving revision as it was.

Readiness: ``status.observedGeneration`` of an InferenceService is not its own generation but
the one of its child, copied from the Knative Service (serverless) or the Deployment (raw)
(kserve master pkg/apis/serving/v1beta1/inference_service_status.go:455-457 and :635), two
counters unrelated to ``metadata.generation``. So the wait notes the status before our write
and counts it done when (1) the child has moved past it (its observedGeneration changed, and
in serverless mode the predictor has a new ``latestCreatedRevision`` when the pod template
changed), (2) condition Ready is True, (3) in serverless mode ``latestReadyRevision`` equals
``latestCreatedRevision``, and (4) ``modelStatus.transitionStatus`` is UpToDate, which KServe
sets only when (2) and (3) hold (inference_service_status.go:783-795).

Talks to the API through ``kubernetes.client.CustomObjectsApi`` with the kserve SDK's typed
InferenceService as the body, not through ``kserve.KServeClient``: that client loads a kubeconfig
in its constructor and wraps every ``ApiException`` in a ``RuntimeError`` string, which loses the
HTTP status this module needs to tell a missing KServe (404) from missing RBAC (403).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distml import kube
from distml.errors import DistmlError
from distml.kube import GPU_RESOURCE

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
INFERENCE_SERVICES = kube.CustomResource(
    kind="InferenceService",
    group=GROUP,
    version=VERSION,
    plural=PLURAL,
    provider="KServe",
    install_hint="Install KServe (https://kserve.github.io/website/) or serve locally with "
    "`distml deploy --target local`.",
)
FIELD_MANAGER = "distml"
#: KServe model states after which waiting longer cannot help.
TERMINAL_TRANSITIONS = ("BlockedByFailedLoad", "InvalidSpec")
UP_TO_DATE = "UpToDate"
#: status.deploymentMode values of raw Deployments (no Knative revisions): "Standard" on KServe master,
#: "RawDeployment" before (kserve master pkg/constants/constants.go:565-568).
RAW_MODES = ("RawDeployment", "Standard")
#: Predictor keys whose change reaches the Knative Service's traffic only, not its revision template
#: (kserve master pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go:130-160).
TRAFFIC_ONLY_KEYS = frozenset({"canaryTrafficPercent"})
#: Predictor keys we may set; when the live object has one we no longer ask for, the patch nulls it.
MANAGED_PREDICTOR_KEYS = (
    "nodeSelector",
    "tolerations",
    "canaryTrafficPercent",
    "scaleMetric",
    "scaleTarget",
    "serviceAccountName",
)


@dataclass(frozen=True)
class DeployResult:
    """What the deploy did and where the service answers."""

    name: str
    namespace: str
    action: str  # "created", "patched" or "unchanged"
    generation: int
    url: str
    status: str  # "Ready", or "NotWaited" when wait=False


class DeployTimeout(DistmlError):
    """The InferenceService did not become Ready in time (it is left as it is)."""


@dataclass(frozen=True)
class Baseline:
    """The status before our write, which the controller must move past; ``changed``: we wrote the spec."""

    changed: bool
    observed_generation: int | None = None
    latest_created_revision: str | None = None
    new_revision: bool = False  # the write changed the predictor's pod template: a new revision must come

    @classmethod
    def before(cls, live: dict[str, Any] | None, patch: dict[str, Any] | None) -> Baseline:
        """The baseline of creating (``live`` None), patching with ``patch``, or sending nothing (empty patch)."""
        if live is None:
            return cls(changed=True, new_revision=True)
        predictor_change = set(((patch or {}).get("spec") or {}).get("predictor") or {})
        status = live.get("status") or {}
        return cls(
            changed=bool((patch or {}).get("spec")),
            observed_generation=status.get("observedGeneration"),
            latest_created_revision=_predictor(status).get("latestCreatedRevision"),
            new_revision=bool(predictor_change - TRAFFIC_ONLY_KEYS),
        )


def deploy_inference_service(
    isvc: Any,
    api_client: Any,
    *,
    wait: bool = True,
    timeout_s: float = 600.0,
    poll_s: float = 5.0,
    progress: Callable[[str], None] | None = None,
) -> DeployResult:
    """Create or patch ``isvc`` (a ``V1beta1InferenceService``) and wait for Ready of that generation."""
    from kubernetes.client import ApiClient, CustomObjectsApi

    body = ApiClient().sanitize_for_serialization(isvc)
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    api = CustomObjectsApi(api_client)
    report = progress or (lambda _message: None)

    live = _get(api, name, namespace, missing_ok=True)
    patch: dict[str, Any] = {}
    if live is None:
        written = _call(
            api.create_namespaced_custom_object,
            "create",
            namespace,
            name,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            body,
            field_manager=FIELD_MANAGER,
        )
        action = "created"
    else:
        patch = spec_patch(live, body)
        if patch:
            written = _call(
                api.patch_namespaced_custom_object,
                "patch",
                namespace,
                name,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                patch,
                field_manager=FIELD_MANAGER,
            )
            action = "patched"
        else:
            written, action = live, "unchanged"
    generation = int(written["metadata"].get("generation") or 1)
    report(f"InferenceService {namespace}/{name} {action} (generation {generation})")
    if not wait:
        return DeployResult(name, namespace, action, generation, _url(written), "NotWaited")
    baseline = Baseline.before(live, patch)
    ready = wait_ready(api, name, namespace, baseline, timeout_s=timeout_s, poll_s=poll_s, progress=report)
    return DeployResult(name, namespace, action, generation, _url(ready), "Ready")


def spec_patch(live: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The merge patch turning ``live`` into ``desired``; empty when desired is already contained in live.

    Fields the API server or KServe's webhook added (defaults) are kept; managed predictor
    fields that ``desired`` no longer sets, and a GPU limit it no longer asks for, become null.
    """
    patch: dict[str, Any] = {}
    spec = _merge_diff(live.get("spec") or {}, desired["spec"])
    live_predictor = (live.get("spec") or {}).get("predictor") or {}
    desired_predictor = desired["spec"]["predictor"]
    for key in MANAGED_PREDICTOR_KEYS:
        if key in live_predictor and key not in desired_predictor:
            spec.setdefault("predictor", {})[key] = None
    live_resources = (live_predictor.get("model") or {}).get("resources") or {}
    desired_resources = desired_predictor["model"].get("resources") or {}
    for kind in ("limits", "requests"):
        if GPU_RESOURCE in (live_resources.get(kind) or {}) and GPU_RESOURCE not in (desired_resources.get(kind) or {}):
            model = spec.setdefault("predictor", {}).setdefault("model", {})
            model.setdefault("resources", {}).setdefault(kind, {})[GPU_RESOURCE] = None
    if spec:
        patch["spec"] = spec
    labels = _merge_diff((live.get("metadata") or {}).get("labels") or {}, desired["metadata"].get("labels") or {})
    if labels:
        patch["metadata"] = {"labels": labels}
    return patch


def _merge_diff(live: Any, desired: Any) -> Any:
    """Keys of ``desired`` whose value differs from ``live`` (recursing into objects); lists compare whole."""
    diff = {}
    for key, value in desired.items():
        current = live.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            nested = _merge_diff(current, value)
            if nested:
                diff[key] = nested
        elif current != value:
            diff[key] = value
    return diff


def wait_ready(
    api: Any,
    name: str,
    namespace: str,
    baseline: Baseline,
    *,
    timeout_s: float,
    poll_s: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Poll until :func:`not_ready_because` has nothing left to wait for; show what it waits for as it changes.

    A failure (``modelStatus.transitionStatus`` BlockedByFailedLoad or InvalidSpec) counts only once
    the controller has acted on our write: before that it describes the previous revision.
    """
    start = time.monotonic()
    last_summary = None
    while True:
        live = _get(api, name, namespace, missing_ok=False)
        status = live.get("status") or {}
        waiting_for = not_ready_because(status, baseline)
        if not waiting_for:
            progress(f"InferenceService {namespace}/{name} Ready at {_url(live) or '(no URL yet)'}")
            return live
        if _acted_on(status, baseline):
            _raise_if_failed(status, name, namespace)
        elapsed = time.monotonic() - start
        summary = f"waiting for {waiting_for}; " + _summarize(status.get("conditions") or [])
        if summary != last_summary:
            progress(f"{namespace}/{name}: {summary} [{elapsed:.0f} s]")
            last_summary = summary
        if elapsed >= timeout_s:
            raise DeployTimeout(
                f"timed out after {timeout_s:.0f} s waiting for InferenceService {namespace}/{name} to be Ready "
                f"(KServe's rules: the change observed, Ready=True, latest revision ready, model UpToDate); "
                f"last seen: {summary}",
                hint=f"It was left as it is (a previous revision keeps serving). Look at "
                f"`kubectl describe inferenceservice {name} -n {namespace}`; GPU node pools scaling from zero "
                "can take minutes: wait longer with --timeout.",
            )
        time.sleep(poll_s)


def not_ready_because(status: dict[str, Any], baseline: Baseline) -> str:
    """What the InferenceService still lacks to serve what we wrote, by KServe's own rules; '' when Ready.

    See the module's docstring for the rules and where KServe sets each field.
    """
    raw = status.get("deploymentMode") in RAW_MODES
    child = "Deployment" if raw else "Knative Service"
    predictor = _predictor(status)
    created, ready_revision = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    if baseline.changed and not _acted_on(status, baseline):
        return (
            f"the controller to act on our change (observedGeneration of the {child}: "
            f"{status.get('observedGeneration')}, before: {baseline.observed_generation})"
        )
    if baseline.new_revision and not raw and created in (None, "", baseline.latest_created_revision):
        return f"a new predictor revision (latestCreatedRevision: {created or 'none yet'})"
    if _condition(status.get("conditions") or [], "Ready") != "True":
        return "condition Ready=True"
    if not raw and (not created or created != ready_revision):
        return f"revision {created or '?'} to be ready (latestReadyRevision: {ready_revision or 'none'})"
    transition = (status.get("modelStatus") or {}).get("transitionStatus")
    if transition != UP_TO_DATE:
        return f"modelStatus.transitionStatus {UP_TO_DATE} (now {transition or 'unset'})"
    return ""


def _acted_on(status: dict[str, Any], baseline: Baseline) -> bool:
    """The child saw a newer spec than before our write (always true when we wrote nothing)."""
    observed = status.get("observedGeneration")
    return not baseline.changed or (observed is not None and observed != baseline.observed_generation)


def _predictor(status: dict[str, Any]) -> dict[str, Any]:
    return (status.get("components") or {}).get("predictor") or {}


def _raise_if_failed(status: dict[str, Any], name: str, namespace: str) -> None:
    model_status = status.get("modelStatus") or {}
    if model_status.get("transitionStatus") in TERMINAL_TRANSITIONS:
        failure = model_status.get("lastFailureInfo") or {}
        reason = failure.get("reason") or model_status["transitionStatus"]
        message = failure.get("message") or _summarize(status.get("conditions") or [])
        raise DistmlError(
            f"InferenceService {namespace}/{name} failed: {reason}: {message}",
            hint="Check the storage URI and model format; the previous revision, if any, keeps serving.",
        )


def _condition(conditions: list[dict[str, Any]], kind: str) -> str | None:
    return next((c.get("status") for c in conditions if c.get("type") == kind), None)


def _summarize(conditions: list[dict[str, Any]]) -> str:
    if not conditions:
        return "no conditions yet"
    parts = []
    for c in conditions:
        text = f"{c.get('type')}={c.get('status')}"
        detail = ": ".join(str(c[key]) for key in ("reason", "message") if c.get(key))
        parts.append(f"{text} ({detail})" if detail and c.get("status") != "True" else text)
    return ", ".join(parts)


def _url(isvc: dict[str, Any]) -> str:
    return ((isvc.get("status") or {}).get("url")) or ""


def _get(api: Any, name: str, namespace: str, *, missing_ok: bool) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return _call(
            api.get_namespaced_custom_object,
            "get",
            namespace,
            name,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            reraise_not_found=True,
        )
    except ApiException as err:
        if not kube.object_missing(err, INFERENCE_SERVICES):
            raise kube.api_error(err, "get", INFERENCE_SERVICES, namespace, name) from err
        if missing_ok:
            return None
        raise DistmlError(
            f"InferenceService {namespace}/{name} disappeared while waiting",
            hint="Someone deleted it; deploy again.",
        ) from err


def _call(
    function: Callable[..., Any],
    verb: str,
    namespace: str,
    name: str,
    *args: Any,
    reraise_not_found: bool = False,
    **kwargs: Any,
) -> Any:
    """Call the API; turn refusals into DistmlErrors that say what to do (distml.kube.api_error)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    try:
        return function(*args, **kwargs)
    except ApiException as err:
        if err.status == 404 and reraise_not_found:
            raise
        raise kube.api_error(err, verb, INFERENCE_SERVICES, namespace, name) from err
    except urllib3.exceptions.HTTPError as err:
        raise kube.unreachable_error(err) from err
