"""The Kubernetes launcher with a shared volume, against a local HTTP test double of the Kubernetes API.

pytest-httpserver plays the API server at the kubernetes client's boundary; a tmp folder plays
the PVC mounted in the launching pod. The double's answer to the job's GET stands in for the
TFJob's pods: it writes the chief's export onto the volume before saying Succeeded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from kubernetes import client as k8s
from werkzeug import Response

from distml.errors import DistmlError
from distml.training.kubernetes import ClusterOptions, KubernetesLauncher, TrainingFailed, job_name_for, pod_template
from distml.training.spec import PvcMount
from distml.training.worker import WorkerConfig

NS = "team"
JOBS = f"/apis/kubeflow.org/v1/namespaces/{NS}/tfjobs"


def _job(*conditions: str) -> dict:
    return {"status": {"conditions": [{"type": c, "status": "True"} for c in conditions]}}


@pytest.fixture
def setup(httpserver, tmp_path):
    mount = tmp_path / "volume"
    mount.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    (data / "metadata.json").write_text("{}")
    config = WorkerConfig("mlp", data, tmp_path / "outputs" / "model")
    options = ClusterOptions(
        pod_template("img"),
        namespace=NS,
        pvc=PvcMount("work", str(mount)),
        poll_interval=0.01,
        run_key="run-1",
        timeout=30,
    )
    name = job_name_for(config, options)
    api = k8s.ApiClient(k8s.Configuration(host=httpserver.url_for("/").rstrip("/")))
    job_path = f"/apis/kubeflow.org/v1/namespaces/{NS}/tfjobs/{name}"
    return {
        "mount": mount,
        "config": config,
        "options": options,
        "name": name,
        "api": api,
        "job": job_path,
        "root": mount / "distml" / name,
    }


def _missing(name: str) -> Response:
    body = {"kind": "Status", "code": 404, "details": {"name": name, "kind": "tfjobs"}}
    return Response(json.dumps(body), status=404, content_type="application/json")


def test_data_is_staged_the_model_copied_back_and_the_job_folder_removed(httpserver, setup):
    root: Path = setup["root"]
    seen: dict = {}
    _expect_a_job_that_exports(
        httpserver, setup, lambda root: seen.update(data=sorted(p.name for p in (root / "data").iterdir()))
    )

    metrics = train_kubernetes(setup)

    assert metrics == {"test_accuracy": 0.9}
    assert seen["data"] == ["metadata.json"]
    assert json.loads((setup["config"].out / "metrics.json").read_text()) == metrics
    assert not root.exists()
    created = json.loads(httpserver.log[1][0].data)
    command = created["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"]
    assert str(root / "data") in command and str(root / "model") in command


def test_a_failed_job_removes_its_folder_and_leaves_no_model(httpserver, setup):
    httpserver.expect_ordered_request(setup["job"], method="GET").respond_with_response(_missing(setup["name"]))
    httpserver.expect_ordered_request(JOBS, method="POST").respond_with_json({})
    httpserver.expect_request(setup["job"], method="GET").respond_with_json(_job("Running", "Failed"))
    httpserver.expect_request(f"/api/v1/namespaces/{NS}/pods", method="GET").respond_with_json({"items": []})
    httpserver.expect_request(f"/api/v1/namespaces/{NS}/events", method="GET").respond_with_json({"items": []})
    httpserver.expect_request(setup["job"], method="DELETE").respond_with_json({})

    with pytest.raises(TrainingFailed):
        train_kubernetes(setup)
    assert not setup["root"].exists()
    assert not setup["config"].out.exists()


def test_a_used_output_folder_is_refused_before_any_job_is_created(httpserver, setup):
    setup["config"].out.mkdir(parents=True)
    (setup["config"].out / "old.txt").write_text("x")
    with pytest.raises(DistmlError, match="model folder is not empty"):
        train_kubernetes(setup)
    assert httpserver.log == []


def test_a_retry_after_the_export_copies_the_model_without_a_new_job(httpserver, setup):
    model = setup["root"] / "model"
    model.mkdir(parents=True)
    (model / "metrics.json").write_text(json.dumps({"test_accuracy": 0.8}))
    lines: list[str] = []
    metrics = train_kubernetes(setup, progress=lines.append)
    assert metrics == {"test_accuracy": 0.8} and httpserver.log == []
    assert any("exported the model already" in line for line in lines)
    assert not setup["root"].exists()


def _expect_a_job_that_exports(httpserver, setup, look) -> None:
    """Script a new job's life: absent, created, one poll (its pods export the model), deleted.

    ``look(root)`` runs when the pods would, so a test can see what was staged on the volume.
    """
    root: Path = setup["root"]

    def pods_export(request):
        look(root)
        (root / "model").mkdir()
        (root / "model" / "metrics.json").write_text(json.dumps({"test_accuracy": 0.9}))
        return Response(json.dumps(_job("Running", "Succeeded")), content_type="application/json")

    httpserver.expect_ordered_request(setup["job"], method="GET").respond_with_response(_missing(setup["name"]))
    httpserver.expect_ordered_request(JOBS, method="POST").respond_with_json({})
    httpserver.expect_ordered_request(setup["job"], method="GET").respond_with_handler(pods_export)
    httpserver.expect_ordered_request(setup["job"], method="DELETE").respond_with_json({})


def test_an_output_folder_whose_parent_cannot_be_made_is_refused_before_any_job_is_created(httpserver, setup):
    setup["config"].out.parent.write_text("a file where the folder should be")
    with pytest.raises(DistmlError, match="cannot create the model folder's parent"):
        train_kubernetes(setup)
    assert httpserver.log == []


def test_a_data_copy_cut_short_leaves_no_data_folder_and_the_retry_copies_it_whole(httpserver, setup, monkeypatch):
    source: Path = setup["config"].data
    (source / "images").mkdir()
    (source / "images" / "a.png").write_bytes(b"png")
    real_copytree = shutil.copytree

    def disk_full_after_metadata(src, dst, **kwargs):
        Path(dst).mkdir(exist_ok=True)
        shutil.copy2(Path(src) / "metadata.json", Path(dst) / "metadata.json")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copytree", disk_full_after_metadata)
    with pytest.raises(OSError, match="No space left"):
        train_kubernetes(setup)
    assert not (setup["root"] / "data").exists() and httpserver.log == []
    monkeypatch.setattr(shutil, "copytree", real_copytree)

    seen: dict = {}
    _expect_a_job_that_exports(
        httpserver, setup, lambda root: seen.update(images=sorted(p.name for p in (root / "data" / "images").iterdir()))
    )
    assert train_kubernetes(setup) == {"test_accuracy": 0.9}
    assert seen["images"] == ["a.png"]


def test_a_retry_while_the_job_still_runs_reattaches_and_keeps_the_staged_data(httpserver, setup):
    root: Path = setup["root"]
    (root / "data").mkdir(parents=True)
    (root / "data" / "metadata.json").write_text("{}")
    (root / "data" / "staged-by-the-first-attempt").write_text("")
    seen: dict = {}

    def pods_export(request):
        seen["data"] = sorted(p.name for p in (root / "data").iterdir())
        (root / "model").mkdir()
        (root / "model" / "metrics.json").write_text(json.dumps({"test_accuracy": 0.7}))
        return Response(json.dumps(_job("Running", "Succeeded")), content_type="application/json")

    httpserver.expect_ordered_request(setup["job"], method="GET").respond_with_json(_job("Running"))
    httpserver.expect_ordered_request(setup["job"], method="GET").respond_with_handler(pods_export)
    httpserver.expect_ordered_request(setup["job"], method="DELETE").respond_with_json({})
    lines: list[str] = []

    metrics = train_kubernetes(setup, progress=lines.append)

    assert metrics == {"test_accuracy": 0.7}
    assert seen["data"] == ["metadata.json", "staged-by-the-first-attempt"]
    assert any("re-attaching" in line for line in lines)
    assert "POST" not in [request.method for request, _ in httpserver.log]
    assert not root.exists()


def test_a_failed_copy_back_keeps_the_exported_model_on_the_volume_for_the_retry(httpserver, setup):
    root: Path = setup["root"]
    out: Path = setup["config"].out

    def pods_export_while_someone_writes_the_output(request):
        (root / "model").mkdir()
        (root / "model" / "metrics.json").write_text(json.dumps({"test_accuracy": 0.9}))
        out.mkdir()
        (out / "intruder.txt").write_text("x")
        return Response(json.dumps(_job("Running", "Succeeded")), content_type="application/json")

    httpserver.expect_ordered_request(setup["job"], method="GET").respond_with_response(_missing(setup["name"]))
    httpserver.expect_ordered_request(JOBS, method="POST").respond_with_json({})
    httpserver.expect_ordered_request(setup["job"], method="GET").respond_with_handler(
        pods_export_while_someone_writes_the_output
    )
    httpserver.expect_ordered_request(setup["job"], method="DELETE").respond_with_json({})
    lines: list[str] = []
    with pytest.raises(DistmlError, match="model folder is not empty"):
        train_kubernetes(setup, progress=lines.append)
    assert sorted(p.name for p in root.iterdir()) == ["model"]
    assert any("the model stays on the volume" in line for line in lines)

    (out / "intruder.txt").unlink()
    httpserver.clear_log()
    metrics = train_kubernetes(setup)
    assert metrics == {"test_accuracy": 0.9} and httpserver.log == []
    assert not root.exists()


def train_kubernetes(setup: dict, progress=None) -> dict:
    """Run the setup's training through the Kubernetes launcher against the API double."""
    launcher = KubernetesLauncher(options=setup["options"], api_client=setup["api"], progress=progress)
    return launcher.run(setup["config"], 2)
