"""The DeepHealth backend: pyecvl reads the part file, pyeddl runs the network.

As in DeepHealth's use-case pipeline: an ``ecvl.DLDataset`` over the part file (images
resized by ECVL to the network's input size, masks with nearest-neighbour interpolation),
a network imported from ONNX (``eddl.import_net_from_onnx_file``) or an ONNX architecture
with weights from a native EDDL ``.bin`` checkpoint. Unlike DeepHealth's script, the last
partial batch is kept (``drop_last`` False for every split). EDDL is channels-first and imports
only a subset of ONNX: for a Model folder this backend runs ``model-eddl.onnx``, the export of
distml.inference.eddl_onnx (tf2onnx's ``model.onnx`` does not import into EDDL v1.1b).

pyecvl and pyeddl need the ECVL/EDDL C++ libraries: ``make setup`` installs them from
``../shared/ecvl`` where that build is beside the clone, elsewhere the images/ecvl image has them;
without them ``unavailable_reason`` says so and the backend is skipped.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from distml.errors import DistmlError
from distml.folders import EDDL_REFUSED_KEY, MODEL_INFO
from distml.inference.backend_api import (
    NCHW,
    ONNX_FILE,
    Backend,
    Batch,
    ImageSelection,
    ModelInput,
    classification_output,
    model_input_from_shape,
    resolve_model,
    segmentation_output,
)
from distml.inference.metrics import SEGMENTATION
from distml.training.model_folder import EDDL_ONNX_FILE


def deephealth_modules() -> tuple[ModuleType, ModuleType]:
    """``pyecvl.ecvl`` and ``pyeddl.eddl``, their C++ libraries bound to their own dependencies first.

    EDDL parses ONNX with the system's libprotobuf (3.21). In a process that loaded TensorFlow
    before pyeddl, EDDL's protobuf calls bind to the protobuf TensorFlow carries, and every
    ``import_net_from_onnx_file`` fails with ``basic_string::_M_create`` (what a test process that
    trains a model and then runs this backend saw). ``RTLD_DEEPBIND`` makes the libraries loaded
    with pyeddl and pyecvl look up symbols in their own dependencies before the process's.
    """
    if "pyeddl.eddl" not in sys.modules or "pyecvl.ecvl" not in sys.modules:
        flags = sys.getdlopenflags()
        sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
        try:
            import pyecvl.ecvl  # noqa: F401  (loaded here, with the flags above)
            import pyeddl.eddl  # noqa: F401
        finally:
            sys.setdlopenflags(flags)
    return sys.modules["pyecvl.ecvl"], sys.modules["pyeddl.eddl"]


def onnx_model_input(path: Path) -> ModelInput:
    """The input of an ONNX file read with the onnx package (graph inputs that are not weights)."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as err:  # protobuf's DecodeError, onnx's own errors: the file is not an ONNX model
        raise DistmlError(f"cannot read the ONNX model ({err.__class__.__name__}: {err})", where=str(path)) from None
    weights = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise DistmlError(f"model has {len(inputs)} inputs; an image model has one", where=str(path))
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    return model_input_from_shape(inputs[0].name, dims, where=str(path))


class EcvlBackend(Backend):
    """pyecvl DLDataset + pyeddl network; GPU when EDDL was built with CUDA and DISTML_EDDL_GPU=1."""

    name = "ecvl"

    def __init__(self, model: str | os.PathLike[str], *, threads: int = 0) -> None:
        _, eddl = deephealth_modules()
        self.weights: Path | None = None
        path = Path(model)
        if path.suffix == ".bin":
            self.weights = resolve_model(path, (".bin",))
            self.model_path = self._architecture_for(self.weights)
        elif path.is_dir():
            self.model_path = self._eddl_file_of(path)
        else:
            self.model_path = resolve_model(path)
        self.input = onnx_model_input(self.model_path)
        if self.input.layout != NCHW:
            raise DistmlError(
                f"EDDL needs channels-first (NCHW) input; this model takes {self.input.layout}",
                where=str(self.model_path),
                hint=f"Give a model folder (its {EDDL_ONNX_FILE}) or an export of "
                "distml.inference.eddl_onnx.keras_to_eddl_onnx, or use --backend onnxruntime.",
            )
        self.gpu = os.environ.get("DISTML_EDDL_GPU") == "1"
        started = time.perf_counter()
        try:
            self.net = eddl.import_net_from_onnx_file(str(self.model_path))
        except (RuntimeError, ValueError) as err:  # EDDL throws std::exceptions, pybind11 turns them into these
            raise DistmlError(
                f"EDDL cannot import this ONNX file ({err})",
                where=str(self.model_path),
                hint=f"Export with distml.inference.eddl_onnx ({EDDL_ONNX_FILE} in a model folder); "
                "tf2onnx's model.onnx is for ONNX Runtime.",
            ) from err
        device = eddl.CS_GPU() if self.gpu else eddl.CS_CPU(threads or -1)
        # init_weights False: keep the imported weights (True would draw new ones), unless a .bin brings them.
        eddl.build(self.net, eddl.sgd(0.0), ["mse"], ["mse"], device, self.weights is not None)
        if self.weights is not None:
            eddl.load(self.net, str(self.weights), "bin")
        self.import_seconds = time.perf_counter() - started

    @staticmethod
    def _eddl_file_of(folder: Path) -> Path:
        """A Model folder's EDDL export, or why training wrote none."""
        candidate = folder / EDDL_ONNX_FILE
        if candidate.is_file():
            return candidate
        refused = MODEL_INFO.read(folder).get(EDDL_REFUSED_KEY) if MODEL_INFO.exists(folder) else None
        raise DistmlError(
            f"model folder has no {EDDL_ONNX_FILE}" + (f": {refused}" if refused else ""),
            where=str(folder),
            hint="Use --backend onnxruntime." if refused else
            "Train with ONNX export (it writes model-eddl.onnx beside model.onnx), or use --backend onnxruntime.",
        )

    @staticmethod
    def _architecture_for(weights: Path) -> Path:
        """A .bin holds weights only: the architecture is the .onnx of the same name, or model.onnx beside it."""
        for candidate in (weights.with_suffix(".onnx"), weights.parent / ONNX_FILE):
            if candidate.is_file():
                return candidate
        raise DistmlError(
            "an EDDL .bin checkpoint needs its architecture as ONNX beside it",
            where=str(weights),
            hint=f"Put {weights.with_suffix('.onnx').name} or {ONNX_FILE} in the same folder.",
        )

    @staticmethod
    def unavailable_reason() -> str | None:
        try:
            deephealth_modules()
        except ImportError as err:
            return (
                f"pyecvl/pyeddl not importable ({err}); run `make setup` with ../shared/ecvl beside the clone, "
                "or use the images/ecvl image"
            )
        return None

    def describe(self) -> dict[str, object]:
        return {
            "model": str(self.model_path),
            "weights": str(self.weights) if self.weights else None,
            "provider": "EDDL GPU" if self.gpu else "EDDL CPU",
            "import_seconds": self.import_seconds,
        }

    def batches(self, selection: ImageSelection, batch_size: int) -> Iterator[Batch]:
        ecvl, eddl = deephealth_modules()
        spec = self.input
        splits = list(selection.dataset.split or {})
        linear, nearest = ecvl.InterpolationType.linear, ecvl.InterpolationType.nearest
        resize = ecvl.SequentialAugmentationContainer([ecvl.AugResizeDim([spec.height, spec.width], linear, nearest)])
        augmentations = ecvl.DatasetAugmentations([resize] * max(len(splits), 1))
        color = ecvl.ColorType.GRAY if spec.channels == 1 else ecvl.ColorType.RGB
        # pyecvl 1.3.0 (deephealthproject/pyecvl 682f1a8e pyecvl/support_eddl.py:84) passes these on
        # positionally to its binding (src/func_binder.hpp:541) of ECVL 1.0.3's constructor (deephealthproject/ecvl
        # v1.0.3 modules/eddl/include/ecvl/support_eddl.h:345): file, batch size, augmentations per split, image
        # and ground-truth colour types, worker threads, queue size as a multiple of batch x workers,
        # drop_last as {split name: bool} (it must name every split, support_eddl.h:396), verify files.
        dataset = ecvl.DLDataset(
            str(selection.path),
            batch_size,
            augmentations,
            color,
            ecvl.ColorType.GRAY,
            1,  # one producer thread keeps the split's order, so batches match the part file
            1,  # queue ratio: the binding takes an int (C++ has a double)
            {name: False for name in splits},  # keep the last partial batch of every split
            True,
        )
        if selection.split is not None:
            dataset.SetSplit(selection.split)
        dataset.ResetBatch(shuffle=False)
        dataset.Start()
        try:
            seen = 0
            for number in range(dataset.GetNumBatches()):
                samples, x, y = dataset.GetBatch()
                x.div_(255.0)
                outputs = np.array(eddl.predict(self.net, [x])[0].getdata())
                images = np.array(x.getdata()).transpose(0, 2, 3, 1)
                chunk = selection.indices[seen : seen + len(samples)]
                locations = [selection.dataset.images[i].location for i in chunk]
                self._check_order(samples, locations, selection)
                seen += len(samples)
                truths = np.array(y.getdata())
                yield self._batch(number, locations, images, truths, outputs, selection)
        finally:
            dataset.Stop()

    def _batch(self, number, locations, images, truths, outputs, selection: ImageSelection) -> Batch:
        where = str(self.model_path)
        if selection.task == SEGMENTATION:
            masks = segmentation_output(outputs, where=where)
            ground = truths[:, 0] / 255.0
            if ground.shape != masks.shape:
                raise DistmlError(
                    f"model output {list(masks.shape[1:])} differs from its input size {list(ground.shape[1:])}",
                    where=where,
                    hint="The ecvl backend compares masks at the input size; use --backend onnxruntime.",
                )
            return Batch(number, locations, images, ground.astype(np.float32), masks.astype(np.float32))
        scores = classification_output(outputs, len(selection.dataset.classes), where=where)
        return Batch(number, locations, images, truths.argmax(axis=1).astype(np.int64), scores)

    @staticmethod
    def _check_order(samples, locations: list[str], selection: ImageSelection) -> None:
        """ECVL must deliver the split in file order, or metrics per image would be misattributed."""
        for sample, location in zip(samples, locations, strict=True):
            if Path(sample.location_[0]).name != Path(location).name:
                raise DistmlError(
                    f"ECVL delivered {sample.location_[0]} where {location} was expected",
                    where=str(selection.path),
                )


BACKEND = EcvlBackend
