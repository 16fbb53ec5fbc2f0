"""Tiny real models for the inference tests (built here, never downloaded): a helper module, not tests.

``lesion_model_folder``: a two-layer conv net with a one-channel sigmoid output for 32x32
synthetic lesions; ``digits_model_folder``: a softmax classifier of 8x8 digits. Both are
briefly trained with tf-keras and saved as Model folders (SavedModel, model.onnx via
tf2onnx, model.json), the layout training writes. tests/conftest.py builds each once per run
(the ``lesion_model`` and ``digits_model`` fixtures).
"""

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

LESION_SIZE = 32


def lesion_keras_model(train_dir: Path):
    """A 2-layer conv net fitted for a few epochs on synthetic lesions written to ``train_dir``."""
    import tf_keras
    from PIL import Image

    from distml.data.dtd import read_dataset
    from distml.data.synth import synth_lesions

    dataset = read_dataset(synth_lesions(train_dir, images=24, size=LESION_SIZE, seed=7))
    x = np.stack([np.asarray(Image.open(dataset.resolve(i.location)), dtype=np.float32) / 255 for i in dataset.images])
    y = np.stack([np.asarray(Image.open(dataset.resolve(i.label)), dtype=np.float32) / 255 for i in dataset.images])
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((LESION_SIZE, LESION_SIZE, 3), name="input")
    hidden = tf_keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    outputs = tf_keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(hidden)
    model = tf_keras.Model(inputs, outputs)
    model.compile(tf_keras.optimizers.Adam(0.05), "binary_crossentropy")
    model.fit(x, y[..., None], epochs=15, batch_size=8, verbose=0)
    return model


def digits_keras_model():
    """A softmax classifier of 8x8 digits, fitted on scikit-learn's digits scaled as the PNGs are."""
    import tf_keras
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (np.round(digits.images * (255.0 / 16.0)) / 255.0).astype(np.float32)[..., None]
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((8, 8, 1), name="input")
    outputs = tf_keras.layers.Dense(10, activation="softmax")(tf_keras.layers.Flatten()(inputs))
    model = tf_keras.Model(inputs, outputs)
    model.compile(tf_keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(x[:600], digits.target[:600], epochs=10, batch_size=64, verbose=0)
    return model


def save_folder(model, folder: Path, *, task: str, classes: list[str]) -> Path:
    """A Model folder by training's own writer (SavedModel, model.onnx, model.json)."""
    from distml.training.model_folder import save_model_folder

    shape = [int(n) for n in model.inputs[0].shape[1:]]
    return save_model_folder(
        model,
        folder,
        architecture="tiny",
        task=task,
        input_shape=shape,
        classes=classes,
        metrics={"workers": 1, "global_batch_size": 8, "epochs": []},
        onnx=True,
    )


def lesion_model_folder(root: Path) -> tuple[object, Path]:
    model = lesion_keras_model(root / "lesion-train")
    return model, save_folder(model, root / "lesion-model", task="segmentation", classes=[])


def digits_model_folder(root: Path) -> tuple[object, Path]:
    model = digits_keras_model()
    return model, save_folder(model, root / "digits-model", task="classification", classes=[str(c) for c in range(10)])


#: The backend contract's tolerance. Every backend runs the same float32 network (TensorFlow, ONNX Runtime on
#: model.onnx, EDDL on model-eddl.onnx) on the same decoded PNGs at the model's size; their outputs agree to
#: about 1e-6, so a per-image IoU can differ only where a pixel's probability lies that close to the 0.5
#: threshold. None did in these fixtures (the IoUs were equal); 1e-4 leaves room for rounding, not for a flip.
IOU_TOLERANCE = 1e-4
