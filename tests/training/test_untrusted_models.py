"""Model folders from someone else's artifact store: reading one never runs code stored in it.

The hostile folders are built here: a model.keras that is a legacy HDF5 file with a ``Lambda``
layer whose code writes a marker file when the model is deserialized, and a SavedModel whose
serving graph writes a marker file when it is called. Every path that loads a Model folder
(average, the local model server's predictor) must leave no marker.
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from distml.cli import main
from distml.errors import DistmlError

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

pytestmark = pytest.mark.slow

INFO = {"architecture": "mlp", "task": "classification", "input_shape": [8, 8, 1],
        "classes": [str(c) for c in range(10)], "framework": "tensorflow"}  # fmt: skip


def good_model_folder(folder: Path) -> Path:
    from distml.training.model_folder import save_model_folder
    from distml.training.models import build_model

    model = build_model("mlp", (8, 8, 1), 10)
    save_model_folder(model, folder, architecture="mlp", task="classification", input_shape=[8, 8, 1],
                      classes=INFO["classes"], metrics={"workers": 1}, onnx=False)  # fmt: skip
    return folder


def lambda_hdf5(path: Path, marker: Path) -> None:
    """An HDF5 file (named model.keras) holding a model whose Lambda layer writes ``marker`` when built."""
    import tf_keras

    code = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]")
    inputs = tf_keras.Input((8, 8, 1), name="input")
    hidden = tf_keras.layers.Flatten()(tf_keras.layers.Lambda(code)(inputs))
    tf_keras.Model(inputs, tf_keras.layers.Dense(10, activation="softmax")(hidden)).save(str(path), save_format="h5")
    marker.unlink()  # building the model above ran the code once; only loading may bring it back


@pytest.fixture
def hostile_hdf5_folder(tmp_path):
    folder = good_model_folder(tmp_path / "hostile")
    marker = tmp_path / "marker-hdf5"
    lambda_hdf5(folder / "model.keras", marker)
    assert (folder / "model.keras").read_bytes()[:4] == b"\x89HDF"
    return folder, marker


def test_average_refuses_a_legacy_hdf5_model_without_running_its_lambda(tmp_path, hostile_hdf5_folder):
    hostile, marker = hostile_hdf5_folder
    good = good_model_folder(tmp_path / "good")
    result = CliRunner().invoke(main, ["average", str(good), str(hostile), "--out", str(tmp_path / "avg")])
    assert not marker.exists(), "loading the model ran the code stored in it"
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "not a Keras v3 archive" in result.output and "model.keras" in result.output
    assert not (tmp_path / "avg").exists()


def test_the_predictor_refuses_a_legacy_hdf5_model_without_running_its_lambda(hostile_hdf5_folder):
    from distml.serving.local import Predictor

    hostile, marker = hostile_hdf5_folder
    with pytest.raises(DistmlError, match="not a Keras v3 archive"):
        Predictor(hostile)
    assert not marker.exists()


def test_the_predictor_never_runs_the_saved_model_graph(tmp_path):
    """The SavedModel's graph is the writer's: its ops can write files. Serving rebuilds the model instead."""
    import tensorflow as tf

    from distml.serving.local import Predictor

    folder = good_model_folder(tmp_path / "model")
    marker = tmp_path / "marker-graph"
    shutil.rmtree(folder / "model" / "1")

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name="input")])
        def serve(self, x):
            tf.io.write_file(str(marker), "ran")
            return {"output": tf.zeros([tf.shape(x)[0], 10])}

    writer = Writer()
    tf.saved_model.save(writer, str(folder / "model" / "1"), signatures={"serving_default": writer.serve})
    predictor = Predictor(folder)
    outputs = predictor.predict(predictor.check(np.zeros((2, 8, 8, 1))))
    assert not marker.exists(), "serving ran the SavedModel's own graph"
    assert outputs.shape == (2, 10)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-5)  # the rebuilt mlp ends in a softmax


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("{not json", "cannot read model.json"),
        ("[1, 2]", "(top level)"),
        (json.dumps({**INFO, "architecture": "resnet"}), "architecture"),
        (json.dumps({**INFO, "input_shape": [8, 8]}), "input_shape"),
        (json.dumps({**INFO, "input_shape": [8, 8, "1"]}), "input_shape"),
        (json.dumps({**INFO, "input_shape": [100000, 100000, 3]}), "input_shape"),
        (json.dumps({**INFO, "classes": 10}), "classes"),
        (json.dumps({**INFO, "task": "segmentation"}), "task"),
    ],
)
def test_malformed_model_json_is_one_line_naming_the_field(tmp_path, content, field):
    good = good_model_folder(tmp_path / "good")
    bad = shutil.copytree(good, tmp_path / "bad")
    (bad / "model.json").write_text(content)
    result = CliRunner().invoke(main, ["average", str(good), str(bad), "--out", str(tmp_path / "avg")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert field in result.output and "model.json" in result.output


def test_weights_that_do_not_fit_the_named_architecture_are_refused(tmp_path):
    good = good_model_folder(tmp_path / "good")
    other = shutil.copytree(good, tmp_path / "other")
    (other / "model.json").write_text(json.dumps({**INFO, "architecture": "cnn"}))
    result = CliRunner().invoke(main, ["average", str(good), str(other), "--out", str(tmp_path / "avg")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "weights do not fit the cnn model" in result.output


def test_a_segmentation_model_folder_without_classes_loads(tmp_path):
    from distml.training.model_folder import load_model_folder, save_model_folder
    from distml.training.models import build_model

    model = build_model("unet-small", (16, 16, 3), 0)
    save_model_folder(model, tmp_path / "unet", architecture="unet-small", task="segmentation",
                      input_shape=[16, 16, 3], classes=[], metrics={}, onnx=False)  # fmt: skip
    loaded, info = load_model_folder(tmp_path / "unet")
    assert info["classes"] == [] and loaded.output_shape == (None, 16, 16, 1)
    for ours, theirs in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
