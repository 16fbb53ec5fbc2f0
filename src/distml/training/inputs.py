"""Training input from a loaded-data folder: arrays in memory, sharded by worker for files.

npz folders are read whole by every worker and sharded by ``tf.data`` (AutoShardPolicy.DATA:
each worker keeps every N-th batch element). DTD folders are sharded by file before any
image is read (the FILE idea: worker i reads images i, i+N, ...), so a worker decodes only
its own share; their datasets then carry AutoShardPolicy.OFF.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from distml.data.dtd import Dataset, read_dataset
from distml.data.image_files import open_image
from distml.data.sources import load_arrays
from distml.errors import DistmlError
from distml.folders import read_data_info


@dataclass
class TrainingData:
    """What a worker trains and tests on. ``x_train`` is this worker's shard when ``presharded``."""

    task: str
    classes: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_examples: int  # over all workers: fixes the steps per epoch every worker runs
    presharded: bool

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.x_train.shape[1:])  # type: ignore[return-value]


def load_training_data(
    folder: str | Path,
    *,
    worker_index: int,
    workers: int,
    image_size: int | None = None,
    with_test: bool = True,
) -> TrainingData:
    """Read a loaded-data folder for one worker; ``image_size`` resizes DTD images (and masks)."""
    info = read_data_info(folder)
    if info.format == "npz":
        arrays = load_arrays(folder)
        x_train = _as_images(arrays["x_train"], str(folder))
        return TrainingData(
            task=info.task,
            classes=list(info.classes),
            x_train=x_train,
            y_train=arrays["y_train"].astype(np.int64),
            x_test=_as_images(arrays["x_test"], str(folder)),
            y_test=arrays["y_test"].astype(np.int64),
            train_examples=len(x_train),
            presharded=False,
        )
    dataset = read_dataset(Path(folder) / info.file)
    train_indices = _training_indices(dataset)
    if workers > len(train_indices):
        raise DistmlError(
            f"{workers} workers but only {len(train_indices)} training images: some workers would get no data",
            where=dataset.name,
            hint=f"Use at most {len(train_indices)} workers, or a larger dataset.",
        )
    test_indices = dataset.indices("test") if with_test and "test" in (dataset.split or {}) else []
    first_size, mode = _first_image_format(dataset, train_indices)
    size = image_size or first_size
    x_train, y_train = _read_images(dataset, train_indices[worker_index::workers], size, mode)
    x_test, y_test = _read_images(dataset, test_indices, size, mode)
    return TrainingData(
        task=info.task,
        classes=list(info.classes),
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        train_examples=len(train_indices),
        presharded=True,
    )


def _training_indices(dataset: Dataset) -> list[int]:
    """The ``training`` split; without one, every image that no other split (test, validation) lists.

    A dataset with no split at all trains on every image.
    """
    split = dataset.split or {}
    if "training" in split:
        indices = list(split["training"])
    else:
        held_out = {i for name, listed in split.items() for i in listed}
        indices = [i for i in range(len(dataset.images)) if i not in held_out]
    if not indices:
        raise DistmlError(
            "the dataset has no training images",
            where=dataset.name,
            hint="List images under split.training, or leave some images out of the other splits.",
        )
    return indices


def _as_images(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4:
        raise DistmlError(
            f"training arrays must be images (N, H, W[, C]), got shape {x.shape}",
            where=where,
            hint="Use an image dataset (sklearn:digits, keras:mnist, an npz of images).",
        )
    x = x.astype(np.float32)
    return x / 255.0 if x.max(initial=0.0) > 1.0 else x


def _first_image_format(dataset: Dataset, indices: list[int]) -> tuple[int, str]:
    """Size and PIL mode ("L" or "RGB") of the first training image: every image is read the same way.

    Every worker looks at the same image, so all workers agree on the input shape.
    """
    with open_image(
        dataset.resolve(dataset.images[indices[0]].location), where=f"{dataset.name}: images[{indices[0]}]"
    ) as image:
        return min(image.size), "L" if image.mode in ("L", "1", "I", "I;16") else "RGB"


def _read_images(dataset: Dataset, indices: list[int], size: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 NHWC in [0, 1] in ``mode``; labels as class indices or binary float masks (H, W, 1)."""
    images, labels = [], []
    for i in indices:
        entry = dataset.images[i]
        with open_image(dataset.resolve(entry.location), where=f"{dataset.name}: images[{i}]") as image:
            pixels = image.convert(mode).resize((size, size), PILImage.BILINEAR)
        images.append(np.asarray(pixels, dtype=np.float32).reshape(size, size, -1) / 255.0)
        if dataset.is_segmentation:
            if not isinstance(entry.label, str):
                raise DistmlError(f"image {i} has no ground-truth mask", where=dataset.name)
            with open_image(dataset.resolve(entry.label), where=f"{dataset.name}: images[{i}].label") as mask:
                binary = np.asarray(mask.convert("L").resize((size, size), PILImage.NEAREST)) > 127
            labels.append(binary.astype(np.float32)[..., np.newaxis])
        else:
            label = entry.label[0] if isinstance(entry.label, list) else entry.label
            if label is None:
                raise DistmlError(f"image {i} has no label", where=dataset.name)
            labels.append(dataset.class_index(label))
    if not images:
        channels = 1 if mode == "L" else 3
        return np.zeros((0, size, size, channels), np.float32), np.zeros((0,), np.int64)
    y = np.stack(labels) if dataset.is_segmentation else np.asarray(labels, dtype=np.int64)
    return np.stack(images), y
