"""Weight averaging against hand-computed weights, architecture checks, and the evaluated average.

Models are tf-keras models of training's architectures, saved with training's save_model_folder;
their weights are set to constants so the expected average is known by hand.
"""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from distml.cli import main
from distml.errors import DistmlError
from distml.selection.average import average_models, average_weights, check_same_architecture, evaluate_arrays

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def test_average_weights_by_hand():
    first = [np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.array([0.0, 1.0], np.float32)]
    second = [np.array([[3.0, 6.0], [5.0, 0.0]], np.float32), np.array([1.0, 0.0], np.float32)]
    third = [np.array([[2.0, 1.0], [1.0, 2.0]], np.float32), np.array([2.0, 2.0], np.float32)]
    mean = average_weights([first, second, third])
    np.testing.assert_array_equal(mean[0], [[2.0, 3.0], [3.0, 2.0]])
    np.testing.assert_array_equal(mean[1], [1.0, 1.0])
    assert mean[0].dtype == np.float32


def constant_model(architecture, value, input_shape=(8, 8, 1)):
    from distml.training.models import build_model

    model = build_model(architecture, input_shape, 10)
    model.set_weights([np.full(w.shape, value, w.dtype) for w in model.get_weights()])
    return model


def test_differing_architectures_name_the_first_layer():
    with pytest.raises(DistmlError) as caught:
        check_same_architecture([constant_model("mlp", 1), constant_model("mlp", 1, (16, 16, 1))], ["small", "large"])
    message = str(caught.value)
    assert message.startswith("large: layer 0 differs: ")
    assert "(Dense, weights 256x128, 128)" in message and "(Dense, weights 64x128, 128) in small" in message

    with pytest.raises(DistmlError, match=r"cnn: layer 0 differs: .*Conv2D.*Dense"):
        check_same_architecture([constant_model("mlp", 1), constant_model("cnn", 1)], ["mlp", "cnn"])


def test_evaluate_arrays_by_hand():
    """Equal weights everywhere give equal logits: softmax 1/10 each, argmax class 0, loss ln 10."""
    x = np.random.default_rng(0).random((20, 8, 8, 1), dtype=np.float32)
    y = np.array([0, 1] * 10)
    metrics = evaluate_arrays(constant_model("mlp", 0.01), x, y, "classification")
    assert metrics["test_accuracy"] == pytest.approx(0.5)
    assert metrics["test_loss"] == pytest.approx(np.log(10), rel=1e-5)
    assert metrics["test_examples"] == 20


def save(model, folder, **metrics):
    from distml.training.model_folder import save_model_folder

    save_model_folder(model, folder, architecture="mlp", task="classification", input_shape=[8, 8, 1],
                      classes=[str(c) for c in range(10)], metrics={"workers": 2, "global_batch_size": 32, **metrics},
                      onnx=False)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def digits_data_folder(tmp_path_factory):
    from distml.data.sources import load_data

    folder = tmp_path_factory.mktemp("data") / "digits"
    load_data("sklearn:digits", folder)
    return folder


@pytest.mark.slow
def test_average_models_writes_the_hand_computed_average(tmp_path, digits_data_folder):
    from distml.data.sources import load_arrays
    from distml.training.model_folder import load_model_folder

    folders = [save(constant_model("mlp", value), tmp_path / f"m{value}") for value in (0.01, 0.03, 0.05)]
    out = average_models(folders, tmp_path / "average", data=digits_data_folder)
    model, info = load_model_folder(out)
    for weight in model.get_weights():
        np.testing.assert_allclose(weight, 0.03, rtol=1e-6)
    assert info["architecture"] == "mlp" and info["input_shape"] == [8, 8, 1]
    metrics = json.loads((out / "metrics.json").read_text())
    y_test = load_arrays(digits_data_folder)["y_test"]
    assert metrics["test_accuracy"] == pytest.approx(float((y_test == 0).mean()))
    assert metrics["test_loss"] == pytest.approx(np.log(10), rel=1e-5)
    assert metrics["averaged_from"] == ["m0.01", "m0.03", "m0.05"] and metrics["workers"] == 6
    assert (out / "model" / "1" / "saved_model.pb").exists() and not (out / "model.onnx").exists()


@pytest.mark.slow
def test_average_refuses_other_classes_and_single_models(tmp_path):
    from distml.training.model_folder import save_model_folder

    first = save(constant_model("mlp", 0.1), tmp_path / "a")
    other = tmp_path / "b"
    save_model_folder(constant_model("mlp", 0.1), other, architecture="mlp", task="classification",
                      input_shape=[8, 8, 1], classes=list("abcdefghij"), metrics={}, onnx=False)  # fmt: skip
    with pytest.raises(DistmlError, match="b: model.json classes is"):
        average_models([first, other], tmp_path / "out")
    with pytest.raises(DistmlError, match="at least two models"):
        average_models([first], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_average(tmp_path, digits_data_folder):
    folders = [save(constant_model("mlp", value), tmp_path / f"m{value}") for value in (0.02, 0.04)]
    args = ["average", *map(str, folders), "--data", str(digits_data_folder), "--out", str(tmp_path / "avg")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "averaged 2 models" in result.output and "test_accuracy" in result.output
    mismatch = tmp_path / "cnn"
    from distml.training.model_folder import save_model_folder

    save_model_folder(constant_model("cnn", 0.1), mismatch, architecture="cnn", task="classification",
                      input_shape=[8, 8, 1], classes=[str(c) for c in range(10)], metrics={}, onnx=False)  # fmt: skip
    refused = CliRunner().invoke(main, ["average", str(folders[0]), str(mismatch), "--out", str(tmp_path / "x")])
    assert refused.exit_code == 1 and "layer 0 differs" in refused.output
