"""InferenceService manifests (kserve SDK models) validated against the KServe CRD, and the option parsers.

Validation is stricter than the API server's: every object the CRD describes with ``properties``
gets ``additionalProperties: false``, so a misspelt field fails here instead of being pruned.
"""

import copy
from pathlib import Path

import click
import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from distml.cli import main
from distml.cli.options import parse_node_selector, parse_toleration
from distml.errors import DistmlError
from distml.kube import manifest as to_manifest
from distml.serving.isvc import ServingSpec, build_inference_service, predictor_storage_uri

CRD = Path(__file__).resolve().parents[1] / "crds" / "serving.kserve.io_inferenceservices.yaml"


def strict(schema):
    schema = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


@pytest.fixture(scope="module")
def schema():
    crd = yaml.load(CRD.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 2 MB: C parser if any
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    # One validator for the module: jsonschema.validate would re-check this large schema on every call.
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))


def test_full_gpu_manifest_matches_the_crd(schema):
    spec = ServingSpec(
        name="digits-best",
        storage_uri="pvc://models/runs/7/best/",
        namespace="team-a",
        gpus=2,
        node_selector=parse_node_selector(["cloud.google.com/gke-accelerator=nvidia-l4"]),
        tolerations=[parse_toleration("nvidia.com/gpu=present:NoSchedule"), parse_toleration("spot:NoExecute")],
        min_replicas=0,
        max_replicas=4,
        scale_metric="concurrency",
        scale_target=8,
        canary_traffic_percent=20,
        service_account="models-reader",
    )
    manifest = to_manifest(build_inference_service(spec))
    schema.validate(manifest)
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1" and manifest["kind"] == "InferenceService"
    assert manifest["metadata"] == {
        "name": "digits-best",
        "namespace": "team-a",
        "labels": {"app.kubernetes.io/managed-by": "distml"},
    }
    predictor = manifest["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "tensorflow"} and model["protocolVersion"] == "v1"
    assert model["storageUri"] == "pvc://models/runs/7/best/model"
    assert model["resources"]["limits"] == {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "2"}
    assert predictor["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert predictor["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Exists", "effect": "NoExecute"},
    ]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 4)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 8)
    assert predictor["canaryTrafficPercent"] == 20 and predictor["serviceAccountName"] == "models-reader"
    assert "annotations" not in manifest["metadata"]


@pytest.mark.parametrize("uri", ["s3://bucket/models/m1", "gs://bucket/m1", "pvc://claim/m1"])
def test_onnx_cpu_manifest_matches_the_crd(schema, uri):
    spec = ServingSpec(name="m1", storage_uri=uri, model_format="onnx", service_account="distml-serving")
    manifest = to_manifest(build_inference_service(spec))
    schema.validate(manifest)
    model = manifest["spec"]["predictor"]["model"]
    assert model["storageUri"] == f"{uri}/triton"  # the Model folder's Triton repository
    assert model["protocolVersion"] == "v2" and model["modelFormat"]["name"] == "onnx"
    assert "nvidia.com/gpu" not in model["resources"]["limits"]
    assert not {"nodeSelector", "tolerations", "canaryTrafficPercent", "scaleMetric"} & set(
        manifest["spec"]["predictor"]
    )
    assert "runtimeVersion" not in model  # KServe's own Triton release


def test_storage_uri_of_each_format():
    assert predictor_storage_uri("gs://b/m/", "tensorflow") == "gs://b/m/model"
    assert predictor_storage_uri("gs://b/m/", "onnx") == "gs://b/m/triton"  # the Model folder's Triton repository


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Digits_1"}, "DNS-1035"),
        ({"name": "x" * 46}, "DNS-1035"),
        ({"storage_uri": "/local/path"}, "not pvc://, s3:// or gs://"),
        ({"storage_uri": "pvc://"}, "not pvc://"),
        ({"model_format": "pytorch"}, "unknown"),
        ({"min_replicas": 3, "max_replicas": 2}, "min replicas 3 > max replicas 2"),
        ({"scale_metric": "rps"}, "go together"),
        ({"canary_traffic_percent": 101}, "0..100"),
        ({"gpus": -1}, ">= 0"),
    ],
)
def test_bad_specs_are_refused(changes, message):
    spec = ServingSpec(name="ok", storage_uri="pvc://claim/m")
    for key, value in changes.items():
        setattr(spec, key, value)
    with pytest.raises(DistmlError, match=message):
        build_inference_service(spec)


def test_option_parsers():
    assert parse_node_selector(["a=b", "pool = gpu"]) == {"a": "b", "pool": "gpu"}
    for bad in (["novalue"], ["=x"], ["a=1", "a=2"]):
        with pytest.raises(click.BadParameter):
            parse_node_selector(bad)
    assert parse_toleration("k=v:PreferNoSchedule").to_dict() == {
        "key": "k",
        "operator": "Equal",
        "value": "v",
        "effect": "PreferNoSchedule",
    }
    assert parse_toleration("k:NoSchedule").to_dict() == {"key": "k", "operator": "Exists", "effect": "NoSchedule"}
    for bad in ("k=v", "k:Sometimes", ":NoSchedule", "=v:NoSchedule"):
        with pytest.raises(click.BadParameter):
            parse_toleration(bad)


def test_cli_dry_run_prints_the_manifest_and_calls_no_api(schema, monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    args = ["deploy", "--target", "kserve", "--name", "digits", "--storage-uri", "s3://bucket/best"]
    no_account = CliRunner().invoke(main, [*args, "--dry-run"])
    assert no_account.exit_code == 2 and "no service account gives the predictor its keys" in no_account.output
    args += [
        "--service-account",
        "distml-serving",
        "--runtime-version",
        "24.08-py3",
        "--format",
        "onnx",
        "--gpus",
        "1",
        "--node-selector",
        "pool=gpu",
        "--toleration",
        "nvidia.com/gpu:NoSchedule",
    ]
    args += ["--min-replicas", "1", "--max-replicas", "3", "--canary-percent", "10", "--namespace", "ml", "--dry-run"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(result.output)
    schema.validate(manifest)
    assert manifest["metadata"]["namespace"] == "ml"
    assert manifest["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert manifest["spec"]["predictor"]["serviceAccountName"] == "distml-serving"
    assert manifest["spec"]["predictor"]["model"]["runtimeVersion"] == "24.08-py3"

    bad = CliRunner().invoke(main, [*args[:-1], "--toleration", "broken", "--dry-run"])
    assert bad.exit_code == 2 and "KEY[=VALUE]:EFFECT" in bad.output
    no_uri = CliRunner().invoke(main, ["deploy", "--name", "digits", "--dry-run"])
    assert no_uri.exit_code == 2 and "--storage-uri" in no_uri.output


@pytest.mark.parametrize(
    ("model_format", "gpus", "runtime_version", "expected"),
    [
        ("tensorflow", 0, None, "2.20.0"),  # not KServe's default tensorflow/serving:2.6.2
        ("tensorflow", 1, None, "2.20.0-gpu"),  # KServe adds -gpu only when runtimeVersion is unset
        ("tensorflow", 2, "2.19.1", "2.19.1-gpu"),
        ("tensorflow", 1, "2.19.1-gpu", "2.19.1-gpu"),
        ("onnx", 1, None, None),  # KServe's own Triton release
        ("onnx", 0, "24.08-py3", "24.08-py3"),
    ],
)
def test_runtime_version_names_a_tf_serving_release_that_loads_our_savedmodels(
    model_format, gpus, runtime_version, expected
):
    """Issue 11 defect 4: kserve/kserve config/runtimes/kustomization.yaml:22-24 pins tensorflow/serving:2.6.2."""
    spec = ServingSpec(
        name="m", storage_uri="pvc://c/m", model_format=model_format, gpus=gpus, runtime_version=runtime_version
    )
    assert to_manifest(build_inference_service(spec))["spec"]["predictor"]["model"].get("runtimeVersion") == expected


def test_s3_storage_without_a_service_account_is_refused_before_anything_is_created():
    """Issue 11 defect 5: the predictor would run as `default`, which has no keys for KFP's MinIO."""
    spec = ServingSpec(name="m", storage_uri="s3://mlpipeline/v2/artifacts/run/model")
    with pytest.raises(DistmlError, match=r"S3.*service account.*manifests/serving-s3.yaml"):
        build_inference_service(spec)
    spec.service_account = "distml-serving"
    predictor = to_manifest(build_inference_service(spec))["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "distml-serving"
