"""The inference backends by name: ``onnxruntime`` and ``ecvl``, one module each.

BACKEND_MODULES maps a name to the module that defines it (its ``BACKEND`` class, a subclass of
distml.inference.backend_api.Backend); a module is imported only when its backend is asked for,
so listing the names (the CLI's ``--backend`` choices) loads neither ONNX Runtime nor pyecvl.
The map follows TorchX's ``DEFAULT_SCHEDULER_MODULES`` (pytorch/torchx torchx/schedulers/__init__.py,
name → module path, imported on demand).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from distml.errors import DistmlError

if TYPE_CHECKING:
    from distml.inference.backend_api import Backend

BACKEND_MODULES: dict[str, str] = {
    "onnxruntime": "distml.inference.onnxruntime_backend",
    "ecvl": "distml.inference.ecvl_backend",
}
BACKEND_NAMES: tuple[str, ...] = tuple(BACKEND_MODULES)


def backend_class(name: str) -> type[Backend]:
    """The class of backend ``name``, or a DistmlError that lists the names."""
    if name not in BACKEND_MODULES:
        raise DistmlError(f"unknown backend {name!r}", hint=f"Backends: {', '.join(BACKEND_NAMES)}.")
    return importlib.import_module(BACKEND_MODULES[name]).BACKEND


def backend_classes() -> dict[str, type[Backend]]:
    """Every backend by name (importing a module does not import its runtime: that waits for a model)."""
    return {name: backend_class(name) for name in BACKEND_NAMES}


def create_backend(name: str, model: str | os.PathLike[str], *, threads: int = 0) -> Backend:
    """A ready backend, or a DistmlError saying why it cannot run here."""
    cls = backend_class(name)
    reason = cls.unavailable_reason()
    if reason:
        raise DistmlError(f"backend {name} cannot run here: {reason}")
    return cls(model, threads=threads)
