"""tf-keras (Keras 2), not Keras 3, for every model we build, train, save or load.

Keras 3's ``model.fit`` fails under MultiWorkerMirroredStrategy (a PerReplica conversion error),
while tf-keras trains in sync. TensorFlow picks tf-keras only if ``TF_USE_LEGACY_KERAS`` is set
before TensorFlow is first imported, so every module that leads to a TensorFlow import calls
``use_tf_keras()`` at import time, and subprocesses that import TensorFlow get ``LEGACY_KERAS_ENV``.
"""

from __future__ import annotations

import os

LEGACY_KERAS_ENV = {"TF_USE_LEGACY_KERAS": "1"}


def use_tf_keras() -> None:
    """Ask TensorFlow for tf-keras, unless the user set the variable already."""
    for key, value in LEGACY_KERAS_ENV.items():
        os.environ.setdefault(key, value)
