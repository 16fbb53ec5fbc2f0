"""The layers of ARCHITECTURE.md hold: the core library imports no KFP, and KFP's local runner
imports from the repository root without docker-py (no folder there shadows the `docker` module)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
#: The packages that may import KFP: the components, the pipelines, the tooling that runs them, the CLI.
KFP_LAYERS = ("distml.components", "distml.pipelines", "distml.runs", "distml.cli")


def core_modules() -> list[str]:
    """Every module of src/distml outside the KFP layers, by import name."""
    names = []
    for path in sorted((SRC / "distml").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not any(name == layer or name.startswith(layer + ".") for layer in KFP_LAYERS):
            names.append(name)
    return names


def run_python(script: str) -> subprocess.CompletedProcess[str]:
    """SCRIPT in a fresh interpreter, from the repository root (so the root is on sys.path, as for `python -m`)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def test_core_modules_import_no_kfp():
    modules = core_modules()
    assert {"distml.errors", "distml.data.dtd", "distml.training.launch", "distml.serving.local"} <= set(modules)
    result = run_python(
        f"""
        import importlib, sys
        for name in {modules!r}:
            importlib.import_module(name)
            if "kfp" in sys.modules:
                sys.exit(f"importing {{name}} imported kfp")
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]


PACKAGES = ("distml.data", "distml.training", "distml.inference", "distml.selection", "distml.serving")
#: What a package import must not load: the runtimes only some commands need (seconds each).
HEAVY = ("tensorflow", "onnxruntime", "kserve", "kubernetes", "pyecvl", "kfp")


def test_package_exports_resolve_and_load_nothing_heavy():
    result = run_python(
        f"""
        import importlib, sys
        packages = [importlib.import_module(name) for name in {PACKAGES!r}]
        loaded = sorted(name for name in {HEAVY!r} if name in sys.modules)
        assert not loaded, f"importing the packages loaded {{loaded}}"
        for package in packages:
            assert package.__all__, package.__name__
            for name in package.__all__:
                getattr(package, name)
                assert name in dir(package), (package.__name__, name)
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_kfp_local_runner_imports_from_the_repo_root_without_docker_py():
    """kfp.local's task dispatcher does `import docker` (kfp 2.17.0 kfp/local/task_dispatcher.py:22-28,
    ImportError caught) and reads `docker.DockerClient` at import (docker_task_handler.py:17,42): a
    `docker/` folder in the working directory would be imported as a namespace package and fail it."""
    result = run_python(
        """
        import importlib.machinery, sys

        class WithoutDockerPy:
            def find_spec(self, name, path=None, target=None):
                if name != "docker":
                    return None
                outside = [entry for entry in sys.path if "site-packages" not in entry]
                spec = importlib.machinery.PathFinder.find_spec(name, outside)
                if spec is None:
                    raise ModuleNotFoundError("No module named 'docker'", name=name)
                return spec

        sys.meta_path.insert(0, WithoutDockerPy())
        from kfp.local import task_dispatcher
        assert not task_dispatcher._DOCKER_AVAILABLE
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
