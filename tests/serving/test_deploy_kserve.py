"""Deploying an InferenceService against a local HTTP test double of the Kubernetes API, for what the
real API server of tests/cluster/test_deploy_envtest.py cannot give: an API without KServe (404 page) and a
refusal by KServe's admission webhook (422). Also the merge patch itself, a pure function.
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
from distml.kube import manifest as to_manifest
from distml.serving.deploy import deploy_inference_service, spec_patch
from distml.serving.isvc import ServingSpec, build_inference_service

NS, NAME = "ml", "digits"
ITEM = f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices/{NAME}"
COLLECTION = f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices"
URL = f"http://{NAME}.{NS}.example.com"


def isvc(**changes):
    spec = ServingSpec(**{"name": NAME, "storage_uri": "pvc://models/best", "namespace": NS, **changes})
    return build_inference_service(spec)


def live(desired, generation, observed=None, ready=None, **status):
    """The object as the API server returns it: webhook defaults added, metadata and status filled in."""
    body = to_manifest(desired) if not isinstance(desired, dict) else copy.deepcopy(desired)
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


@pytest.fixture
def api(httpserver):
    return ApiClient(Configuration(host=httpserver.url_for("/").rstrip("/")))


def methods(httpserver):
    return [request.method for request, _ in httpserver.log]


def test_kserve_missing_404_says_so(httpserver, api):
    httpserver.expect_request(ITEM, method="GET").respond_with_data("404 page not found", status=404)
    with pytest.raises(DistmlError, match=r"no inferenceservices.serving.kserve.io/v1beta1 \(KServe is not installed"):
        deploy_inference_service(isvc(), api)
    assert methods(httpserver) == ["GET"]


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
    assert caught.value.__cause__.status == 422  # the API's answer stays the cause, for --debug
    assert methods(httpserver) == ["GET", "PATCH"]


def test_spec_patch_keeps_server_defaults_and_replaces_lists_whole():
    desired = to_manifest(isvc(tolerations=[parse_toleration("a:NoSchedule")]))
    current = live(isvc(tolerations=[parse_toleration("a:NoSchedule"), parse_toleration("b:NoSchedule")]), 1)
    patch = spec_patch(current, desired)
    assert patch == {
        "spec": {"predictor": {"tolerations": [{"key": "a", "operator": "Exists", "effect": "NoSchedule"}]}}
    }
    assert spec_patch(live(desired, 1), desired) == {}


def test_cli_says_kserve_is_missing(httpserver, tmp_path, monkeypatch):
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
    httpserver.expect_request(ITEM, method="GET").respond_with_data("404 page not found", status=404)
    args = ["deploy", "--name", NAME, "--storage-uri", "pvc://models/best", "--timeout", "5"]
    missing = CliRunner().invoke(main, args)
    assert missing.exit_code == 1 and missing.output.startswith("error: the API server has no inferenceservices")
    assert httpserver.log[0][0].headers["Authorization"] == "Bearer t"

