"""Run one shard: a backend over one split of a part file, metrics and images into a folder.

The output folder is built under a temporary name beside its destination and renamed into
place once ``metrics.json`` is written, so a failed shard leaves no folder with a
``metrics.json`` (and ``distml gather`` refuses folders without one).

With ``save_images`` (segmentation), every image gets DeepHealth's file names, 0-based:
``batch_<b>_<i>_gt.png`` and ``batch_<b>_<i>_output.png`` (binary masks x255, grayscale),
plus ``batch_<b>_<i>_image.png`` (the input as fed) and ``batch_<b>_<i>_overlay.png`` (the
predicted contour in red on the image).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from distml.data.trust import check_locations
from distml.errors import DistmlError
from distml.folders import write_shard_metrics
from distml.inference.backend_api import Backend, Batch, select_images
from distml.inference.backends import create_backend
from distml.inference.metrics import SEGMENTATION, THRESHOLD, ClassificationMetrics, SegmentationMetrics
from distml.staging import staged_folder

#: Progress of a shard, called after each batch: (batch number, number of batches, batch metrics, seconds since start).
BatchProgress = Callable[[int, int, dict[str, Any], float], None]


def run_inference(
    backend: str | Backend,
    model: str | os.PathLike[str] | None,
    part_file: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    split: str | None = "test",
    batch_size: int = 8,
    save_images: bool = False,
    threads: int = 0,
    progress: BatchProgress | None = None,
    allow_roots: Iterable[str | os.PathLike[str]] = (),
) -> dict[str, Any]:
    """Infer one split of a part file; write ``out_dir`` (metrics.json, images); return the metrics.

    ``backend`` is a name (then ``model`` is loaded) or a ready Backend (``model`` ignored).
    The images read must be regular files inside the part's folder, the roots its split
    recorded (parts.json) or ``allow_roots`` (distml.data.trust).
    """
    if batch_size < 1:
        raise DistmlError(f"batch size must be at least 1 (got {batch_size})")
    out = Path(out_dir)
    selection = select_images(part_file, split)
    check_locations(selection.dataset, allow_roots=allow_roots, read=True, indices=selection.indices)
    if selection.task == SEGMENTATION:
        metrics: SegmentationMetrics | ClassificationMetrics = SegmentationMetrics()
    else:
        metrics = ClassificationMetrics(selection.dataset.classes)
    total_batches = -(-len(selection.indices) // batch_size)
    # The output folder is checked and held before the model loads: a run that cannot write fails first.
    with staged_folder(out, what="shard output folder") as staging:
        runner = create_backend(backend, model, threads=threads) if isinstance(backend, str) else backend
        batches = []
        per_image = []
        start = previous = time.perf_counter()
        for batch in runner.batches(selection, batch_size) if selection.indices else ():
            values = metrics.update(batch.outputs, batch.truths)
            per_image.extend(_per_image(batch, values.pop("per_image"), selection.task))
            if save_images and selection.task == SEGMENTATION:
                save_batch_images(batch, staging)
            now = time.perf_counter()
            values = {"batch": batch.index, **values, "seconds": now - previous}
            previous = now
            batches.append(values)
            if progress:
                progress(batch.index, total_batches, values, now - start)
        seconds = time.perf_counter() - start
        if metrics.images != len(selection.indices):
            raise DistmlError(
                f"backend returned {metrics.images} of {len(selection.indices)} images", where=str(selection.path)
            )
        result = {
            "task": selection.task,
            "backend": runner.name,
            **runner.describe(),
            "model_sha256": _file_sha256(runner.describe().get("model")),
            "dataset": str(selection.path),
            "split": selection.split,
            "batch_size": batch_size,
            **metrics.summary(),
            "seconds": seconds,
            "images_per_second": metrics.images / seconds if seconds > 0 else None,
            "batches": batches,
            "per_image": per_image,
        }
        write_shard_metrics(staging, result)
    return result


def infer_part_step(
    backend: str,
    model_dir: str,
    parts_dir: str,
    part: str,
    shard_dir: str,
    *,
    split: str,
    batch_size: int,
    save_images: bool,
    gpus: str = "0",
    accelerator: str = "",
) -> dict[str, Any]:
    """The infer_shard component's body: infer part file ``part``, and fail a shard that asked for GPUs but ran on CPU.

    ``gpus`` is a string because the pipelines pass the GPU count as one (KFP's driver reads an
    accelerator count from a parameter only as a string: kubeflow/pipelines 2.17.0
    backend/src/v2/driver/resolve.go:818-831, driver.go:428-445).
    """
    try:
        asked = int(gpus or 0)
    except ValueError:
        raise DistmlError(f"gpus {gpus!r} is not a whole number", where=part) from None  # int()'s words: the same
    result = run_inference(
        backend,
        model_dir,
        Path(parts_dir) / part,
        shard_dir,
        split=split,
        batch_size=batch_size,
        save_images=save_images,
    )
    if not result["images"]:
        print(f"{part}: no images in split {split!r}; wrote an empty shard (it counts zero images)")
    provider = str(result.get("provider", ""))
    if asked > 0 and "CPU" in provider.upper():
        raise DistmlError(
            f"the task asked for {asked} GPU(s) ({accelerator or 'accelerator unset'}) but ran on {provider}",
            where=part,
            hint="Use an image with onnxruntime-gpu (or EDDL built with CUDA), or set gpus=0.",
        )
    return result


def _file_sha256(path: object) -> str | None:
    """The model file's digest: gather checks that every shard ran the same model, wherever it lay."""
    if not path or not Path(str(path)).is_file():
        return None
    digest = hashlib.sha256()
    with open(str(path), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _per_image(batch: Batch, values: list, task: str) -> list[dict[str, Any]]:
    key = "iou" if task == SEGMENTATION else "predicted"
    rows = []
    for i, (location, value) in enumerate(zip(batch.locations, values, strict=True)):
        row: dict[str, Any] = {"image": location, "batch": batch.index, "index": i, key: value}
        if task != SEGMENTATION:
            row["true"] = int(batch.truths[i])
        rows.append(row)
    return rows


def save_batch_images(batch: Batch, folder: Path) -> None:
    """DeepHealth's gt/output PNGs, the image as fed and the predicted contour over it."""
    for i in range(len(batch.locations)):
        stem = folder / f"batch_{batch.index}_{i}"
        truth = (batch.truths[i] >= THRESHOLD).astype(np.uint8) * 255
        predicted = batch.outputs[i] >= THRESHOLD
        PILImage.fromarray(truth, mode="L").save(f"{stem}_gt.png")
        PILImage.fromarray(predicted.astype(np.uint8) * 255, mode="L").save(f"{stem}_output.png")
        image = _rgb_uint8(batch.images[i])
        PILImage.fromarray(image).save(f"{stem}_image.png")
        PILImage.fromarray(contour_overlay(image, predicted)).save(f"{stem}_overlay.png")


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def contour_overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image (H, W, 3 uint8) with the mask's border pixels in red; the mask is resized to the image."""
    if mask.shape != image.shape[:2]:
        resized = PILImage.fromarray(mask.astype(np.uint8) * 255).resize(image.shape[1::-1], PILImage.NEAREST)
        mask = np.asarray(resized) > 0
    padded = np.pad(mask, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    border = mask & ~interior
    overlay = image.copy()
    overlay[border] = (255, 0, 0)
    return overlay
