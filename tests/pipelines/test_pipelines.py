"""The four pipelines: compiled YAML (loads back, GPU settings wired from parameters) and local runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import distml.components
import distml.pipelines
from distml.runs import run_pipeline_locally

COMPILED = distml.pipelines.COMPILED_DIR


def compiled(name: str) -> dict:
    """The pipeline spec and, from the second YAML document when there is one, the platform spec."""
    merged: dict = {}
    for document in yaml.safe_load_all((COMPILED / f"{name}.yaml").read_text()):
        merged.update(document)
    return merged


@pytest.mark.parametrize("name", distml.pipelines.PIPELINE_NAMES)
def test_compiled_pipeline_loads_back_as_a_component(name):
    from kfp import components

    loaded = components.load_component_from_file(str(COMPILED / f"{name}.yaml"))
    assert loaded.name == name.replace("_", "-")
    assert {"node_selector", "tolerations"} <= set(loaded.component_spec.inputs)


# Where each node-pool input of a task must come from: {pipeline: {component: {input: pipeline parameter}}}.
# Training (TFJob pods) and batch inference share the GPU pool; serving has its own (serving_*).
# The TFJob's workers run the pipeline's image (the one its tasks run in); the predictor reads S3 as
# serving_service_account and runs the TF Serving release serving_runtime_version.
TRAINING_POOL = {"node_selector": "node_selector", "tolerations": "tolerations", "image": "image"}
SERVING_POOL = {
    "node_selector": "serving_node_selector",
    "tolerations": "serving_tolerations",
    "gpus": "serving_gpus",
    "service_account": "serving_service_account",
    "runtime_version": "serving_runtime_version",
}
INFER_ON_GPU_POOL = {"gpus": "gpus", "accelerator": "accelerator"}
TASK_INPUTS = {
    "train_select_deploy": {
        "train": {**TRAINING_POOL, "gpus_per_worker": "gpus_per_worker"},
        "deploy-kserve": SERVING_POOL,
    },
    "federated_average": {
        "train": {**TRAINING_POOL, "gpus_per_worker": "gpus_per_worker"},
        "deploy-kserve": SERVING_POOL,
    },
    "end_to_end": {
        "train": {**TRAINING_POOL, "gpus_per_worker": "gpus_per_worker"},
        "infer-shard": INFER_ON_GPU_POOL,
        "deploy-kserve": SERVING_POOL,
    },
    "distributed_inference": {"infer-shard": INFER_ON_GPU_POOL},
}
# The pod settings (kfp-kubernetes platform spec and the container's accelerator) of tasks whose own pod
# needs the GPU: {component: {setting: pipeline parameter}}.
GPU_POD = {
    "infer-shard": {
        "nodeSelector": "node_selector",
        "tolerations": "tolerations",
        "accelerator count": "gpus",
        "accelerator type": "accelerator",
    }
}
GPU_TASKS = {"end_to_end": 1, "distributed_inference": 2}  # distributed_inference: one per model branch
PLACEHOLDER = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")


def container_tasks(document: dict, dag: dict | None = None, callers: tuple = ()):
    """(task, its component's name, executor label, callers) for every container task, in sub-DAGs too.

    ``callers`` are the tasks that call the sub-DAGs (ParallelFor, condition bodies) around the
    task, innermost first: a task's ``componentInputParameter`` names an input of the sub-DAG it
    is in, which the innermost caller wires from the DAG around it, and so on up to the root.
    """
    dag = document["root"]["dag"] if dag is None else dag
    for task in dag["tasks"].values():
        reference = task["componentRef"]["name"]
        component = document["components"][reference]
        if "dag" in component:
            yield from container_tasks(document, component["dag"], (task, *callers))
        else:
            name = re.sub(r"-\d+$", "", reference.removeprefix("comp-"))  # comp-infer-shard-2: infer-shard
            yield task, name, component["executorLabel"], callers


def pipeline_parameter(document: dict, wiring: dict, callers: tuple) -> str:
    """The pipeline parameter that ``wiring`` (an input's spec in the innermost sub-DAG) comes from.

    Anything else (a constant, a task output, a loop item) comes back as its spec, so an
    assertion that expects a parameter's name shows what it got instead.
    """
    for caller in callers:
        if set(wiring) != {"componentInputParameter"}:
            return repr(wiring)
        sub_dag_input = wiring["componentInputParameter"]  # a loop item is not wired by the caller
        wiring = caller.get("inputs", {}).get("parameters", {}).get(sub_dag_input)
        if wiring is None:
            return f"{sub_dag_input}, not wired by {caller['taskInfo']['name']}"
    parameter = wiring.get("componentInputParameter") if set(wiring) == {"componentInputParameter"} else None
    return parameter if parameter in document["root"]["inputDefinitions"]["parameters"] else repr(wiring)


def placeholder_parameter(document: dict, task: dict, value: str, callers: tuple) -> str:
    """The pipeline parameter behind a ``{{$.inputs.parameters['X']}}`` value of ``task``; else the value."""
    match = PLACEHOLDER.fullmatch(str(value))
    if not match:
        return repr(value)
    return pipeline_parameter(document, task["inputs"]["parameters"].get(match[1], {}), callers)


def gpu_pod_settings(document: dict, task: dict, executor: str, callers: tuple) -> dict[str, str | list[str]]:
    """The pipeline parameters behind a task's node selector, tolerations and accelerator request."""
    platform = document.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
    pod = platform.get(executor, {})
    # An importer has no container, so no resources.
    accelerator = (
        document["deploymentSpec"]["executors"][executor]
        .get("container", {})
        .get("resources", {})
        .get("accelerator", {})
    )
    return {
        "nodeSelector": pipeline_parameter(document, pod.get("nodeSelector", {}).get("nodeSelectorJson", {}), callers),
        "tolerations": [
            pipeline_parameter(document, toleration.get("tolerationJson", toleration), callers)
            for toleration in pod.get("tolerations", [])
        ],
        "accelerator count": placeholder_parameter(document, task, accelerator.get("resourceCount"), callers),
        "accelerator type": placeholder_parameter(document, task, accelerator.get("resourceType"), callers),
    }


@pytest.mark.parametrize("name", distml.pipelines.PIPELINE_NAMES)
def test_node_pool_inputs_of_train_deploy_and_infer_tasks_are_pipeline_parameters(name):
    """The TFJob and the InferenceService get their pool through the task's inputs (kfp.kubernetes cannot
    reach them): each input must be the pipeline parameter, through every ParallelFor and condition."""
    document = compiled(name)
    expected = TASK_INPUTS[name]
    seen = set()
    for task, component, _, callers in container_tasks(document):
        if component == "train" and name == "distributed_inference":
            # The quick model when no model_uri is given: no launcher input, so it trains in its own pod.
            assert not {"launcher", "node_selector", "tolerations", "image"} & set(task["inputs"]["parameters"])
            continue
        if component not in expected:
            continue
        seen.add(component)
        wired = {
            component_input: pipeline_parameter(
                document, task["inputs"]["parameters"].get(component_input, {}), callers
            )
            for component_input in expected[component]
        }
        assert wired == expected[component], f"{name}: task {task['taskInfo']['name']}"
    assert seen == set(expected), f"{name}: no task runs {set(expected) - seen}"


@pytest.mark.parametrize("name", distml.pipelines.PIPELINE_NAMES)
def test_gpu_pods_take_node_selector_tolerations_and_accelerator_from_pipeline_parameters(name):
    """DeepHealth's pipeline compared a parameter at compile time and never asked for a GPU: not here."""
    document = compiled(name)
    gpu_tasks = 0
    for task, component, executor, callers in container_tasks(document):
        settings = gpu_pod_settings(document, task, executor, callers)
        if component not in GPU_POD:
            assert settings["accelerator count"] == repr(None), f"{name}: {component} asks for an accelerator"
            continue
        gpu_tasks += 1
        expected = {**GPU_POD[component], "tolerations": [GPU_POD[component]["tolerations"]]}
        assert settings == expected, f"{name}: task {task['taskInfo']['name']} ({executor})"
        for task_input, setting in (
            ("accelerator_count", "accelerator count"),
            ("accelerator_type", "accelerator type"),
        ):
            value = task["inputs"]["parameters"][task_input]["runtimeValue"]["constant"]
            assert placeholder_parameter(document, task, value, callers) == GPU_POD[component][setting]
    assert gpu_tasks == GPU_TASKS.get(name, 0), f"{name}: GPU tasks"


@pytest.mark.parametrize("name", [name for name, tasks in TASK_INPUTS.items() if "deploy-kserve" in tasks])
def test_serving_pool_parameters_default_to_empty_and_are_typed_like_the_training_ones(name):
    """Without serving_* settings the InferenceService may land on any node, with no GPU."""
    parameters = compiled(name)["root"]["inputDefinitions"]["parameters"]
    training_gpus = "gpus_per_worker" if "gpus_per_worker" in parameters else "gpus"
    for serving, training, default in (
        ("serving_node_selector", "node_selector", {}),
        ("serving_tolerations", "tolerations", []),
        ("serving_gpus", training_gpus, 0),
    ):
        assert parameters[serving]["parameterType"] == parameters[training]["parameterType"]
        assert (parameters[serving]["isOptional"], parameters[serving]["defaultValue"]) == (True, default)


def executor_image(document: dict, task: dict, executor: str, callers: tuple) -> str:
    """The pipeline parameter a task's container image comes from (an importer's: "importer")."""
    spec = document["deploymentSpec"]["executors"][executor]
    if "importer" in spec:
        return "importer"
    return placeholder_parameter(document, task, spec["container"]["image"], callers)


@pytest.mark.parametrize("name", distml.pipelines.PIPELINE_NAMES)
def test_every_task_runs_in_the_image_parameter(name):
    """Issue 11 defect 2: the image comes from the pipeline's `image` parameter, chosen in the run form, and
    defaults to the image compiled in (the versioned image, or DISTML_IMAGE when compiling)."""
    from distml.components.image import COMPONENT_IMAGE

    document = compiled(name)
    parameters = document["root"]["inputDefinitions"]["parameters"]
    assert parameters["image"]["parameterType"] == "STRING"
    assert parameters["image"]["defaultValue"] == COMPONENT_IMAGE
    images = {
        executor_image(document, task, executor, callers) for task, _, executor, callers in container_tasks(document)
    }
    assert images - {"importer"} == {"image"}, f"{name}: {images}"


def test_a_compile_for_another_registry_leaves_no_default_image_anywhere(tmp_path):
    """DISTML_IMAGE at compile time: pipelines, their tasks, the TFJob's image and the component YAML all use it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DISTML_IMAGE": "reg.example/team/distml:9"}
    command = [sys.executable, "-c", "from distml.cli import main; main()", "compile", "--out", str(tmp_path)]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(written) == len(distml.pipelines.PIPELINE_NAMES) + len(distml.components.all_components())
    for path in written:
        text = path.read_text()
        assert "ghcr.io/kfp-distml" not in text, path
    document: dict = {}
    for part in yaml.safe_load_all((tmp_path / "end_to_end.yaml").read_text()):
        document.update(part)
    assert document["root"]["inputDefinitions"]["parameters"]["image"]["defaultValue"] == "reg.example/team/distml:9"


@pytest.mark.parametrize("name", distml.pipelines.PIPELINE_NAMES)
def test_accelerator_counts_reach_the_driver_as_string_parameters(name):
    """Issue 11 defect 3: KFP's driver reads a parameter's accelerator count with GetStringValue()
    (kubeflow/pipelines 2.17.0 backend/src/v2/driver/resolve.go:825), "" for a number: no GPU limit."""
    document = compiled(name)
    parameters = document["root"]["inputDefinitions"]["parameters"]
    counts = []
    for task, _, executor, callers in container_tasks(document):
        spec = document["deploymentSpec"]["executors"][executor].get("container", {})
        count = spec.get("resources", {}).get("accelerator", {}).get("resourceCount")
        if count is None:
            continue
        parameter = placeholder_parameter(document, task, count, callers)
        assert parameter in parameters, f"{name}: {executor} count {count!r} is not a pipeline parameter"
        counts.append((executor, parameter, parameters[parameter]["parameterType"]))
    assert counts == [(executor, "gpus", "STRING") for executor, _, _ in counts]
    assert len(counts) == GPU_TASKS.get(name, 0)


@pytest.mark.parametrize("name", ["distributed_inference", "end_to_end"])
def test_cleanup_runs_once_after_the_gather_and_no_task_is_an_exit_hook(name):
    """Issue 11 defect 11: ignore_upstream_failure() compiles to an Argo exit hook on *each* dependency
    (kubeflow/pipelines 2.17.0 backend/src/v2/compiler/argocompiler/dag.go:62-104): the clean-up would run
    right after split_dataset too. No task may be one; cleanup_parts waits for gather_metrics."""
    document = compiled(name)
    cleanups = 0
    for task, component, _, _ in container_tasks(document):
        assert "triggerPolicy" not in task or task["triggerPolicy"].get("strategy") != "ALL_UPSTREAM_TASKS_COMPLETED"
        if component == "cleanup-parts":
            cleanups += 1
            depends_on = sorted(re.sub(r"-\d+$", "", dependency) for dependency in task["dependentTasks"])
            assert depends_on == ["gather-metrics", "split-dataset"]
    assert cleanups == (2 if name == "distributed_inference" else 1)  # one per model branch


def run(tmp_path: Path, name: str, **params):
    return run_pipeline_locally(name, params, out_dir=tmp_path / "runs")


def find(run_dir: Path, pattern: str) -> list[Path]:
    return sorted(run_dir.rglob(pattern))


@pytest.mark.slow
def test_end_to_end_runs_locally_trains_selects_infers_and_serves(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(tmp_path, "end_to_end", images=30, image_size=32, epochs=4, learning_rates=[0.003], num_parts=2)
    assert result.state == "SUCCEEDED"
    deployed = result.task_outputs["deploy-kserve"]
    assert deployed["status"] == "Ready" and deployed["url"].startswith("http://127.0.0.1:")
    manifest = yaml.safe_load(Path(deployed["manifest"]).read_text())
    assert manifest["kind"] == "InferenceService" and manifest["metadata"]["name"] == "distml-lesions"
    best = Path(result.task_outputs["select-model"]["best"])
    assert (best / "model.onnx").is_file() and (best / "model" / "1" / "saved_model.pb").is_file()
    summary = json.loads(Path(result.task_outputs["gather-metrics"]["summary"], "metrics.json").read_text())
    assert summary["images"] == 6 and 0.0 <= summary["miou"] <= 1.0
    assert not find(result.run_dir, "part-*.yml"), "the temporary parts were cleaned up"


@pytest.mark.slow
def test_distributed_inference_with_a_given_model(tmp_path, monkeypatch):
    """The importer branch: a model folder made by training, passed as model_uri."""
    from distml.training.launch import prepare_data, train
    from distml.training.worker import WorkerConfig

    monkeypatch.chdir(tmp_path)
    data = prepare_data("synthetic:lesions", tmp_path / "work")
    model = tmp_path / "model"
    config = WorkerConfig(model="unet-small", data=data, out=model, epochs=2, batch_size=8, image_size=32, onnx=True)
    train(config, 1, launcher="local")
    result = run(tmp_path, "distributed_inference", model_uri=str(model), images=24, num_parts=3)
    assert "train" not in result.task_outputs, "no quick model is trained when one is given"
    shards = [outputs for task, outputs in result.task_outputs.items() if "infer-shard" in task]
    assert len(shards) == 3
    assert sum(int(outputs["Output"]) for outputs in shards) == 5  # 20% of 24 images, in 3 parts


@pytest.mark.slow
def test_federated_average_trains_per_shard_and_averages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(tmp_path, "federated_average", num_shards=2, epochs=4)
    averaged = json.loads(Path(result.task_outputs["average-models"]["averaged"], "metrics.json").read_text())
    assert len(averaged["averaged_from"]) == 2
    assert averaged["test_accuracy"] > 0.5  # ten classes: chance is 0.1
    trained = [json.loads(p.read_text()) for p in find(result.run_dir, "train/model/metrics.json")]
    assert sorted(m["train_examples"] for m in trained) == [718, 719]  # 1437 training rows, floor + rest
    assert result.task_outputs["deploy-kserve"]["status"] == "Ready"


def test_a_work_pvc_chosen_at_compile_time_is_mounted_in_train_tasks_and_given_to_the_tfjob(tmp_path):
    """launcher=kubernetes stages data on a PVC that the train task's pod and the TFJob's pods share."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DISTML_WORK_PVC": "distml-work"}
    compile_command = [sys.executable, "-c", "from distml.cli import main; main()", "compile", "--out", str(tmp_path)]
    subprocess.run(compile_command, env=env, check=True, capture_output=True, timeout=300)
    document: dict = {}
    for part in yaml.safe_load_all((tmp_path / "end_to_end.yaml").read_text()):
        document.update(part)
    mounts = document["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]["pvcMount"]
    assert [(m["constant"], m["mountPath"]) for m in mounts] == [("distml-work", "/mnt/distml")]
    train_task = document["components"]["comp-for-loop-1"]["dag"]["tasks"]["train"]
    assert train_task["inputs"]["parameters"]["pvc"] == {"runtimeValue": {"constant": "distml-work:/mnt/distml"}}
    assert "pvcMount" not in (COMPILED / "end_to_end.yaml").read_text(), "the committed YAML assumes no PVC"
