"""The Model folder: what training writes and inference, selection and serving read.

Layout (the KFP Model artifact is this folder)::

    model/1/            TF SavedModel in TF Serving layout (saved_model.pb, variables/)
    model.keras         tf-keras native file (weights averaging, reloading for more training)
    model.onnx          optional ONNX export (input NHWC float32 in [0, 1]), tf2onnx: ONNX Runtime, KServe
    model-eddl.onnx     with model.onnx: the same network as NCHW ONNX that EDDL imports (the ecvl backend)
    triton/<name>/      with model.onnx: a Triton model repository of that model, for KServe's
      config.pbtxt      ONNX runtime (Triton, --model-store=/mnt/models); <name> is the
      1/model.onnx      architecture, the model name V2 clients use on the cluster and locally
    metrics.json        training metrics (workers, global_batch_size, epochs, test_*)
    model.json          {"architecture", "task", "input_shape", "classes", "framework"}

(model.json and metrics.json are read and written by distml.folders, the folder contracts.)

Model folders come from artifact stores that others write to, so reading one never runs code
stored in it: ``load_model_folder`` rebuilds the architecture that model.json names from our
own definitions (``distml.training.models``) and reads only the weights out of model.keras
(a Keras v3 zip). A legacy HDF5 model.keras is refused: tf-keras deserializes its layers,
and a ``Lambda`` layer's marshalled bytecode runs while the model is built.

The folder is built under a temporary name beside its destination and renamed into place,
so a failed export never leaves a folder that looks complete.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from distml.errors import DistmlError
from distml.folders import EDDL_REFUSED_KEY, read_model_info, write_model_info, write_model_metrics
from distml.staging import staged_folder
from distml.tfkeras import use_tf_keras

use_tf_keras()  # before any TensorFlow import: see distml.tfkeras

SAVED_MODEL_DIR = "model"
SERVING_VERSION = "1"
KERAS_FILE = "model.keras"
ONNX_FILE = "model.onnx"
#: NCHW ONNX in the subset EDDL v1.1b imports (distml.inference.eddl_onnx), written beside model.onnx.
EDDL_ONNX_FILE = "model-eddl.onnx"
TRITON_DIR = "triton"
TRITON_CONFIG_FILE = "config.pbtxt"
#: ONNX element types -> Triton's config data types (model_config.proto DataType).
_TRITON_TYPES = {"FLOAT": "TYPE_FP32", "DOUBLE": "TYPE_FP64", "INT64": "TYPE_INT64", "INT32": "TYPE_INT32"}
#: Name of the model's input layer and so of the serving signature's input.
INPUT_NAME = "input"


def saved_model_path(folder: str | os.PathLike[str]) -> Path:
    """``<folder>/model/1``: the SavedModel TF Serving loads (version 1)."""
    return Path(folder) / SAVED_MODEL_DIR / SERVING_VERSION


def save_model_folder(
    model: Any,
    folder: str | os.PathLike[str],
    *,
    architecture: str,
    task: str,
    input_shape: list[int] | tuple[int, ...],
    classes: list[str],
    metrics: dict[str, Any],
    onnx: bool,
    converter: Any = None,
) -> Path:
    """Write ``model`` (a tf-keras model) as a Model folder at ``folder`` (absent or empty).

    ``converter``: a started distml.inference.convert.OnnxConverter for the ONNX export.
    """
    out = Path(folder)
    with staged_folder(out, what="model output folder") as staging:
        model.save(str(saved_model_path(staging)), save_format="tf", include_optimizer=False)
        model.save(str(staging / KERAS_FILE), save_format="keras")
        info: dict[str, Any] = {
            "architecture": architecture,
            "task": task,
            "input_shape": [int(n) for n in input_shape],
            "classes": [str(c) for c in classes],
            "framework": "tensorflow",
        }
        if onnx:
            _to_onnx(saved_model_path(staging), staging / ONNX_FILE, converter)
            write_triton_repository(staging, architecture)
            info[EDDL_REFUSED_KEY] = _to_eddl_onnx(model, staging / EDDL_ONNX_FILE)
        write_model_info(staging, info)
        write_model_metrics(staging, metrics)
    return out


def write_triton_repository(folder: str | os.PathLike[str], name: str) -> Path:
    """``<folder>/triton/<name>/1/model.onnx`` and its ``config.pbtxt``, from the folder's model.onnx.

    Layout and naming per Triton's docs (triton-inference-server/server
    docs/user_guide/model_repository.md, "Repository Layout"; model.onnx is the ONNX Runtime
    backend's default file name; a config's ``name`` must equal its directory's). The config
    says ``max_batch_size: 0`` with the batch as the first, variable dimension, so a request
    carries ``[N, ...]`` as it does locally; Triton's auto-completed config would cap N at its
    default maximum batch size otherwise (docs/user_guide/model_configuration.md).
    """
    import onnx

    source = Path(folder) / ONNX_FILE
    graph = onnx.load(str(source), load_external_data=False).graph
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [_tensor_config(value) for value in graph.input if value.name not in initializers]
    outputs = [_tensor_config(value) for value in graph.output]
    model_dir = Path(folder) / TRITON_DIR / name
    (model_dir / SERVING_VERSION).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, model_dir / SERVING_VERSION / ONNX_FILE)
    config = [f'name: "{name}"', 'backend: "onnxruntime"', "max_batch_size: 0"]
    config += _config_block("input", inputs) + _config_block("output", outputs)
    (model_dir / TRITON_CONFIG_FILE).write_text("\n".join(config) + "\n", encoding="utf-8")
    return model_dir


def triton_model_name(folder: str | os.PathLike[str]) -> str | None:
    """The model name of a Model folder's Triton repository (its only model), or None without one."""
    repository = Path(folder) / TRITON_DIR
    names = sorted(p.name for p in repository.iterdir() if p.is_dir()) if repository.is_dir() else []
    if len(names) > 1:
        raise DistmlError(f"the Triton repository holds {len(names)} models: {', '.join(names)}", where=str(repository))
    return names[0] if names else None


def _tensor_config(value: Any) -> dict[str, Any]:
    """Name, Triton data type and dims (-1 where the ONNX dimension is symbolic) of a graph input or output."""
    import onnx

    tensor = value.type.tensor_type
    element = onnx.TensorProto.DataType.Name(tensor.elem_type)
    if element not in _TRITON_TYPES:
        raise DistmlError(f"ONNX tensor {value.name!r} has type {element}, which the Triton config here does not map")
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    return {"name": value.name, "data_type": _TRITON_TYPES[element], "dims": dims}


def _config_block(kind: str, tensors: list[dict[str, Any]]) -> list[str]:
    entries = [
        f'  {{ name: "{t["name"]}", data_type: {t["data_type"]}, dims: [ {", ".join(map(str, t["dims"]))} ] }}'
        for t in tensors
    ]
    return [f"{kind} [", ",\n".join(entries), "]"]


def load_model_folder(folder: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """The tf-keras model of a Model folder and its model.json, built without running stored code.

    The architecture is rebuilt from ``distml.training.models`` by the name in model.json and
    only the weights are read from model.keras (tf_keras ``Model.load_weights`` on a ``.keras``
    zip reads ``model.weights.h5`` out of it and never looks at ``config.json``:
    tf_keras 2.21.0 ``src/saving/saving_api.py`` ``load_weights`` and
    ``src/saving/saving_lib.py`` ``load_weights_only``).
    """
    path = Path(folder)
    info = read_model_info(path)
    keras_file = path / KERAS_FILE
    if not keras_file.is_file():
        raise DistmlError(f"no {KERAS_FILE}", where=str(path), hint="Use a Model folder written by distml.")
    if not zipfile.is_zipfile(keras_file):
        raise DistmlError(
            "is not a Keras v3 archive (a legacy HDF5 file or something else); refused, since loading "
            "such a file can run code stored in it",
            where=str(keras_file),
            hint="Re-export the model with distml (model.keras in the Keras v3 zip format).",
        )
    from distml.training.models import build_model

    model = build_model(info["architecture"], tuple(info["input_shape"]), len(info["classes"]))
    try:
        model.load_weights(str(keras_file))
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as err:
        raise DistmlError(
            f"weights do not fit the {info['architecture']} model that model.json describes: {err}",
            where=str(keras_file),
            hint="Use a Model folder written by distml, with its own model.json.",
        ) from None
    return model, info


def _to_onnx(saved_model_dir: Path, onnx_path: Path, converter: Any = None) -> None:
    from distml.inference.convert import saved_model_to_onnx

    saved_model_to_onnx(saved_model_dir, onnx_path, converter=converter)


def _to_eddl_onnx(model: Any, onnx_path: Path) -> str | None:
    """Write the EDDL export, or return why EDDL cannot take this model (training still succeeds)."""
    from distml.inference.eddl_onnx import keras_to_eddl_onnx

    try:
        keras_to_eddl_onnx(model, onnx_path)
    except DistmlError as refused:
        return refused.what
    return None
