"""One toleration list means the same on every pod (issue 11 defect 8): TFJob workers, InferenceService
predictors and KFP task pods all get Kubernetes' fields as given, checked by Kubernetes' rules."""

# No `from __future__ import annotations`: KFP reads the test pipeline's annotations.

import pytest

from distml.errors import DistmlError
from distml.kube import manifest as to_manifest
from distml.serving.isvc import ServingSpec, build_inference_service
from distml.tolerations import Toleration, tolerations_from_dicts
from distml.training.spec import TrainingSpec
from distml.training.tfjob import build_tfjob

# Tolerations as a user writes them in a pipeline's `tolerations` parameter: the second has no operator,
# which Kubernetes reads as Equal (with no value: matches only a taint whose value is empty).
AS_GIVEN = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "pool", "effect": "NoSchedule"},
    {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoExecute", "tolerationSeconds": 60},
]


def kfp_task_pod_tolerations(tolerations: list[dict]) -> list[dict]:
    """What a task's pod gets from a ``tolerations`` pipeline parameter: the platform spec names the parameter
    (tolerationJson), and KFP's driver unmarshals its JSON into Kubernetes' Toleration as it is
    (kubeflow/pipelines 2.17.0 backend/src/v2/driver/resolve.go:840-858, resolveK8sJsonParameter)."""
    import tempfile
    from pathlib import Path

    import yaml
    from kfp import compiler, dsl, kubernetes

    @dsl.component(base_image="python:3.11")
    def noop():
        pass

    @dsl.pipeline
    def placed(tolerations: list = tolerations):
        kubernetes.add_toleration_json(noop(), toleration_json=tolerations)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        compiler.Compiler().compile(placed, str(path))
        pipeline, platform = yaml.safe_load_all(path.read_text())
    (executor,) = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
    (entry,) = executor["tolerations"]
    parameter = entry["tolerationJson"]["componentInputParameter"]
    return pipeline["root"]["inputDefinitions"]["parameters"][parameter]["defaultValue"]


def test_tfjob_inferenceservice_and_kfp_task_pods_get_the_same_tolerations():
    tolerations = tolerations_from_dicts(AS_GIVEN)
    job = to_manifest(
        build_tfjob(TrainingSpec(image="i", command=["c"], tolerations=tolerations), name="j", namespace="n")
    )
    worker_pod = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["tolerations"]
    isvc = to_manifest(build_inference_service(ServingSpec(name="s", storage_uri="pvc://c/m", tolerations=tolerations)))
    predictor_pod = isvc["spec"]["predictor"]["tolerations"]
    assert worker_pod == predictor_pod == kfp_task_pod_tolerations(AS_GIVEN) == AS_GIVEN


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key": "k", "operator": "In", "effect": "NoSchedule"}, "not Exists or Equal"),
        ({"key": "k", "operator": "Exists", "value": "v", "effect": "NoSchedule"}, "Exists takes no value"),
        ({"operator": "Equal", "value": "v"}, "empty key needs operator Exists"),
        ({"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}, "needs effect NoExecute"),
        ({"key": "k", "operator": "Exists", "effect": "Sometimes"}, "effect 'Sometimes' unknown"),
        ({"key": "bad key!", "operator": "Exists"}, "not a label key"),
        ({"key": "k", "operator": "Equal", "value": "not a value"}, "not a label value"),
        ({"key": "k", "operator": "Exists", "efect": "NoSchedule"}, "unknown field"),
        ({"key": "k", "operator": "Exists", "tolerationSeconds": "5", "effect": "NoExecute"}, "not a number"),
    ],
)
def test_kubernetes_rules_are_checked_and_the_bad_entry_is_named(fields, message):
    with pytest.raises(DistmlError, match=message) as raised:
        tolerations_from_dicts([{"key": "ok", "operator": "Exists"}, fields])
    assert "tolerations[1]" in str(raised.value)


def test_match_everything_and_cli_forms():
    assert Toleration.from_dict({"operator": "Exists"}).to_dict() == {"operator": "Exists"}
    assert Toleration.parse("nvidia.com/gpu:NoSchedule").to_dict() == {
        "key": "nvidia.com/gpu",
        "operator": "Exists",
        "effect": "NoSchedule",
    }
    assert Toleration.parse("pool=gpu:NoExecute").to_dict() == {
        "key": "pool",
        "operator": "Equal",
        "value": "gpu",
        "effect": "NoExecute",
    }


def test_a_run_with_a_bad_toleration_parameter_is_refused_before_it_starts():
    """Task pods get the list unchecked from KFP: `distml run/submit` checks it first."""
    from distml.pipelines import get_pipeline
    from distml.runs import check_arguments

    bad = [{"key": "nvidia.com/gpu", "operator": "Exists", "value": "present", "effect": "NoSchedule"}]
    with pytest.raises(DistmlError, match=r"serving_tolerations\[0\].*Exists takes no value"):
        check_arguments(get_pipeline("end_to_end"), {"serving_tolerations": bad})
    check_arguments(get_pipeline("end_to_end"), {"tolerations": AS_GIVEN})
