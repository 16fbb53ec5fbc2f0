"""The default namespace of TFJobs and InferenceServices: the one we run in, never a fixed one.

No API is called: dry runs print the manifests that a real run would send.
"""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from distml import kube
from distml.cli import main

TRAIN = [
    "train",
    "--launcher",
    "kubernetes",
    "--workers",
    "2",
    "--model",
    "mlp",
    "--data",
    "sklearn:digits",
    "--out",
    "/mnt/w/out",
    "--image",
    "img",
    "--pvc",
    "w:/mnt/w",
    "--dry-run",
]
DEPLOY = ["deploy", "--target", "kserve", "--name", "digits", "--storage-uri", "pvc://models/best", "--dry-run"]


def _namespaces() -> tuple[str, str]:
    trained = CliRunner().invoke(main, TRAIN)
    deployed = CliRunner().invoke(main, DEPLOY)
    assert trained.exit_code == 0 and deployed.exit_code == 0, trained.output + deployed.output
    return yaml.safe_load(trained.stdout)["metadata"]["namespace"], yaml.safe_load(deployed.stdout)["metadata"][
        "namespace"
    ]


@pytest.fixture(autouse=True)
def no_pod(tmp_path, monkeypatch):
    monkeypatch.setattr(kube, "SERVICE_ACCOUNT_NAMESPACE", tmp_path / "no-service-account")


def test_on_a_laptop_both_follow_the_kubeconfig_context(tmp_path, monkeypatch):
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "work",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "me", "user": {"token": "t"}}],
        "contexts": [{"name": "work", "context": {"cluster": "c", "user": "me", "namespace": "team-a"}}],
    }
    (tmp_path / "kubeconfig").write_text(json.dumps(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    assert _namespaces() == ("team-a", "team-a")


def test_in_a_pod_both_use_the_pods_namespace(tmp_path, monkeypatch):
    (tmp_path / "namespace").write_text("alice\n")
    monkeypatch.setattr(kube, "SERVICE_ACCOUNT_NAMESPACE", tmp_path / "namespace")
    assert _namespaces() == ("alice", "alice")


def test_without_any_configuration_both_say_default_and_an_explicit_namespace_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert _namespaces() == ("default", "default")
    trained = CliRunner().invoke(main, [*TRAIN, "--namespace", "ops"])
    assert yaml.safe_load(trained.stdout)["metadata"]["namespace"] == "ops"
