"""A real model served by KServe's model server over HTTP on loopback: good and bad requests.

The model is a small MLP trained for a few epochs on scikit-learn's digits (no download) and
saved with training's ``save_model_folder`` (SavedModel, model.keras, model.onnx). The server
runs in a child process on a free port and is always stopped. Other test modules import
``digits_data`` and ``digits_model_folder`` from here.
"""

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from distml.errors import DistmlError
from distml.serving.local import LocalServer, Predictor, http_json, serve_and_check

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

NAME = "digits"


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 digits as NHWC float32 in [0, 1] and int64 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images[..., None] / 16.0).astype(np.float32), digits.target.astype(np.int64)


def digits_model_folder(folder: Path, *, seed: int = 0, epochs: int = 3, onnx: bool = True, test_accuracy=None):
    """Train the mlp architecture briefly on digits and save it as a Model folder; returns (model, folder)."""
    import tf_keras

    from distml.training.model_folder import save_model_folder
    from distml.training.models import build_model

    x, y = digits_data()
    tf_keras.utils.set_random_seed(seed)
    model = build_model("mlp", (8, 8, 1), 10)
    if epochs:
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x[:1500], y[:1500], epochs=epochs, batch_size=64, verbose=0)
    accuracy = float((model.predict(x[1500:], verbose=0).argmax(1) == y[1500:]).mean())
    metrics = {"workers": 1, "global_batch_size": 64, "epochs": [], "test_loss": 0.0}
    metrics["test_accuracy"] = accuracy if test_accuracy is None else test_accuracy
    classes = [str(c) for c in range(10)]
    save_model_folder(model, folder, architecture="mlp", task="classification", input_shape=[8, 8, 1],
                      classes=classes, metrics=metrics, onnx=onnx)  # fmt: skip
    return model, folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return digits_model_folder(tmp_path_factory.mktemp("serving") / "model", epochs=5)


@pytest.fixture(scope="module")
def server(trained):
    with LocalServer(trained[1], NAME) as running:
        yield running


@pytest.mark.slow
def test_v1_ready_and_predict_match_the_model(trained, server):
    model, _ = trained
    status, body = http_json("GET", f"{server.url}/v1/models/{NAME}")
    assert status == 200 and body == {"name": NAME, "ready": True}
    x, y = digits_data()
    status, body = server.predict(x[1500:1510].tolist())
    assert status == 200
    predictions = np.asarray(body["predictions"])
    np.testing.assert_allclose(predictions, model.predict(x[1500:1510], verbose=0), atol=1e-5)
    assert (predictions.argmax(1) == y[1500:1510]).mean() >= 0.7


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": np.zeros((2, 8, 8)).tolist()}, "instances have shape [2, 8, 8], the model takes [N, 8, 8, 1]"),
        ({"instances": [[["a"]]]}, "instances must be numbers"),
        ({"instances": [np.zeros((8, 8, 1)).tolist(), [[0.0]]]}, "nested lists of equal lengths"),
        ({"instances": []}, "instances have shape [0]"),
        ({"inputs": [1.0]}, 'expected a JSON object {"instances": [...]}'),
        ([1, 2, 3], 'expected a JSON object {"instances": [...]}'),
        ({"instances": 3}, 'Expected "instances" to be a list'),
    ],
)
def test_v1_bad_requests_get_400_with_a_message(server, body, message):
    status, answer = http_json("POST", f"{server.url}/v1/models/{NAME}:predict", body)
    assert status == 400
    assert message in answer["error"]
    assert "Traceback" not in json.dumps(answer)


@pytest.mark.slow
def test_non_json_and_non_finite_input_get_400_and_the_server_keeps_serving(server):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{server.url}/v1/models/{NAME}:predict", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    huge = np.full((1, 8, 8, 1), 1e39).tolist()  # overflows float32 to infinity
    status, answer = server.predict(huge)
    assert status == 400 and "NaN or infinity" in answer["error"]
    assert server.predict(np.zeros((1, 8, 8, 1)).tolist())[0] == 200


@pytest.mark.slow
def test_v2_infer_good_and_bad(trained, server):
    model, _ = trained
    x, _ = digits_data()
    tensor = {"name": "input", "shape": [2, 8, 8, 1], "datatype": "FP32", "data": x[:2].ravel().tolist()}
    status, body = http_json("POST", f"{server.url}/v2/models/{NAME}/infer", {"inputs": [tensor]})
    assert status == 200
    output = body["outputs"][0]
    assert output["shape"] == [2, 10] and output["datatype"] == "FP32"
    np.testing.assert_allclose(np.reshape(output["data"], (2, 10)), model.predict(x[:2], verbose=0), atol=1e-5)
    wrong = {**tensor, "shape": [2, 64]}
    status, body = http_json("POST", f"{server.url}/v2/models/{NAME}/infer", {"inputs": [wrong]})
    assert status == 400 and "instances have shape [2, 64], the model takes [N, 8, 8, 1]" in body["error"]


@pytest.mark.slow
def test_v2_model_metadata_names_the_input_and_output_tensors(trained, server):
    """GET /v2/models/NAME, as KServe's dataplane answers it from the model's get_input_types and
    get_output_types: the ONNX graph's tensor names, FP32, any batch size."""
    import onnx

    graph = onnx.load(str(trained[1] / "model.onnx")).graph
    status, body = http_json("GET", f"{server.url}/v2/models/{NAME}")
    assert status == 200, body
    assert body["name"] == NAME
    assert body["inputs"] == [{"name": graph.input[0].name, "datatype": "FP32", "shape": [-1, 8, 8, 1]}]
    assert body["outputs"] == [{"name": graph.output[0].name, "datatype": "FP32", "shape": [-1, 10]}]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_serve_and_check_starts_predicts_and_stops(trained):
    x, _ = digits_data()
    report = serve_and_check(trained[1], "check", x[:3].tolist())
    assert report["status"] == "Ready" and report["http_status"] == 200 and report["instances"] == 3
    assert len(report["predictions"]) == 3 and len(report["predictions"][0]) == 10
    port = int(report["url"].split(":")[2].split("/")[0])
    assert report["url"] == f"http://127.0.0.1:{port}/v1/models/check:predict"
    assert _port_is_free(port)


@pytest.mark.slow
def test_saved_model_fallback_predicts_like_onnx(trained, tmp_path):
    _, folder = trained
    no_onnx = shutil.copytree(folder, tmp_path / "no-onnx")
    (no_onnx / "model.onnx").unlink()
    x, _ = digits_data()
    onnx_predictor, tf_predictor = Predictor(folder), Predictor(no_onnx)
    assert (onnx_predictor.backend, tf_predictor.backend) == ("onnxruntime", "tensorflow")
    batch = onnx_predictor.check(x[:4])
    np.testing.assert_allclose(tf_predictor.predict(batch), onnx_predictor.predict(batch), atol=1e-5)


def test_not_a_model_folder_fails_before_starting(tmp_path):
    with pytest.raises(DistmlError, match="not a model folder"):
        LocalServer(tmp_path, NAME)


@pytest.mark.slow
def test_a_server_that_cannot_load_reports_its_log(trained, tmp_path):
    broken = shutil.copytree(trained[1], tmp_path / "broken")
    (broken / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(DistmlError, match="the model server exited with code 1: .*"):
        LocalServer(broken, NAME).start(timeout_s=60)


@pytest.mark.slow
def test_an_unexpected_error_while_starting_stops_the_server(trained, monkeypatch):
    import distml.serving.local as local

    def broken_probe(*_args, **_kwargs):
        raise RuntimeError("probe broke")

    monkeypatch.setattr(local, "http_json", broken_probe)
    server = LocalServer(trained[1], NAME)
    with pytest.raises(RuntimeError, match="probe broke"), server:
        pass
    assert server._process is not None and server._process.poll() is not None  # the child is gone
    assert server._log.closed


@pytest.mark.slow
def test_an_onnx_model_folder_carries_a_triton_repository_and_v2_urls_line_up(trained):
    """Issue 11 defect 1: KServe serves modelFormat onnx only with Triton (--model-store=/mnt/models), which reads
    <repository>/<model>/<version>/model.onnx; the InferenceService points there, and `distml serve` answers the
    V2 URL of that model name as Triton would, with the ONNX input and output names."""
    import re

    import onnx

    from distml.kube import manifest as to_manifest
    from distml.serving.isvc import ServingSpec, build_inference_service

    _, folder = trained
    repository = folder / "triton"
    assert sorted(p.name for p in repository.iterdir()) == ["mlp"]  # the architecture names the model
    assert (repository / "mlp" / "1" / "model.onnx").read_bytes() == (folder / "model.onnx").read_bytes()
    graph = onnx.load(str(folder / "model.onnx")).graph
    input_name, output_name = graph.input[0].name, graph.output[0].name
    config = (repository / "mlp" / "config.pbtxt").read_text()
    assert re.search(r'^name: "mlp"$', config, re.M) and 'backend: "onnxruntime"' in config
    assert "max_batch_size: 0" in config
    assert f'{{ name: "{input_name}", data_type: TYPE_FP32, dims: [ -1, 8, 8, 1 ] }}' in config
    assert f'{{ name: "{output_name}", data_type: TYPE_FP32, dims: [ -1, 10 ] }}' in config

    spec = ServingSpec(name="digits", storage_uri="pvc://models/run-1/model", model_format="onnx")
    model = to_manifest(build_inference_service(spec))["spec"]["predictor"]["model"]
    assert model["storageUri"] == "pvc://models/run-1/model/triton" and model["protocolVersion"] == "v2"

    x, _ = digits_data()
    with LocalServer(folder, "digits") as server:
        tensor = {"name": input_name, "shape": [2, 8, 8, 1], "datatype": "FP32", "data": x[:2].ravel().tolist()}
        status, body = http_json("POST", f"{server.url}/v2/models/mlp/infer", {"inputs": [tensor]})
    assert status == 200, body
    assert body["model_name"] == "mlp"
    (output,) = body["outputs"]
    assert output["name"] == output_name and output["shape"] == [2, 10]


def test_an_onnx_deploy_of_a_folder_without_a_triton_repository_is_refused(tmp_path):
    from distml.serving.deploy_step import deploy_model
    from distml.serving.isvc import ServingSpec

    (tmp_path / "model.json").write_text('{"architecture": "mlp", "input_shape": [8, 8, 1]}')
    with pytest.raises(DistmlError, match="no Triton repository"):
        deploy_model(tmp_path, ServingSpec(name="x", storage_uri="", model_format="onnx"), target="local")


@pytest.mark.slow
@pytest.mark.parametrize("log_requests", [False, True])
def test_request_lines_are_logged_only_when_asked(trained, log_requests):
    """Issue 15: KServe writes an access line and two kserve.trace timing lines per request; off by default."""
    x, _ = digits_data()
    with LocalServer(trained[1], NAME, log_requests=log_requests) as server:
        for _ in range(3):
            assert server.predict(x[:1].tolist())[0] == 200
        server._log.seek(0)
        log = server._log.read().decode("utf-8", errors="replace")
    access = [line for line in log.splitlines() if f"/v1/models/{NAME}:predict" in line and "POST" in line]
    timing = [line for line in log.splitlines() if "kserve.trace" in line and "kserve.io" in line]
    if log_requests:
        assert len(access) == 3 and len(timing) >= 3
    else:
        assert access == [] and timing == []


def test_onnx_runtime_runs_one_intra_op_thread_unless_told(trained):
    assert Predictor(trained[1]).session_options().intra_op_num_threads == 1
    assert Predictor(trained[1], threads=3).session_options().intra_op_num_threads == 3
