"""What the cluster gets: manifests/ (the Role grants exactly what our steps use) and the image's requirements."""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kube_envtest import EXPECTED_RULES

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"


def load(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]


def by_kind(docs: list[dict]) -> dict[str, dict]:
    kinds = [doc["kind"] for doc in docs]
    assert len(kinds) == len(set(kinds)), kinds
    return {doc["kind"]: doc for doc in docs}


def granted(role: dict) -> dict[tuple[str, str], set[str]]:
    rules: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"unexpected rule fields: {sorted(rule)}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                rules.setdefault((group, resource), set()).update(rule["verbs"])
    return rules


def test_role_grants_exactly_the_expected_rules():
    role = by_kind(load("rbac.yaml"))["Role"]
    assert role["apiVersion"] == "rbac.authorization.k8s.io/v1"
    assert role["metadata"]["name"] == "distml-pipeline-runner"
    rules = granted(role)
    assert rules == EXPECTED_RULES
    for rule in role["rules"]:
        for values in rule.values():
            assert "*" not in values, f"wildcard in {rule}"


def test_only_a_namespaced_role_and_its_binding():
    docs = by_kind(load("rbac.yaml"))
    assert set(docs) == {"Role", "RoleBinding"}, "no ClusterRole or ClusterRoleBinding"
    role, binding = docs["Role"], docs["RoleBinding"]
    namespace = role["metadata"]["namespace"]
    assert binding["metadata"]["namespace"] == namespace
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": namespace}]


def test_documented_edit_for_kubeflow_profiles_rebinds_default_editor():
    """The sed line in rbac.yaml's header (for multi-user Kubeflow) changes exactly what it should."""
    text = (MANIFESTS / "rbac.yaml").read_text()
    edited = re.sub(r"namespace: kubeflow$", "namespace: alice", text, flags=re.MULTILINE)
    edited = re.sub(r"name: pipeline-runner$", "name: default-editor", edited, flags=re.MULTILINE)
    docs = by_kind([doc for doc in yaml.safe_load_all(edited) if doc])
    assert docs["Role"]["metadata"] == {**by_kind(load("rbac.yaml"))["Role"]["metadata"], "namespace": "alice"}
    assert docs["RoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "default-editor", "namespace": "alice"}
    ]
    assert granted(docs["Role"]) == EXPECTED_RULES


@dataclass
class _Response:
    """What ApiClient.deserialize reads from an HTTP response: its body."""

    data: str


@pytest.mark.parametrize("name", ["rbac.yaml", "pvc.yaml", "serving-s3.yaml"])
def test_manifests_load_as_kubernetes_models(name):
    """Field names the Kubernetes API knows: every key maps onto the typed model."""
    from kubernetes import client

    models = {
        "Role": client.V1Role,
        "RoleBinding": client.V1RoleBinding,
        "PersistentVolumeClaim": client.V1PersistentVolumeClaim,
        "Secret": client.V1Secret,
        "ServiceAccount": client.V1ServiceAccount,
    }
    api = client.ApiClient()
    for doc in load(name):
        model = api.deserialize(_Response(json.dumps(doc)), models[doc["kind"]].__name__)
        assert api.sanitize_for_serialization(model) == doc  # an unknown key would be dropped here


def test_serving_credentials_are_what_kserve_reads():
    """Issue 11 defect 5: the predictor's service account lists a secret with KServe's S3 keys and endpoint
    (kserve/kserve pkg/credentials/s3/s3_secret.go:31-70: awsAccessKeyID/awsSecretAccessKey, serving.kserve.io/s3-*)."""
    docs = by_kind(load("serving-s3.yaml"))
    secret, account = docs["Secret"], docs["ServiceAccount"]
    assert set(secret["stringData"]) == {"awsAccessKeyID", "awsSecretAccessKey"}
    assert {"serving.kserve.io/s3-endpoint", "serving.kserve.io/s3-usehttps"} <= set(secret["metadata"]["annotations"])
    assert account["secrets"] == [{"name": secret["metadata"]["name"]}]
    namespace = by_kind(load("rbac.yaml"))["Role"]["metadata"]["namespace"]
    assert secret["metadata"]["namespace"] == account["metadata"]["namespace"] == namespace
    assert "distml-serving" in (REPO / "docs" / "cluster-setup.md").read_text()


def test_pvc_is_shared_between_nodes():
    claim = by_kind(load("pvc.yaml"))["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"]["requests"]["storage"].endswith("Gi")
    assert claim["metadata"]["namespace"] == by_kind(load("rbac.yaml"))["Role"]["metadata"]["namespace"]


def test_gpu_image_keeps_its_gpu_tensorflow():
    """images/tensorflow installs the tf, onnx and cluster extras except tensorflow-cpu, which would
    overwrite the base image's GPU TensorFlow (the same module)."""
    spec = importlib.util.spec_from_file_location(
        "extra_requirements", REPO / "images/tensorflow/extra_requirements.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    got = module.extra_requirements(REPO / "setup.cfg", ["tf", "onnx", "cluster"], onnxruntime="onnxruntime-gpu")
    names = [re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0] for requirement in got]
    assert not {"tensorflow", "tensorflow-cpu"} & set(names)
    assert {"tf-keras", "tf2onnx", "onnx", "onnxruntime-gpu", "kubeflow-training", "kserve"} <= set(names)
    assert "onnxruntime" not in names
    assert len(names) == len(set(names))
    dockerfile = (REPO / "images/tensorflow/Dockerfile").read_text()
    assert "ARG BASE_IMAGE=tensorflow/tensorflow:2.21.0-gpu" in dockerfile
    assert "extra_requirements.py setup.cfg tf onnx cluster" in dockerfile
