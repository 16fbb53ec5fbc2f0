"""average_models and deploy_kserve (target "local") on KFP's local runner, after a ParallelFor of training.

No ``from __future__ import annotations`` here: KFP reads the components' annotations. The
training step is a test-local component fitting training's mlp on digits for one epoch per seed.
"""

import json

import pytest
import yaml


@pytest.mark.slow
def test_average_then_deploy_locally(local_runner):
    from kfp import dsl

    from distml.components.average_models import average_models
    from distml.components.deploy_kserve import deploy_kserve
    from distml.components.load_data import load_data

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def tiny_train(seed: int, data: dsl.Input[dsl.Dataset], model: dsl.Output[dsl.Model]):
        import os

        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tf_keras

        from distml.data.sources import load_arrays
        from distml.training.model_folder import save_model_folder
        from distml.training.models import build_model

        arrays = load_arrays(data.path)
        tf_keras.utils.set_random_seed(int(seed))
        net = build_model("mlp", (8, 8, 1), 10)
        net.compile("adam", "sparse_categorical_crossentropy")
        net.fit(arrays["x_train"], arrays["y_train"], epochs=1, verbose=0)
        save_model_folder(net, model.path, architecture="mlp", task="classification", input_shape=[8, 8, 1],
                          classes=[str(c) for c in range(10)], metrics={"workers": 1}, onnx=False)  # fmt: skip

    @dsl.pipeline
    def average_and_serve(seeds: list = [1, 2]) -> str:  # noqa: B006
        loaded = load_data(source="sklearn:digits")
        with dsl.ParallelFor(seeds) as seed:
            trained = tiny_train(seed=seed, data=loaded.outputs["dataset"])
        averaged = average_models(models=dsl.Collected(trained.outputs["model"]), data=loaded.outputs["dataset"])
        deployed = deploy_kserve(model=averaged.outputs["averaged"], name="digits", gpus=1, max_replicas=2)
        return deployed.outputs["status"]

    assert average_and_serve().output == "Ready"
    outputs = local_runner
    metrics = json.loads(next(outputs.rglob("averaged/metrics.json")).read_text())
    assert 0.3 < metrics["test_accuracy"] <= 1.0 and metrics["averaged_from"] and metrics["workers"] == 2
    manifest = yaml.safe_load(next(p for p in outputs.rglob("manifest") if p.is_file()).read_text())
    predictor = manifest["spec"]["predictor"]
    assert manifest["metadata"] == {
        "name": "digits",
        "namespace": "default",
        "labels": {"app.kubernetes.io/managed-by": "distml"},
    }
    assert predictor["model"]["storageUri"] == "pvc://models/digits/model"
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1" and predictor["maxReplicas"] == 2
    executor = json.loads(next(outputs.rglob("deploy-kserve/executor_output.json")).read_text())
    url = executor["parameterValues"]["url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1/models/digits:predict")
