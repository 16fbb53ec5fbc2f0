"""The model architectures by name: small tf-keras models for classification and lesion masks.

Built inside the distribution strategy's scope by the worker. Every model's input layer is
named ``input`` (the serving signature's input) and takes NHWC float32 in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distml.errors import DistmlError
from distml.tfkeras import use_tf_keras

use_tf_keras()  # before any TensorFlow import: see distml.tfkeras

CLASSIFIERS = ("mlp", "cnn", "lenet5")
SEGMENTERS = ("unet-small",)
ARCHITECTURES = CLASSIFIERS + SEGMENTERS


def task_of(architecture: str) -> str:
    """The task an architecture's output serves: "classification" or "segmentation"."""
    _check_name(architecture)
    return "segmentation" if architecture in SEGMENTERS else "classification"


def build_model(architecture: str, input_shape: tuple[int, int, int], classes: int) -> Any:
    """An uncompiled tf-keras model; ``classes`` is ignored by segmenters (one sigmoid mask)."""
    _check_name(architecture)
    from tf_keras import Input, Model

    inputs = Input(shape=tuple(input_shape), name="input")
    outputs = _BUILDERS[architecture](inputs, classes)
    return Model(inputs, outputs, name=architecture.replace("-", "_"))


def _check_name(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise DistmlError(f"unknown model {architecture!r}", hint=f"Use one of: {', '.join(ARCHITECTURES)}.")


def _mlp(inputs, classes: int):
    from tf_keras import layers

    x = layers.Flatten()(inputs)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dense(64, activation="relu")(x)
    return layers.Dense(classes, activation="softmax", name="output")(x)


def _cnn(inputs, classes: int):
    """Three conv layers with max pooling, then a dense head: the patterns book's Fashion-MNIST model.

    ``same`` padding keeps it usable on 8x8 digits as well as 28x28 images.
    """
    from tf_keras import layers

    x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(padding="same")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(padding="same")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    return layers.Dense(classes, activation="softmax", name="output")(x)


def _lenet5(inputs, classes: int):
    """LeCun's LeNet-5 (tanh, average pooling, 120-84 dense), ``same`` padding for small inputs."""
    from tf_keras import layers

    x = layers.Conv2D(6, 5, padding="same", activation="tanh")(inputs)
    x = layers.AveragePooling2D(padding="same")(x)
    x = layers.Conv2D(16, 5, padding="same", activation="tanh")(x)
    x = layers.AveragePooling2D(padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(120, activation="tanh")(x)
    x = layers.Dense(84, activation="tanh")(x)
    return layers.Dense(classes, activation="softmax", name="output")(x)


def _unet_small(inputs, _classes: int):
    """A two-level U-Net (16-32-64 filters) with one sigmoid output channel; H and W divisible by 4.

    He-normal initialisation, as in the U-Net paper: with Keras' default (Glorot) the ReLU stack
    starts with shrinking activations and spends its first tens of steps predicting all background.
    """
    from tf_keras import layers

    def conv(x, filters: int):
        return layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer="he_normal")(x)

    def up(x, filters: int):
        return layers.Conv2DTranspose(filters, 2, strides=2, padding="same", kernel_initializer="he_normal")(x)

    skip1 = conv(conv(inputs, 16), 16)
    skip2 = conv(conv(layers.MaxPooling2D()(skip1), 32), 32)
    x = conv(conv(layers.MaxPooling2D()(skip2), 64), 64)
    x = conv(conv(layers.Concatenate()([up(x, 32), skip2]), 32), 32)
    x = conv(conv(layers.Concatenate()([up(x, 16), skip1]), 16), 16)
    return layers.Conv2D(1, 1, activation="sigmoid", name="output")(x)


def bce_dice_loss(y_true: Any, y_pred: Any) -> Any:
    """Per-image binary cross-entropy plus soft Dice loss (smoothed by 1), for sigmoid masks.

    Cross-entropy alone is dominated by the background pixels (most of a lesion image), so early
    training settles on an all-background mask whose IoU is 0; the Dice term measures the overlap
    with the foreground whatever its share of the image, and an empty mask still scores 0 loss
    when the prediction is empty too.
    """
    import tensorflow as tf
    import tf_keras

    y_true = tf.cast(y_true, y_pred.dtype)
    axes = list(range(1, len(y_pred.shape)))
    cross_entropy = tf.reduce_mean(tf_keras.backend.binary_crossentropy(y_true, y_pred), axis=axes)
    intersection = tf.reduce_sum(y_true * y_pred, axis=axes)
    total = tf.reduce_sum(y_true, axis=axes) + tf.reduce_sum(y_pred, axis=axes)
    return cross_entropy + 1.0 - (2.0 * intersection + 1.0) / (total + 1.0)


_BUILDERS: dict[str, Callable[[Any, int], Any]] = {
    "mlp": _mlp,
    "cnn": _cnn,
    "lenet5": _lenet5,
    "unet-small": _unet_small,
}
