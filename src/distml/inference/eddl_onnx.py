"""tf-keras models to the ONNX that EDDL's importer (v1.1b, pyeddl 1.3.1) builds a network from.

tf2onnx's export does not import into EDDL (``eddl.import_net_from_onnx_file`` fails with
``basic_string::_M_create``): tf2onnx writes NHWC graphs with ``Transpose`` pairs, ``Shape``/``Reshape``
chains computed at run time and ``MatMul``+``Add`` for Dense, where EDDL's importer wants one
static NCHW layer per node. So this module writes the graph itself, one ONNX node per Keras layer,
in the subset EDDL reads (deephealthproject/eddl tag v1.1b, e839f80f):

* ``src/serialization/onnx/net/import_helpers.cpp`` (``parse_IO_tensor``): the input's batch
  dimension is replaced by 1 and the other dimensions are read as fixed ``dim_value``: the input
  is ``[N, C, H, W]`` with C, H, W fixed (EDDL runs channels-first networks only); the opset is
  not read (``log_model_metadata``), so we write 13, which ONNX Runtime also runs.
* ``layers/conv/conv_onnx.cpp`` (``build_conv_layer``): ``Conv`` with ``kernel_shape``,
  ``strides``, ``pads`` and ``dilations`` written out (an absent attribute leaves EDDL's
  ``ConvolDescriptor`` without it); asymmetric ``pads`` become an EDDL ``Pad`` layer with zeros,
  which is what TensorFlow's ``same`` padding does.
* ``layers/conv/convT_onnx.cpp`` (``build_convT_layer``): ``ConvTranspose`` without dilations
  or ``output_padding`` (both ignored there).
* ``layers/pool/maxpool_onnx.cpp``, ``avgpool_onnx.cpp``: pooling whose padding EDDL fills
  with zeros (an ``LPad`` of 0.0 for asymmetric pads), where TensorFlow leaves padded cells out
  of the max and the average: a pooling layer that would need padding is refused.
* ``layers/core/dense_onnx.cpp`` (``build_dense_layer``): ``Gemm`` with the weights as an
  initializer ``[in, out]`` (``transB`` 0), on 2-D input only.
* ``layers/core/reshape_onnx.cpp`` (``build_flatten_layer``): ``Flatten`` is a reshape to
  ``[1, -1]``, so it flattens C, H, W in NCHW order; Keras flattens H, W, C. The next Dense
  layer's weight rows are permuted instead of adding a ``Transpose``.
* ``layers/merge/concat_onnx.cpp``: ``Concat`` on the channel axis (1).
* ``layers/core/activation_onnx.cpp``: ``Relu``, ``Sigmoid``, ``Tanh``, ``Softmax`` (axis 1).

Anything else (a layer type, an activation, a ``channels_first`` Keras layer, a shared layer)
is refused at export time, by layer name and type. The same file runs on ONNX Runtime, which
the tests use to check the export against TensorFlow without EDDL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distml.errors import DistmlError
from distml.staging import staged_file

#: Opset written into the file: EDDL ignores it; 13 is the first with Softmax over one axis.
EDDL_OPSET = 13
#: Keras activation names and the ONNX node that computes each one (None: nothing to add).
_ACTIVATIONS = {"linear": None, "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}
SUPPORTED_LAYERS = (
    "InputLayer",
    "Conv2D",
    "Conv2DTranspose",
    "MaxPooling2D",
    "AveragePooling2D",
    "Dense",
    "Flatten",
    "Concatenate",
    "Dropout",
    "Activation",
)


@dataclass
class _Value:
    """An ONNX value: its name, shape without the batch axis, and (after a Flatten of NCHW) the
    Keras flat index of each NCHW flat position, for the next Dense layer's weights."""

    name: str
    shape: tuple[int, ...]
    keras_order: np.ndarray | None = None


@dataclass
class _Graph:
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)

    def weight(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def keras_to_eddl_onnx(model: Any, onnx_path: str | os.PathLike[str]) -> Path:
    """Write ``model`` (a tf-keras functional model, NHWC input) as NCHW ONNX for EDDL; return the path.

    Written under a temporary name and renamed, so a refused or failed export leaves no file.
    """
    import onnx
    from onnx import TensorProto, helper

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise DistmlError(
            f"model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs",
            hint="The EDDL export takes image models with one input and one output.",
        )
    graph = _Graph()
    values: dict[Any, _Value] = {}
    input_name = model.inputs[0].name.split(":")[0]
    height, width, channels = (int(n) for n in model.inputs[0].shape[1:])
    values[model.inputs[0].ref()] = _Value(input_name, (channels, height, width))
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if len(layer.inbound_nodes) != 1:
            raise _refuse(layer, "is used more than once (shared layers are not exported)")
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        sources = [values[tensor.ref()] for tensor in inputs]
        values[layer.output.ref()] = _convert(layer, kind, sources, graph)
    output = values[model.outputs[0].ref()]
    batch = "N"
    onnx_model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            model.name,
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, channels, height, width])],
            [helper.make_tensor_value_info(output.name, TensorProto.FLOAT, [batch, *output.shape])],
            graph.initializers,
        ),
        producer_name="kfp-distml",
        opset_imports=[helper.make_opsetid("", EDDL_OPSET)],
    )
    onnx.checker.check_model(onnx_model)
    target = Path(onnx_path)
    with staged_file(target) as scratch:
        onnx.save(onnx_model, str(scratch))
    return target


def _refuse(layer: Any, why: str) -> DistmlError:
    return DistmlError(
        f"EDDL cannot import layer {layer.name!r} ({type(layer).__name__}): it {why}",
        hint=f"The EDDL export supports {', '.join(SUPPORTED_LAYERS)} (see docs/inference.md); "
        "serve this model with --backend onnxruntime.",
    )


def _convert(layer: Any, kind: str, sources: list[_Value], graph: _Graph) -> _Value:
    """The ONNX nodes of one Keras layer, added to ``graph``; the value it produces."""
    if kind in ("Conv2D", "Conv2DTranspose", "MaxPooling2D", "AveragePooling2D") and (
        layer.data_format != "channels_last"
    ):
        raise _refuse(layer, "is channels_first (the models here are channels-last; the export transposes them)")
    source = sources[0]
    if kind == "Conv2D":
        return _activation(layer, _conv(layer, source, graph), graph)
    if kind == "Conv2DTranspose":
        return _activation(layer, _conv_transpose(layer, source, graph), graph)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return _pool(layer, kind, source, graph)
    if kind == "Dense":
        return _activation(layer, _dense(layer, source, graph), graph)
    if kind == "Flatten":
        return _flatten(layer, source, graph)
    if kind == "Concatenate":
        return _concat(layer, sources, graph)
    if kind == "Dropout":  # inference: the identity
        return source
    if kind == "Activation":
        return _activation(layer, source, graph)
    raise _refuse(layer, "is not a layer type EDDL's ONNX importer is known here to read")


def _activation(layer: Any, value: _Value, graph: _Graph) -> _Value:
    name = getattr(layer.activation, "__name__", str(layer.activation))
    if name not in _ACTIVATIONS:
        raise _refuse(layer, f"uses the activation {name!r}")
    op = _ACTIVATIONS[name]
    if op is None:
        return value
    attributes = {"axis": 1} if op == "Softmax" else {}
    output = graph.node(op, [value.name], f"{layer.name}/{name}", **attributes)
    return _Value(output, value.shape)


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's ``same`` padding (before, after) of one axis: the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(layer: Any, shape: tuple[int, ...], kernel: tuple, strides: tuple, dilations: tuple) -> list[int]:
    """ONNX pads [top, left, bottom, right] for the layer's padding mode."""
    if layer.padding == "valid":
        return [0, 0, 0, 0]
    if layer.padding != "same":
        raise _refuse(layer, f"has padding {layer.padding!r}")
    (top, bottom), (left, right) = (
        _same_pads(size, k, s, d) for size, k, s, d in zip(shape[1:], kernel, strides, dilations, strict=True)
    )
    return [top, left, bottom, right]


def _conv(layer: Any, source: _Value, graph: _Graph) -> _Value:
    kernel, bias = _weights(layer)
    if layer.groups != 1:
        raise _refuse(layer, "is a grouped convolution")
    size, strides, dilations = tuple(layer.kernel_size), tuple(layer.strides), tuple(layer.dilation_rate)
    pads = _pads(layer, source.shape, size, strides, dilations)
    inputs = [source.name, graph.weight(f"{layer.name}/W", kernel.transpose(3, 2, 0, 1))]
    if bias is not None:
        inputs.append(graph.weight(f"{layer.name}/b", bias))
    output = graph.node(
        "Conv", inputs, layer.name, kernel_shape=list(size), strides=list(strides), pads=pads,
        dilations=list(dilations), group=1,
    )
    _, height, width = source.shape
    out_h = (height + pads[0] + pads[2] - dilations[0] * (size[0] - 1) - 1) // strides[0] + 1
    out_w = (width + pads[1] + pads[3] - dilations[1] * (size[1] - 1) - 1) // strides[1] + 1
    return _Value(output, (kernel.shape[3], out_h, out_w))


def _conv_transpose(layer: Any, source: _Value, graph: _Graph) -> _Value:
    """``ConvTranspose`` as ops EDDL runs on the CPU: zero-insertion, then an ordinary ``Conv``.

    EDDL v1.1b imports ``ConvTranspose`` but cannot run it: its CPU kernel is
    ``msg("NotImplementedError")`` (src/tensor/nn/tensor_conv.cpp ``ConvT2D``), and its descriptor
    gives the output as many channels as the input (src/descriptors/descriptor_convT2D.cpp ``build``).
    The same result: spread the input with ``stride - 1`` zeros between pixels (``Resize`` nearest by
    the stride, times a constant 0/1 mask), then correlate with the spatially flipped kernel, padded
    ``k - 1 - pad_begin`` before and ``k - s - pad_end`` after (so the output is
    ``s * (in - 1) + k - pad_begin - pad_end``, ConvTranspose's size).
    """
    from onnx import numpy_helper

    kernel, bias = _weights(layer)
    size, strides = tuple(layer.kernel_size), tuple(layer.strides)
    if tuple(layer.dilation_rate) != (1, 1) or layer.output_padding is not None:
        raise _refuse(layer, "has dilations or output_padding")
    if any(k < s for k, s in zip(size, strides, strict=True)):
        raise _refuse(layer, f"has a kernel {size} smaller than its strides {strides} (needs output_padding)")
    channels, height, width = source.shape
    if layer.padding == "same":
        # TensorFlow pads the `same` conv whose gradient this is by k - s, the extra pixel after.
        (top, bottom), (left, right) = ((d // 2, d - d // 2) for d in (size[0] - strides[0], size[1] - strides[1]))
    elif layer.padding == "valid":
        top = bottom = left = right = 0
    else:
        raise _refuse(layer, f"has padding {layer.padding!r}")
    spread_h, spread_w = strides[0] * height, strides[1] * width
    scales = graph.weight(f"{layer.name}/scales", np.array([1, 1, strides[0], strides[1]], np.float32))
    roi = graph.weight(f"{layer.name}/roi", np.zeros(0, np.float32))  # EDDL drops inputs named ""
    upsampled = graph.node(
        "Resize", [source.name, roi, scales], f"{layer.name}/upsample", mode="nearest",
        coordinate_transformation_mode="asymmetric", nearest_mode="floor",
    )
    mask = np.zeros((1, channels, spread_h, spread_w), np.float32)
    mask[:, :, :: strides[0], :: strides[1]] = 1.0
    # A Constant node, not an initializer: EDDL's Mul takes an initializer only as a scalar (mult_onnx.cpp).
    mask_name = graph.node("Constant", [], f"{layer.name}/mask", value=numpy_helper.from_array(mask))
    spread = graph.node("Mul", [upsampled, mask_name], f"{layer.name}/spread")
    # Keras' Conv2DTranspose kernel is (kh, kw, out, in); the equivalent Conv kernel is (out, in, kh, kw) flipped.
    flipped = kernel[::-1, ::-1].transpose(2, 3, 0, 1)
    inputs = [spread, graph.weight(f"{layer.name}/W", flipped)]
    if bias is not None:
        inputs.append(graph.weight(f"{layer.name}/b", bias))
    pads = [size[0] - 1 - top, size[1] - 1 - left, size[0] - strides[0] - bottom, size[1] - strides[1] - right]
    output = graph.node(
        "Conv", inputs, layer.name, kernel_shape=list(size), strides=[1, 1], pads=pads, dilations=[1, 1], group=1
    )
    out_h = strides[0] * (height - 1) + size[0] - top - bottom
    out_w = strides[1] * (width - 1) + size[1] - left - right
    return _Value(output, (kernel.shape[2], out_h, out_w))


def _pool(layer: Any, kind: str, source: _Value, graph: _Graph) -> _Value:
    size, strides = tuple(layer.pool_size), tuple(layer.strides)
    pads = _pads(layer, source.shape, size, strides, (1, 1))
    if any(pads):
        raise _refuse(
            layer,
            f"needs padding {pads} on a {source.shape[1]}x{source.shape[2]} input: EDDL pools padded zeros, "
            "TensorFlow leaves them out (choose an input size the pooling divides)",
        )
    op = "MaxPool" if kind == "MaxPooling2D" else "AveragePool"
    output = graph.node(op, [source.name], layer.name, kernel_shape=list(size), strides=list(strides), pads=pads)
    channels, height, width = source.shape
    return _Value(output, (channels, (height - size[0]) // strides[0] + 1, (width - size[1]) // strides[1] + 1))


def _dense(layer: Any, source: _Value, graph: _Graph) -> _Value:
    if len(source.shape) != 1:
        raise _refuse(layer, f"takes a {len(source.shape) + 1}-D input (EDDL's Gemm import takes 2-D; add Flatten)")
    kernel, bias = _weights(layer)
    if source.keras_order is not None:
        kernel = kernel[source.keras_order]
    inputs = [source.name, graph.weight(f"{layer.name}/W", kernel)]
    if bias is not None:
        inputs.append(graph.weight(f"{layer.name}/b", bias))
    output = graph.node("Gemm", inputs, layer.name, alpha=1.0, beta=1.0, transA=0, transB=0)
    return _Value(output, (kernel.shape[1],))


def _flatten(layer: Any, source: _Value, graph: _Graph) -> _Value:
    if len(source.shape) == 1:
        return source
    channels, height, width = source.shape
    # NCHW flat position (c, h, w) holds what Keras' NHWC flatten put at (h, w, c).
    c, h, w = np.meshgrid(np.arange(channels), np.arange(height), np.arange(width), indexing="ij")
    keras_order = ((h * width + w) * channels + c).reshape(-1)
    output = graph.node("Flatten", [source.name], layer.name, axis=1)
    return _Value(output, (channels * height * width,), keras_order)


def _concat(layer: Any, sources: list[_Value], graph: _Graph) -> _Value:
    rank = len(sources[0].shape) + 1
    if layer.axis not in (-1, rank - 1) or any(s.keras_order is not None for s in sources):
        raise _refuse(layer, f"concatenates on axis {layer.axis} (only the channel axis is exported)")
    output = graph.node("Concat", [s.name for s in sources], layer.name, axis=1)
    channels = sum(s.shape[0] for s in sources)
    return _Value(output, (channels, *sources[0].shape[1:]))


def _weights(layer: Any) -> tuple[np.ndarray, np.ndarray | None]:
    weights = layer.get_weights()
    return weights[0], (weights[1] if layer.use_bias else None)
