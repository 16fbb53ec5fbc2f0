"""The tiny models of tests/tiny_models.py write what training writes."""

import json

import pytest
from tiny_models import LESION_SIZE


@pytest.mark.slow
def test_lesion_model_folder_has_the_contract_layout(lesion_model):
    """The helper's folder is what training writes, so inference tests exercise the real contract."""
    _, folder = lesion_model
    assert (folder / "model.onnx").is_file()
    assert (folder / "model" / "1" / "saved_model.pb").is_file()
    info = json.loads((folder / "model.json").read_text())
    assert info["task"] == "segmentation" and info["input_shape"] == [LESION_SIZE, LESION_SIZE, 3]
