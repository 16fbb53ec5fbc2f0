"""The deploy step against a real kube-apiserver, as the pipeline runner, with KServe's controller
played by the test (tests/upstream_controllers.py, KServe master aaac4e294).

The deploy runs in a thread; the test writes ``/status`` the way KServe does once it sees the write.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from upstream_controllers import KS_GROUP, KS_PLURAL, KS_VERSION, KServeController

from distml.cli import main
from distml.errors import DistmlError
from distml.serving.deploy import DeployTimeout, deploy_inference_service
from distml.serving.isvc import ServingSpec, build_inference_service

pytestmark = pytest.mark.envtest


@pytest.fixture
def kserve(envtest_cluster):
    return KServeController(envtest_cluster.admin, envtest_cluster.namespace)


@pytest.fixture
def deploy(envtest_cluster):
    """deploy_inference_service(...) in a thread as the runner; returns (future, progress lines)."""
    pool = ThreadPoolExecutor(max_workers=1)

    def start(isvc, timeout_s: float = 30, api=None):
        lines: list[str] = []
        future = pool.submit(
            deploy_inference_service,
            isvc,
            api or envtest_cluster.runner,
            timeout_s=timeout_s,
            poll_s=0.05,
            progress=lines.append,
        )
        return future, lines

    yield start
    pool.shutdown(wait=True)


def isvc(cluster, name: str, **changes):
    spec = ServingSpec(**{"name": name, "storage_uri": "pvc://models/best", "namespace": cluster.namespace, **changes})
    return build_inference_service(spec)


def wait_for_line(lines: list[str], text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in lines):
        assert time.monotonic() < deadline, f"never said {text!r}: {lines}"
        time.sleep(0.02)


def fresh_name() -> str:
    return f"m-{uuid.uuid4().hex[:8]}"


def serve(kserve, name: str, *, ksvc_generation: int, revision: str) -> None:
    """KServe after Knative made ``revision`` ready for the Knative Service's ``ksvc_generation``."""
    kserve.write(
        name,
        kserve.serverless(
            ksvc_generation=ksvc_generation, created=revision, ready_revision=revision, ready=True, name=name
        ),
    )


def test_create_waits_for_knatives_first_revision(envtest_cluster, kserve, deploy):
    name = fresh_name()
    future, lines = deploy(isvc(envtest_cluster, name))
    kserve.wait_generation(name, 1)
    # pkg/controller/v1beta1/inferenceservice/components/predictor.go:243-285: ksvc created, revision 1 loading.
    loading = kserve.serverless(
        ksvc_generation=1, created=f"{name}-predictor-00001", ready_revision=None, ready=False, name=name
    )
    kserve.write(name, loading)
    wait_for_line(lines, "waiting for condition Ready=True")
    assert not future.done()
    serve(kserve, name, ksvc_generation=1, revision=f"{name}-predictor-00001")
    result = future.result(timeout=30)
    assert (result.action, result.status, result.url) == ("created", "Ready", f"http://{name}.example.com")


def test_deploying_the_same_spec_twice_sends_nothing(envtest_cluster, kserve, deploy):
    name = fresh_name()
    desired = isvc(envtest_cluster, name, gpus=1)
    first, _ = deploy(desired)
    kserve.wait_generation(name, 1)
    serve(kserve, name, ksvc_generation=1, revision=f"{name}-predictor-00001")
    first.result(timeout=30)
    before = kserve.get(name)["metadata"]["resourceVersion"]

    again, _ = deploy(isvc(envtest_cluster, name, gpus=1))
    result = again.result(timeout=30)

    assert (result.action, result.generation, result.status) == ("unchanged", 1, "Ready")
    assert kserve.get(name)["metadata"]["resourceVersion"] == before  # nothing written


def test_a_patch_is_not_ready_while_the_old_revision_serves(envtest_cluster, kserve, deploy):
    """Defect 9 (serverless): observedGeneration is the Knative Service's (inference_service_status.go:635),
    whose counter runs ahead of the InferenceService's; comparing it with metadata.generation passed at once
    while the old revision still served."""
    name = fresh_name()
    first, _ = deploy(isvc(envtest_cluster, name))
    kserve.wait_generation(name, 1)
    serve(kserve, name, ksvc_generation=3, revision=f"{name}-predictor-00001")  # ksvc updated by KServe twice
    first.result(timeout=30)

    future, lines = deploy(isvc(envtest_cluster, name, storage_uri="pvc://models/better"))
    kserve.wait_generation(name, 2)
    assert not future.done()  # status still of the old revision: Ready, observedGeneration 3 >= 2
    # Knative saw ksvc generation 4 and created revision 2, not ready yet (still serving 00001).
    kserve.write(
        name,
        kserve.serverless(
            ksvc_generation=4,
            created=f"{name}-predictor-00002",
            ready_revision=f"{name}-predictor-00001",
            ready=True,
            name=name,
            transition="InProgress",
        ),
    )
    with contextlib.suppress(TimeoutError):
        future.result(timeout=0.5)
    assert not future.done()
    serve(kserve, name, ksvc_generation=4, revision=f"{name}-predictor-00002")
    result = future.result(timeout=30)
    assert (result.action, result.generation) == ("patched", 2)
    stored = kserve.get(name)["spec"]["predictor"]["model"]["storageUri"]
    assert stored == "pvc://models/better/model"
    assert any("a new predictor revision" in line or "to act on our change" in line for line in lines)


def test_raw_deployment_is_ready_although_its_generation_is_not_the_isvcs(envtest_cluster, kserve, deploy):
    """Defect 9 (raw): observedGeneration is the Deployment's (inference_service_status.go:455-457): after
    a few patches the InferenceService's generation is ahead of it, and waiting for >= timed out."""
    name = fresh_name()
    first, _ = deploy(isvc(envtest_cluster, name, memory="1Gi"))
    kserve.wait_generation(name, 1)
    kserve.write(name, kserve.raw(deployment_generation=1, ready=True, name=name))
    first.result(timeout=30)
    for generation, memory in ((2, "2Gi"), (3, "3Gi")):  # patched by someone else meanwhile
        patch = {"spec": {"predictor": {"model": {"resources": {"requests": {"memory": memory}}}}}}
        kserve.custom.patch_namespaced_custom_object(
            KS_GROUP, KS_VERSION, envtest_cluster.namespace, KS_PLURAL, name, patch
        )
        kserve.wait_generation(name, generation)
    kserve.write(name, kserve.raw(deployment_generation=2, ready=True, name=name))

    future, _ = deploy(isvc(envtest_cluster, name, memory="4Gi"), timeout_s=20)
    kserve.wait_generation(name, 4)
    kserve.write(name, kserve.raw(deployment_generation=3, ready=False, name=name))  # rolling out
    kserve.write(name, kserve.raw(deployment_generation=3, ready=True, name=name))
    result = future.result(timeout=30)
    assert (result.action, result.generation, result.status) == ("patched", 4, "Ready")


def test_never_ready_times_out_and_leaves_the_service(envtest_cluster, deploy):
    name = fresh_name()
    future, _ = deploy(isvc(envtest_cluster, name), timeout_s=1)  # no controller ever writes a status
    with pytest.raises(DeployTimeout) as caught:
        future.result(timeout=30)
    message = str(caught.value)
    assert "waiting for the controller to act on our change" in message and "left as it is" in message
    custom = client.CustomObjectsApi(envtest_cluster.admin)
    assert custom.get_namespaced_custom_object(KS_GROUP, KS_VERSION, envtest_cluster.namespace, KS_PLURAL, name)


def test_a_failed_load_of_our_revision_is_reported(envtest_cluster, kserve, deploy):
    name = fresh_name()
    future, _ = deploy(isvc(envtest_cluster, name))
    kserve.wait_generation(name, 1)
    failure = {"reason": "ModelLoadFailed", "message": "no servable versions under /mnt/models"}
    kserve.write(
        name,
        kserve.serverless(
            ksvc_generation=1,
            created=f"{name}-predictor-00001",
            ready_revision=None,
            ready=False,
            name=name,
            transition="BlockedByFailedLoad",
            failure=failure,
        ),
    )
    with pytest.raises(DistmlError, match="failed: ModelLoadFailed: no servable versions under /mnt/models"):
        future.result(timeout=30)


def test_a_stale_failure_of_the_previous_revision_is_waited_out(envtest_cluster, kserve, deploy):
    name = fresh_name()
    first, _ = deploy(isvc(envtest_cluster, name, storage_uri="pvc://models/broken"), timeout_s=1)
    kserve.wait_generation(name, 1)
    failure = {"reason": "ModelLoadFailed", "message": "broken"}
    kserve.write(
        name,
        kserve.serverless(
            ksvc_generation=1,
            created=f"{name}-predictor-00001",
            ready_revision=None,
            ready=False,
            name=name,
            transition="BlockedByFailedLoad",
            failure=failure,
        ),
    )
    with pytest.raises(DistmlError, match="ModelLoadFailed"):
        first.result(timeout=30)

    future, _ = deploy(isvc(envtest_cluster, name))
    kserve.wait_generation(name, 2)
    with contextlib.suppress(TimeoutError):
        future.result(timeout=0.5)
    assert not future.done()  # the failure is the old revision's
    serve(kserve, name, ksvc_generation=2, revision=f"{name}-predictor-00002")
    assert future.result(timeout=30).action == "patched"


def test_missing_namespace_is_named(envtest_cluster):
    desired = build_inference_service(ServingSpec(name="m", storage_uri="pvc://models/best", namespace="nowhere"))
    with pytest.raises(DistmlError, match="(namespace nowhere does not exist|forbidden)"):
        deploy_inference_service(desired, envtest_cluster.admin, timeout_s=1)


def test_cli_deploy_with_the_runners_kubeconfig(envtest_cluster, kserve, tmp_path, monkeypatch):
    name = fresh_name()
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "runner",
        "clusters": [
            {
                "name": "envtest",
                "cluster": {
                    "server": envtest_cluster.plane.url,
                    "certificate-authority": envtest_cluster.plane.ca_file,
                },
            }
        ],
        "users": [{"name": "runner", "user": {"token": envtest_cluster.runner_token}}],
        "contexts": [
            {
                "name": "runner",
                "context": {"cluster": "envtest", "user": "runner", "namespace": envtest_cluster.namespace},
            }
        ],
    }
    (tmp_path / "config").write_text(json.dumps(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    args = ["deploy", "--target", "kserve", "--name", name, "--storage-uri", "pvc://models/best", "--timeout", "30"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(CliRunner().invoke, main, args)
        kserve.wait_generation(name, 1)
        serve(kserve, name, ksvc_generation=1, revision=f"{name}-predictor-00001")
        result = future.result(timeout=60)
    assert result.exit_code == 0, result.output
    assert f"{envtest_cluster.namespace}/{name} created generation 1: Ready http://{name}.example.com" in result.output


def test_the_runner_cannot_delete_an_inference_service(envtest_cluster, kserve, deploy):
    """deploy never deletes, and manifests/rbac.yaml does not let it."""
    name = fresh_name()
    future, _ = deploy(isvc(envtest_cluster, name), timeout_s=1)
    kserve.wait_generation(name, 1)
    with contextlib.suppress(DeployTimeout):
        future.result(timeout=30)
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(envtest_cluster.runner).delete_namespaced_custom_object(
            KS_GROUP, KS_VERSION, envtest_cluster.namespace, KS_PLURAL, name
        )
    assert refused.value.status == 403
