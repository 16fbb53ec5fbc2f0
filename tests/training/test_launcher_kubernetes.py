"""Kubernetes launcher against a local HTTP test double of the Kubernetes API (pytest-httpserver),
for what a real API server does not do on demand: 5xx and 429 answers, dropped connections, an
API without the TFJob resource. Everything else runs against a real kube-apiserver in
tests/cluster/test_launcher_envtest.py.
"""

from __future__ import annotations

import json
import signal

import pytest
from kubernetes import client as k8s
from werkzeug import Response

from distml.errors import DistmlError
from distml.ports import free_ports
from distml.training.kubernetes import TFJobLauncher, TrainingFailed, launching_pod_owner
from distml.training.spec import TrainingSpec

NS, NAME = "team", "distml-cnn-0123456789"
JOBS = f"/apis/kubeflow.org/v1/namespaces/{NS}/tfjobs"
JOB = f"{JOBS}/{NAME}"
PODS = f"/api/v1/namespaces/{NS}/pods"
EVENTS = f"/api/v1/namespaces/{NS}/events"
NOT_FOUND_JOB = {"kind": "Status", "code": 404, "reason": "NotFound", "details": {"name": NAME, "kind": "tfjobs"}}


def _job(*conditions: str, replicas: dict | None = None) -> dict:
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": NAME, "namespace": NS},
        "status": {
            "conditions": [
                {"type": c, "status": "True", "message": f"TFJob {NAME} is {c.lower()}."} for c in conditions
            ],
            "replicaStatuses": replicas or {},
        },
    }


@pytest.fixture
def launcher(httpserver, tmp_path):
    configuration = k8s.Configuration(host=httpserver.url_for("/").rstrip("/"))
    lines: list[str] = []
    launcher = TFJobLauncher(
        k8s.ApiClient(configuration),
        namespace=NS,
        poll_interval=0.01,
        progress=lines.append,
        failure_dir=tmp_path / "failure",
    )
    launcher.lines = lines
    return launcher


@pytest.fixture
def spec() -> TrainingSpec:
    return TrainingSpec(image="img", command=["python", "-m", "distml.training.worker"], workers=2)


def _deletes(httpserver) -> list:
    return [request for request, _ in httpserver.log if request.method == "DELETE"]


def _job_answers(httpserver, *answers: Response) -> None:
    """GETs of the job get ``answers`` in turn, the last one from then on; pods and events lists are empty."""
    queue = list(answers)
    httpserver.expect_request(JOB, method="GET").respond_with_handler(
        lambda request: queue.pop(0) if len(queue) > 1 else queue[0]
    )
    httpserver.expect_request(PODS, method="GET").respond_with_json({"items": []})
    httpserver.expect_request(EVENTS, method="GET").respond_with_json({"items": []})


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


@pytest.mark.parametrize("status", [503, 429])
def test_a_transient_api_error_while_waiting_is_retried_not_fatal(httpserver, launcher, spec, status):
    _job_answers(
        httpserver,
        _json(_job("Running")),
        _json(_job("Running")),
        Response("busy", status=status),
        _json(_job("Running", "Succeeded")),
    )
    httpserver.expect_request(JOB, method="DELETE").respond_with_json({})

    result = launcher.run(spec, name=NAME, timeout=30)

    assert result.state == "Succeeded"
    assert any(f"API error {status}" in line and "retrying" in line for line in launcher.lines)
    assert len(_deletes(httpserver)) == 1


def test_an_api_server_that_stays_down_ends_in_a_timeout_that_deletes_the_job(httpserver, launcher, spec):
    _job_answers(httpserver, _json(_job("Running")), _json(_job("Running")), Response("down", status=503))
    httpserver.expect_request(JOB, method="DELETE").respond_with_json({})

    with pytest.raises(TrainingFailed, match="did not finish within 0 s"):
        launcher.run(spec, name=NAME, timeout=0.2)
    assert len(_deletes(httpserver)) == 1


def test_an_api_server_unreachable_until_the_deadline_ends_in_a_timeout_not_a_connection_error(
    httpserver, launcher, spec
):
    _job_answers(httpserver, _json(_job("Running")))
    closed_port = free_ports(1)[0]
    configuration = launcher.custom.api_client.configuration

    def unplug_after_running(line: str) -> None:
        launcher.lines.append(line)
        if "Running" in line:
            configuration.host = f"http://127.0.0.1:{closed_port}"

    launcher.progress = unplug_after_running
    with pytest.raises(TrainingFailed, match="did not finish within 0 s"):
        launcher.run(spec, name=NAME, timeout=0.2)
    assert any("API unreachable" in line and "retrying" in line for line in launcher.lines)
    assert any("could not delete it (API unreachable" in line for line in launcher.lines)


def test_a_failed_job_is_reported_and_deleted_even_when_the_api_fails_while_its_logs_are_saved(
    httpserver, launcher, spec, tmp_path
):
    failed = json.dumps(_job("Running", "Failed"))
    answers = iter([Response(failed, content_type="application/json") for _ in range(2)])  # existence check, poll
    httpserver.expect_request(JOB, method="GET").respond_with_handler(
        lambda request: next(answers, Response("busy", status=503))
    )
    httpserver.expect_request(PODS, method="GET").respond_with_data("busy", status=503)
    httpserver.expect_request(EVENTS, method="GET").respond_with_data("busy", status=503)
    httpserver.expect_request(JOB, method="DELETE").respond_with_json({})

    with pytest.raises(TrainingFailed, match=f"TFJob {NAME} failed"):
        launcher.run(spec, name=NAME, timeout=30)
    assert len(_deletes(httpserver)) == 1
    assert "(events unavailable: 503" in (tmp_path / "failure" / "events.txt").read_text()


def test_the_job_is_deleted_while_sigterm_still_cancels_so_a_second_one_cannot_cut_the_clean_up(
    httpserver, launcher, spec
):
    outside = signal.getsignal(signal.SIGTERM)
    during_delete: list = []

    def record_handler(request):
        during_delete.append(signal.getsignal(signal.SIGTERM))
        return Response("{}", content_type="application/json")

    _job_answers(httpserver, _json(_job("Running")))
    httpserver.expect_request(JOB, method="DELETE").respond_with_handler(record_handler)

    with pytest.raises(TrainingFailed, match="did not finish"):
        launcher.run(spec, name=NAME, timeout=0.05)
    assert len(during_delete) == 1 and during_delete[0] not in (outside, signal.SIG_DFL)
    assert signal.getsignal(signal.SIGTERM) == outside


def test_missing_training_operator_says_how_to_install(httpserver, launcher, spec):
    httpserver.expect_request(JOB, method="GET").respond_with_data("404 page not found", status=404)

    with pytest.raises(DistmlError) as error:
        launcher.run(spec, name=NAME, timeout=30)
    assert "no tfjobs.kubeflow.org/v1 (Training Operator is not installed)" in str(error.value)
    assert "training-operator.git/manifests/overlays/standalone?ref=v1.9.0" in str(error.value)
    assert error.value.__cause__.status == 404  # the API's answer stays the cause, for --debug


def test_owner_is_the_launching_kfp_pod_in_the_same_namespace():
    env = {"KFP_POD_NAME": "train-pod", "KFP_POD_UID": "uid-1", "KFP_NAMESPACE": NS}
    owner = launching_pod_owner(env, namespace=NS)
    assert (owner.kind, owner.name, owner.uid) == ("Pod", "train-pod", "uid-1")
    assert launching_pod_owner(env, namespace="elsewhere") is None
    assert launching_pod_owner({}, namespace=NS) is None
