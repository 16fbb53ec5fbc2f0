"""Synthetic and packaged datasets that need no download: the offline stand-ins.

``lesions``: RGB "skin" images with one irregular dark blob each and its binary mask,
the offline stand-in for DeepHealth's ISIC skin-lesion segmentation use case.
``digits``: scikit-learn's 8x8 handwritten digits (shipped inside scikit-learn) written
as a DTD classification dataset of PNG files.
Both are deterministic for a given seed and split 70/10/20 into training/validation/test.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from distml.data.dtd import Dataset, Image, write_dataset
from distml.errors import DatasetError
from distml.staging import staged_folder

#: Training/validation/test shares of the synthetic datasets.
SPLIT_SHARES = (0.7, 0.1, 0.2)
DATASET_FILE = "dataset.yml"
#: Largest lesion image side: one image is built in float32 (size x size x 3 x 4 bytes, 48 MiB here),
#: where --size 20000 once asked for 11.7 GB.
MAX_LESION_SIZE = 2048


def standard_split(n_images: int, rng: np.random.Generator) -> dict[str, list[int]]:
    """A shuffled 70/10/20 split of ``n_images`` indices (each list sorted)."""
    order = rng.permutation(n_images)
    n_train = round(n_images * SPLIT_SHARES[0])
    n_val = round(n_images * SPLIT_SHARES[1])
    return {
        "training": sorted(order[:n_train].tolist()),
        "validation": sorted(order[n_train : n_train + n_val].tolist()),
        "test": sorted(order[n_train + n_val :].tolist()),
    }


def lesion_sample(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One RGB image (uint8, HxWx3) and its mask (bool, HxW) with an irregular blob."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cy, cx = rng.uniform(0.3, 0.7, size=2)
    radius = rng.uniform(0.12, 0.28)
    stretch = rng.uniform(0.7, 1.3)
    angle = np.arctan2(yy - cy, xx - cx)
    distance = np.hypot((yy - cy) * stretch, (xx - cx) / stretch)
    # An irregular border: the radius wobbles with a few random harmonics of the angle.
    wobble = sum(rng.uniform(0.0, 0.12) * np.sin(k * angle + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    mask = distance < radius * (1.0 + wobble)
    skin = np.array(rng.uniform([190, 140, 110], [240, 190, 160]), dtype=np.float32)
    lesion = np.array(rng.uniform([70, 35, 20], [140, 90, 60]), dtype=np.float32)
    image = np.empty((size, size, 3), dtype=np.float32)
    image[:] = skin
    image[mask] = lesion
    image += rng.normal(0.0, 8.0, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def synth_lesions(out_dir: str | os.PathLike[str], *, images: int = 100, size: int = 64, seed: int = 0) -> Path:
    """Write the lesions dataset (PNG images and masks, ``dataset.yml``) as ``out_dir`` (absent or empty).

    All or nothing: written beside ``out_dir`` and renamed into place, so an existing dataset is
    never overwritten and a failure (disk full) leaves no images without their ``dataset.yml``.
    """
    if images < 1:
        raise DatasetError(f"--images must be at least 1 (got {images})")
    if not 8 <= size <= MAX_LESION_SIZE:
        raise DatasetError(f"--size must be 8 to {MAX_LESION_SIZE} pixels (got {size})")
    out = Path(out_dir)
    with staged_folder(out, what="dataset folder") as staging:
        (staging / "images").mkdir()
        (staging / "ground_truth").mkdir()
        rng = np.random.default_rng(seed)
        entries = []
        for i in range(images):
            pixels, mask = lesion_sample(rng, size)
            location = f"images/lesion_{i:05d}.png"
            truth = f"ground_truth/lesion_{i:05d}_segmentation.png"
            PILImage.fromarray(pixels).save(staging / location)
            PILImage.fromarray(mask.astype(np.uint8) * 255).save(staging / truth)
            entries.append(Image(location, truth))
        dataset = Dataset(
            name="synthetic-lesions",
            description=f"Synthetic skin lesions with binary masks ({size}x{size}, seed {seed})",
            classes=[],
            images=entries,
            split=standard_split(images, rng),
            root=staging,
        )
        write_dataset(dataset, staging / DATASET_FILE)
    return out / DATASET_FILE


def synth_digits(out_dir: str | os.PathLike[str], *, images: int | None = None, seed: int = 0) -> Path:
    """Write scikit-learn's digits as a DTD classification dataset of 8x8 grayscale PNGs (all or nothing)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    total = len(digits.target) if images is None else images
    if not 1 <= total <= len(digits.target):
        raise DatasetError(f"--images must be between 1 and {len(digits.target)} for digits (got {images})")
    out = Path(out_dir)
    with staged_folder(out, what="dataset folder") as staging:
        (staging / "images").mkdir()
        rng = np.random.default_rng(seed)
        entries = []
        for i in range(total):
            pixels = (digits.images[i] * (255.0 / 16.0)).round().astype(np.uint8)
            location = f"images/digit_{i:05d}.png"
            PILImage.fromarray(pixels).save(staging / location)
            entries.append(Image(location, int(digits.target[i])))
        dataset = Dataset(
            name="sklearn-digits",
            description="scikit-learn handwritten digits (8x8, 16 gray levels)",
            classes=[str(c) for c in range(10)],
            images=entries,
            split=standard_split(total, rng),
            root=staging,
        )
        write_dataset(dataset, staging / DATASET_FILE)
    return out / DATASET_FILE
