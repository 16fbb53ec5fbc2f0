"""Inference metrics kept as sufficient statistics, so shards combine exactly.

Segmentation follows DeepHealth's pipeline: per-image IoU = (|P and G| + eps) / (|P or G| + eps)
with P = prediction >= 0.5, G = ground truth >= 0.5, eps = 1e-6, and MIoU the mean over
images. The statistics are the sum of per-image IoUs and the image count, so the MIoU of
several shards is (sum of sums) / (sum of counts): weighted by images, never a mean of means.
Classification keeps the confusion matrix (rows: true class, columns: predicted class);
accuracy is its trace over its total.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distml.errors import DistmlError

IOU_EPS = 1e-6
THRESHOLD = 0.5
SEGMENTATION = "segmentation"
CLASSIFICATION = "classification"


def binary_iou(predictions: np.ndarray, truths: np.ndarray) -> np.ndarray:
    """Per-image IoU of (N, H, W) predictions and ground truths in [0, 1], as DeepHealth computes it."""
    predicted = predictions >= THRESHOLD
    true = truths >= THRESHOLD
    axes = tuple(range(1, predicted.ndim))
    intersection = np.logical_and(predicted, true).sum(axis=axes, dtype=np.float64)
    union = np.logical_or(predicted, true).sum(axis=axes, dtype=np.float64)
    return (intersection + IOU_EPS) / (union + IOU_EPS)


class SegmentationMetrics:
    """Running sum of per-image IoUs and image count."""

    task = SEGMENTATION

    def __init__(self) -> None:
        self.images = 0
        self.iou_sum = 0.0

    def update(self, predictions: np.ndarray, truths: np.ndarray) -> dict[str, Any]:
        """Add one batch; return the batch's own metrics and the per-image values."""
        ious = binary_iou(predictions, truths)
        self.images += len(ious)
        self.iou_sum += float(ious.sum())
        return {"images": len(ious), "miou": float(ious.mean()), "per_image": [float(v) for v in ious]}

    def summary(self) -> dict[str, Any]:
        return {"images": self.images, "iou_sum": self.iou_sum, "miou": _ratio(self.iou_sum, self.images)}


class ClassificationMetrics:
    """Running confusion matrix over a fixed list of classes."""

    task = CLASSIFICATION

    def __init__(self, classes: list[str]) -> None:
        self.classes = list(classes)
        self.confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)

    def update(self, scores: np.ndarray, truths: np.ndarray) -> dict[str, Any]:
        """Add one batch of (N, K) scores and (N,) true class indices."""
        predicted = np.asarray(scores).argmax(axis=1)
        np.add.at(self.confusion, (np.asarray(truths, dtype=np.int64), predicted), 1)
        correct = predicted == truths
        return {
            "images": len(predicted),
            "accuracy": float(correct.mean()),
            "per_image": [int(p) for p in predicted],
        }

    @property
    def images(self) -> int:
        return int(self.confusion.sum())

    def summary(self) -> dict[str, Any]:
        correct = int(np.trace(self.confusion))
        return {
            "images": self.images,
            "correct": correct,
            "accuracy": _ratio(correct, self.images),
            "classes": self.classes,
            "confusion_matrix": self.confusion.tolist(),
        }


def combine(shards: list[dict[str, Any]], *, names: list[str] | None = None) -> dict[str, Any]:
    """Exact metrics of the union of shards from their summaries (metrics.json contents).

    Raises DistmlError naming the shard when tasks or classes disagree.
    """
    if not shards:
        raise DistmlError("no shard metrics to gather", hint="Give at least one shard folder.")
    names = names or [f"shard {i}" for i in range(len(shards))]
    task = shards[0].get("task")
    for name, shard in zip(names, shards, strict=True):
        if shard.get("task") != task:
            raise DistmlError(
                f"task {shard.get('task')!r} differs from {task!r} of {names[0]}",
                where=name,
                hint="Gather shards of one dataset and model only.",
            )
    images = sum(int(shard["images"]) for shard in shards)
    if task == SEGMENTATION:
        iou_sum = sum(float(shard["iou_sum"]) for shard in shards)
        return {"task": task, "images": images, "iou_sum": iou_sum, "miou": _ratio(iou_sum, images)}
    if task == CLASSIFICATION:
        classes = shards[0]["classes"]
        for name, shard in zip(names, shards, strict=True):
            if shard["classes"] != classes:
                raise DistmlError("classes differ from the first shard's", where=name)
        confusion = sum(np.asarray(shard["confusion_matrix"], dtype=np.int64) for shard in shards)
        correct = int(np.trace(confusion))
        return {
            "task": task,
            "images": images,
            "correct": correct,
            "accuracy": _ratio(correct, images),
            "classes": classes,
            "confusion_matrix": confusion.tolist(),
        }
    raise DistmlError(f"unknown task {task!r}", where=names[0])


def _ratio(numerator: float, denominator: int) -> float | None:
    """None rather than a made-up number when there are no images."""
    return numerator / denominator if denominator else None
