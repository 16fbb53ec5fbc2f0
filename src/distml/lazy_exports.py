"""A package's curated names, imported from their modules on first use (PEP 562 module ``__getattr__``).

``from distml.training import WorkerConfig, train`` then works without ``import distml.training``
loading every module of the package: the CLI stays fast (``distml --help`` loads no TensorFlow,
ONNX Runtime or kubernetes client) and packages that use each other's modules import no cycle.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, names_by_module: Mapping[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for PACKAGE, which re-exports each module's names."""
    module_of = {name: module for module, names in names_by_module.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_of[name]), name)
        setattr(sys.modules[package], name, value)  # found once; later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(module_of))

    return sorted(module_of), __getattr__, __dir__
