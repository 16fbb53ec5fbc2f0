"""The local model server's ``kserve.Model``, written as KServe writes its own servers.

Like KServe's sklearnserver (kserve/kserve python/sklearnserver/sklearnserver/model.py, commit
0314091: a module-level ``Model`` subclass whose ``predict`` goes through
``kserve.utils.utils.get_predict_input`` and ``get_predict_response``), one path serves both
protocols: V1 ``{"instances": [...]}`` and V2's first input tensor become one batch, and the
answer is ``{"predictions": [...]}`` or a V2 response. V2 model metadata (``GET
/v2/models/NAME``) names the real input and output tensors, with datatype and shape (``-1``: any
batch size), read from the ONNX graph or the rebuilt tf-keras model.

Its own module because importing kserve is slow and parses ``sys.argv`` (kserve v0.21.0
python/kserve/kserve/model_server.py:225, ``parser.parse_known_args()``, which exits on
``--help``): distml.serving.local imports this module only when it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np


@contextlib.contextmanager
def _argv_without_options() -> Iterator[None]:
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


with _argv_without_options():
    import kserve
    import kserve.model_server  # the import that reads sys.argv
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferRequest, InferResponse
    from kserve.utils.utils import get_predict_input, get_predict_response

from distml.serving.local import Predictor  # noqa: E402 - after kserve, whose import must see a clean argv

#: The datatype of every tensor we take and give: the models are float32 end to end.
DATATYPE = "FP32"


class DistmlModel(kserve.Model):
    """A Model folder served under NAME: V1 ``{"instances"}`` -> ``{"predictions"}``; V2 first input
    tensor -> the output tensor named as in the ONNX graph (as Triton names it on the cluster)."""

    def __init__(self, name: str, model_dir: str | os.PathLike[str], predictor: Predictor | None = None) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.predictor = predictor  # a loaded one may be shared by the names a folder is served under

    def load(self) -> bool:
        if self.predictor is None:
            self.predictor = Predictor(self.model_dir)
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        """The input tensor of V2 model metadata (kserve v0.21.0 python/kserve/kserve/model.py:147-153)."""
        predictor = self._loaded()
        return [{"name": predictor.input_name, "datatype": DATATYPE, "shape": [-1, *predictor.input_shape]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        """The output tensor of V2 model metadata (kserve v0.21.0 python/kserve/kserve/model.py:155-161)."""
        predictor = self._loaded()
        return [{"name": predictor.output_name, "datatype": DATATYPE, "shape": [-1, *predictor.output_shape]}]

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """A large batch runs off the event loop: KServe awaits a coroutine ``predict`` but runs a
        plain one on the loop itself (kserve v0.21.0 python/kserve/kserve/model.py:252), where it
        would hold up every health and readiness check. A small one runs here: the hand-off to a
        thread costs more than its prediction (issue 15: p50 1.4x KServe's echo server with it)."""
        if _instances(payload) <= INLINE_INSTANCES:
            return self._predict(payload)
        return await asyncio.to_thread(self._predict, payload)

    def _predict(self, payload: Any) -> Any:
        predictor = self._loaded()
        if isinstance(payload, InferRequest):
            if not payload.inputs:
                raise InvalidInput("the V2 request has no inputs")
        elif not isinstance(payload, dict) or "instances" not in payload:
            # get_predict_input would also take V1 "inputs" and lists of records (a DataFrame): not ours
            raise InvalidInput('expected a JSON object {"instances": [...]}')
        try:
            batch = predictor.check(get_predict_input(payload))
        except ValueError as err:  # from None: the message is the client's answer, the cause says no more
            raise InvalidInput(_instances_problem(err)) from None
        response = get_predict_response(payload, predictor.predict(batch).astype(np.float32), self.name)
        if isinstance(response, InferResponse):
            _name_output(response, predictor.output_name)
        return response

    def _loaded(self) -> Predictor:
        if self.predictor is None:
            raise RuntimeError(f"model {self.name} is not loaded")
        return self.predictor


def _instances_problem(err: ValueError) -> str:
    """Predictor.check's own messages as they are; numpy's (ragged lists, strings) said in our words."""
    text = str(err)
    if text.startswith(("instances ", "give ")):
        return text
    return f"instances must be numbers in nested lists of equal lengths ({text})"


def _name_output(response: InferResponse, name: str) -> None:
    """get_predict_response names a tensor result "output-0" (kserve v0.21.0
    python/kserve/kserve/utils/utils.py:234-246) and InferOutput has no name setter; Triton, which
    serves the same folder on the cluster, answers with the ONNX output's name, and so do we."""
    (output,) = response.outputs
    output._name = name


def make_models(model_dir: str | os.PathLike[str], names: list[str], predictor: Predictor) -> list[DistmlModel]:
    """Loaded models serving ``model_dir`` under each of ``names``, sharing one ``predictor``."""
    models = [DistmlModel(name, model_dir, predictor) for name in names]
    for model in models:
        model.load()
    return models


#: Batches of at most this many instances are predicted on the event loop (a millisecond or less).
INLINE_INSTANCES = 8


def _instances(payload: Any) -> int:
    """How many instances a V1 or V2 request carries, without reading them (unknown: a large number)."""
    if isinstance(payload, InferRequest):
        shape = payload.inputs[0].shape if payload.inputs else []
        return int(shape[0]) if shape else 0
    if isinstance(payload, dict) and isinstance(payload.get("instances"), list):
        return len(payload["instances"])
    return 0
