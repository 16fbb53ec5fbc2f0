"""The EDDL export (distml.inference.eddl_onnx): every architecture we train, checked against TensorFlow on
ONNX Runtime everywhere and on EDDL where pyeddl is installed; what EDDL cannot take is refused by name."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distml.errors import DistmlError
from distml.inference.backends import backend_classes
from distml.inference.eddl_onnx import keras_to_eddl_onnx
from distml.training.model_folder import EDDL_ONNX_FILE, EDDL_REFUSED_KEY, save_model_folder

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
pytestmark = pytest.mark.slow

#: Input shapes the architectures are trained on here: digits 8x8, Keras' MNIST 28x28, lesions 64x64.
SHAPES = {"mlp": (8, 8, 1), "cnn": (28, 28, 1), "lenet5": (28, 28, 1), "unet-small": (64, 64, 3)}
#: Same float32 network, different kernels: outputs agree to rounding (seen: under 1e-6).
OUTPUT_TOLERANCE = 1e-5


def seeded_model(architecture: str, shape: tuple[int, int, int]):
    import tf_keras

    from distml.training.models import build_model

    tf_keras.backend.clear_session()  # layer names from 0, so the refusals below can name them
    tf_keras.utils.set_random_seed(0)
    model = build_model(architecture, shape, 10)
    # Non-zero biases, so a bias that the export dropped or misplaced shows in the outputs.
    for layer in model.layers:
        weights = layer.get_weights()
        if len(weights) == 2:
            layer.set_weights([weights[0], np.linspace(-0.1, 0.1, weights[1].size, dtype=np.float32)])
    return model


def images(shape: tuple[int, int, int], count: int = 5) -> np.ndarray:
    return np.random.default_rng(1).random((count, *shape), dtype=np.float32)


def expected_nchw(model, x: np.ndarray) -> np.ndarray:
    """TensorFlow's outputs in the layout of the NCHW export (masks [N, 1, H, W])."""
    out = model.predict(x, verbose=0)
    return out.transpose(0, 3, 1, 2) if out.ndim == 4 else out


@pytest.mark.parametrize("architecture", sorted(SHAPES))
def test_export_runs_on_onnxruntime_as_on_tensorflow(architecture, tmp_path):
    import onnxruntime as ort

    model = seeded_model(architecture, SHAPES[architecture])
    x = images(SHAPES[architecture])
    path = keras_to_eddl_onnx(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})
    expected = expected_nchw(model, x)
    assert session.get_inputs()[0].shape[1:] == [SHAPES[architecture][2], *SHAPES[architecture][:2]]  # NCHW
    np.testing.assert_allclose(got, expected, atol=OUTPUT_TOLERANCE)


@pytest.mark.ecvl
@pytest.mark.parametrize("architecture", sorted(SHAPES))
def test_export_imports_into_eddl_and_predicts_as_tensorflow(architecture, tmp_path):
    reason = backend_classes()["ecvl"].unavailable_reason()
    if reason:
        pytest.skip(reason)
    from pyeddl.tensor import Tensor

    from distml.inference.ecvl_backend import EcvlBackend, deephealth_modules

    _, eddl = deephealth_modules()
    model = seeded_model(architecture, SHAPES[architecture])
    x = images(SHAPES[architecture])
    backend = EcvlBackend(keras_to_eddl_onnx(model, tmp_path / "m.onnx"), threads=1)
    got = np.array(eddl.predict(backend.net, [Tensor.fromarray(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))])[0]
                   .getdata())
    np.testing.assert_allclose(got, expected_nchw(model, x), atol=OUTPUT_TOLERANCE)


def test_a_layer_eddl_cannot_import_is_refused_by_name_and_nothing_is_written(tmp_path):
    import tf_keras

    inputs = tf_keras.Input((8, 8, 1), name="input")
    x = tf_keras.layers.BatchNormalization(name="norm")(tf_keras.layers.Conv2D(4, 3, padding="same")(inputs))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(3)(tf_keras.layers.Flatten()(x)))
    with pytest.raises(DistmlError, match=r"EDDL cannot import layer 'norm' \(BatchNormalization\)") as err:
        keras_to_eddl_onnx(model, tmp_path / "m.onnx")
    assert "--backend onnxruntime" in str(err.value)
    assert not list(tmp_path.iterdir())


def test_pooling_that_needs_padding_is_refused_because_eddl_pools_zeros(tmp_path):
    """cnn on 10x10: the second 'same' max pooling sees 5x5 and would pad; EDDL would take zeros into the max."""
    model = seeded_model("cnn", (10, 10, 1))
    with pytest.raises(DistmlError, match=r"layer 'max_pooling2d_1' \(MaxPooling2D\).*needs padding .* 5x5 input"):
        keras_to_eddl_onnx(model, tmp_path / "m.onnx")


def test_a_model_folder_says_why_it_has_no_eddl_file_and_the_ecvl_backend_repeats_it(tmp_path):
    from distml.inference.ecvl_backend import EcvlBackend

    model = seeded_model("cnn", (10, 10, 1))
    folder = save_model_folder(model, tmp_path / "model", architecture="cnn", task="classification",
                               input_shape=[10, 10, 1], classes=[str(i) for i in range(10)], metrics={}, onnx=True)
    assert (folder / "model.onnx").is_file() and not (folder / EDDL_ONNX_FILE).exists()
    refused = json.loads((folder / "model.json").read_text())[EDDL_REFUSED_KEY]
    assert "max_pooling2d_1" in refused
    with pytest.raises(DistmlError, match=f"no {EDDL_ONNX_FILE}: EDDL cannot import layer 'max_pooling2d_1'"):
        EcvlBackend._eddl_file_of(folder)


def test_a_model_folder_holds_both_exports_of_the_same_network(tmp_path):
    import onnxruntime as ort

    model = seeded_model("lenet5", SHAPES["lenet5"])
    folder = save_model_folder(model, tmp_path / "model", architecture="lenet5", task="classification",
                               input_shape=list(SHAPES["lenet5"]), classes=[str(i) for i in range(10)], metrics={},
                               onnx=True)
    assert json.loads((folder / "model.json").read_text())[EDDL_REFUSED_KEY] is None
    x = images(SHAPES["lenet5"])
    nhwc = ort.InferenceSession(str(folder / "model.onnx"))
    nchw = ort.InferenceSession(str(folder / EDDL_ONNX_FILE))
    a = nhwc.run(None, {nhwc.get_inputs()[0].name: x})[0]
    b = nchw.run(None, {"input": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]
    np.testing.assert_allclose(a, b, atol=OUTPUT_TOLERANCE)


@pytest.mark.ecvl
def test_eddl_imports_onnx_in_a_process_that_loaded_tensorflow_first(tmp_path):
    """TensorFlow's protobuf used to capture EDDL's: import_net_from_onnx_file failed with basic_string::_M_create."""
    reason = backend_classes()["ecvl"].unavailable_reason()
    if reason:
        pytest.skip(reason)
    model = seeded_model("mlp", SHAPES["mlp"])
    path = keras_to_eddl_onnx(model, tmp_path / "m.onnx")
    code = (
        "import sys, tensorflow\n"
        "from distml.inference.ecvl_backend import EcvlBackend\n"
        "print('inputs', EcvlBackend(sys.argv[1], threads=1).input)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "inputs ModelInput(name='input', layout='NCHW', height=8, width=8, channels=1)" in done.stdout
