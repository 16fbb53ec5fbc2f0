"""Hostile files: corrupt model files, decompression bombs, npz files that would allocate gigabytes (issue 12).

Each ends in one line naming the file, before the expensive step: no traceback, nothing allocated.
"""

import io
import math
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

from distml.cli import main
from distml.data.sources import MAX_CLASSES, load_data
from distml.errors import DistmlError


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.exception, result.output)
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in last, result.output


@pytest.fixture
def onnx_model_folder(tmp_path):
    from distml.training.model_folder import save_model_folder
    from distml.training.models import build_model

    folder = tmp_path / "model"
    save_model_folder(build_model("mlp", (8, 8, 1), 10), folder, architecture="mlp", task="classification",
                      input_shape=[8, 8, 1], classes=[str(c) for c in range(10)], metrics={"test_accuracy": 0.5},
                      onnx=True)  # fmt: skip
    return folder


# --- corrupt model files -----------------------------------------------------------------------


@pytest.mark.slow
def test_serve_with_a_corrupt_model_onnx_is_one_line_naming_it(onnx_model_folder):
    from distml.serving.local import make_kserve_models

    (onnx_model_folder / "model.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(DistmlError, match="cannot load the ONNX model") as refused:
        make_kserve_models(onnx_model_folder, "m")
    assert str(onnx_model_folder / "model.onnx") in str(refused.value)


@pytest.mark.slow
def test_select_refuses_a_chosen_model_with_a_corrupt_model_file(onnx_model_folder, tmp_path):
    (onnx_model_folder / "model.onnx").write_bytes(b"garbage")
    result = run("select", str(onnx_model_folder), "--out", str(tmp_path / "chosen"))
    assert_one_line_error(result, f"{onnx_model_folder / 'model.onnx'}: is not an ONNX model")
    assert not (tmp_path / "chosen").exists()


@pytest.mark.slow
def test_select_refuses_a_truncated_model_keras(onnx_model_folder, tmp_path):
    keras_file = onnx_model_folder / "model.keras"
    keras_file.write_bytes(keras_file.read_bytes()[:-200])
    result = run("select", str(onnx_model_folder), "--out", str(tmp_path / "chosen"))
    assert_one_line_error(result, f"{keras_file}: is not an intact Keras archive")


@pytest.mark.ecvl
def test_infer_on_ecvl_with_a_corrupt_onnx_is_one_line_naming_it(tmp_path):
    pytest.importorskip("pyeddl", reason="pyeddl (../shared/ecvl) is not installed")
    assert run("data", "synth", "digits", "--images", "10", "--out", str(tmp_path / "ds")).exit_code == 0
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    result = run("infer", "--backend", "ecvl", "--model", str(tmp_path / "bad.onnx"),
                 "--dataset", str(tmp_path / "ds" / "dataset.yml"), "--out", str(tmp_path / "o"))  # fmt: skip
    assert_one_line_error(result, f"{tmp_path / 'bad.onnx'}: cannot read the ONNX model")


# --- decompression bombs ----------------------------------------------------------------------


@pytest.mark.parametrize("limit", [3000, 1500], ids=["over twice the limit (PIL raises)", "over the limit (PIL warns)"])
def test_a_decompression_bomb_in_a_dataset_is_refused_naming_the_image(tmp_path, monkeypatch, limit):
    """PIL's limit lowered so a 64x64 image (4096 pixels) stands for a 50000x50000 one."""
    from distml.inference.backend_api import load_image

    PILImage.new("RGB", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(DistmlError, match="too large to decode safely") as refused:
        load_image(tmp_path / "big.png", channels=3, height=8, width=8, where="part.yml: images[0]")
    assert str(refused.value).startswith(f"part.yml: images[0]: image {tmp_path / 'big.png'} is too large")


def test_training_refuses_a_decompression_bomb_naming_the_image(tmp_path, monkeypatch):
    from distml.training.inputs import load_training_data

    assert (
        run("data", "synth", "lesions", "--images", "10", "--size", "64", "--out", str(tmp_path / "ds")).exit_code == 0
    )
    assert run("data", "load", f"dtd:{tmp_path / 'ds' / 'dataset.yml'}", "--out", str(tmp_path / "data")).exit_code == 0
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1500)
    with pytest.raises(DistmlError, match=r"images\[\d+\]: image .* is too large to decode safely"):
        load_training_data(tmp_path / "data", worker_index=0, workers=1, image_size=32)


# --- npz files that allocate from tiny input --------------------------------------------------


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_one_huge_label_is_refused_before_the_class_list_is_built(tmp_path):
    """One label of 5*10^6 built 5 million class names (a label of 10^8: 11 GB); now at most MAX_CLASSES."""
    path = _npz(tmp_path / "d.npz", x_train=np.zeros((2, 4, 4), np.float32), y_train=np.array([0, 5_000_000]),
                x_test=np.zeros((1, 4, 4), np.float32), y_test=np.array([1]))  # fmt: skip
    with pytest.raises(DistmlError, match=f"at most {MAX_CLASSES} are allowed"):
        load_data(f"npz:{path}", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", [[0.5, 1.0], [math.nan, 1.0]], ids=["fractional", "NaN"])
def test_labels_that_are_not_whole_numbers_are_refused_not_truncated(tmp_path, bad):
    path = _npz(tmp_path / "d.npz", x_train=np.zeros((2, 4, 4), np.float32), y_train=np.array(bad),
                x_test=np.zeros((1, 4, 4), np.float32), y_test=np.array([1.0]))  # fmt: skip
    with pytest.raises(DistmlError, match="class labels must be whole numbers"):
        load_data(f"npz:{path}", tmp_path / "out")


def test_an_npz_declaring_terabytes_is_refused_from_its_headers(tmp_path):
    """A few hundred bytes whose header declares a 10^6 x 10^6 float32 array (4 TB): refused before reading."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)})
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", header.getvalue())  # magic, header, and no data
        for name, array in {"y_train": np.zeros(1), "x_test": np.zeros((1, 4, 4)), "y_test": np.zeros(1)}.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(f"{name}.npy", buffer.getvalue())
    assert path.stat().st_size < 2000
    result = run("data", "load", f"npz:{path}", "--out", str(tmp_path / "out"))
    assert_one_line_error(result, f"{path}: its arrays would take 3725.3 GiB of memory")
