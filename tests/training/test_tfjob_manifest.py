"""TFJob manifests: valid against the Training Operator v1.9 CRD, runPolicy where v1 reads it."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from distml.cli import main
from distml.errors import DistmlError
from distml.kube import manifest as to_manifest
from distml.training.spec import PvcMount, RunPolicy, Toleration, TrainingSpec
from distml.training.tfjob import build_tfjob, job_name

CRD = Path(__file__).resolve().parents[1] / "crds" / "kubeflow.org_tfjobs.yaml"


@pytest.fixture(scope="module")
def schema() -> dict:
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


SPECS = {
    "one-replica": TrainingSpec(image="img", command=["python"], workers=1),
    "gpu-workers": TrainingSpec(
        image="img",
        command=["python", "-m", "distml.training.worker"],
        workers=4,
        gpus_per_worker=2,
        cpu="4",
        memory="16Gi",
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
        tolerations=[Toleration.parse("nvidia.com/gpu:NoSchedule"), Toleration.parse("pool=gpu:NoExecute")],
        pvcs=[PvcMount.parse("shared:/mnt/shared")],
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        service_account="pipeline-runner",
        run_policy=RunPolicy(restarts_per_replica=1, ttl_seconds_after_finished=600, active_deadline_seconds=3600),
    ),
    "with-chief": TrainingSpec(image="img", command=["python"], workers=3, chief=True),
}


@pytest.mark.parametrize("case", SPECS)
def test_manifests_validate_against_the_crd(case, schema):
    manifest = to_manifest(build_tfjob(SPECS[case], name=job_name("distml-cnn", case), namespace="team"))
    jsonschema.validate(manifest, schema)
    spec = manifest["spec"]
    assert "cleanPodPolicy" not in spec and "backoffLimit" not in spec  # ignored there by the v1 API
    for replica in spec["tfReplicaSpecs"].values():
        template = replica["template"]
        assert template["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
        container = template["spec"]["containers"][0]
        assert container["name"] == "tensorflow" and container["ports"][0]["name"] == "tfjob-port"
        assert "env" not in container or all(e["name"] != "TF_CONFIG" for e in container["env"])


def test_gpu_placement_and_run_policy_fields():
    manifest = to_manifest(build_tfjob(SPECS["gpu-workers"], name="x", namespace="team"))
    assert manifest["spec"]["runPolicy"] == {
        "activeDeadlineSeconds": 3600,
        "backoffLimit": 5,  # 1 restart per replica x 4 replicas, + 1: the operator fails at restarts >= limit
        "cleanPodPolicy": "Running",
        "ttlSecondsAfterFinished": 600,
    }
    pod = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "2", "cpu": "4", "memory": "16Gi"}
    assert pod["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"},
        {"effect": "NoExecute", "key": "pool", "operator": "Equal", "value": "gpu"},
    ]
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "shared"}


@pytest.mark.parametrize(("workers", "chief", "limit"), [(1, False, 4), (2, False, 7), (3, True, 10), (8, False, 25)])
def test_backoff_limit_scales_with_the_replica_count(workers, chief, limit):
    """Defect 7: the operator sums restarts over all pods (pkg/core/job.go:95-132) and one fault restarts every
    worker, so a fixed backoffLimit 3 failed a job of 3+ workers at its first fault."""
    spec = TrainingSpec(image="img", command=["python"], workers=workers, chief=chief)
    run_policy = to_manifest(build_tfjob(spec, name="x", namespace="team"))["spec"]["runPolicy"]
    assert run_policy["backoffLimit"] == limit == 3 * workers + 1
    no_limit = RunPolicy(restarts_per_replica=None)
    unlimited = TrainingSpec(image="img", command=["python"], workers=workers, run_policy=no_limit)
    assert "backoffLimit" not in to_manifest(build_tfjob(unlimited, name="x", namespace="team"))["spec"]["runPolicy"]


def test_replicas_restart_by_exit_code_so_a_failed_pod_keeps_its_logs():
    """Defect 6: under OnFailure the operator deletes every pod before it writes Failed; under ExitCode a
    worker's own error (exit 1-127) fails the job and cleanPodPolicy Running keeps the failed pod."""
    manifest = to_manifest(build_tfjob(SPECS["with-chief"], name="x", namespace="team"))
    assert {replica["restartPolicy"] for replica in manifest["spec"]["tfReplicaSpecs"].values()} == {"ExitCode"}
    assert manifest["spec"]["runPolicy"]["cleanPodPolicy"] == "Running"


def test_chief_takes_one_of_the_workers():
    replicas = to_manifest(build_tfjob(SPECS["with-chief"], name="x", namespace="team"))["spec"]["tfReplicaSpecs"]
    assert (replicas["Chief"]["replicas"], replicas["Worker"]["replicas"]) == (1, 2)


def test_job_names_are_stable_per_run_and_differ_between_runs():
    assert job_name("distml-cnn", "run-a") == job_name("distml-cnn", "run-a")
    assert job_name("distml-cnn", "run-a") != job_name("distml-cnn", "run-b")
    assert len(job_name("X" * 100, "k")) <= 63


@pytest.mark.parametrize("bad", ["nvidia.com/gpu", "key:Sometimes", "=v:NoSchedule"])
def test_bad_tolerations_are_refused(bad):
    with pytest.raises(DistmlError, match="KEY\\[=VALUE\\]:EFFECT"):
        Toleration.parse(bad)


def test_cli_dry_run_prints_a_valid_tfjob_and_calls_no_api(schema):
    args = ["train", "--launcher", "kubernetes", "--workers", "2", "--model", "cnn", "--data", "sklearn:digits"]
    args += ["--out", "/mnt/shared/out", "--epochs", "3", "--batch-size", "64", "--image", "reg/distml:1"]
    args += ["--gpus-per-worker", "1", "--node-selector", "pool=gpu", "--toleration", "nvidia.com/gpu:NoSchedule"]
    args += ["--namespace", "team", "--pvc", "shared:/mnt/shared", "--dry-run"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(result.stdout)
    jsonschema.validate(manifest, schema)
    container = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert container["image"] == "reg/distml:1"
    command = container["command"]
    assert command[:3] == ["python", "-m", "distml.training.worker"]
    assert command[command.index("--data") + 1].startswith("/mnt/shared/distml/")
    assert manifest["metadata"]["namespace"] == "team"


def test_cli_refuses_cluster_options_with_the_local_launcher():
    # --dry-run is every launcher's now (tests/training/test_launcher_interface.py); the placement options are not.
    for option in (["--image", "reg/distml:1"], ["--pvc", "w:/mnt/w"], ["--toleration", "gpu:NoSchedule"]):
        args = ["train", "--model", "mlp", "--data", "sklearn:digits", "--out", "o", "--dry-run", *option]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "need --launcher kubernetes" in result.output, option


def test_volume_names_are_dns_labels_for_any_claim_name():
    long_a, long_b = "team." + "a" * 70 + "-data", "team." + "a" * 70 + "-logs"
    spec = TrainingSpec(
        image="img",
        command=["python"],
        workers=1,
        pvcs=[PvcMount.parse(f"{long_a}:/mnt/a"), PvcMount.parse(f"{long_b}:/mnt/b"), PvcMount.parse("x.y:/mnt/c")],
    )
    pod = to_manifest(build_tfjob(spec, name="n", namespace="team"))["spec"]["tfReplicaSpecs"]["Worker"]["template"][
        "spec"
    ]
    names = [volume["name"] for volume in pod["volumes"]]
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name) for name in names), names
    assert len(set(names)) == 3 and "pvc-x-y" in names
    assert [volume["persistentVolumeClaim"]["claimName"] for volume in pod["volumes"]] == [long_a, long_b, "x.y"]
    assert [mount["name"] for mount in pod["containers"][0]["volumeMounts"]] == names


def test_the_docs_give_the_operators_cleanpodpolicy_default_and_ours():
    """Defect 12: v1.9 defaults cleanPodPolicy to None (tensorflow_defaults.go:52-53), not Running."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    assert "for TFJobs in v1.9 is `None`" in text
    assert "the operator's own\n  default" not in text and "`Running`, the operator's own" not in text
    assert "Ours is `Running`" in text
