"""Deploying an InferenceService, tested against a local HTTP test double of the Kubernetes API.

pytest-httpserver plays the API server at the client's boundary: a
``kubernetes.client.Configuration(host=httpserver.url_for("/"))`` points the real client at it,
and each test scripts the answers of KServe's custom-resource endpoints (create, patch, never
Ready, KServe missing, forbidden, a refused patch, a failed model load). ``httpserver.log``
shows every request made, so the tests also check what was NOT sent (no patch when nothing
changed, never a DELETE).
"""

import copy
import json

import pytest
from click.testing import CliRunner
from kubernetes.client import ApiClient, Configuration
from werkzeug import Response

from distml.cli import main
from distml.cli.options import parse_toleration
from distml.errors import DistmlError
from distml.serving.deploy import DeployTimeout, deploy_inference_service, spec_patch
from distml.serving.isvc import ServingSpec, build_inference_service, to_dict

NS, NAME = "ml", "digits"
ITEM = f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices/{NAME}"
COLLECTION = f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices"
URL = f"http://{NAME}.{NS}.example.com"


def isvc(**changes):
    spec = ServingSpec(**{"name": NAME, "storage_uri": "pvc://models/best", "namespace": NS, **changes})
    return build_inference_service(spec)


def live(desired, generation, observed=None, ready=None, **status):
    """The object as the API server returns it: webhook defaults added, metadata and status filled in."""
    body = to_dict(desired) if not isinstance(desired, dict) else copy.deepcopy(desired)
    body["metadata"].update({"generation": generation, "resourceVersion": str(100 + generation), "uid": "u1"})
    body["spec"]["predictor"]["model"]["runtime"] = "kserve-tensorflow-serving"  # a default KServe fills in
    conditions = []
    if ready is not None:
        conditions = [
            {
                "type": "PredictorReady",
                "status": ready,
                **({} if ready == "True" else {"reason": "RevisionMissing", "message": "scaling up"}),
            },
            {"type": "Ready", "status": ready},
        ]
    body["status"] = {"observedGeneration": observed, "conditions": conditions, "url": URL, **status}
    return body


def not_found(kind="inferenceservices"):
    status = {
        "kind": "Status",
        "status": "Failure",
        "reason": "NotFound",
        "code": 404,
        "message": f'{kind} "{NAME}" not found',
        "details": {"name": NAME, "kind": kind},
    }
    return Response(json.dumps(status), status=404, content_type="application/json")


def forbidden(verb):
    message = (
        f'inferenceservices.serving.kserve.io "{NAME}" is forbidden: User "system:serviceaccount:{NS}:runner" '
        f'cannot {verb} resource "inferenceservices" in API group "serving.kserve.io" in the namespace "{NS}"'
    )
    status = {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403, "message": message}
    return Response(json.dumps(status), status=403, content_type="application/json")


@pytest.fixture
def api(httpserver):
    return ApiClient(Configuration(host=httpserver.url_for("/").rstrip("/")))


def methods(httpserver):
    return [request.method for request, _ in httpserver.log]


def test_create_when_absent_then_wait_for_ready(httpserver, api):
    desired = isvc()
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_response(not_found())
    httpserver.expect_ordered_request(COLLECTION, method="POST").respond_with_json(live(desired, 1), status=201)
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(live(desired, 1, None))
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(live(desired, 1, 1, "False"))
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(live(desired, 1, 1, "True"))
    messages = []
    result = deploy_inference_service(desired, api, poll_s=0, progress=messages.append)
    httpserver.check_assertions()
    assert (result.action, result.generation, result.status, result.url) == ("created", 1, "Ready", URL)
    sent = json.loads(httpserver.log[1][0].get_data())
    assert sent == to_dict(desired)
    assert messages[0] == f"InferenceService {NS}/{NAME} created (generation 1)"
    assert any("no conditions yet" in m for m in messages)
    assert any("PredictorReady=False (RevisionMissing: scaling up), Ready=False" in m for m in messages)
    assert messages[-1] == f"InferenceService {NS}/{NAME} Ready at {URL}"


def test_deploying_the_same_spec_twice_sends_nothing(httpserver, api):
    desired = isvc(tolerations=[parse_toleration("nvidia.com/gpu:NoSchedule")], gpus=1)
    httpserver.expect_request(ITEM, method="GET").respond_with_json(live(desired, 3, 3, "True"))
    result = deploy_inference_service(desired, api, poll_s=0)
    httpserver.check_assertions()
    assert (result.action, result.generation, result.status) == ("unchanged", 3, "Ready")
    assert methods(httpserver) == ["GET", "GET"]


def test_patch_waits_for_the_generation_it_wrote(httpserver, api):
    old = isvc(tolerations=[parse_toleration("spot:NoExecute")], gpus=1, canary_traffic_percent=10)
    desired = isvc(storage_uri="pvc://models/better")
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(live(old, 4, 4, "True"))
    httpserver.expect_ordered_request(ITEM, method="PATCH").respond_with_json(live(desired, 5, 4, "True"))
    # The old revision is still Ready: that must not count as done.
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(live(desired, 5, 4, "True"))
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(live(desired, 5, 5, "True"))
    result = deploy_inference_service(desired, api, poll_s=0)
    httpserver.check_assertions()
    assert (result.action, result.generation) == ("patched", 5)
    request = httpserver.log[1][0]
    assert request.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(request.get_data()) == {
        "spec": {
            "predictor": {
                "model": {
                    "runtimeVersion": "2.20.0",  # was 2.20.0-gpu: the GPU build goes with the GPU
                    "storageUri": "pvc://models/better/model",
                    "resources": {"limits": {"nvidia.com/gpu": None}, "requests": {"nvidia.com/gpu": None}},
                },
                "tolerations": None,
                "canaryTrafficPercent": None,
            }
        }
    }


def test_never_ready_times_out_naming_what_it_waited_for(httpserver, api):
    desired = isvc()
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_response(not_found())
    httpserver.expect_ordered_request(COLLECTION, method="POST").respond_with_json(live(desired, 1), status=201)
    httpserver.expect_request(ITEM, method="GET").respond_with_json(live(desired, 1, 1, "False"))
    with pytest.raises(DeployTimeout) as caught:
        deploy_inference_service(desired, api, timeout_s=0.2, poll_s=0.05)
    message = str(caught.value)
    assert f"waiting for InferenceService {NS}/{NAME} generation 1 to be Ready" in message
    assert "observedGeneration >= 1 and condition Ready=True" in message
    assert "PredictorReady=False (RevisionMissing: scaling up)" in message
    assert "left as it is" in message
    assert "DELETE" not in methods(httpserver)


def test_kserve_missing_404_says_so(httpserver, api):
    httpserver.expect_request(ITEM, method="GET").respond_with_data("404 page not found", status=404)
    with pytest.raises(DistmlError, match=r"no inferenceservices.serving.kserve.io/v1beta1 \(KServe is not installed"):
        deploy_inference_service(isvc(), api)
    assert methods(httpserver) == ["GET"]


def test_missing_namespace_is_named(httpserver, api):
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_response(not_found())
    httpserver.expect_ordered_request(COLLECTION, method="POST").respond_with_response(not_found("namespaces"))
    with pytest.raises(DistmlError, match=f"namespace {NS} does not exist"):
        deploy_inference_service(isvc(), api)


@pytest.mark.parametrize("verb", ["get", "create", "patch"])
def test_forbidden_403_names_verb_resource_and_role(httpserver, api, verb):
    if verb == "get":
        httpserver.expect_request(ITEM, method="GET").respond_with_response(forbidden("get"))
    elif verb == "create":
        httpserver.expect_ordered_request(ITEM, method="GET").respond_with_response(not_found())
        httpserver.expect_ordered_request(COLLECTION, method="POST").respond_with_response(forbidden("create"))
    else:
        httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(live(isvc(gpus=1), 1, 1, "True"))
        httpserver.expect_ordered_request(ITEM, method="PATCH").respond_with_response(forbidden("patch"))
    with pytest.raises(DistmlError) as caught:
        deploy_inference_service(isvc(), api)
    message = str(caught.value)
    assert f"forbidden: cannot {verb} inferenceservices.serving.kserve.io in namespace {NS}" in message
    assert "Role distml-pipeline-runner in manifests/rbac.yaml" in message


def test_refused_patch_keeps_the_serving_model(httpserver, api):
    status = {
        "kind": "Status",
        "status": "Failure",
        "reason": "Invalid",
        "code": 422,
        "message": 'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request: '
        "bad storageUri",
    }
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(live(isvc(), 2, 2, "True"))
    httpserver.expect_ordered_request(ITEM, method="PATCH").respond_with_json(status, status=422)
    with pytest.raises(DistmlError) as caught:
        deploy_inference_service(isvc(storage_uri="gs://elsewhere/m"), api)
    message = str(caught.value)
    assert "patch InferenceService ml/digits refused: HTTP 422 Invalid" in message and "denied the request" in message
    assert "was serving is unchanged" in message
    assert methods(httpserver) == ["GET", "PATCH"]


def test_failed_model_load_reports_the_reason(httpserver, api):
    desired = isvc()
    failure = {
        "transitionStatus": "BlockedByFailedLoad",
        "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "no servable versions under /mnt/models"},
    }
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_response(not_found())
    httpserver.expect_ordered_request(COLLECTION, method="POST").respond_with_json(live(desired, 1), status=201)
    httpserver.expect_request(ITEM, method="GET").respond_with_json(live(desired, 1, 1, "False", modelStatus=failure))
    with pytest.raises(DistmlError, match="failed: ModelLoadFailed: no servable versions under /mnt/models"):
        deploy_inference_service(desired, api, poll_s=0)


def test_a_stale_failure_of_the_previous_generation_is_waited_out(httpserver, api):
    broken = isvc(storage_uri="pvc://models/broken")
    desired = isvc()
    failure = {"transitionStatus": "BlockedByFailedLoad", "lastFailureInfo": {"reason": "ModelLoadFailed"}}
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(
        live(broken, 2, 2, "False", modelStatus=failure)
    )
    httpserver.expect_ordered_request(ITEM, method="PATCH").respond_with_json(
        live(desired, 3, 2, "False", modelStatus=failure)
    )
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(
        live(desired, 3, 2, "False", modelStatus=failure)
    )
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(live(desired, 3, 3, "True"))
    messages = []
    result = deploy_inference_service(desired, api, poll_s=0, progress=messages.append)
    httpserver.check_assertions()
    assert (result.action, result.generation, result.status) == ("patched", 3, "Ready")
    assert any("waiting for the controller to observe generation 3 (seen 2)" in m for m in messages)


def test_ready_at_a_newer_generation_than_ours_counts(httpserver, api):
    desired = isvc()
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_response(not_found())
    httpserver.expect_ordered_request(COLLECTION, method="POST").respond_with_json(live(desired, 1), status=201)
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(live(desired, 2, 2, "True"))
    result = deploy_inference_service(desired, api, poll_s=0)
    httpserver.check_assertions()
    assert (result.action, result.generation, result.status) == ("created", 1, "Ready")


def test_spec_patch_keeps_server_defaults_and_replaces_lists_whole():
    desired = to_dict(isvc(tolerations=[parse_toleration("a:NoSchedule")]))
    current = live(isvc(tolerations=[parse_toleration("a:NoSchedule"), parse_toleration("b:NoSchedule")]), 1)
    patch = spec_patch(current, desired)
    assert patch == {
        "spec": {"predictor": {"tolerations": [{"key": "a", "operator": "Exists", "effect": "NoSchedule"}]}}
    }
    assert spec_patch(live(desired, 1), desired) == {}


def test_cli_deploy_uses_the_kubeconfig_namespace(httpserver, tmp_path, monkeypatch):
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "test",
        "clusters": [{"name": "double", "cluster": {"server": httpserver.url_for("/").rstrip("/")}}],
        "users": [{"name": "me", "user": {"token": "t"}}],
        "contexts": [{"name": "test", "context": {"cluster": "double", "user": "me", "namespace": NS}}],
    }
    (tmp_path / "config").write_text(json.dumps(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    desired = isvc()
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_response(not_found())
    httpserver.expect_ordered_request(COLLECTION, method="POST").respond_with_json(live(desired, 1), status=201)
    httpserver.expect_ordered_request(ITEM, method="GET").respond_with_json(live(desired, 1, 1, "True"))
    args = ["deploy", "--name", NAME, "--storage-uri", "pvc://models/best", "--timeout", "5"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"{NS}/{NAME} created generation 1: Ready {URL}" in result.output
    assert httpserver.log[1][0].headers["Authorization"] == "Bearer t"

    httpserver.clear()
    httpserver.expect_request(ITEM, method="GET").respond_with_data("404 page not found", status=404)
    missing = CliRunner().invoke(main, args)
    assert missing.exit_code == 1 and missing.output.startswith("error: the API server has no inferenceservices")
