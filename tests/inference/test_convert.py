"""SavedModel and tf-keras to ONNX (tf2onnx): outputs agree with TensorFlow, layouts, bad input."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from distml.errors import DistmlError
from distml.inference.convert import OnnxConverter, keras_to_onnx, saved_model_to_onnx

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A tiny untrained conv net (random weights suffice to compare runtimes) as a SavedModel."""
    import tf_keras

    tf_keras.utils.set_random_seed(1)
    inputs = tf_keras.Input((16, 12, 3), name="input")
    x = tf_keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    outputs = tf_keras.layers.Conv2D(1, 1, activation="sigmoid")(x)
    model = tf_keras.Model(inputs, outputs)
    folder = tmp_path_factory.mktemp("sm") / "model" / "1"
    model.save(str(folder), save_format="tf", include_optimizer=False)
    return model, folder


def run_onnx(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, session.run(None, {session.get_inputs()[0].name: x})[0]


def test_saved_model_converts_and_matches_tensorflow(saved_model, tmp_path):
    model, folder = saved_model
    path = saved_model_to_onnx(folder, tmp_path / "out" / "model.onnx")
    x = np.random.default_rng(0).random((3, 16, 12, 3), dtype=np.float32)
    session, y = run_onnx(path, x)
    assert session.get_inputs()[0].shape[1:] == [16, 12, 3]
    np.testing.assert_allclose(y, model.predict(x, verbose=0), atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.onnx"]  # no temporary left
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_saved_model_converts_to_channels_first_input(saved_model, tmp_path):
    model, folder = saved_model
    path = saved_model_to_onnx(folder, tmp_path / "nchw.onnx", inputs_as_nchw=True, opset=15)
    x = np.random.default_rng(1).random((2, 16, 12, 3), dtype=np.float32)
    session, y = run_onnx(path, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    assert session.get_inputs()[0].shape[1:] == [3, 16, 12]
    np.testing.assert_allclose(y, model.predict(x, verbose=0), atol=1e-5)


def test_keras_model_converts_in_process(saved_model, tmp_path):
    model, _ = saved_model
    path = keras_to_onnx(model, tmp_path / "k.onnx")
    x = np.random.default_rng(2).random((1, 16, 12, 3), dtype=np.float32)
    _, y = run_onnx(path, x)
    np.testing.assert_allclose(y, model.predict(x, verbose=0), atol=1e-5)


def test_missing_saved_model_is_named(tmp_path):
    with pytest.raises(DistmlError, match="no saved_model.pb") as err:
        saved_model_to_onnx(tmp_path / "nothing", tmp_path / "m.onnx")
    assert "nothing" in str(err.value) and not (tmp_path / "m.onnx").exists()


def test_broken_saved_model_fails_without_leaving_a_file(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(DistmlError, match="ONNX conversion failed"):
        saved_model_to_onnx(tmp_path / "broken", tmp_path / "out" / "m.onnx")
    assert not list((tmp_path / "out").iterdir())


def _without_doc_string(path):
    import onnx

    model = onnx.load(str(path))
    model.graph.doc_string = ""  # tf2onnx writes "converted from <folder>" there
    return model.SerializeToString()


def test_a_converter_started_ahead_writes_what_a_one_off_child_writes(saved_model, tmp_path):
    """Issue 15: the converter's imports start with training; the export is the same tf2onnx run in a child."""
    _, folder = saved_model
    one_off = saved_model_to_onnx(folder, tmp_path / "one-off.onnx")
    with OnnxConverter() as converter:
        child = converter._process
        ahead = saved_model_to_onnx(folder, tmp_path / "ahead.onnx", converter=converter)
    assert child.returncode == 0 and child.pid != os.getpid()
    assert _without_doc_string(ahead) == _without_doc_string(one_off)


def test_an_unused_converter_ends_its_child(tmp_path):
    with OnnxConverter() as converter:
        child = converter._process
        assert child.poll() is None  # importing, then waiting for a job
    assert child.poll() is not None


def test_a_failing_conversion_in_a_converter_started_ahead_is_named(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "saved_model.pb").write_bytes(b"not a protobuf")
    with OnnxConverter() as converter, pytest.raises(DistmlError, match="ONNX conversion failed"):
        saved_model_to_onnx(tmp_path / "broken", tmp_path / "out" / "m.onnx", converter=converter)
    assert not list((tmp_path / "out").iterdir())
