"""The train component on KFP's local runner: load_data then train with the local launcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_train_component_writes_a_model_folder_and_metrics(tmp_path):
    from kfp import dsl, local

    from distml.components.load_data import load_data
    from distml.components.train import train

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))

    @dsl.pipeline
    def digits_training():
        loaded = load_data(source="sklearn:digits")
        train(data=loaded.outputs["dataset"], model_name="mlp", workers=1, epochs=3, onnx=False)

    digits_training()
    folders = list((tmp_path / "root").rglob("model.json"))
    assert len(folders) == 1
    model_folder = folders[0].parent
    assert json.loads((model_folder / "model.json").read_text())["architecture"] == "mlp"
    assert (model_folder / "model" / "1" / "saved_model.pb").exists()
    assert json.loads((model_folder / "metrics.json").read_text())["test_accuracy"] > 0.5
    logs = list((tmp_path / "root").rglob("worker-0.log"))
    assert logs and "worker-0 epoch=3/3" in Path(logs[0]).read_text()


def test_kubernetes_launcher_without_a_shared_volume_fails_before_creating_anything(tmp_path):
    """A TFJob's pods cannot read this task's artifacts: say how to give them a volume, create no job."""
    from kfp import dsl

    from distml.components.train import train
    from distml.errors import DistmlError

    def artifact(kind, name):
        return kind(name=name, uri=str(tmp_path / name))

    with pytest.raises(DistmlError, match="DISTML_WORK_PVC"):
        train.python_func(
            data=artifact(dsl.Dataset, "data"),
            model=artifact(dsl.Model, "model"),
            metrics=artifact(dsl.Metrics, "metrics"),
            logs=artifact(dsl.Artifact, "logs"),
            launcher="kubernetes",
        )
    assert not (tmp_path / "model").exists()
