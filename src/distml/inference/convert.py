"""TensorFlow models to ONNX (tf2onnx), so one trained model runs on every inference backend.

A SavedModel is converted by tf2onnx in a child process: the converter freezes graphs and
switches TensorFlow's state in ways that should not leak into a training worker that
calls it. ``OnnxConverter`` starts that child ahead of time, so its imports overlap
training. A live tf-keras model is converted in-process (``keras_to_onnx``), for tests and
notebooks. Both write under a temporary name and rename, so a failed conversion never
leaves a ``model.onnx`` that looks complete.

``inputs_as_nchw`` makes the ONNX input channels-first (EDDL's layout) while the
TensorFlow model stays channels-last; the inference backends accept both layouts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from distml.errors import DistmlError
from distml.staging import staged_file
from distml.tfkeras import LEGACY_KERAS_ENV

#: ONNX opset written when none is asked for: supported by onnxruntime >= 1.14 and EDDL's importer.
DEFAULT_OPSET = 17


def saved_model_to_onnx(
    saved_model_dir: str | os.PathLike[str],
    onnx_path: str | os.PathLike[str],
    *,
    opset: int | None = None,
    inputs_as_nchw: bool = False,
    converter: OnnxConverter | None = None,
) -> Path:
    """Convert the TF SavedModel in ``saved_model_dir`` to ``onnx_path``; return ``onnx_path``.

    ``converter``: a started OnnxConverter to run the conversion in (its imports already done),
    instead of a new child process.
    """
    source = Path(saved_model_dir)
    if not (source / "saved_model.pb").is_file():
        raise DistmlError(
            "no saved_model.pb here",
            where=str(source),
            hint="Give a SavedModel folder, e.g. <model folder>/model/1.",
        )
    target = Path(onnx_path)
    with staged_file(target) as scratch:
        arguments = ["--saved-model", str(source), "--output", str(scratch), "--opset", str(opset or DEFAULT_OPSET)]
        if inputs_as_nchw:
            arguments += ["--inputs-as-nchw", _saved_model_input_names(source)]
        returncode, stderr = (converter or OnnxConverter()).run(arguments)
        if returncode != 0 or scratch.stat().st_size == 0:
            tail = " | ".join(stderr.strip().splitlines()[-3:])
            raise DistmlError(f"ONNX conversion failed: {tail}", where=str(source))
    return target


class OnnxConverter:
    """A child process that imports TensorFlow and tf2onnx now and converts one SavedModel later.

    The conversion runs in a child so tf2onnx's graph freezing and TensorFlow state changes
    stay out of the process that asks for it (a training worker). Its imports take about 5 s;
    started when training starts (distml.training.worker), they overlap training instead of
    adding to it (issue 15). ``run`` hands it tf2onnx.convert's arguments and waits; a
    converter is used once. A context manager: leaving it ends a child that was never used.
    """

    def __init__(self) -> None:
        env = {**os.environ, **LEGACY_KERAS_ENV, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "distml.inference.convert"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def run(self, arguments: list[str]) -> tuple[int, str]:
        """Run ``python -m tf2onnx.convert ARGUMENTS`` in the child; (exit code, its stderr)."""
        _, stderr = self._process.communicate(json.dumps(arguments) + "\n")
        return self._process.returncode, stderr

    def close(self) -> None:
        """End the child if it is still waiting (no conversion was asked for)."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.communicate()

    def __enter__(self) -> OnnxConverter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _converter_main() -> None:
    """The OnnxConverter child: import, then run tf2onnx.convert on the arguments of one stdin line."""
    import tensorflow  # noqa: F401 - the imports this process exists to do ahead of time
    import tf2onnx.convert

    line = sys.stdin.readline()
    if not line:
        return  # closed without a job
    # What `python -m tf2onnx.convert ARGUMENTS` runs (tf2onnx 1.17.0 tf2onnx/convert.py: main() under __main__).
    sys.argv = ["tf2onnx.convert", *json.loads(line)]
    tf2onnx.convert.main()


def keras_to_onnx(
    model: Any,
    onnx_path: str | os.PathLike[str],
    *,
    opset: int | None = None,
    inputs_as_nchw: bool = False,
) -> Path:
    """Convert a live tf-keras model (fixed H, W, C input) to ``onnx_path``; return ``onnx_path``.

    The ONNX input keeps the Keras input layer's name, with a free batch dimension.
    """
    import tensorflow as tf
    import tf2onnx

    name = model.inputs[0].name.split(":")[0]
    shape = (None, *model.inputs[0].shape[1:])
    signature = (tf.TensorSpec(shape, tf.float32, name=name),)
    target = Path(onnx_path)
    with staged_file(target) as scratch:
        tf2onnx.convert.from_keras(
            model,
            input_signature=signature,
            opset=opset or DEFAULT_OPSET,
            inputs_as_nchw=[name] if inputs_as_nchw else None,
            output_path=str(scratch),
        )
    return target


def _saved_model_input_names(saved_model_dir: Path) -> str:
    """Comma-separated input names of the serving signature (what tf2onnx's --inputs-as-nchw takes)."""
    code = (
        "import sys, tensorflow as tf\n"
        "sig = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "print(','.join(sig.structured_input_signature[1]))\n"
    )
    env = {**os.environ, **LEGACY_KERAS_ENV, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(saved_model_dir)], capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise DistmlError("cannot read the SavedModel's serving signature", where=str(saved_model_dir))
    return done.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    _converter_main()
