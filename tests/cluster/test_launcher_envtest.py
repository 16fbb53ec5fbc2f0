"""The TFJob launcher against a real kube-apiserver (tests/kube_envtest.py), as the pipeline runner.

The launcher runs in a thread with the runner's service-account token, so every call it makes is
authorized by manifests/rbac.yaml on the server; the test plays the Training Operator v1.9.0
(tests/upstream_controllers.py) and a kubelet that serves the pods' logs.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from upstream_controllers import TF_GROUP, TF_PLURAL, TF_VERSION, TrainingOperator

from distml.errors import DistmlError
from distml.kube import manifest as to_manifest
from distml.training.kubernetes import TFJobLauncher, TrainingFailed
from distml.training.spec import RunPolicy, TrainingSpec
from distml.training.tfjob import build_tfjob

pytestmark = pytest.mark.envtest


class Lines(list):
    """The launcher's progress lines; a test waits for one to know what the launcher has seen."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def append(self, line: str) -> None:
        with self.changed:
            super().append(line)
            self.changed.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = 20) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: sum(text in line for line in self) >= count, timeout):
                raise AssertionError(f"launcher never said {text!r} {count}x; it said:\n" + "\n".join(self))


@pytest.fixture
def run(envtest_cluster, tmp_path):
    """Start ``launcher.run`` in a thread as the runner; returns (future, launcher, lines, job name)."""
    pool = ThreadPoolExecutor(max_workers=1)
    names: list[str] = []

    def start(spec: TrainingSpec, timeout: float = 60, api=None, name: str = ""):
        name = name or f"distml-t-{uuid.uuid4().hex[:8]}"
        names.append(name)
        lines = Lines()
        launcher = TFJobLauncher(
            api or envtest_cluster.runner,
            namespace=envtest_cluster.namespace,
            poll_interval=0.1,
            progress=lines.append,
            failure_dir=tmp_path / name,
        )
        return pool.submit(launcher.run, spec, name=name, timeout=timeout), launcher, lines, name

    yield start
    custom = client.CustomObjectsApi(envtest_cluster.admin)
    for name in names:  # a launcher still waiting (a failed test) ends: its job was deleted while it ran
        with contextlib.suppress(ApiException):
            custom.delete_namespaced_custom_object(TF_GROUP, TF_VERSION, envtest_cluster.namespace, TF_PLURAL, name)
    pool.shutdown(wait=True)


@pytest.fixture
def operator(envtest_cluster, fake_kubelet):
    return TrainingOperator(envtest_cluster.admin, envtest_cluster.namespace, fake_kubelet)


def spec(workers: int = 2, **changes) -> TrainingSpec:
    return TrainingSpec(image="img", command=["python", "-m", "distml.training.worker"], workers=workers, **changes)


def job_exists(cluster, name: str) -> bool:
    try:
        client.CustomObjectsApi(cluster.admin).get_namespaced_custom_object(
            TF_GROUP, TF_VERSION, cluster.namespace, TF_PLURAL, name
        )
    except ApiException as err:
        assert err.status == 404
        return False
    return True


def test_create_follow_logs_succeed_and_delete(envtest_cluster, run, operator, fake_kubelet):
    future, _, lines, name = run(spec())
    stored = operator.job(name)
    # What the API server accepted (the CRD's schema is enforced server-side):
    assert stored["spec"]["runPolicy"] == {"backoffLimit": 7, "cleanPodPolicy": "Running", "suspend": False}
    assert {r["restartPolicy"] for r in stored["spec"]["tfReplicaSpecs"].values()} == {"ExitCode"}
    status = operator.created(name)
    operator.start_pods(name, status)
    lines.wait_for("Running Worker[active=2]")
    fake_kubelet.say(f"{name}-worker-0", "worker-0 epoch=1/2 loss=0.7")
    lines.wait_for("worker-0 | worker-0 epoch=1/2")
    fake_kubelet.say(f"{name}-worker-0", "worker-0 epoch=2/2 loss=0.4")
    operator.succeed(name, status)

    result = future.result(timeout=30)

    assert (result.state, result.attached) == ("Succeeded", False)
    followed = [line for line in lines if line.startswith("worker-0 | ")]
    assert followed == ["worker-0 | worker-0 epoch=1/2 loss=0.7", "worker-0 | worker-0 epoch=2/2 loss=0.4"]
    assert not job_exists(envtest_cluster, name)


def test_a_restarted_launcher_reattaches_to_its_job(envtest_cluster, run, operator):
    """A retried KFP task has the same job name: the job its first attempt created is waited for, not made again."""
    name = f"distml-t-{uuid.uuid4().hex[:8]}"
    first_attempt = to_manifest(build_tfjob(spec(), name=name, namespace=envtest_cluster.namespace))
    client.CustomObjectsApi(envtest_cluster.runner).create_namespaced_custom_object(
        TF_GROUP, TF_VERSION, envtest_cluster.namespace, TF_PLURAL, first_attempt
    )
    status = operator.created(name)
    operator.start_pods(name, status)
    future, _, lines, _ = run(spec(), name=name)
    lines.wait_for("already exists, re-attaching")
    lines.wait_for("Running Worker[active=2]")
    operator.succeed(name, status)
    assert future.result(timeout=30).attached
    assert not job_exists(envtest_cluster, name)


def test_timeout_deletes_the_job_and_shows_the_lines_followed(envtest_cluster, run, operator, fake_kubelet):
    future, _, _, name = run(spec(), timeout=3)
    status = operator.created(name)
    operator.start_pods(name, status)
    fake_kubelet.say(f"{name}-worker-1", "worker-1 waiting for peers")

    with pytest.raises(TrainingFailed, match="did not finish within 3 s") as failure:
        future.result(timeout=30)

    assert "worker-1 waiting for peers" in str(failure.value)
    assert not job_exists(envtest_cluster, name)


def test_a_worker_error_names_the_replica_and_shows_its_last_lines(envtest_cluster, run, operator, fake_kubelet):
    """Defect 6. Under the old restartPolicy OnFailure the operator restarted the worker until backoffLimit,
    then deleted every pod before writing Failed: the report found no pod, no replica, no line."""
    future, launcher, lines, name = run(spec(workers=3))
    status = operator.created(name)
    operator.start_pods(name, status)
    lines.wait_for("Running Worker[active=3]")
    worker = f"{name}-worker-1"
    for attempt in range(10):  # as often as the restart policy lets the worker crash
        fake_kubelet.say(
            worker,
            f"attempt {attempt}: epoch=1/5",
            "Traceback (most recent call last):",
            "ValueError: labels of shape (8, 10) do not match logits (8, 2)",
        )
        operator.crash(name, status, worker, exit_code=1)
        if any(c["type"] == "Failed" for c in status["conditions"]):
            break
        time.sleep(0.5)  # a few polls of the launcher between two crashes, as on a cluster

    with pytest.raises(TrainingFailed) as failure:
        future.result(timeout=30)

    message = str(failure.value)
    assert f"worker-1 (pod {worker}, exit code 1 (Error)) failed" in message
    assert "ValueError: labels of shape (8, 10) do not match logits (8, 2)" in message.splitlines()[-1]
    assert "ValueError" in (launcher.failure_dir / f"{worker}.log").read_text()
    assert not job_exists(envtest_cluster, name)


def test_pods_deleted_before_failed_still_leave_the_replica_and_its_lines(envtest_cluster, run, operator, fake_kubelet):
    """Defect 6 when a job is run under OnFailure anyway: the operator deletes every pod before it writes
    Failed (common/job.go:206-247); the lines followed while it ran and the exits seen name the replica."""
    future, _, lines, name = run(spec(restart_policy="OnFailure", run_policy=RunPolicy(restarts_per_replica=1)))
    status = operator.created(name)
    operator.start_pods(name, status)
    lines.wait_for("Running Worker[active=2]")
    worker = f"{name}-worker-0"
    for attempt in range(3):  # backoffLimit 1 x 2 + 1 = 3
        fake_kubelet.say(worker, f"attempt {attempt}", "RuntimeError: CUDA error: an illegal memory access")
        lines.wait_for(f"worker-0 | attempt {attempt}")
        operator.crash(name, status, worker, exit_code=1)
        if attempt < 2:
            lines.wait_for("restarted in place", count=attempt + 1)

    with pytest.raises(TrainingFailed) as failure:
        future.result(timeout=30)

    message = str(failure.value)
    assert f"worker-0 (pod {worker}, exit code 1 (Error)" in message
    assert "RuntimeError: CUDA error: an illegal memory access" in message
    assert not operator.core.list_namespaced_pod(
        envtest_cluster.namespace, label_selector=f"training.kubeflow.org/job-name={name}"
    ).items


def test_pods_recreated_under_exitcode_count_against_the_restart_limit(envtest_cluster, run, operator):
    """Defect 7: v1.9 does not count the pods it recreates under ExitCode (restartCount stays 0,
    pkg/core/job.go:113-132), so without the launcher's own count a job of OOM kills would retry forever."""
    future, _, lines, name = run(spec(run_policy=RunPolicy(restarts_per_replica=1)))  # limit 1 x 2 + 1 = 3
    status = operator.created(name)
    operator.start_pods(name, status)
    lines.wait_for("Running Worker[active=2]")
    for kill in range(3):
        operator.crash(name, status, f"{name}-worker-1", exit_code=137, reason="OOMKilled")
        lines.wait_for("restarted in a new pod", count=kill + 1)

    with pytest.raises(TrainingFailed, match="restarted 3 times, reaching the limit of 3") as failure:
        future.result(timeout=30)
    assert f"worker-1 (pod {name}-worker-1, 3 restarts)" in str(failure.value)
    assert not job_exists(envtest_cluster, name)


def test_without_a_kubelet_the_report_still_names_the_replica(envtest_cluster, run):
    """No node: the API server answers pods/log with no content (204), so there are no lines to show."""
    operator = TrainingOperator(envtest_cluster.admin, envtest_cluster.namespace)  # pods on no node
    future, _, _, name = run(spec())
    status = operator.created(name)
    operator.start_pods(name, status)
    operator.crash(name, status, f"{name}-worker-1", exit_code=2)

    with pytest.raises(TrainingFailed) as failure:
        future.result(timeout=30)
    assert f"worker-1 (pod {name}-worker-1, exit code 2 (Error)) failed" in str(failure.value)
    assert "(no log lines: the API server returned none)" in str(failure.value)


def test_forbidden_names_verb_resource_and_role(envtest_cluster, run):
    """A service account the Role does not bind: the real RBAC refuses, and the error says what to apply."""
    core = client.CoreV1Api(envtest_cluster.admin)
    account = f"unbound-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_service_account(envtest_cluster.namespace, {"metadata": {"name": account}})
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    token = core.create_namespaced_service_account_token(account, envtest_cluster.namespace, request).status.token
    future, _, _, _ = run(spec(), api=envtest_cluster.plane.client(token))
    with pytest.raises(DistmlError) as error:
        future.result(timeout=30)
    text = str(error.value)
    assert "forbidden: cannot get tfjobs.kubeflow.org" in text and f"namespace {envtest_cluster.namespace}" in text
    assert "distml-pipeline-runner" in text and "manifests/rbac.yaml" in text


def test_the_launchers_manifest_is_accepted_by_the_server_for_every_shape(envtest_cluster):
    """Server-side validation (CRD schema, ownerReferences, names) of what build_tfjob makes."""
    custom = client.CustomObjectsApi(envtest_cluster.runner)
    for workers, chief in ((1, False), (3, True)):
        name = f"distml-shape-{uuid.uuid4().hex[:8]}"
        manifest = to_manifest(
            build_tfjob(spec(workers=workers, chief=chief), name=name, namespace=envtest_cluster.namespace)
        )
        created = custom.create_namespaced_custom_object(
            TF_GROUP, TF_VERSION, envtest_cluster.namespace, TF_PLURAL, manifest
        )
        # Nothing pruned: every field is one the CRD knows; the server only adds its defaults.
        assert created["spec"]["runPolicy"].pop("suspend") is False
        for replica in created["spec"]["tfReplicaSpecs"].values():
            assert replica["template"]["spec"]["containers"][0]["ports"][0].pop("protocol") == "TCP"
        assert created["spec"] == manifest["spec"]
        custom.delete_namespaced_custom_object(TF_GROUP, TF_VERSION, envtest_cluster.namespace, TF_PLURAL, name)


def test_a_job_deleted_by_someone_else_is_reported_as_such(envtest_cluster, run, operator):
    future, _, lines, name = run(spec())
    status = operator.created(name)
    operator.start_pods(name, status)
    lines.wait_for("Running Worker[active=2]")
    operator.custom.delete_namespaced_custom_object(TF_GROUP, TF_VERSION, envtest_cluster.namespace, TF_PLURAL, name)
    with pytest.raises(TrainingFailed, match="was deleted while it ran"):
        future.result(timeout=30)
