"""Runs that cannot succeed fail first, naming the parameter (issue 12, items 11 and 12).

`distml demo --parts 100 --images 10` once trained two candidates and then failed in the split;
`distml run`/`submit` started whatever they were given; every pipeline's first task is now
check_parameters, and the CLI applies the same rules before it starts anything.

No ``from __future__ import annotations`` here: KFP reads the annotations of the pipeline below.
"""

import math

import pytest
import yaml
from click.testing import CliRunner

from distml.cli import main
from distml.errors import DistmlError
from distml.parameters import check_pipeline_parameters, check_training

BAD_PIPELINE_VALUES = [
    ({"images": 0}, "images = 0 is outside 1..1000000"),
    ({"images": 10**9}, "images = 1000000000 is outside"),
    ({"epochs": -1}, "epochs = -1 is outside 1..100000"),
    ({"batch_size": 0}, "batch_size = 0 is outside"),
    ({"workers": 0}, "workers = 0 is outside 1..256"),
    ({"num_parts": 0}, "num_parts = 0 is outside"),
    ({"source": "synthetic:lesions", "images": 10, "num_parts": 100}, "num_parts = 100 > images = 10"),
    ({"learning_rates": [0.001, math.nan]}, "learning_rates[1] = nan is not a finite number"),
    ({"learning_rates": []}, "learning_rates = [] is not a non-empty list"),
    ({"learning_rates": [-0.1]}, "learning_rates[0] = -0.1 is outside"),
    ({"image_size": 100000}, "image_size = 100000 is outside 8..2048"),
    ({"models": ["mlp", "resnet"]}, "models[1] = 'resnet' is not known"),
    ({"backend": "tensorrt"}, "backend = 'tensorrt' is not known"),
    ({"launcher": "slurm"}, "launcher = 'slurm' is not known"),
    ({"deploy_target": "cloud"}, "deploy_target = 'cloud' is not known"),
    ({"source": "ftp:x"}, "source = 'ftp:x' is not a data source"),
    ({"service_name": "My_Model"}, "service_name = 'My_Model' is not a DNS-1035 label"),
    ({"service_name": ""}, "service_name = '' is not a DNS-1035 label"),
    ({"namespace": "Team A"}, "namespace = 'Team A' is not a DNS-1123 label"),
    ({"gpus": "-1"}, "gpus = '-1' is not a whole number"),
    ({"serving_gpus": -2}, "serving_gpus = -2 is outside 0..64"),
    ({"min_replicas": 3, "max_replicas": 1}, "min_replicas = 3 > max_replicas = 1"),
    ({"split": " "}, "split = ' ' is empty"),
    ({"tolerations": [{"key": "a", "operator": "Sometimes"}]}, "tolerations[0]"),
    ({"deploy_target": "kserve", "service_name": "ok", "storage_uri": "s3://b/m"}, "no service account"),
]


@pytest.mark.parametrize(("values", "message"), BAD_PIPELINE_VALUES, ids=[m for _, m in BAD_PIPELINE_VALUES])
def test_a_pipeline_parameter_that_cannot_work_is_refused_by_name(values, message):
    with pytest.raises(DistmlError, match="pipeline end_to_end") as refused:
        check_pipeline_parameters("end_to_end", values)
    assert message in str(refused.value)


def test_the_defaults_of_every_pipeline_pass():
    from distml.cli.pipelines import check_run_arguments
    from distml.pipelines import PIPELINE_NAMES

    for name in PIPELINE_NAMES:
        check_run_arguments(name, {})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": 0}, "workers = 0"),
        ({"workers": 100_000}, "workers = 100000 is outside 1..256"),
        ({"epochs": 0}, "epochs = 0"),
        ({"batch_size": -8}, "batch_size = -8"),
        ({"learning_rate": math.inf}, "learning_rate = inf is not a finite number"),
        ({"learning_rate": 0.0}, "learning_rate = 0.0 is outside"),
        ({"image_size": 30, "model": "unet-small"}, "image_size = 30 is not a multiple of 4"),
        ({"image_size": 100_000}, "image_size = 100000 is outside 4..2048"),
    ],
)
def test_training_arguments_are_checked_before_anything_is_read(changes, message):
    arguments = {"workers": 1, "epochs": 1, "batch_size": 8, "learning_rate": 0.01, **changes}
    with pytest.raises(DistmlError, match=message.replace(".", r"\.")):
        check_training(**arguments)


def test_the_train_step_refuses_component_inputs_before_reading_the_data(tmp_path):
    from distml.training.launch import train_step

    with pytest.raises(DistmlError, match="workers = 0 is outside"):
        train_step(
            str(tmp_path / "no-data"), str(tmp_path / "model"), "", str(tmp_path / "logs"),
            model_name="mlp", workers=0, epochs=1, batch_size=8, learning_rate=0.01, image_size=0, onnx=False,
            launcher="local", image="", gpus_per_worker=0, node_selector={}, tolerations=[], namespace="", pvc="",
            timeout_seconds=60,
        )  # fmt: skip
    assert not (tmp_path / "logs").exists() and not (tmp_path / "model").exists()


def test_demo_with_more_parts_than_images_fails_before_running_anything(tmp_path, monkeypatch):
    import distml.runs as runner

    started = []
    monkeypatch.setattr(runner, "run_pipeline_locally", lambda *args, **kwargs: started.append(args))
    result = CliRunner().invoke(main, ["demo", "--parts", "100", "--images", "10", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (result.exception, result.output)
    assert "Invalid value for --parts: 100 parts of 10 images: a part would be empty" in result.output
    assert started == [] and not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("num_parts=0", "num_parts = 0 is outside"),
        ("quick_model_epochs=-3", "quick_model_epochs = -3 is outside"),
        ("gpus=two", "gpus = 'two' is not a whole number"),
    ],
)
def test_run_and_submit_refuse_before_starting(tmp_path, monkeypatch, param, message):
    import distml.runs as runner

    started = []
    monkeypatch.setattr(runner, "run_pipeline_locally", lambda *args, **kwargs: started.append(args))
    monkeypatch.setattr(runner, "submit", lambda *args, **kwargs: started.append(args))
    for args in (
        ["run", "distributed_inference", "--local", "--param", param, "--out", str(tmp_path / "runs")],
        ["submit", "distributed_inference", "--host", "http://127.0.0.1:9", "--param", param],
    ):
        result = CliRunner().invoke(main, args)
        # A --param value is an option value: a usage error, exit 2 (tests/cli/test_exit_codes.py).
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (result.exception, result.output)
        assert "Invalid value: pipeline distributed_inference: " in result.output and message in result.output
    assert started == []


def test_every_compiled_pipeline_starts_with_check_parameters_and_loads_after_it():
    from distml.pipelines import COMPILED_DIR, PIPELINE_NAMES

    for name in PIPELINE_NAMES:
        spec = next(yaml.safe_load_all((COMPILED_DIR / f"{name}.yaml").read_text()))
        tasks = spec["root"]["dag"]["tasks"]
        assert "dependentTasks" not in tasks["check-parameters"], name
        inputs = tasks["check-parameters"]["inputs"]["parameters"]
        assert inputs["pipeline"]["runtimeValue"]["constant"] == name
        plumbing = {"pipeline", "given", "base_image", "pipelinechannel--image"}  # the last two: in_image()
        assert set(inputs["given"]["runtimeValue"]["constant"]) == set(inputs) - plumbing
        assert {"batch_size", "image"} <= set(inputs), name
        assert "check-parameters" in tasks["load-data"]["dependentTasks"], name


def test_check_parameters_fails_its_task_on_the_local_runner(local_runner):
    """The component itself, on KFP's local runner: a bad value fails the run at the first task."""
    from kfp import dsl

    from distml.components.check_parameters import check_parameters

    @dsl.pipeline
    def checked(epochs: int = 0, backend: str = "onnxruntime"):
        check_parameters(pipeline="checked", given=["epochs", "backend"], epochs=epochs, backend=backend)

    with pytest.raises(RuntimeError, match="check-parameters"):
        checked()
    checked(epochs=3)  # the same task with good values passes (a failed task raises)


K8S_TRAIN = ["train", "--launcher", "kubernetes", "--dry-run", "--data", "sklearn:digits", "--out", "m"]
DEPLOY = ["deploy", "--dry-run", "--name", "ok", "--storage-uri", "pvc://models/m"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ([*K8S_TRAIN, "--model", "mlp", "--workers", "100000"], "--workers"),
        ([*K8S_TRAIN, "--model", "mlp", "--epochs", "1000000000"], "--epochs"),
        ([*K8S_TRAIN, "--model", "mlp", "--learning-rate", "1e6"], "--learning-rate"),
        ([*K8S_TRAIN, "--model", "mlp", "--namespace", "Team_A"], "--namespace"),
        ([*K8S_TRAIN, "--model", "unet-small", "--image-size", "30"], "image_size"),
        ([*DEPLOY, "--namespace", "Team_A"], "namespace"),
        ([*DEPLOY, "--cpu", "lots"], "cpu"),
        ([*DEPLOY, "--memory", "-2Gi"], "memory"),
        (["serve", "--model", "none", "--name", ""], "--name"),
        (["serve", "--model", "none", "--name", "m", "--host", ""], "--host"),
        (["gather", "none", "--report-images", "100000000", "--out", "o"], "--report-images"),
    ],
)
def test_a_value_once_accepted_silently_is_refused_naming_it(args, named):
    """Dry runs that printed a TFJob or InferenceService with these values (exit 0) on the code before item 12."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit), (result.exception, result.output)
    assert named in result.output, result.output
