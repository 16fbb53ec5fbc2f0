"""Average the weights of models of one architecture: the aggregator of data-parallel training on shards.

Every weight (trainable or not, e.g. batch-norm moving statistics) becomes the plain mean over
the models, each model counting once. Models must agree on model.json (architecture, input
shape, classes) and, layer by layer, on the layer type and every weight's shape; the first
layer that differs is named in the error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distml.errors import DistmlError
from distml.folders import read_model_metrics
from distml.inference.metrics import binary_iou

log = logging.getLogger(__name__)


def layer_signature(model: Any) -> list[tuple[str, str, list[tuple[int, ...]]]]:
    """(layer name, layer type, weight shapes) per layer that holds weights, in model order."""
    return [
        (layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
        if layer.weights
    ]


def check_same_architecture(models: Sequence[Any], names: Sequence[str]) -> None:
    """Raise DistmlError naming the first layer where a model differs from the first model."""
    reference = layer_signature(models[0])
    for model, name in zip(models[1:], names[1:], strict=True):
        other = layer_signature(model)
        for index, (ours, theirs) in enumerate(zip(reference, other, strict=False)):
            if ours[1:] != theirs[1:]:
                raise DistmlError(
                    f"layer {index} differs: {theirs[0]} ({theirs[1]}, weights {_shapes(theirs[2])}) "
                    f"vs {ours[0]} ({ours[1]}, weights {_shapes(ours[2])}) in {names[0]}",
                    where=name,
                    hint="Only models of the same architecture and shapes can be averaged.",
                )
        if len(other) != len(reference):
            index = min(len(other), len(reference))
            first_extra = (other if len(other) > len(reference) else reference)[index]
            raise DistmlError(
                f"has {len(other)} weighted layers, {names[0]} has {len(reference)}; "
                f"layer {index} ({first_extra[0]}) has no counterpart",
                where=name,
                hint="Only models of the same architecture and shapes can be averaged.",
            )


def average_weights(weight_lists: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Element-wise mean of each weight over the models (float64 accumulation, original dtype out)."""
    averaged = []
    for tensors in zip(*weight_lists, strict=True):
        mean = np.mean(np.stack([np.asarray(t, dtype=np.float64) for t in tensors]), axis=0)
        averaged.append(mean.astype(np.asarray(tensors[0]).dtype))
    return averaged


def evaluate_arrays(model: Any, x: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """Test metrics of ``model`` on arrays: classification accuracy and loss, or segmentation mean IoU."""
    predictions = np.asarray(model.predict(x, batch_size=256, verbose=0), dtype=np.float64)
    if task == "segmentation":
        iou = binary_iou(predictions, np.asarray(y, dtype=np.float64).reshape(predictions.shape))
        return {"test_miou": float(iou.mean()), "test_examples": len(x)}
    labels = np.asarray(y).reshape(-1).astype(np.int64)
    probabilities = predictions if _are_probabilities(predictions) else _softmax(predictions)
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    return {
        "test_accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
        "test_loss": float(-np.log(picked).mean()),
        "test_examples": len(x),
    }


def average_models(
    folders: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    names: Sequence[str] | None = None,
) -> Path:
    """Average the Model ``folders`` into a new Model folder ``out_dir``; evaluate on ``data`` (npz) if given.

    The new folder's metrics.json holds the test metrics of the average (when ``data`` is
    given), ``averaged_from`` and ``workers`` (summed over the sources); it gets a model.onnx
    when the first source has one.
    """
    from distml.selection.select import display_names
    from distml.training.model_folder import ONNX_FILE, load_model_folder, save_model_folder

    if len(folders) < 2:
        raise DistmlError("averaging needs at least two models", hint="Give two or more model folders.")
    paths = [Path(folder) for folder in folders]
    labels = list(names) if names is not None else display_names(paths)
    loaded = [load_model_folder(path) for path in paths]
    models = [model for model, _ in loaded]
    infos = [info for _, info in loaded]
    check_same_architecture(models, labels)
    _check_same_info(infos, labels)
    log.info("averaging %d models of architecture %s", len(models), infos[0]["architecture"])
    average = models[0]
    average.set_weights(average_weights([model.get_weights() for model in models]))

    sources = [read_model_metrics(path) for path in paths]
    metrics: dict[str, Any] = {
        "averaged_from": labels,
        "workers": sum(int(source.get("workers", 1)) for source in sources),
        "global_batch_size": sources[0].get("global_batch_size"),
        "epochs": [],
    }
    if data is not None:
        from distml.data.sources import load_arrays

        arrays = load_arrays(data)
        metrics.update(evaluate_arrays(average, arrays["x_test"], arrays["y_test"], infos[0]["task"]))
        log.info("average on the test data: %s", {k: v for k, v in metrics.items() if k.startswith("test_")})
    info = infos[0]
    return save_model_folder(
        average,
        out_dir,
        architecture=info["architecture"],
        task=info["task"],
        input_shape=info["input_shape"],
        classes=info["classes"],
        metrics=metrics,
        onnx=(paths[0] / ONNX_FILE).exists(),
    )


def evaluated_metrics(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``test_*`` metrics of a Model folder's metrics.json: what evaluating it measured."""
    return {key: value for key, value in read_model_metrics(folder).items() if key.startswith("test_")}


def average_models_step(model_dirs: list[str], averaged_dir: str, data_dir: str) -> dict[str, Any]:
    """The average_models component's body: average, evaluate on ``data_dir``; return the average's test metrics."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return evaluated_metrics(average_models(model_dirs, averaged_dir, data=data_dir))


def _check_same_info(infos: Sequence[dict[str, Any]], names: Sequence[str]) -> None:
    for key in ("architecture", "task", "input_shape", "classes"):
        for info, name in zip(infos[1:], names[1:], strict=True):
            if info.get(key) != infos[0].get(key):
                raise DistmlError(
                    f"model.json {key} is {info.get(key)!r}, {names[0]} has {infos[0].get(key)!r}",
                    where=name,
                    hint="Only models of the same architecture and shapes can be averaged.",
                )


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join("x".join(str(n) for n in shape) for shape in shapes) or "none"


def _are_probabilities(values: np.ndarray) -> bool:
    """Softmax outputs (our classifiers end in softmax); anything else is treated as logits."""
    return bool(values.min() >= 0 and np.allclose(values.sum(axis=1), 1.0, atol=1e-3))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
