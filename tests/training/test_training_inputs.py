"""What a worker trains on from a DTD dataset, and one IoU rule for training, averaging and inference."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from distml.data.sources import load_data
from distml.errors import DistmlError
from distml.inference.metrics import binary_iou
from distml.selection.average import evaluate_arrays
from distml.training.inputs import load_training_data


def _dtd(tmp_path, *, split: str, modes: list[str]):
    """A classification DTD of len(modes) 8x8 images (image i in PIL mode modes[i]), loaded as a data folder."""
    source = tmp_path / "source"
    source.mkdir()
    lines = ["name: tiny", "classes: [a, b]", "images:"]
    for i, mode in enumerate(modes):
        Image.new(mode, (8, 8), color=(40 * i) if mode == "L" else (40 * i, 0, 0)).save(source / f"{i}.png")
        lines.append(f"  - {{location: {i}.png, label: {'ab'[i % 2]}}}")
    (source / "tiny.yml").write_text("\n".join(lines) + "\n" + split, encoding="utf-8")
    load_data(f"dtd:{source / 'tiny.yml'}", tmp_path / "data")
    return tmp_path / "data"


def test_split_without_training_list_trains_on_the_images_no_other_split_holds(tmp_path):
    data = _dtd(tmp_path, split="split:\n  validation: [0]\n  test: [4, 5]\n", modes=["L"] * 6)
    loaded = load_training_data(data, worker_index=0, workers=1)
    assert loaded.train_examples == 3  # images 1, 2, 3: never the test or validation images
    assert len(loaded.x_test) == 2
    train_pixels = sorted(round(float(x.max()) * 255) for x in loaded.x_train)
    assert train_pixels == [40, 80, 120]


def test_more_workers_than_training_images_is_refused(tmp_path):
    data = _dtd(tmp_path, split="split:\n  training: [0, 1]\n  test: [2]\n", modes=["L"] * 3)
    with pytest.raises(DistmlError, match="3 workers but only 2 training images"):
        load_training_data(data, worker_index=0, workers=3)


def test_images_of_mixed_modes_are_read_with_the_first_training_images_channels(tmp_path):
    data = _dtd(tmp_path, split="split:\n  training: [0, 1, 2]\n  test: [3]\n", modes=["L", "RGB", "L", "RGB"])
    loaded = load_training_data(data, worker_index=0, workers=1)
    assert loaded.x_train.shape == (3, 8, 8, 1)
    assert loaded.x_test.shape == (1, 8, 8, 1)


class _HalfModel:
    """Predicts exactly 0.5 everywhere: the threshold's own value."""

    def predict(self, x, **_):
        return np.full((*x.shape[:3], 1), 0.5)


def test_averaging_scores_masks_with_the_inference_iou():
    truth = np.zeros((2, 4, 4, 1))
    truth[:, :2] = 1.0
    x = np.zeros((2, 4, 4, 1), np.float32)
    averaged = evaluate_arrays(_HalfModel(), x, truth, "segmentation")["test_miou"]
    inference = float(binary_iou(np.full((2, 4, 4), 0.5), truth[..., 0]).mean())
    assert averaged == pytest.approx(inference)
    assert averaged == pytest.approx(0.5)  # 0.5 counts as foreground: 8 of 16 pixels agree
