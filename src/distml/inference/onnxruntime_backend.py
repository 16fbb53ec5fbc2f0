"""The ONNX Runtime backend: model.onnx (tf2onnx, NHWC) on the CUDA provider when there is one, else the CPU."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from distml.errors import DistmlError
from distml.inference.backend_api import (
    Backend,
    Batch,
    ImageSelection,
    finish_batch,
    model_input_from_shape,
    read_batch,
    resolve_model,
    to_layout,
)


def open_session(path: str | os.PathLike[str], providers: list[str], options: Any = None) -> Any:
    """An ``onnxruntime.InferenceSession``; a corrupt or unsupported file is one line naming it."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as err:  # onnxruntime raises its own untyped errors for bad files
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
        raise DistmlError(f"cannot load the ONNX model: {first_line}", where=str(path)) from err


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime: the CUDA provider when onnxruntime-gpu sees a GPU, the CPU provider otherwise."""

    name = "onnxruntime"

    def __init__(self, model: str | os.PathLike[str], *, threads: int = 0) -> None:
        import onnxruntime as ort

        self.model_path = resolve_model(model)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.session = open_session(self.model_path, providers, options)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise DistmlError(f"model has {len(inputs)} inputs; an image model has one", where=str(self.model_path))
        self.input = model_input_from_shape(inputs[0].name, list(inputs[0].shape), where=str(self.model_path))

    @staticmethod
    def unavailable_reason() -> str | None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed (pip install 'kfp-distml[onnx]')"
        return None

    def describe(self) -> dict[str, object]:
        return {"model": str(self.model_path), "provider": self.session.get_providers()[0]}

    def batches(self, selection: ImageSelection, batch_size: int) -> Iterator[Batch]:
        where_model = str(self.model_path)
        spec = self.input
        for number, start in enumerate(range(0, len(selection.indices), batch_size)):
            chunk = selection.indices[start : start + batch_size]
            images, truths, locations = read_batch(selection, chunk, spec)
            outputs = self.session.run(None, {spec.name: to_layout(images, spec.layout)})[0]
            yield finish_batch(number, locations, images, truths, outputs, selection, where=where_model)


BACKEND = OnnxRuntimeBackend
