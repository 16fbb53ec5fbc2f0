"""The inference backends: an abstract base, one module per backend, a name → module map, no import cycle."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from distml.errors import DistmlError
from distml.inference import backend_api, backends

INFERENCE = Path(backend_api.__file__).parent
BACKEND_MODULES = ["distml.inference.backend_api", "distml.inference.backends", *backends.BACKEND_MODULES.values()]


def _imported_modules(path: Path) -> set[str]:
    """Every distml module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("distml"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("distml")}
    return found


def test_no_inference_module_imports_another_in_a_circle():
    graph = {f"distml.inference.{path.stem}": _imported_modules(path) for path in INFERENCE.glob("*.py")}

    def cycle_from(start: str, module: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
        for imported in sorted(graph.get(module, ())):
            if imported == start:
                return (*seen, imported)
            if imported in graph and imported not in seen:
                found = cycle_from(start, imported, (*seen, imported))
                if found:
                    return found
        return None

    cycles = [" -> ".join(cycle) for module in graph if (cycle := cycle_from(module, module, (module,)))]
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("module", BACKEND_MODULES)
def test_each_backend_module_imports_alone_in_a_fresh_interpreter(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_mapped_module_defines_its_backend_under_its_name():
    assert set(backends.BACKEND_MODULES) == {"onnxruntime", "ecvl"}
    for name, module in backends.BACKEND_MODULES.items():
        assert importlib.util.find_spec(module) is not None, module
        cls = backends.backend_class(name)
        assert issubclass(cls, backend_api.Backend) and cls.name == name


def test_the_base_is_abstract_and_an_unknown_name_lists_the_known_ones():
    with pytest.raises(TypeError, match="abstract"):
        backend_api.Backend("model.onnx")  # type: ignore[abstract]
    with pytest.raises(DistmlError, match="unknown backend 'tensorrt'") as caught:
        backends.create_backend("tensorrt", "model.onnx")
    assert "onnxruntime, ecvl" in caught.value.hint


def test_the_cli_offers_the_backends_of_the_map():
    # A backend added to the map is offered by `distml infer --backend` with no other change.
    script = (
        "import distml.inference.backends as b\n"
        "b.BACKEND_NAMES = (*b.BACKEND_NAMES, 'added')\n"
        "from distml.cli.infer import infer\n"
        "print(','.join(next(p for p in infer.params if p.name == 'backend').type.choices))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "onnxruntime,ecvl,added"
