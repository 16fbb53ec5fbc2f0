"""The four pipelines: compiled YAML (loads back, GPU settings wired from parameters) and local runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import distml.pipelines
from distml.pipelines.runner import run_local

COMPILED = distml.pipelines.COMPILED_DIR
GPU_PIPELINES = ("distributed_inference", "end_to_end")


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


@pytest.mark.parametrize("name", GPU_PIPELINES)
def test_gpu_settings_of_inference_tasks_come_from_pipeline_parameters(name):
    """DeepHealth's pipeline compared a parameter at compile time and never asked for a GPU: not here."""
    document = compiled(name)
    executors = document["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    infer_executors = [key for key in executors if key.startswith("exec-infer-shard")]
    assert infer_executors
    for key in infer_executors:
        settings = executors[key]
        node_selector = settings["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"]
        tolerations = settings["tolerations"][0]["tolerationJson"]["componentInputParameter"]
        assert (node_selector, tolerations) == ("pipelinechannel--node_selector", "pipelinechannel--tolerations")
    text = (COMPILED / f"{name}.yaml").read_text()
    for setting, parameter in (("accelerator_type", "accelerator"), ("accelerator_count", "gpus")):
        value = f"'{{{{$.inputs.parameters[''pipelinechannel--{parameter}'']}}}}'"
        assert f"{setting}:\n{' ' * 16}runtimeValue:\n{' ' * 18}constant: {value}" in text


@pytest.mark.parametrize("name", distml.pipelines.PIPELINE_NAMES)
def test_node_pool_parameters_reach_the_tfjob_and_inferenceservice_specs(name):
    """kfp.kubernetes reaches only the task's pod, so train and deploy take the settings as inputs."""
    text = yaml.safe_dump(compiled(name)["root"]["dag"])
    for component_input in ("node_selector", "tolerations"):
        assert f"{component_input}:\n" in text
        assert f"componentInputParameter: pipelinechannel--{component_input}" in text or (
            f"componentInputParameter: {component_input}" in text
        )


def run(tmp_path: Path, name: str, **params):
    return run_local(name, params, out_dir=tmp_path / "runs")


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
    from distml.training.launch import prepare_data, train_local
    from distml.training.worker import WorkerConfig

    monkeypatch.chdir(tmp_path)
    data = prepare_data("synthetic:lesions", tmp_path / "work")
    model = tmp_path / "model"
    train_local(WorkerConfig(model="unet-small", data=data, out=model, epochs=2, batch_size=8, image_size=32,
                             onnx=True), 1)
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
