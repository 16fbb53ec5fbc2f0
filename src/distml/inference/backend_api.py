"""What every inference backend shares: the abstract ``Backend``, the batch it yields, and how images are read.

A backend reads the images of one split of a DTD part file, resizes them to the model's
input size, scales them to [0, 1], runs the model and yields ``Batch`` objects holding the
inputs as fed (NHWC), the ground truth and the model's outputs in one layout for every
backend: segmentation (N, H, W) probabilities, classification (N, K) scores. Metrics,
saved images and reports are computed from batches, so they are the same whichever
backend ran. The model's input layout, NCHW (EDDL) or NHWC (TensorFlow), is read from the
model and the backend feeds it accordingly.

This module imports no backend; each backend module imports it, and distml.inference.backends
finds the backends by name (so no module imports another in a circle).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from distml.data.dtd import Dataset, read_dataset
from distml.data.image_files import open_image
from distml.errors import DistmlError
from distml.inference.metrics import CLASSIFICATION, SEGMENTATION

ONNX_FILE = "model.onnx"
NCHW = "NCHW"
NHWC = "NHWC"


@dataclass(frozen=True)
class ModelInput:
    """What the model takes: name, layout and one image's height, width and channels."""

    name: str
    layout: str
    height: int
    width: int
    channels: int


@dataclass
class Batch:
    """One batch, in every backend's common layout."""

    index: int
    locations: list[str]
    images: np.ndarray  # (N, H, W, C) float32 in [0, 1], as fed to the model
    truths: np.ndarray  # segmentation: (N, h, w) float32 in [0, 1]; classification: (N,) int64
    outputs: np.ndarray  # segmentation: (N, h, w) probabilities; classification: (N, K) scores


@dataclass(frozen=True)
class ImageSelection:
    """The images of one split of a part file, and the task they imply."""

    dataset: Dataset
    path: Path
    split: str | None
    indices: list[int]

    @property
    def task(self) -> str:
        return SEGMENTATION if self.dataset.is_segmentation else CLASSIFICATION


#: The split name that means every image, unless the part has a split of that name.
EVERY_IMAGE = "all"


def select_images(part_file: str | os.PathLike[str], split: str | None) -> ImageSelection:
    """Read a part file and pick a split (None, or ``all`` when no split has that name: every image).

    The split may be empty: a part of a small dataset can hold no test image, and its shard
    then counts zero images rather than failing the run.
    """
    path = Path(part_file)
    dataset = read_dataset(path)
    if split == EVERY_IMAGE and EVERY_IMAGE not in (dataset.split or {}):
        split = None
    return ImageSelection(dataset, path, split, dataset.indices(split))


def resolve_model(model: str | os.PathLike[str], suffixes: tuple[str, ...] = (".onnx",)) -> Path:
    """The model file: MODEL itself, or ``MODEL/model.onnx`` for a Model folder."""
    path = Path(model)
    if path.is_dir():
        candidate = path / ONNX_FILE
        if not candidate.is_file():
            raise DistmlError(
                f"model folder has no {ONNX_FILE}",
                where=str(path),
                hint="Train with ONNX export, or convert with distml.inference.convert.saved_model_to_onnx.",
            )
        return candidate
    if not path.is_file():
        raise DistmlError("model file not found", where=str(path), hint="Give an .onnx file or a model folder.")
    if path.suffix not in suffixes:
        raise DistmlError(f"not a model file of this backend ({', '.join(suffixes)})", where=str(path))
    return path


def model_input_from_shape(name: str, shape: list, *, where: str) -> ModelInput:
    """Layout and size from a 4-D input shape (batch dimension free or fixed).

    Channels-last when the last axis has 1 or 3 entries, otherwise channels-first when the
    second has; sizes must be fixed numbers, since images are resized to them.
    """
    if len(shape) != 4:
        raise DistmlError(
            f"model input {name!r} has shape {shape}; an image model takes 4-D (N, H, W, C) or (N, C, H, W)",
            where=where,
        )
    dims = [d if isinstance(d, int) and d > 0 else None for d in shape[1:]]
    if dims[2] in (1, 3):
        layout, (height, width, channels) = NHWC, dims
    elif dims[0] in (1, 3):
        layout, (channels, height, width) = NCHW, dims
    else:
        raise DistmlError(
            f"model input {name!r} {shape} has no 1- or 3-channel axis",
            where=where,
            hint="Images are grayscale (1 channel) or RGB (3).",
        )
    if height is None or width is None:
        raise DistmlError(
            f"model input {name!r} {shape} has no fixed height and width",
            where=where,
            hint="Export the model with a fixed input size: images are resized to it.",
        )
    return ModelInput(name, layout, height, width, channels)


def to_layout(images: np.ndarray, layout: str) -> np.ndarray:
    """NHWC images in the model's layout, contiguous."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2) if layout == NCHW else images)


def load_image(path: Path, *, channels: int, height: int, width: int, where: str) -> np.ndarray:
    """One image as (H, W, C) float32 in [0, 1], resized (bilinear) to the model's size."""
    picture = _open(path, where)
    picture = picture.convert("L" if channels == 1 else "RGB")
    if picture.size != (width, height):
        picture = picture.resize((width, height), PILImage.BILINEAR)
    pixels = np.asarray(picture, dtype=np.float32) / 255.0
    return pixels.reshape(height, width, channels)


def load_mask(path: Path, *, height: int, width: int, where: str) -> np.ndarray:
    """A ground-truth mask as (H, W) float32 in [0, 1], resized (nearest) to the output size."""
    picture = _open(path, where).convert("L")
    if picture.size != (width, height):
        picture = picture.resize((width, height), PILImage.NEAREST)
    return np.asarray(picture, dtype=np.float32) / 255.0


def _open(path: Path, where: str) -> PILImage.Image:
    try:
        picture = open_image(path, where=where)
        picture.load()
    except FileNotFoundError:
        raise DistmlError(
            f"image file not found: {path}", where=where, hint="Fix the path or restore the file."
        ) from None
    except (UnidentifiedImageError, OSError) as err:
        raise DistmlError(f"cannot read image {path} ({err.__class__.__name__})", where=where) from err
    return picture


def segmentation_output(outputs: np.ndarray, *, where: str) -> np.ndarray:
    """(N, H, W) masks from a one-channel output in NCHW, NHWC or (N, H, W)."""
    if outputs.ndim == 3:
        return outputs
    if outputs.ndim == 4 and outputs.shape[1] == 1:
        return outputs[:, 0]
    if outputs.ndim == 4 and outputs.shape[3] == 1:
        return outputs[..., 0]
    raise DistmlError(
        f"model output shape {list(outputs.shape)} is not a one-channel mask",
        where=where,
        hint="A segmentation model ends in one sigmoid channel; is this a classification model?",
    )


def classification_output(outputs: np.ndarray, classes: int, *, where: str) -> np.ndarray:
    """(N, K) scores, checked against the dataset's number of classes."""
    scores = outputs.reshape(len(outputs), -1) if outputs.ndim > 2 else outputs
    if scores.ndim != 2 or scores.shape[1] != classes:
        raise DistmlError(
            f"model output shape {list(outputs.shape)} does not fit a dataset of {classes} classes",
            where=where,
            hint="Use a model trained on this dataset's classes.",
        )
    return scores


class Backend(ABC):
    """A model loaded once, then run over one split of a part file, batch by batch.

    Each backend module defines one subclass and names it ``BACKEND``; distml.inference.backends
    maps the backend's name to that module. The abstract base follows KServe's
    ``BaseKServeModel(ABC)`` (kserve 0.21.0 kserve/model.py:69) that every KServe model server inherits.
    """

    name: ClassVar[str]

    @abstractmethod
    def __init__(self, model: str | os.PathLike[str], *, threads: int = 0) -> None:
        """Load ``model`` (a model file or a Model folder); ``threads`` 0 lets the runtime choose."""

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why this backend cannot run here (a missing package or library), or None when it can."""
        return None

    @abstractmethod
    def describe(self) -> dict[str, object]:
        """What ran (model file, provider, device), for metrics.json."""

    @abstractmethod
    def batches(self, selection: ImageSelection, batch_size: int) -> Iterator[Batch]:
        """The batches of ``selection`` in its order, in the common layout (``Batch``)."""


def read_batch(selection: ImageSelection, chunk: list[int], spec: ModelInput) -> tuple[np.ndarray, list, list[str]]:
    """Images (N, H, W, C) of a chunk of image indices, their ground-truth paths or classes, locations."""
    dataset = selection.dataset
    images = np.empty((len(chunk), spec.height, spec.width, spec.channels), dtype=np.float32)
    truths: list = []
    locations = []
    for row, i in enumerate(chunk):
        image = dataset.images[i]
        where = f"{selection.path}: images[{i}]"
        images[row] = load_image(
            dataset.resolve(image.location), channels=spec.channels, height=spec.height, width=spec.width, where=where
        )
        locations.append(image.location)
        if selection.task == SEGMENTATION:
            if not isinstance(image.label, str):
                raise DistmlError("no ground-truth mask (label)", where=f"{where}.label")
            truths.append(dataset.resolve(image.label))
        else:
            if image.label is None or isinstance(image.label, list):
                raise DistmlError("a classification image needs one class label", where=f"{where}.label")
            truths.append(dataset.class_index(image.label))
    return images, truths, locations


def finish_batch(
    number: int,
    locations: list[str],
    images: np.ndarray,
    truths: list,
    outputs: np.ndarray,
    selection: ImageSelection,
    *,
    where: str,
) -> Batch:
    """Bring outputs to the common layout and load the ground truth at the output's size."""
    if selection.task == SEGMENTATION:
        masks = segmentation_output(np.asarray(outputs), where=where)
        height, width = masks.shape[1:]
        loaded = np.stack(
            [
                load_mask(path, height=height, width=width, where=f"{selection.path}: {location} label")
                for path, location in zip(truths, locations, strict=True)
            ]
        )
        return Batch(number, locations, images, loaded, masks.astype(np.float32))
    scores = classification_output(np.asarray(outputs), len(selection.dataset.classes), where=where)
    return Batch(number, locations, images, np.asarray(truths, dtype=np.int64), scores)
